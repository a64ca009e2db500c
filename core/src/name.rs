//! The one profile-name rule, used for every slot, every directory and every command.
//!
//! Upstream had three validators that disagreed (a 251-character s6 rule, a 64-character CLI
//! rule and a hashing fallback); a name accepted by one and refused by another produced slots
//! nobody could address. Here there is one: `^[a-z0-9][a-z0-9_-]{0,63}$`.

use std::fmt;

/// The root profile: lives at `$HERMES_HOME` itself, slot `gateway-default`.
pub const DEFAULT_PROFILE: &str = "default";
pub const MAX_LEN: usize = 64;
/// Prefix of every gateway slot in the scandir.
pub const SLOT_PREFIX: &str = "gateway-";

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NameError {
    Empty,
    TooLong(usize),
    BadChars(String),
}

impl fmt::Display for NameError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NameError::Empty => write!(f, "profile name must not be empty"),
            NameError::TooLong(n) => write!(f, "profile name too long ({n} > {MAX_LEN})"),
            NameError::BadChars(n) => write!(f, "profile name must match [a-z0-9][a-z0-9_-]{{0,63}}, got '{}'", n.escape_debug()),
        }
    }
}

impl std::error::Error for NameError {}

/// A profile name that passed [`validate`]: the command layer makes one from each PROFILE
/// argument, once, and everything below takes it (as a `&str` where it only reads it).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
#[serde(transparent)]
pub struct Profile(String);

impl Profile {
    /// The name, if it is one: `gateway-foo` names the profile `gateway-foo`, never `foo`.
    pub fn new(name: &str) -> Result<Profile, NameError> {
        validate(name)?;
        Ok(Profile(name.to_string()))
    }

    /// The root profile, at `$HERMES_HOME` itself.
    pub fn default_profile() -> Profile {
        Profile(DEFAULT_PROFILE.to_string())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn is_default(&self) -> bool {
        self.0 == DEFAULT_PROFILE
    }
}

impl std::ops::Deref for Profile {
    type Target = str;
    fn deref(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Profile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Check `name` against the rule. Order of checks: empty, length, characters.
pub fn validate(name: &str) -> Result<(), NameError> {
    let b = name.as_bytes();
    if b.is_empty() {
        return Err(NameError::Empty);
    }
    if b.len() > MAX_LEN {
        return Err(NameError::TooLong(name.chars().count()));
    }
    let first_ok = b[0].is_ascii_lowercase() || b[0].is_ascii_digit();
    let rest_ok = b[1..].iter().all(|&c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'_' || c == b'-');
    if first_ok && rest_ok {
        Ok(())
    } else {
        Err(NameError::BadChars(name.to_string()))
    }
}

/// `gateway-<p>`: the slot directory name of a (valid) profile.
pub fn slot_name(profile: &str) -> String {
    format!("{SLOT_PREFIX}{profile}")
}

/// `.gateway-<p>.tmp`: where a slot is built before its one-rename publish. The leading dot
/// keeps s6-svscan from supervising a half-built directory.
pub fn staging_name(profile: &str) -> String {
    format!(".{SLOT_PREFIX}{profile}.tmp")
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;

    #[rstest]
    #[case("coder")]
    #[case("my-profile")]
    #[case("assistant_v2")]
    #[case("a")]
    #[case("0")]
    #[case("0abc")]
    #[case("default")]
    fn accepts(#[case] name: &str) {
        assert_eq!(validate(name), Ok(()));
    }

    #[rstest]
    #[case("", "profile name must not be empty")]
    #[case("Coder", "got 'Coder'")]
    #[case("foo/bar", "got 'foo/bar'")]
    #[case("../escape", "got '../escape'")]
    #[case("-leading-dash", "got '-leading-dash'")]
    #[case("_leading_underscore", "got '_leading_underscore'")]
    #[case("name with spaces", "got 'name with spaces'")]
    #[case("name.with.dots", "got 'name.with.dots'")]
    #[case("evil\nname", "got 'evil\\nname'")]
    fn rejects_with_message(#[case] name: &str, #[case] fragment: &str) {
        let err = validate(name).unwrap_err().to_string();
        assert!(err.contains(fragment), "{err:?} should contain {fragment:?}");
    }

    #[test]
    fn length_boundary_is_64() {
        assert_eq!(validate(&"a".repeat(64)), Ok(()));
        assert_eq!(validate(&"a".repeat(65)), Err(NameError::TooLong(65)));
        // Length is checked before characters, as upstream does.
        assert_eq!(validate(&"A".repeat(252)), Err(NameError::TooLong(252)));
    }

    #[test]
    fn slot_and_staging_names() {
        assert_eq!(slot_name("coder"), "gateway-coder");
        assert_eq!(staging_name("coder"), ".gateway-coder.tmp");
    }
}

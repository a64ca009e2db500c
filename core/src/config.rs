//! Where things are and who the unprivileged user is. Resolved once by the binary (flags, then
//! environment, then defaults) and passed down; the library never reads the environment.

use std::path::PathBuf;

pub const DEFAULT_HOME: &str = "/opt/data";
pub const DEFAULT_SCANDIR: &str = "/run/service";
pub const DEFAULT_UID: u32 = 10000;
pub const DEFAULT_USER: &str = "hermes";
/// s6-overlay's interpreter line: the container environment reaches the scripts through it.
pub const DEFAULT_INTERPRETER: &str = "/command/with-contenv sh";
pub const DEFAULT_GATEWAY_PROGRAM: &str = "hermes";
/// Debian's s6-svscan supervises at most 500 service directories unless started with `-c`;
/// every profile needs two (gateway + logger).
pub const DEFAULT_MAX_SERVICES: usize = 500;
/// The registrar's doorbell: the unprivileged user writes a byte, root converges.
pub const DEFAULT_REGISTRAR_FIFO: &str = "/run/hermes-s6/registrar";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// `$HERMES_HOME`: the persistent volume, root profile at its top.
    pub home: PathBuf,
    /// The s6-svscan scan directory the slots are published into.
    pub scandir: PathBuf,
    /// The unprivileged user the gateways run as.
    pub user: String,
    pub uid: u32,
    pub gid: u32,
    /// What follows `#!` in every rendered script.
    pub interpreter: String,
    /// The program that runs a gateway: rendered as `<program> [-p <P>] gateway run --replace`.
    pub gateway_program: String,
    /// The scanner's service limit (its `-c`), loggers included.
    pub max_services: usize,
    /// FIFO the registrar (`hermes-reconcile watch`) listens on.
    pub registrar_fifo: PathBuf,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            home: PathBuf::from(DEFAULT_HOME),
            scandir: PathBuf::from(DEFAULT_SCANDIR),
            user: DEFAULT_USER.to_string(),
            uid: DEFAULT_UID,
            gid: DEFAULT_UID,
            interpreter: DEFAULT_INTERPRETER.to_string(),
            gateway_program: DEFAULT_GATEWAY_PROGRAM.to_string(),
            max_services: DEFAULT_MAX_SERVICES,
            registrar_fifo: PathBuf::from(DEFAULT_REGISTRAR_FIFO),
        }
    }
}

impl Config {
    /// Reject values that would break the rendered scripts. These come from root's own
    /// configuration, not from the volume, so they are checked for shape, not trust.
    pub fn check(&self) -> Result<(), String> {
        for (what, v) in [
            ("interpreter", &self.interpreter),
            ("gateway program", &self.gateway_program),
            ("user", &self.user),
        ] {
            if v.trim().is_empty() || v.contains(['\n', '\r', '\0']) {
                return Err(format!("{what} must be a non-empty single line, got {v:?}"));
            }
        }
        if self.user.contains(|c: char| c.is_whitespace() || c == '\'' || c == '"') {
            return Err(format!("user must be a plain user name, got {:?}", self.user));
        }
        for (what, p) in [("home", &self.home), ("scandir", &self.scandir)] {
            if !p.is_absolute() {
                return Err(format!("{what} must be an absolute path, got {}", p.display()));
            }
        }
        Ok(())
    }
}

/// The root home for a `HERMES_HOME` that may point at one profile: a CLI started as
/// `hermes -p coder` runs with `HERMES_HOME=<root>/profiles/coder`, but every slot and every
/// wanted state belongs to the tree under `<root>`.
pub fn root_home(home: &std::path::Path) -> PathBuf {
    match (home.parent(), home.file_name()) {
        (Some(parent), Some(_)) if parent.file_name().is_some_and(|n| n == "profiles") => {
            parent.parent().map(|p| p.to_path_buf()).unwrap_or_else(|| home.to_path_buf())
        }
        _ => home.to_path_buf(),
    }
}

/// The uid/gid of `user` from the password database, if it exists.
pub fn lookup_user(user: &str) -> Option<(u32, u32)> {
    nix::unistd::User::from_name(user)
        .ok()
        .flatten()
        .map(|u| (u.uid.as_raw(), u.gid.as_raw()))
}

#[cfg(test)]
mod tests {
    use super::root_home;
    use std::path::Path;

    #[test]
    fn a_profile_home_maps_to_its_root() {
        assert_eq!(root_home(Path::new("/opt/data/profiles/coder")), Path::new("/opt/data"));
        assert_eq!(root_home(Path::new("/opt/data")), Path::new("/opt/data"));
        assert_eq!(root_home(Path::new("/srv/profiles")), Path::new("/srv/profiles"));
    }
}

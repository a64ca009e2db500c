//! Which s6 the simulator plays. Debian 12 ships s6 2.11.3.2 (what this project's machines
//! install, and what `tests/differential.rs` checks the simulator against); s6-overlay 3.2.3.2
//! ships 2.15.1.0. Where the two differ in what a client or a service can observe, the
//! scanner and the supervisors ask this value (the two versions' sources, `github:skarnet/s6`;
//! `tests/versions.rs` pins each difference).

use std::fmt;
use std::time::Duration;

/// The environment variable that selects the version when `hermes-svscan` is started under the
/// name of `s6-svscan` by something that cannot pass it `--s6-version`.
pub const ENV: &str = "HERMES_SVSCAN_S6_VERSION";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum S6Version {
    /// Debian's s6 2.11.3.2.
    #[default]
    V2_11,
    /// s6 2.15.1.0, as s6-overlay 3.2.3.2 ships it.
    V2_15,
}

impl S6Version {
    /// `2.11`, `2.11.3.2`, `2.15`, `2.15.1.0`.
    pub fn parse(s: &str) -> Result<S6Version, String> {
        match s.trim() {
            "2.11" | "2.11.3.2" => Ok(S6Version::V2_11),
            "2.15" | "2.15.1.0" => Ok(S6Version::V2_15),
            other => Err(format!("unsupported s6 version {other:?}: hermes-svscan plays 2.11 (Debian's 2.11.3.2) or 2.15 (2.15.1.0)")),
        }
    }

    /// The version named by [`ENV`], or 2.11 when it is unset.
    pub fn from_env() -> Result<S6Version, String> {
        match std::env::var(ENV) {
            Ok(v) => S6Version::parse(&v).map_err(|e| format!("{ENV}: {e}")),
            Err(_) => Ok(S6Version::default()),
        }
    }

    /// s6-svscan's default service limit.
    pub fn default_max(self) -> usize {
        match self {
            S6Version::V2_11 => 500,
            S6Version::V2_15 => 1000,
        }
    }

    /// The range s6-svscan clamps its service limit to.
    pub fn clamp_max(self, n: usize) -> usize {
        match self {
            S6Version::V2_11 => n.clamp(2, 90_000),
            S6Version::V2_15 => n.clamp(4, 160_000),
        }
    }

    /// The s6-svscan option that sets the limit, for messages that tell a user how to raise it.
    pub fn max_flag(self) -> &'static str {
        match self {
            S6Version::V2_11 => "-c",
            S6Version::V2_15 => "-C",
        }
    }

    /// How long s6-supervise waits before trying `./run` again after it could not be executed:
    /// 2.11 forks and learns of the failed exec from the child, 2.15 spawns with posix_spawn.
    pub fn spawn_retry(self) -> Duration {
        match self {
            S6Version::V2_11 => Duration::from_secs(10),
            S6Version::V2_15 => Duration::from_secs(60),
        }
    }
}

impl fmt::Display for S6Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            S6Version::V2_11 => "2.11",
            S6Version::V2_15 => "2.15",
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_short_and_full_version_strings_are_accepted() {
        assert_eq!(S6Version::parse("2.11"), Ok(S6Version::V2_11));
        assert_eq!(S6Version::parse("2.11.3.2"), Ok(S6Version::V2_11));
        assert_eq!(S6Version::parse("2.15"), Ok(S6Version::V2_15));
        assert_eq!(S6Version::parse("2.15.1.0\n"), Ok(S6Version::V2_15));
        assert!(S6Version::parse("2.13").unwrap_err().contains("2.11"));
    }

    #[test]
    fn limits_follow_each_version() {
        assert_eq!((S6Version::V2_11.default_max(), S6Version::V2_15.default_max()), (500, 1000));
        assert_eq!((S6Version::V2_11.clamp_max(1), S6Version::V2_15.clamp_max(1)), (2, 4));
        assert_eq!((S6Version::V2_11.clamp_max(1 << 20), S6Version::V2_15.clamp_max(1 << 20)), (90_000, 160_000));
        assert_eq!((S6Version::V2_11.max_flag(), S6Version::V2_15.max_flag()), ("-c", "-C"));
    }
}

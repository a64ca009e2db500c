//! What can go wrong, as one typed vocabulary rendered at the edge: every binary maps a
//! [`Problem`] to the message a person reads, to the exit code `--help` promises, and under
//! `--json` to `{"ok": false, "error": {…}}`.

use crate::name::NameError;
use std::fmt;
use std::io;
use std::path::{Path, PathBuf};

/// The exit codes every command documents once.
pub mod exit {
    pub const OK: u8 = 0;
    /// The command failed (or, with `--all` or a boot pass, some part of it did).
    pub const FAILED: u8 = 1;
    /// Usage or configuration error: nothing was done.
    pub const USAGE: u8 = 2;
    /// The s6 scan directory cannot be used: nothing was done.
    pub const SCANDIR: u8 = 3;
}

#[derive(Debug)]
pub enum Problem {
    /// The command line or the configuration is wrong.
    Usage(String),
    InvalidName(NameError),
    /// The scan directory cannot be opened or used.
    Scandir {
        path: PathBuf,
        error: io::Error,
    },
    /// No slot for this profile in the scandir.
    NotRegistered {
        profile: String,
        hint: Option<String>,
    },
    /// No profile directory (with `SOUL.md`) on the volume.
    NoProfile {
        profile: String,
        path: PathBuf,
    },
    AlreadyRegistered {
        profile: String,
        path: PathBuf,
    },
    /// A control command to a supervisor failed, in `s6-svc`'s terms (its exit code and words).
    Svc {
        service: String,
        command: String,
        code: i32,
        message: String,
    },
    /// Registering would exceed the scanner's service limit.
    Capacity {
        used: usize,
        needed: usize,
        max: usize,
        raise: String,
    },
    /// Unregistering a profile that is still on the volume: the registrar would put it back.
    ProfileStillExists {
        profile: String,
        path: PathBuf,
    },
    /// A root-side verb run without root: refused before doing anything.
    NeedsRoot {
        what: String,
        path: PathBuf,
        instead: String,
    },
    /// The kernel refused an operation.
    Permission {
        path: PathBuf,
        action: String,
        uid: u32,
    },
    /// Something did not happen in time.
    Timeout {
        what: String,
    },
    /// Anything else the system said no to.
    Io {
        path: PathBuf,
        action: String,
        error: io::Error,
    },
    /// A gateway that was started did not stay up.
    /// `now` is what `status` says of it since (its state and why).
    /// `cleared`: the crash policy's hold the command cleared before starting it, if any.
    DidNotStayUp {
        profile: String,
        how: String,
        restarts: usize,
        now: String,
        log: PathBuf,
        cleared: Option<&'static str>,
    },
    /// The s6 action happened, but the wanted state could not be recorded on the volume.
    NotRecorded {
        done: String,
        path: PathBuf,
        error: io::Error,
    },
    /// Something stands at a path that this program refuses to use (a link, a FIFO…);
    /// `why` reads after the path: "is a symbolic link, not a directory; …".
    Unusable {
        path: PathBuf,
        why: String,
    },
}

impl Problem {
    /// An I/O failure on `path` while doing `action`, with permission problems named as such.
    pub fn io(path: impl AsRef<Path>, action: &str, error: io::Error, uid: u32) -> Problem {
        let path = path.as_ref().to_path_buf();
        if error.kind() == io::ErrorKind::PermissionDenied || error.raw_os_error() == Some(nix::libc::EPERM) {
            Problem::Permission { path, action: action.to_string(), uid }
        } else {
            Problem::Io { path, action: action.to_string(), error }
        }
    }

    pub fn usage(message: impl Into<String>) -> Problem {
        Problem::Usage(message.into())
    }

    pub fn exit_code(&self) -> u8 {
        match self {
            Problem::Usage(_) | Problem::InvalidName(_) => exit::USAGE,
            Problem::Scandir { .. } => exit::SCANDIR,
            _ => exit::FAILED,
        }
    }

    /// A stable machine-readable name for the JSON form.
    pub fn kind(&self) -> &'static str {
        match self {
            Problem::Usage(_) => "usage",
            Problem::InvalidName(_) => "invalid-name",
            Problem::Scandir { .. } => "scandir-unusable",
            Problem::NotRegistered { .. } => "not-registered",
            Problem::NoProfile { .. } => "no-profile",
            Problem::AlreadyRegistered { .. } => "already-registered",
            Problem::Svc { .. } => "s6-control-failed",
            Problem::Capacity { .. } => "capacity",
            Problem::NeedsRoot { .. } => "needs-root",
            Problem::ProfileStillExists { .. } => "profile-exists",
            Problem::Permission { .. } => "permission-denied",
            Problem::Timeout { .. } => "timeout",
            Problem::Io { .. } => "io",
            Problem::Unusable { .. } => "unusable",
            Problem::DidNotStayUp { .. } => "did-not-stay-up",
            Problem::NotRecorded { .. } => "not-recorded",
        }
    }

    /// The path concerned, when there is one.
    pub fn path(&self) -> Option<&Path> {
        match self {
            Problem::Scandir { path, .. }
            | Problem::NoProfile { path, .. }
            | Problem::AlreadyRegistered { path, .. }
            | Problem::NeedsRoot { path, .. }
            | Problem::ProfileStillExists { path, .. }
            | Problem::Permission { path, .. }
            | Problem::Io { path, .. }
            | Problem::Unusable { path, .. }
            | Problem::NotRecorded { path, .. } => Some(path),
            Problem::DidNotStayUp { log, .. } => Some(log),
            _ => None,
        }
    }

    /// The JSON form with the exit code the command actually exits with (LSB `status` answers
    /// 4 for an unknown profile).
    pub fn to_json_exiting(&self, code: u8) -> serde_json::Value {
        let mut v = self.to_json();
        v["exit_code"] = serde_json::json!(code);
        v
    }

    /// A usage problem from clap's rendered error: its message up to the usage block, on one
    /// line (the missing argument's name is on the line after "not provided:").
    pub fn from_clap_rendering(rendered: &str) -> Problem {
        let msg = rendered
            .lines()
            .take_while(|l| !l.trim().is_empty() && !l.starts_with("Usage:"))
            .map(|l| l.trim().trim_start_matches("error: "))
            .collect::<Vec<_>>()
            .join(" ");
        Problem::usage(msg)
    }

    pub fn to_json(&self) -> serde_json::Value {
        let mut v = serde_json::json!({
            "kind": self.kind(),
            "message": self.to_string(),
            "path": self.path().map(|p| p.display().to_string()),
            "exit_code": self.exit_code(),
        });
        if let Problem::DidNotStayUp { cleared, .. } = self {
            v["cleared"] = serde_json::json!(cleared);
        }
        v
    }
}

fn user_name(uid: u32) -> String {
    nix::unistd::User::from_uid(nix::unistd::Uid::from_raw(uid)).ok().flatten().map(|u| u.name).unwrap_or_else(|| "?".into())
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Problem::Usage(m) => f.write_str(m),
            Problem::InvalidName(e) => write!(f, "{e}"),
            Problem::Scandir { path, error } => write!(
                f,
                "cannot use the s6 scan directory {}: {error} (is s6-svscan running there? set S6_PROFILE_GATEWAY_SCANDIR or pass --scandir)",
                path.display()
            ),
            Problem::NotRegistered { profile, hint } => {
                write!(
                    f,
                    "no such gateway '{profile}': register it with `hermes profile create {profile}` first, or pass an existing profile name via `-p <name>`"
                )?;
                match hint {
                    Some(h) => write!(f, " ({h})"),
                    None => Ok(()),
                }
            }
            Problem::NoProfile { profile, path } => write!(
                f,
                "no profile '{profile}' at {} (a profile is a directory holding SOUL.md): create it with `hermes profile create {profile}`",
                path.display()
            ),
            Problem::AlreadyRegistered { profile, path } => {
                write!(f, "profile gateway '{profile}' already registered at {}", path.display())
            }
            Problem::Svc { service, command, code, message } => {
                write!(f, "s6-svc {command} on '{service}' failed (rc={code}): {message}")
            }
            Problem::Capacity { used, needed, max, raise } => write!(
                f,
                "cannot register: s6-svscan supervises at most {max} service directories and {used} are in use; this profile needs {needed} more (gateway + logger). {raise}, or remove unused profiles"
            ),
            Problem::ProfileStillExists { profile, path } => write!(
                f,
                "profile '{profile}' still exists at {}: the registrar would register its slot again within seconds. To stop its gateway: hermes -p {profile} gateway stop; to delete the profile and its slot: hermes profile delete {profile} --yes; to remove the slot anyway: repeat with --force",
                path.display()
            ),
            Problem::NeedsRoot { what, path, instead } => write!(
                f,
                "{what} needs root: {} belongs to root and the hermes user may not change it; {instead}",
                path.display()
            ),
            Problem::Permission { path, action, uid } => {
                write!(f, "permission denied: cannot {action} {} as uid {uid} ({})", path.display(), user_name(*uid))
            }
            Problem::Timeout { what } => write!(f, "timed out waiting for {what}"),
            Problem::Io { path, action, error } => write!(f, "could not {action} {}: {error}", path.display()),
            Problem::Unusable { path, why } => write!(f, "{} {why}", path.display()),
            Problem::DidNotStayUp { profile, how, restarts, now, log, cleared } => {
                write!(f, "gateway-{profile} did not stay up: {how} (it has died {restarts} time(s) since its slot was supervised); ")?;
                if let Some(c) = cleared {
                    write!(f, "this command had cleared the crash policy's hold ({c}) to start it, so the policy counts its crashes afresh; ")?;
                }
                write!(f, "now {now}; its log: {} (hermes -p {profile} gateway logs)", log.display())
            }
            Problem::NotRecorded { done, path, error } => write!(f, "{done}; wanted state not recorded: {error} ({})", path.display()),
        }
    }
}

impl std::error::Error for Problem {}

impl From<NameError> for Problem {
    fn from(e: NameError) -> Problem {
        Problem::InvalidName(e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_codes_follow_the_documented_table() {
        assert_eq!(Problem::usage("x").exit_code(), 2);
        assert_eq!(Problem::InvalidName(NameError::Empty).exit_code(), 2);
        assert_eq!(Problem::Scandir { path: "/run/service".into(), error: io::Error::from(io::ErrorKind::NotFound) }.exit_code(), 3);
        assert_eq!(Problem::NotRegistered { profile: "x".into(), hint: None }.exit_code(), 1);
    }

    #[test]
    fn permission_errors_are_named_and_json_carries_kind_and_path() {
        let p = Problem::io("/opt/data/x", "write", io::Error::from_raw_os_error(nix::libc::EACCES), 10000);
        assert!(matches!(p, Problem::Permission { .. }));
        assert!(p.to_string().starts_with("permission denied: cannot write /opt/data/x as uid 10000"), "{p}");
        let j = p.to_json();
        assert_eq!(
            (j["kind"].as_str(), j["path"].as_str(), j["exit_code"].as_u64()),
            (Some("permission-denied"), Some("/opt/data/x"), Some(1))
        );
    }
}

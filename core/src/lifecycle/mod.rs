//! The runtime half: one file per verb (register, unregister, start, stop, restart, status,
//! watch), sharing the slot lookup, the error vocabulary and the desired-state writer here.
//!
//! start/stop/restart are run by the unprivileged user: they write only the seeded
//! `supervise/control` FIFO and the user's own volume. register/unregister write the
//! root-owned scandir and therefore run as root, either directly or through the registrar
//! (`watch`) that the user rings.

pub mod capacity;
pub mod desired;
pub mod marker;
pub mod register;
pub mod restart;
pub mod start;
pub mod status;
pub mod static_perms;
pub mod stop;
pub mod unregister;
pub mod watch;

use crate::config::Config;
use crate::discovery::PROFILES_DIR;
use crate::profile_name::{self, slot_name, DEFAULT_PROFILE, SLOT_PREFIX};
use crate::s6::svc::SvcError;
use crate::safe_fs::{Dir, Fs, Kind};
use std::ffi::OsStr;
use std::fmt;
use std::io;

#[derive(Debug)]
pub enum Error {
    InvalidName(profile_name::NameError),
    /// No slot for this profile in the scandir.
    NotRegistered { profile: String },
    AlreadyRegistered { profile: String, path: String },
    /// No profile directory (with `SOUL.md`) on the volume.
    NoProfile { profile: String, path: String },
    /// The s6 protocol step failed the way `s6-svc` would.
    S6 { service: String, action: &'static str, code: i32, message: String },
    /// Registering would exceed the scanner's service limit.
    Capacity { used: usize, needed: usize, max: usize },
    /// An operation was refused by the kernel's permissions.
    Permission { path: String, what: String, uid: u32 },
    /// The registrar did not answer in time.
    Timeout { what: String },
    Io { path: String, error: io::Error },
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::InvalidName(e) => write!(f, "{e}"),
            Error::NotRegistered { profile } => write!(
                f,
                "no such gateway '{profile}': register it with `hermes profile create {profile}` first, or pass an existing profile name via `-p <name>`"
            ),
            Error::AlreadyRegistered { profile, path } => write!(f, "profile gateway '{profile}' already registered at {path}"),
            Error::NoProfile { profile, path } => write!(
                f,
                "no profile '{profile}' at {path} (a profile is a directory holding SOUL.md): create it with `hermes profile create {profile}`"
            ),
            Error::S6 { service, action, code, message } => {
                write!(f, "s6-svc {action} on '{service}' failed (rc={code}): {message}")
            }
            Error::Capacity { used, needed, max } => write!(
                f,
                "cannot register: s6-svscan supervises at most {max} service directories and {used} are in use; this profile needs {needed} more (gateway + logger). Raise the scanner's limit (s6-svscan -c, and --max-services / HERMES_S6_MAX_SERVICES) or remove unused profiles"
            ),
            Error::Permission { path, what, uid } => {
                let user = nix::unistd::User::from_uid(nix::unistd::Uid::from_raw(*uid))
                    .ok()
                    .flatten()
                    .map(|u| u.name)
                    .unwrap_or_else(|| "?".into());
                write!(f, "permission denied: cannot {what} {path} as uid {uid} ({user})")
            }
            Error::Timeout { what } => write!(f, "timed out waiting for {what}"),
            Error::Io { path, error } => write!(f, "{path}: {error}"),
        }
    }
}

impl std::error::Error for Error {}

impl Error {
    /// Map an I/O error on `path` for operation `what`, naming permissions explicitly.
    pub fn io(path: impl AsRef<std::path::Path>, what: &str, e: io::Error) -> Error {
        let path = path.as_ref().display().to_string();
        if e.kind() == io::ErrorKind::PermissionDenied || e.raw_os_error() == Some(nix::libc::EPERM) {
            Error::Permission { path, what: what.to_string(), uid: nix::unistd::geteuid().as_raw() }
        } else {
            Error::Io { path, error: e }
        }
    }

    pub fn svc(profile: &str, action: &'static str, e: SvcError) -> Error {
        Error::S6 { service: slot_name(profile), action, code: e.code, message: e.message }
    }
}

/// Accept `coder` or `gateway-coder` (what `--all` iterates and upstream passes around).
pub fn profile_from_arg(arg: &str) -> Result<String, Error> {
    let p = arg.strip_prefix(SLOT_PREFIX).unwrap_or(arg);
    profile_name::validate(p).map_err(Error::InvalidName)?;
    Ok(p.to_string())
}

pub fn open_scandir(fs: &dyn Fs, cfg: &Config) -> Result<Dir, Error> {
    fs.open_root(&cfg.scandir).map_err(|e| match Error::io(&cfg.scandir, "open the scan directory", e) {
        Error::Io { path, error } => Error::Io {
            path,
            error: io::Error::new(
                error.kind(),
                format!("cannot open the s6 scan directory: {error} (is s6-svscan running there? set S6_PROFILE_GATEWAY_SCANDIR or pass --scandir)"),
            ),
        },
        other => other,
    })
}

/// The slot directory of a profile, or `NotRegistered`.
pub fn open_slot(fs: &dyn Fs, cfg: &Config, scandir: &Dir, profile: &str) -> Result<Dir, Error> {
    let name = slot_name(profile);
    match fs.open_dir(scandir, OsStr::new(&name)) {
        Ok(d) => Ok(d),
        Err(e) if e.kind() == io::ErrorKind::NotFound || e.raw_os_error() == Some(nix::libc::ELOOP)
            || e.raw_os_error() == Some(nix::libc::ENOTDIR) =>
        {
            Err(Error::NotRegistered { profile: profile.to_string() })
        }
        Err(e) => Err(Error::io(cfg.scandir.join(&name), "open", e)),
    }
}

/// The volume directory of a profile (`$HERMES_HOME` for default), never through a link.
/// `Ok(None)` when it does not exist.
pub fn open_profile_dir(fs: &dyn Fs, cfg: &Config, profile: &str) -> Result<Option<Dir>, Error> {
    let home = match fs.open_root(&cfg.home) {
        Ok(h) => h,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(Error::io(&cfg.home, "open", e)),
    };
    if profile == DEFAULT_PROFILE {
        return Ok(Some(home));
    }
    let profiles = match fs.open_dir(&home, OsStr::new(PROFILES_DIR)) {
        Ok(d) => d,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(Error::io(home.child(OsStr::new(PROFILES_DIR)), "open", e)),
    };
    match fs.open_dir(&profiles, OsStr::new(profile)) {
        Ok(d) => Ok(Some(d)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(Error::io(profiles.child(OsStr::new(profile)), "open", e)),
    }
}

/// Profile names of every `gateway-*` directory in the scandir, sorted.
pub fn registered(fs: &dyn Fs, scandir: &Dir) -> io::Result<Vec<String>> {
    let mut v: Vec<String> = fs
        .list(scandir)?
        .into_iter()
        .filter(|(_, k)| *k == Kind::Dir)
        .filter_map(|(n, _)| n.to_str().and_then(|s| s.strip_prefix(SLOT_PREFIX)).map(String::from))
        .filter(|p| profile_name::validate(p).is_ok())
        .collect();
    v.sort();
    Ok(v)
}

/// Poll `cond` every 20 ms until it holds or `limit` passes.
pub fn wait_until(limit: std::time::Duration, mut cond: impl FnMut() -> bool) -> bool {
    let end = std::time::Instant::now() + limit;
    loop {
        if cond() {
            return true;
        }
        if std::time::Instant::now() >= end {
            return false;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

/// Outcome of a verb applied to every registered slot (`--all`).
pub struct AllResults {
    pub results: Vec<(String, Result<desired::Written, Error>)>,
}

impl AllResults {
    pub fn failed(&self) -> usize {
        self.results.iter().filter(|r| r.1.is_err()).count()
    }

    /// Upstream's wording: one summary line for the successes, one line per failure.
    pub fn render(&self, verb: &str, past: &str) -> String {
        if self.results.is_empty() {
            return "\u{2717} No profile gateways registered under s6\n".into();
        }
        let mut out = String::new();
        let ok = self.results.len() - self.failed();
        if ok > 0 {
            out.push_str(&format!("\u{2713} {past} {ok} profile gateway(s) under s6\n"));
        }
        for (p, r) in &self.results {
            if let Err(e) = r {
                out.push_str(&format!("\u{2717} Could not {verb} gateway-{p}: {e}\n"));
            }
        }
        out
    }
}

/// Apply `f` to every registered slot, going on past failures.
pub fn for_all(fs: &dyn Fs, cfg: &Config, f: impl Fn(&str) -> Result<desired::Written, Error>) -> Result<AllResults, Error> {
    let scandir = open_scandir(fs, cfg)?;
    let names = registered(fs, &scandir).map_err(|e| Error::io(&cfg.scandir, "list", e))?;
    Ok(AllResults { results: names.iter().map(|p| (p.clone(), f(p))).collect() })
}

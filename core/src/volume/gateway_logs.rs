//! A gateway's own log: the s6-log directory `$HERMES_HOME/logs/gateways/<profile>/`, where
//! its logger writes `current` (and rotated `@…s` archives), each line prefixed with an
//! ISO 8601 stamp. Read as the volume's owner, like everything in the volume.

use super::open_profile_dir;
use crate::ctx::Ctx;
use crate::fs::{remove_tree, Capped, Dir};
use crate::problem::Problem;
use std::ffi::OsStr;
use std::io;
use std::path::{Path, PathBuf};

pub const LOGS: &str = "logs";
pub const GATEWAYS: &str = "gateways";
pub const CURRENT: &str = "current";
/// s6-log keeps `current` under 1 MB (`s1000000`); a tail never needs more than this.
const TAIL_CAP: u64 = 4 * 1024 * 1024;

/// Where a profile's gateway log lives.
pub fn log_dir(home: &Path, profile: &str) -> PathBuf {
    home.join(LOGS).join(GATEWAYS).join(profile)
}

/// Make `logs/gateways/` exist under `home` (a volume directory, so as its owner) for the
/// profile's logger, and remove a stale `lock` a previous container's s6-log left in the
/// profile's own directory (a stale flock on some network file systems keeps the new logger
/// from starting). The profile's directory itself is s6-log's to make, as the user, when it
/// first starts (it makes a missing log directory itself, with no fork): a new directory per
/// profile was one more inode in every boot pass, which on a disk costs what a slot's files
/// do. Called when the slot is published.
pub fn prepare(ctx: &Ctx, home: &Dir, profile: &str) -> Result<(), Problem> {
    LogParent::open(ctx, home)?.prepare(ctx, profile)
}

/// `logs/gateways/` under the home, made and opened once for a pass that prepares many
/// profiles' log directories.
pub struct LogParent(Dir);

impl LogParent {
    pub fn open(ctx: &Ctx, home: &Dir) -> Result<LogParent, Problem> {
        let logs = ensure_dir(ctx, home, LOGS)?;
        Ok(LogParent(ensure_dir(ctx, &logs, GATEWAYS)?))
    }

    /// [`prepare`] for one profile below this parent.
    pub fn prepare(&self, ctx: &Ctx, profile: &str) -> Result<(), Problem> {
        let _held = ctx.fs.hold_identity(&self.0).ok();
        let dir = match ctx.fs.open_dir(&self.0, OsStr::new(profile)) {
            Ok(d) => d,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
            Err(e) => {
                let path = self.0.child(OsStr::new(profile));
                return Err(match e.raw_os_error() {
                    Some(nix::libc::ELOOP) | Some(nix::libc::ENOTDIR) => Problem::Unusable {
                        path,
                        why: "is not a directory (a link?); the gateway's logger cannot write there (replace it with a directory)".into(),
                    },
                    _ => ctx.problem(&path, "open", e),
                });
            }
        };
        crate::fs::ignore_missing(ctx.fs.unlink(&dir, OsStr::new("lock")))
            .map_err(|e| ctx.problem(dir.child(OsStr::new("lock")), "remove", e))
    }
}

/// `parent/name` as a directory, made if missing; never entered through a link.
fn ensure_dir(ctx: &Ctx, parent: &Dir, name: &str) -> Result<Dir, Problem> {
    let path = parent.child(OsStr::new(name));
    match ctx.fs.mkdir(parent, OsStr::new(name), 0o755) {
        Err(e) if e.kind() != io::ErrorKind::AlreadyExists => return Err(ctx.problem(&path, "create", e)),
        _ => {}
    }
    ctx.fs.open_dir(parent, OsStr::new(name)).map_err(|e| match e.raw_os_error() {
        Some(nix::libc::ELOOP) | Some(nix::libc::ENOTDIR) => Problem::Unusable {
            path: path.clone(),
            why: "is not a directory (a link?); the gateway's logger cannot write there (replace it with a directory)".into(),
        },
        _ => ctx.problem(&path, "open", e),
    })
}

/// `logs/gateways/` under the home, if it exists.
fn gateways_dir(ctx: &Ctx) -> Result<Option<Dir>, Problem> {
    let Some(home) = open_profile_dir(ctx, crate::name::DEFAULT_PROFILE)? else { return Ok(None) };
    let open = |parent: &Dir, name: &str| match ctx.fs.open_dir(parent, OsStr::new(name)) {
        Ok(d) => Ok(Some(d)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(ctx.problem(parent.child(OsStr::new(name)), "open", e)),
    };
    let Some(logs) = open(&home, LOGS)? else { return Ok(None) };
    open(&logs, GATEWAYS)
}

/// The profile's log directory, if it exists.
pub fn open_log_dir(ctx: &Ctx, profile: &str) -> Result<Option<Dir>, Problem> {
    let Some(g) = gateways_dir(ctx)? else { return Ok(None) };
    match ctx.fs.open_dir(&g, OsStr::new(profile)) {
        Ok(d) => Ok(Some(d)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(ctx.problem(g.child(OsStr::new(profile)), "open", e)),
    }
}

/// The last `n` lines of `current` (fewer when the log is shorter; none when there is none).
pub fn tail(ctx: &Ctx, profile: &str, n: usize) -> Result<Vec<String>, Problem> {
    let Some(dir) = open_log_dir(ctx, profile)? else { return Ok(Vec::new()) };
    let data = match ctx.fs.read_capped(&dir, OsStr::new(CURRENT), TAIL_CAP) {
        Ok(Capped::Data(d)) => d,
        Ok(_) => {
            return Err(Problem::Io {
                path: dir.child(OsStr::new(CURRENT)),
                action: "read".into(),
                error: io::Error::new(io::ErrorKind::InvalidData, "not a regular file under the cap"),
            })
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(ctx.problem(dir.child(OsStr::new(CURRENT)), "read", e)),
    };
    let text = String::from_utf8_lossy(&data);
    let lines: Vec<&str> = text.lines().collect();
    Ok(lines[lines.len().saturating_sub(n)..].iter().map(|s| s.to_string()).collect())
}

/// Where a reader of `current` is: the file it read (inode) and how far.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Cursor {
    pub ino: u64,
    pub offset: u64,
}

/// What was appended to `current` since `at` (from the start when s6-log rotated it to a new
/// file), and the new position.
pub fn read_new(ctx: &Ctx, profile: &str, at: Cursor) -> Result<(Vec<u8>, Cursor), Problem> {
    let Some(dir) = open_log_dir(ctx, profile)? else { return Ok((Vec::new(), at)) };
    let meta = match ctx.fs.lstat(&dir, OsStr::new(CURRENT)) {
        Ok(m) => m,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok((Vec::new(), at)),
        Err(e) => return Err(ctx.problem(dir.child(OsStr::new(CURRENT)), "inspect", e)),
    };
    let from = if meta.ino == at.ino && meta.size >= at.offset { at.offset } else { 0 };
    match ctx.fs.read_from(&dir, OsStr::new(CURRENT), from, TAIL_CAP) {
        Ok(Capped::Data(d)) => {
            let offset = from + d.len() as u64;
            Ok((d, Cursor { ino: meta.ino, offset }))
        }
        Ok(_) => Ok((Vec::new(), at)),
        Err(e) => Err(ctx.problem(dir.child(OsStr::new(CURRENT)), "read", e)),
    }
}

/// The position at the end of `current` now (to follow only what comes next).
pub fn end(ctx: &Ctx, profile: &str) -> Result<Cursor, Problem> {
    let Some(dir) = open_log_dir(ctx, profile)? else { return Ok(Cursor::default()) };
    Ok(ctx.fs.lstat(&dir, OsStr::new(CURRENT)).map(|m| Cursor { ino: m.ino, offset: m.size }).unwrap_or_default())
}

/// Remove a profile's log directory (when its profile is deleted). Absent is success.
pub fn remove(ctx: &Ctx, profile: &str) -> Result<(), Problem> {
    let Some(g) = gateways_dir(ctx)? else { return Ok(()) };
    remove_tree(ctx.fs, &g, OsStr::new(profile)).map_err(|e| ctx.problem(g.child(OsStr::new(profile)), "remove", e))
}

//! The verbs `profile create` and `profile delete`, as the unprivileged user runs them: the
//! user's own tree, through the file-system seam; the slot is the registrar's (root), asked
//! for through its doorbell. A delete stops the gateway through the lifecycle first.

use super::{stop, Wait, SETTLE};
use crate::ctx::Ctx;
use crate::fs::{remove_tree, Kind};
use crate::name::{self, DEFAULT_PROFILE};
use crate::problem::Problem;
use crate::registrar;
use crate::volume::{gateway_logs, MARKER, PROFILES_DIR};
use std::ffi::OsStr;
use std::io;
use std::path::{Path, PathBuf};

/// Names `hermes profile create` refuses: they collide with the root profile or read like
/// system accounts.
pub const RESERVED: [&str; 6] = ["hermes", "default", "test", "tmp", "root", "sudo"];

pub const DEFAULT_SOUL: &str = "You are Hermes Agent, an intelligent AI assistant created by Nous Research.\n";

/// A name a new profile may take: one the supervisor can give a slot, and not reserved.
pub fn check_new_name(profile: &str) -> Result<(), Problem> {
    name::validate(profile)?;
    if RESERVED.contains(&profile) {
        return Err(Problem::usage(format!("profile name '{profile}' is reserved; choose another")));
    }
    Ok(())
}

/// Create `$HERMES_HOME/profiles/<name>/` with a `SOUL.md` (without hermes-agent installed:
/// the stand-in's profile). Does not register the slot.
pub fn create(ctx: &Ctx, profile: &str) -> Result<PathBuf, Problem> {
    check_new_name(profile)?;
    let fs = ctx.fs;
    let home = ctx.open_home().map_err(|e| ctx.problem(&ctx.cfg.home, "open", e))?;
    let profiles_path = home.child(OsStr::new(PROFILES_DIR));
    match fs.mkdir(&home, OsStr::new(PROFILES_DIR), 0o755) {
        Err(e) if e.kind() != io::ErrorKind::AlreadyExists => return Err(ctx.problem(&profiles_path, "create", e)),
        _ => {}
    }
    let profiles = fs.open_dir(&home, OsStr::new(PROFILES_DIR)).map_err(|e| ctx.problem(&profiles_path, "open", e))?;
    let path = profiles.child(OsStr::new(profile));
    match fs.mkdir(&profiles, OsStr::new(profile), 0o755) {
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
            return Err(Problem::Io { path, action: "create".into(), error: io::Error::new(e.kind(), "the profile already exists") })
        }
        other => other.map_err(|e| ctx.problem(&path, "create", e))?,
    }
    let dir = fs.open_dir(&profiles, OsStr::new(profile)).map_err(|e| ctx.problem(&path, "open", e))?;
    fs.create_file(&dir, OsStr::new(MARKER), DEFAULT_SOUL.as_bytes(), 0o644).map_err(|e| ctx.problem(path.join(MARKER), "write", e))?;
    Ok(path)
}

/// Whether a registrar can answer for slots here: s6 supervises (the registrar is one of its
/// services) or its doorbell exists.
pub fn registrar_listens(ctx: &Ctx) -> bool {
    let fifo = &ctx.cfg.registrar_fifo;
    let doorbell = match (fifo.parent(), fifo.file_name()) {
        (Some(dir), Some(name)) => ctx.fs.open_root(dir).and_then(|d| ctx.fs.lstat(&d, name)).is_ok_and(|st| st.kind != Kind::Symlink),
        _ => false,
    };
    crate::s6::svscan::supervising(ctx) || doorbell
}

/// Who removes the profile's directory: hermes-agent's own `profile delete` (its aliases, its
/// service files), run by the caller as the user and reporting its exit code; or this library,
/// link-safe.
pub enum Remover<'a> {
    Ourselves,
    Upstream { program: &'a Path, run: &'a dyn Fn() -> io::Result<i32> },
}

/// What `profile delete` did once the directory was gone.
#[derive(Debug)]
pub struct Deleted {
    /// The slot was removed by the registrar (`Ok(false)`: none answers here), or why not.
    pub slot: Result<bool, Problem>,
    pub logs_kept: bool,
}

/// Delete a profile (a failure to remove the slot is reported in [`Deleted::slot`]): stop its gateway as `stop` does (the profile's lock, the planned-stop
/// marker, a bounded wait), remove its directory while still holding the profile's operation
/// lock (so a `start` racing the delete cannot bring the gateway back in between), then its
/// slot (through the registrar, when one listens), then its gateway log unless `keep_logs`:
/// the slot first, as its logger writes into the log directory until it is gone.
pub fn delete(ctx: &Ctx, profile: &str, remover: Remover, keep_logs: bool) -> Result<Deleted, Problem> {
    remove_dir(ctx, profile, remover)?;
    let listens = registrar_listens(ctx);
    let slot = if listens { registrar::request(ctx, profile, false).map(|()| true) } else { Ok(false) };
    if !keep_logs {
        gateway_logs::remove(ctx, profile)?;
    }
    Ok(Deleted { slot, logs_kept: keep_logs })
}

fn remove_dir(ctx: &Ctx, profile: &str, remover: Remover) -> Result<(), Problem> {
    name::validate(profile)?;
    if profile == DEFAULT_PROFILE {
        return Err(Problem::usage("the root profile cannot be deleted"));
    }
    let fs = ctx.fs;
    let home = ctx.open_home().map_err(|e| ctx.problem(&ctx.cfg.home, "open", e))?;
    let profiles =
        fs.open_dir(&home, OsStr::new(PROFILES_DIR)).map_err(|e| ctx.problem(home.child(OsStr::new(PROFILES_DIR)), "open", e))?;
    let path = profiles.child(OsStr::new(profile));
    let missing =
        || Problem::Io { path: path.clone(), action: "delete".into(), error: io::Error::new(io::ErrorKind::NotFound, "no such profile") };
    fs.lstat(&profiles, OsStr::new(profile)).map_err(|_| missing())?;
    // Best effort, as before: a gateway that would not stop is the teardown's to kill, and a
    // slot that is not registered (or a scanner that is not running) has nothing to stop.
    let _held = match stop::stop_holding(ctx, profile, Wait::Settle(SETTLE)) {
        Ok((_, held)) => held,
        Err(_) => None,
    };
    fs.lstat(&profiles, OsStr::new(profile)).map_err(|_| missing())?;
    let Remover::Upstream { program, run } = remover else {
        return remove_tree(fs, &profiles, OsStr::new(profile)).map_err(|e| ctx.problem(&path, "remove", e));
    };
    // Still under the lock: a concurrent start waits, then finds no profile.
    let code = run().map_err(|e| Problem::Io { path: program.to_path_buf(), action: "run".into(), error: e })?;
    match fs.lstat(&profiles, OsStr::new(profile)) {
        Err(_) => Ok(()),
        Ok(_) => Err(Problem::Io {
            path,
            action: "delete".into(),
            error: io::Error::other(format!(
                "hermes-agent's `profile delete {profile} --yes` exited {code} and left the directory; its slot stays"
            )),
        }),
    }
}

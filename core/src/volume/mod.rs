//! `$HERMES_HOME`, the persistent volume the unprivileged user owns: what it says (profiles,
//! wanted states, the last exit) and the few things root writes into it (the boot log, the
//! wanted state, the planned-stop marker). Root enters it only through
//! [`crate::ctx::Ctx::open_home`], with the user's file-system identity, and never follows a
//! link in it.

pub mod adopt;
pub(crate) mod boot_log;
pub mod container;
pub mod desired;
pub(crate) mod discovery;
pub mod gateway_logs;
pub mod marker;
pub mod multiplex;
pub(crate) mod parked;
pub mod policy_record;
pub mod ports;
pub(crate) mod py_json;
pub mod state;
pub(crate) mod tombstone;

use crate::ctx::Ctx;
use crate::fs::Dir;
use crate::name::DEFAULT_PROFILE;
use crate::problem::Problem;
use std::ffi::OsStr;
use std::io;
use std::path::{Path, PathBuf};

/// Where named profiles live, under the home.
pub const PROFILES_DIR: &str = "profiles";
/// The file that makes a directory under `profiles/` a real profile.
pub const MARKER: &str = "SOUL.md";

/// The directory of a profile: the home itself for `default`, `profiles/<P>` otherwise.
pub fn profile_path(home: &Path, profile: &str) -> PathBuf {
    if profile == DEFAULT_PROFILE {
        home.to_path_buf()
    } else {
        home.join(PROFILES_DIR).join(profile)
    }
}

/// The volume directory of a profile, entered as the volume owner, never through a link.
/// `Ok(None)` when it does not exist.
pub fn open_profile_dir(ctx: &Ctx, profile: &str) -> Result<Option<Dir>, Problem> {
    let missing = |e: &io::Error| e.kind() == io::ErrorKind::NotFound;
    let home = match ctx.open_home() {
        Ok(h) => h,
        Err(e) if missing(&e) => return Ok(None),
        Err(e) => return Err(ctx.problem(&ctx.cfg.home, "open", e)),
    };
    if profile == DEFAULT_PROFILE {
        return Ok(Some(home));
    }
    let profiles = match ctx.fs.open_dir(&home, OsStr::new(PROFILES_DIR)) {
        Ok(d) => d,
        Err(e) if missing(&e) => return Ok(None),
        Err(e) => return Err(ctx.problem(home.child(OsStr::new(PROFILES_DIR)), "open", e)),
    };
    match ctx.fs.open_dir(&profiles, OsStr::new(profile)) {
        Ok(d) => Ok(Some(d)),
        Err(e) if missing(&e) => Ok(None),
        Err(e) => Err(ctx.problem(profiles.child(OsStr::new(profile)), "open", e)),
    }
}

/// Whether a profile exists on the volume: the home for `default`, otherwise a real directory
/// under `profiles/` holding `SOUL.md` whose name is not tombstoned (`profiles/.deleted/<P>`).
pub fn profile_exists(ctx: &Ctx, profile: &str) -> Result<bool, Problem> {
    let Some(dir) = open_profile_dir(ctx, profile)? else { return Ok(false) };
    if profile == DEFAULT_PROFILE {
        return Ok(true);
    }
    if is_tombstoned(ctx, profile) {
        return Ok(false);
    }
    match ctx.fs.lstat(&dir, OsStr::new(MARKER)) {
        Ok(_) => Ok(true),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(ctx.problem(dir.child(OsStr::new(MARKER)), "inspect", e)),
    }
}

/// A named profile must exist on the volume as a real directory holding `SOUL.md`.
pub fn require_profile(ctx: &Ctx, profile: &str) -> Result<(), Problem> {
    if profile_exists(ctx, profile)? {
        Ok(())
    } else {
        Err(Problem::NoProfile { profile: profile.into(), path: profile_path(&ctx.cfg.home, profile) })
    }
}

/// Whether the named `profile` is tombstoned (`profiles/.deleted/<P>`), looked at without
/// following a link.
pub fn is_tombstoned(ctx: &Ctx, profile: &str) -> bool {
    let Ok(home) = ctx.open_home() else { return false };
    let Ok(profiles) = ctx.fs.open_dir(&home, OsStr::new(PROFILES_DIR)) else { return false };
    tombstone::is_tombstoned(ctx.fs, &profiles, profile)
}

//! Profiles on the volume, as the unprivileged user creates and deletes them. The slot side is
//! the registrar's (root); this module only touches the user's own tree, through the library's
//! file-system seam.

use hermes_core::ctx::Ctx;
use hermes_core::fs::remove_tree;
use hermes_core::lifecycle::{stop, Wait, SETTLE};
use hermes_core::name::{self, DEFAULT_PROFILE};
use hermes_core::problem::Problem;
use hermes_core::volume::{MARKER, PROFILES_DIR};
use std::ffi::OsStr;
use std::io;
use std::path::PathBuf;

/// Names `hermes profile create` refuses: they collide with the root profile or read like
/// system accounts.
pub const RESERVED: [&str; 6] = ["hermes", "default", "test", "tmp", "root", "sudo"];

pub const DEFAULT_SOUL: &str = "You are Hermes Agent, an intelligent AI assistant created by Nous Research.\n";

/// The profile name in `profile create`'s arguments: the first word that is neither an
/// option nor the value of one (hermes-agent's `--clone-from SOURCE`, `--description TEXT`).
pub fn name_in_create_args(args: &[String]) -> Result<String, Problem> {
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--clone-from" | "--description" => {
                it.next();
            }
            o if o.starts_with('-') => {}
            n => return Ok(n.to_string()),
        }
    }
    Err(Problem::usage("profile create needs the new profile's NAME"))
}

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

/// Stop the profile's gateway as `stop` does (the profile's lock, the planned-stop marker,
/// a bounded wait), then delete its directory (hermes-agent's own `profile delete` when
/// `upstream` is its CLI, else a link-safe removal) while still holding the profile's operation
/// lock, so a `start` racing the delete cannot bring the gateway back in between. The slot
/// (and after it the log directory) is the caller's next step.
pub fn delete(ctx: &Ctx, profile: &str, upstream: Option<&std::path::Path>) -> Result<(), Problem> {
    name::validate(profile)?;
    if profile == DEFAULT_PROFILE {
        return Err(Problem::usage("the root profile cannot be deleted"));
    }
    let fs = ctx.fs;
    let home = ctx.open_home().map_err(|e| ctx.problem(&ctx.cfg.home, "open", e))?;
    let profiles = fs.open_dir(&home, OsStr::new(PROFILES_DIR)).map_err(|e| ctx.problem(home.child(OsStr::new(PROFILES_DIR)), "open", e))?;
    let path = profiles.child(OsStr::new(profile));
    let missing = || Problem::Io { path: path.clone(), action: "delete".into(), error: io::Error::new(io::ErrorKind::NotFound, "no such profile") };
    fs.lstat(&profiles, OsStr::new(profile)).map_err(|_| missing())?;
    // Best effort, as before: a gateway that would not stop is the teardown's to kill, and a
    // slot that is not registered (or a scanner that is not running) has nothing to stop.
    let _held = match stop::stop_holding(ctx, profile, Wait::Settle(SETTLE)) {
        Ok((_, held)) => held,
        Err(_) => None,
    };
    fs.lstat(&profiles, OsStr::new(profile)).map_err(|_| missing())?;
    let Some(program) = upstream else {
        return remove_tree(fs, &profiles, OsStr::new(profile)).map_err(|e| ctx.problem(&path, "remove", e));
    };
    // hermes-agent's own delete (its aliases, its service files), still under the lock: a
    // concurrent start waits, then finds no profile.
    let code = crate::upstream::run(program, &["profile", "delete", profile, "--yes"].map(OsStr::new), (ctx.cfg.uid, ctx.cfg.gid))
        .map_err(|e| Problem::Io { path: program.to_path_buf(), action: "run".into(), error: e })?;
    match fs.lstat(&profiles, OsStr::new(profile)) {
        Err(_) => Ok(()),
        Ok(_) => Err(Problem::Io {
            path,
            action: "delete".into(),
            error: io::Error::other(format!("hermes-agent's `profile delete {profile} --yes` exited {code} and left the directory; its slot stays")),
        }),
    }
}

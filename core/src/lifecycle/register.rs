//! `register P [--start]` (root): render the slot from the validated name, publish it
//! atomically (down unless `--start`), and ask s6-svscan to pick it up. Refuses a duplicate, a
//! profile that is not on the volume, and a slot the scanner could not supervise.

use crate::ctx::Ctx;
use crate::fs::Dir;
use crate::name::slot_name;
use crate::problem::Problem;
use crate::s6::capacity;
use crate::s6::svscan::{self, Rescan};
use crate::slot;
use crate::volume;
use std::ffi::OsStr;
use std::io;

pub fn register(ctx: &Ctx, profile: &str, start: bool) -> Result<Rescan, Problem> {
    let scandir = ctx.open_scandir()?;
    ctx.require_authority(
        &scandir,
        &format!("registering '{profile}'"),
        &format!("as the hermes user run `hermes profile create {profile}` (or `hermes-reconcile request {profile}` for an existing profile): the registrar does it as root"),
    )?;
    let name = slot_name(profile);
    let path = scandir.child(OsStr::new(&name));
    match ctx.fs.lstat(&scandir, OsStr::new(&name)) {
        Ok(_) => return Err(Problem::AlreadyRegistered { profile: profile.into(), path }),
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(ctx.problem(&path, "inspect", e)),
    }
    volume::require_profile(ctx, profile)?;
    let home = ctx.open_home().map_err(|e| ctx.problem(&ctx.cfg.home, "open", e))?;
    let mut usage = capacity::usage(ctx, &scandir).map_err(|e| ctx.problem(scandir.path(), "list", e))?;
    add_slot(ctx, &scandir, &home, profile, start, &mut usage)?;
    svscan::rescan(ctx.fs, &scandir, false).map_err(|e| ctx.problem(scandir.child(OsStr::new(".s6-svscan/control")), "write", e))
}

/// Publish a slot within the scanner's capacity (counted in `usage`, one snapshot for a whole
/// pass) and make its gateway's log directory; the caller asks for the rescan. What `register`
/// and the registrar both do.
pub fn add_slot(ctx: &Ctx, scandir: &Dir, home: &Dir, profile: &str, start: bool, usage: &mut capacity::Usage) -> Result<(), Problem> {
    if !usage.fits(capacity::PER_PROFILE) {
        return Err(Problem::Capacity {
            used: usage.used,
            needed: capacity::PER_PROFILE,
            max: usage.max,
            raise: "Raise the scanner's limit (s6-svscan -c, and --max-services / HERMES_S6_MAX_SERVICES)".into(),
        });
    }
    crate::volume::gateway_logs::prepare(ctx, home, profile)?;
    let path = scandir.child(OsStr::new(&slot_name(profile)));
    // Its API server port: the record's (or a new one, recorded); a problem reading the
    // profile's own setting leaves the port assigned, never the slot unpublished.
    let dir = volume::open_profile_dir(ctx, profile).ok().flatten();
    let (port, _why) = crate::volume::ports::for_registration(ctx.fs, home, dir.as_ref(), profile, &ctx.cfg.container_env.api);
    let port = port.and_then(|p| p.injected());
    slot::publish(ctx.fs, ctx.cfg, scandir, profile, start, port).map_err(|e| ctx.problem(&path, "publish", e))?;
    usage.used += capacity::PER_PROFILE;
    Ok(())
}

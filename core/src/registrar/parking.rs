//! What the registrar does with upstream's newer vocabulary at run time, for a profile that
//! already has a slot: a `gateway.parked` marker that appears takes its gateway down (and keeps
//! the slot's `down` file, so nothing s6 does brings it back); one that disappears brings it
//! back if it is still wanted running and nothing else holds it (the crash policy,
//! multiplexing); and under multiplexing a named profile's running intent starts the root
//! gateway instead (the fold, [`crate::boot::plan::fold`]), as the boot pass decides.

use crate::boot::plan::{starts, Container};
use crate::ctx::Ctx;
use crate::fs::Dir;
use crate::lifecycle::lock;
use crate::name::{slot_name, DEFAULT_PROFILE};
use crate::policy::record;
use crate::problem::Problem;
use crate::s6::{svc, svstat};
use crate::slot;
use crate::volume::open_profile_dir;
use crate::volume::state::read_prior_state;
use std::ffi::OsStr;

fn send(ctx: &Ctx, scandir: &Dir, profile: &str, bytes: &[u8]) -> Result<(), Problem> {
    let name = slot_name(profile);
    let slot = ctx.fs.open_dir(scandir, OsStr::new(&name)).map_err(|e| ctx.problem(scandir.child(OsStr::new(&name)), "open", e))?;
    match svc::send(ctx.fs, &slot, bytes) {
        // No supervisor yet: the `down` file decides when one starts.
        Err(e) if e.code == svc::NOT_LISTENING => Ok(()),
        Err(e) => {
            Err(Problem::Svc { service: name, command: format!("-{}", String::from_utf8_lossy(bytes)), code: e.code, message: e.message })
        }
        Ok(()) => Ok(()),
    }
}

fn set_down(ctx: &Ctx, scandir: &Dir, profile: &str, start: bool) -> Result<(), Problem> {
    slot::set_down(ctx.fs, scandir, profile, start)
        .map_err(|e| ctx.problem(scandir.child(OsStr::new(&slot_name(profile))), "set the down file of", e))
}

/// Keep a parked profile's slot down: `down` file first, then `d`. Its wanted state is left as
/// it is, so unparking brings back what it had. Whether the gateway was wanted up until now.
pub fn park(ctx: &Ctx, scandir: &Dir, profile: &str) -> Result<bool, Problem> {
    let was = ctx
        .fs
        .open_dir(scandir, OsStr::new(&slot_name(profile)))
        .ok()
        .and_then(|s| svstat::read(ctx.fs, &s).ok().flatten())
        .is_some_and(|st| st.want_up || st.is_up());
    set_down(ctx, scandir, profile, false)?;
    send(ctx, scandir, profile, b"d")?;
    Ok(was)
}

/// The marker is gone: start the gateway again if the volume still wants it running, the
/// crash policy does not hold it and multiplexing does not keep it down. Whether it was.
pub fn unpark(ctx: &Ctx, scandir: &Dir, profile: &str, c: &Container) -> Result<bool, Problem> {
    let Some(dir) = open_profile_dir(ctx, profile)? else { return Ok(false) };
    let prior = read_prior_state(ctx.fs, &dir);
    let held = record::read_in(ctx.fs, &dir).and_then(|r| r.hold()).is_some();
    if held || !starts(profile == DEFAULT_PROFILE, prior.value.as_ref(), c) {
        return Ok(false);
    }
    // As `start` does: once the stop the marker caused has ended (its finish answers s6
    // "stay down", which would swallow a `u` sent meanwhile), under the profile's lock. Rare
    // and bounded: a marker removed within a stop's grace of its appearing.
    let name = slot_name(profile);
    let slot = ctx.fs.open_dir(scandir, OsStr::new(&name)).map_err(|e| ctx.problem(scandir.child(OsStr::new(&name)), "open", e))?;
    let _held = lock::hold_when_quiet(ctx, &slot, lock::QUIET_WAIT)?;
    set_down(ctx, scandir, profile, true)?;
    send(ctx, scandir, profile, b"u")?;
    Ok(true)
}

/// The fold at run time: a named profile wanting running under multiplexing wants the root
/// gateway up. Starts it unless the crash policy holds it or s6 already wants it up. Whether
/// it was started.
pub fn start_root_for_fold(ctx: &Ctx, scandir: &Dir) -> Result<bool, Problem> {
    let Ok(slot) = ctx.fs.open_dir(scandir, OsStr::new(&slot_name(DEFAULT_PROFILE))) else { return Ok(false) };
    if svstat::wanted_up(ctx.fs, &slot) {
        return Ok(false);
    }
    if record::read(ctx, DEFAULT_PROFILE).hold().is_some() {
        return Ok(false);
    }
    set_down(ctx, scandir, DEFAULT_PROFILE, true)?;
    send(ctx, scandir, DEFAULT_PROFILE, b"u")?;
    Ok(true)
}

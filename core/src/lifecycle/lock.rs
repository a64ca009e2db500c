//! One profile's lifecycle operations are serialised: `start`, `stop`, `restart` (run by the
//! user), the crash policy's `finish` and the registrar's scheduled starts (run by root) each
//! hold the slot's `data/lock` while they tell s6 what to do and record it, so what s6 wants
//! and what the volume records never disagree, however they race.
//!
//! The operator's commands also complete one after the other: each holds the slot's `data/`
//! directory's own `flock` (the operation lock) for the whole command, its wait included, so
//! a `restart` cannot bring the gateway up while a `stop` waits for it to go down. The finish
//! and the registrar never take the operation lock: a stop's wait needs its finish to run.

use super::settle;
use crate::clock::wait_until;
use crate::ctx::Ctx;
use crate::fs::{Dir, FileLock};
use crate::problem::Problem;
use crate::s6::svstat;
use crate::slot::layout::LOCK_FILE;
use std::ffi::OsStr;
use std::io;
use std::time::Duration;

/// How long an operation waits for another on the same profile.
pub const WAIT: Duration = Duration::from_secs(15);

/// How long a command waits for another command on the same profile to complete: the
/// longest a `restart` takes (a stop to end, its gateway to come up and settle, its finish).
pub const OPERATION_WAIT: Duration = Duration::from_secs(60);

/// Hold the profile's operation lock (see the module's documentation) for the whole of one
/// command, waiting up to `limit` for another command to complete. `Ok(None)` when the slot
/// has no `data/` directory (a slot from an older release).
pub fn operation(ctx: &Ctx, slot: &Dir, limit: Duration) -> Result<Option<FileLock>, Problem> {
    take(ctx, slot, crate::slot::DATA_DIR, limit, Duration::from_millis(20), "another command on this profile to complete")
}

/// How long `start`/`restart` wait for a stop in progress to end: its grace, then its finish.
pub const QUIET_WAIT: Duration = Duration::from_millis(crate::slot::STOP_GRACE_MS + 6000);

/// Hold the profile's lock once no stop or finish is in progress on the slot (waiting for one
/// to end first, without the lock that finish may need): what `start` and `restart` tell s6
/// then cannot be undone by the end of an earlier stop. Gives up waiting after `limit` and
/// takes the lock anyway.
pub fn hold_when_quiet(ctx: &Ctx, slot: &Dir, limit: Duration) -> Result<Option<FileLock>, Problem> {
    let deadline = ctx.clock.instant() + limit;
    loop {
        let left = deadline.saturating_duration_since(ctx.clock.instant());
        settle::until_quiet(ctx, slot, left);
        let held = hold(ctx, slot, WAIT)?;
        let busy = svstat::read(ctx.fs, slot).ok().flatten().is_some_and(|st| settle::in_progress(&st));
        if !busy || ctx.clock.instant() >= deadline {
            return Ok(held);
        }
        // Another stop slipped in between: let it end, then try again.
        drop(held);
    }
}

/// Hold the profile's lock, waiting up to `limit` for it. `Ok(None)` when the slot has no
/// lock file (a slot from an older release): the operation goes on unserialised.
pub fn hold(ctx: &Ctx, slot: &Dir, limit: Duration) -> Result<Option<FileLock>, Problem> {
    take(ctx, slot, LOCK_FILE, limit, Duration::from_millis(5), "another operation on this profile to finish")
}

fn take(ctx: &Ctx, slot: &Dir, name: &str, limit: Duration, poll: Duration, waiting_for: &str) -> Result<Option<FileLock>, Problem> {
    let path = slot.child(OsStr::new(name));
    let mut got = None;
    let mut failure = None;
    let acquired = wait_until(ctx.clock, limit, poll, || match ctx.fs.try_lock(slot, OsStr::new(name)) {
        Ok(Some(l)) => {
            got = Some(l);
            true
        }
        Ok(None) => false,
        Err(e) => {
            failure = Some(e);
            true
        }
    });
    match (got, failure) {
        (Some(l), _) => Ok(Some(l)),
        (None, Some(e)) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        (None, Some(e)) => Err(ctx.problem(&path, "lock", e)),
        (None, None) => {
            debug_assert!(!acquired);
            Err(Problem::Timeout { what: format!("{waiting_for} (it holds {})", path.display()) })
        }
    }
}

//! `unregister P` (root): tear the slot down (see [`crate::slot::teardown`]), waiting until
//! its supervisors and gateway are gone. Idempotent: an absent slot is success.

use crate::ctx::Ctx;
use crate::problem::Problem;
use crate::slot::teardown::{self, Progress};
use std::time::Duration;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unregistered {
    Removed,
    WasAbsent,
}

/// `force`: even when the profile is still on the volume (the registrar, if it runs, will
/// register it again).
pub fn unregister(ctx: &Ctx, profile: &str, force: bool) -> Result<Unregistered, Problem> {
    let scandir = ctx.open_scandir()?;
    ctx.require_authority(
        &scandir,
        &format!("unregistering '{profile}'"),
        &format!("as the hermes user run `hermes profile delete {profile}`: the registrar removes the slot as root"),
    )?;
    if !force && crate::volume::profile_exists(ctx, profile).unwrap_or(false) {
        return Err(Problem::ProfileStillExists {
            profile: profile.to_string(),
            path: crate::volume::profile_path(&ctx.cfg.home, profile),
        });
    }
    let Some(mut t) = teardown::begin(ctx, &scandir, profile)? else { return Ok(Unregistered::WasAbsent) };
    loop {
        match teardown::poll(ctx, &scandir, &mut t) {
            Progress::Done => return Ok(Unregistered::Removed),
            Progress::Stuck(p) => return Err(p),
            Progress::Waiting => ctx.clock.sleep(Duration::from_millis(20)),
        }
    }
}

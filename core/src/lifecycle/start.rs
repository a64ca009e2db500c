//! `start P`: under the profile's lock, clear whatever the crash policy held, want the
//! gateway up (`s6-svc -u`) and record `desired_state=running`; then watch it come up and stay
//! up for the settle window, and say what happened.

use super::{confirm_up, control, lock, open_slot, Asked, Done, Wait};
use crate::ctx::Ctx;
use crate::fs::{Dir, FileLock};
use crate::policy::{self, record, PolicyState, Record};
use crate::problem::Problem;
use crate::volume::state::Wanted;
use std::path::PathBuf;

/// What `start` and `restart` hold and know once they may act: the slot under the profile's
/// operation lock (and quiet: no finish running), unparked, and the crash policy's record.
pub(super) struct Bringing {
    pub slot: Dir,
    pub operation: Option<FileLock>,
    pub quiet: Option<FileLock>,
    pub unparked: Option<PathBuf>,
    pub now: f64,
    pub rec: Record,
    /// What the policy held down and the command is about to clear.
    pub cleared: Option<PolicyState>,
}

pub(super) fn bring_up(ctx: &Ctx, profile: &str) -> Result<Bringing, Problem> {
    let scandir = ctx.open_scandir()?;
    let slot = open_slot(ctx, &scandir, profile)?;
    let operation = lock::operation(ctx, &slot, lock::OPERATION_WAIT)?;
    let quiet = lock::hold_when_quiet(ctx, &slot, lock::QUIET_WAIT)?;
    // Parked (hermes-agent's `gateway.parked`): starting it unparks it, as upstream's start
    // does; a marker that cannot be removed stops the command, naming it.
    let unparked = crate::volume::parked::unpark(ctx, profile)?;
    let now = super::unix_now(ctx);
    let rec = record::read(ctx, profile);
    let cleared = rec.holds_down().then_some(rec.state);
    Ok(Bringing { slot, operation, quiet, unparked, now, rec, cleared })
}

pub fn ask(ctx: &Ctx, profile: &str) -> Result<Asked, Problem> {
    if super::fold::applies(ctx, profile) {
        return super::fold::ask(ctx, profile);
    }
    let Bringing { slot, operation, quiet: _quiet, unparked, now, rec, cleared } = bring_up(ctx, profile)?;
    if record::exists(ctx, profile) {
        record::write(ctx, profile, &policy::on_operator_start(&rec, now))?;
    }
    control(ctx, &slot, profile, "-u", b"u")?;
    super::settle::until_acknowledged(ctx, &slot, true);
    let written = super::record_wanted(ctx, profile, &Wanted::Running, "gateway started");
    Ok(Asked { profile: profile.to_string(), slot, old_pid: None, written, cleared, operation, at: now, unparked, served_by: None })
}

pub fn start(ctx: &Ctx, profile: &str, wait: Wait) -> Result<Done, Problem> {
    let asked = ask(ctx, profile)?;
    confirm_up(ctx, asked, wait)
}

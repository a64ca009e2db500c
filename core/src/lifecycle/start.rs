//! `start P`: under the profile's lock, clear whatever the crash policy held, want the
//! gateway up (`s6-svc -u`) and record `desired_state=running`; then watch it come up and stay
//! up for the settle window, and say what happened.

use super::{confirm_up, control, lock, open_slot, Asked, Done, Wait};
use crate::ctx::Ctx;
use crate::policy::{self, record};
use crate::problem::Problem;
use crate::volume::state::Wanted;

pub fn ask(ctx: &Ctx, profile: &str) -> Result<Asked, Problem> {
    let scandir = ctx.open_scandir()?;
    let slot = open_slot(ctx, &scandir, profile)?;
    let operation = lock::operation(ctx, &slot, lock::OPERATION_WAIT)?;
    let _held = lock::hold_when_quiet(ctx, &slot, lock::QUIET_WAIT)?;
    // Parked (hermes-agent's `gateway.parked`): starting it unparks it, as upstream's start
    // does; a marker that cannot be removed stops the command, naming it.
    let unparked = crate::volume::parked::unpark(ctx, profile)?;
    let now = super::unix_now(ctx);
    let rec = record::read(ctx, profile);
    let cleared = rec.holds_down().then_some(rec.state);
    if record::exists(ctx, profile) {
        record::write(ctx, profile, &policy::on_operator_start(&rec, now))?;
    }
    control(ctx, &slot, profile, "-u", b"u")?;
    super::settle::until_acknowledged(ctx, &slot, true);
    let written = super::record_wanted(ctx, profile, &Wanted::Running, "gateway started");
    Ok(Asked { profile: profile.to_string(), slot, old_pid: None, written, cleared, operation, at: now, unparked })
}

pub fn start(ctx: &Ctx, profile: &str, wait: Wait) -> Result<Done, Problem> {
    let asked = ask(ctx, profile)?;
    confirm_up(ctx, asked, wait)
}

//! `restart P`: under the profile's lock, clear the crash policy and note that the coming
//! death is asked for (so it is not counted as a crash), SIGTERM the gateway (`s6-svc -t`) and
//! let s6 start it again (an unmarked SIGTERM makes the gateway exit non-zero, so its finish
//! does not park it); a gateway that is down is simply started. Records `running`, then waits
//! for a new process that stays up.

use super::start::{bring_up, Bringing};
use super::{confirm_up, control, Asked, Done, Wait};
use crate::ctx::Ctx;
use crate::policy::{self, record};
use crate::problem::Problem;
use crate::s6::svstat;
use crate::slot::STOP_GRACE_MS;
use crate::volume::state::Wanted;

pub fn ask(ctx: &Ctx, profile: &str) -> Result<Asked, Problem> {
    // Under multiplexing, restarting a named profile would restart the root gateway, and with
    // it every profile it serves: the profile is made sure to be served instead, and the
    // command layer says how to restart the root gateway itself.
    if super::fold::applies(ctx, profile) {
        return super::fold::ask(ctx, profile);
    }
    let Bringing { slot, operation, quiet: _quiet, unparked, now, rec, cleared } = bring_up(ctx, profile)?;
    let mut fresh = policy::on_operator_start(&rec, now);
    fresh.restart_asked_until = Some(now + (STOP_GRACE_MS as f64 / 1000.0) + 5.0);
    record::write(ctx, profile, &fresh)?;
    let old = svstat::read(ctx.fs, &slot).ok().flatten().filter(|st| st.is_up()).map(|st| st.pid);
    // `u` before `t`: a service that is up but wanted down would otherwise not come back.
    let (command, bytes): (&str, &[u8]) = if old.is_some() { ("-u -t", b"ut") } else { ("-u", b"u") };
    control(ctx, &slot, profile, command, bytes)?;
    super::settle::until_acknowledged(ctx, &slot, true);
    let written = super::record_wanted(ctx, profile, &Wanted::Running, "gateway restarted");
    Ok(Asked { profile: profile.to_string(), slot, old_pid: old, written, cleared, operation, at: now, unparked, served_by: None })
}

pub fn restart(ctx: &Ctx, profile: &str, wait: Wait) -> Result<Done, Problem> {
    let asked = ask(ctx, profile)?;
    confirm_up(ctx, asked, wait)
}

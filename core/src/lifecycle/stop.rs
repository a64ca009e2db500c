//! `stop P`: under the profile's lock, write the planned-stop marker for the supervised pid
//! (if up), want the gateway down (`s6-svc -d`: SIGTERM + SIGCONT; the slot's `timeout-kill`
//! SIGKILLs its process group past the grace) and record `desired_state=stopped`; then wait
//! until it is down and say how it went.

use super::{confirm_down, control, lock, open_slot, Asked, Done, Wait};
use crate::ctx::Ctx;
use crate::problem::Problem;
use crate::s6::svstat;
use crate::volume::marker;
use crate::volume::state::Wanted;

pub fn ask(ctx: &Ctx, profile: &str) -> Result<Asked, Problem> {
    let scandir = ctx.open_scandir()?;
    let slot = open_slot(ctx, &scandir, profile)?;
    let _held = lock::hold(ctx, &slot, lock::WAIT)?;
    let up = svstat::read(ctx.fs, &slot).ok().flatten().filter(|st| st.is_up()).map(|st| st.pid);
    if let Some(pid) = up {
        // Best effort: without the marker the gateway treats the stop as a crash and asks to
        // be restarted, which s6 will not do (it is wanted down); the stop goes on.
        let _ = marker::write(ctx, profile, pid);
    }
    control(ctx, &slot, profile, "-d", b"d")?;
    super::settle::until_acknowledged(ctx, &slot, false);
    let written = super::record_wanted(ctx, profile, &Wanted::Stopped, "gateway stopped");
    Ok(Asked { profile: profile.to_string(), slot, old_pid: up, written, cleared: None })
}

pub fn stop(ctx: &Ctx, profile: &str, wait: Wait) -> Result<Done, Problem> {
    let asked = ask(ctx, profile)?;
    confirm_down(ctx, asked, wait)
}

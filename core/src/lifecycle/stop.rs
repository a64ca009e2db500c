//! `stop P`: under the profile's lock, write the planned-stop marker for the supervised pid
//! (if up), want the gateway down (`s6-svc -d`: SIGTERM + SIGCONT; the slot's `timeout-kill`
//! SIGKILLs its process group past the grace) and record `desired_state=stopped`; then wait
//! until it is down and say how it went.

use super::{confirm_down, control, lock, open_slot, Asked, Done, Wait};
use crate::ctx::Ctx;
use crate::fs::FileLock;
use crate::problem::Problem;
use crate::s6::svstat;
use crate::volume::desired::Written;
use crate::volume::marker;
use crate::volume::state::Wanted;

pub fn ask(ctx: &Ctx, profile: &str) -> Result<Asked, Problem> {
    let scandir = ctx.open_scandir()?;
    let slot = open_slot(ctx, &scandir, profile)?;
    let operation = lock::operation(ctx, &slot, lock::OPERATION_WAIT)?;
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
    // Under multiplexing the root gateway serves this profile whatever its own slot does: said.
    let served_by = super::fold::served_by(ctx, &scandir, profile);
    Ok(Asked {
        profile: profile.to_string(),
        slot,
        old_pid: up,
        written,
        cleared: None,
        operation,
        at: super::unix_now(ctx),
        unparked: None,
        served_by,
    })
}

pub fn stop(ctx: &Ctx, profile: &str, wait: Wait) -> Result<Done, Problem> {
    let asked = ask(ctx, profile)?;
    confirm(ctx, asked, wait)
}

/// `stop`, keeping the profile's operation lock: what the caller does next (deleting the
/// profile) happens before any other command on the profile can start it again.
pub fn stop_holding(ctx: &Ctx, profile: &str, wait: Wait) -> Result<(Done, Option<FileLock>), Problem> {
    let mut asked = ask(ctx, profile)?;
    let operation = asked.operation.take();
    Ok((confirm(ctx, asked, wait)?, operation))
}

/// Wait until the gateway is down (unless `Wait::No`), then make sure the volume still says
/// `stopped`.
pub fn confirm(ctx: &Ctx, mut asked: Asked, wait: Wait) -> Result<Done, Problem> {
    let profile = asked.profile.clone();
    let recorded = matches!(asked.written, Ok(Written::Yes | Written::ReplacedUnreadable(_)));
    // The profile's operation lock until the volume is checked again: a start that comes in
    // meanwhile then runs after, and a fold (which never wants this slot up, so the check
    // below could not tell it came) cannot have its `running` overwritten.
    let _operation = asked.operation.take();
    let done = confirm_down(ctx, asked, wait)?;
    if recorded && wait != Wait::No {
        reassert_stopped(ctx, &profile);
    }
    Ok(done)
}

/// A gateway writes its own status into the same `gateway_state.json` as it exits, by
/// read-modify-write; one that read the file before `stop` recorded `stopped` and wrote after
/// puts the old `desired_state` back (upstream's known lost update), and the next boot would
/// start it. Once it is down nobody else writes there: record `stopped` again if it was lost.
fn reassert_stopped(ctx: &Ctx, profile: &str) {
    if crate::volume::desired::read(ctx, profile) == Some(Wanted::Stopped) {
        return;
    }
    let Ok(scandir) = ctx.open_scandir() else { return };
    let Ok(slot) = super::open_slot(ctx, &scandir, profile) else { return };
    let Ok(_held) = lock::hold(ctx, &slot, lock::WAIT) else { return };
    // Under the lock: a `start` that came in meanwhile has recorded `running`, and wins.
    let up = svstat::read(ctx.fs, &slot).ok().flatten().is_some_and(|st| st.is_up() || st.want_up);
    if !up && crate::volume::desired::read(ctx, profile) != Some(Wanted::Stopped) {
        let _ = crate::volume::desired::write(ctx, profile, &Wanted::Stopped);
    }
}

//! What a slot's `finish` script runs (`hermes-reconcile finish P <code> <signal> …`, as root,
//! under s6-supervise, once per death of the gateway): classify the death, apply the policy,
//! record the verdict on the volume, and answer s6 with the exit code that says whether to
//! restart. It never sleeps (s6 gives finish 5 s) and never blocks on anything the user can
//! hold for long; whatever goes wrong, it falls back to the plain contract (0 and 78 park,
//! anything else restarts).

use super::lock;
use crate::clock::unix_secs_f64;
use crate::ctx::Ctx;
use crate::exit_policy::{Cause, ExitClass, S6_PERMANENT_FAILURE, S6_SIGNALLED};
use crate::guard::{oom, reason};
use crate::name::slot_name;
use crate::policy::{on_death, Death, Decision, Knobs};
use crate::registrar::doorbell;
use crate::s6::svstat;
use crate::volume::policy_record::{self as record, PolicyState};
use std::ffi::OsStr;
use std::time::{Duration, UNIX_EPOCH};

/// How long finish waits for a lifecycle command holding the profile's lock (commands hold it
/// for milliseconds; the user can hold it forever, and s6 gives a finish `timeout-finish`).
const LOCK_WAIT: Duration = Duration::from_secs(1);

/// Randomness for the jitter, from the clock's nanoseconds and the pid.
fn unit(ctx: &Ctx) -> f64 {
    let nanos = ctx.clock.now().duration_since(UNIX_EPOCH).map(|d| d.subsec_nanos()).unwrap_or(0) as u64;
    let mixed = (nanos ^ (std::process::id() as u64).wrapping_mul(2_654_435_761)).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    (mixed >> 11) as f64 / (1u64 << 53) as f64
}

/// The plain contract: a clean exit or a configuration error parks; anything else restarts.
fn contract(class: ExitClass) -> i32 {
    if class.restarts() {
        0
    } else {
        S6_PERMANENT_FAILURE
    }
}

/// How long after a death an operator start can still have been meant to override it (its
/// command raced the death; the finish ran a moment later, after up to a second's lock wait).
const SUPERSEDED_WITHIN: f64 = 30.0;

/// Whether the record was reset by an operator start after this death: the run it counted
/// started after the death, so the death was of a run the operator already replaced.
fn superseded(rec: &record::Record, death_at: f64) -> bool {
    rec.state == PolicyState::Running && rec.running_since > death_at && rec.running_since <= death_at + SUPERSEDED_WITHIN
}

/// The exit code for s6: 0 (restart after s6's own throttle) or 125 (stay down). `pid` is the
/// dead run's (the pgid s6 passes): a verdict the slot's watcher left for it makes the death
/// `hung` or `start-timeout`.
pub fn finish(ctx: &Ctx, profile: &str, code: i32, signal: i32, pid: Option<u64>, knobs: &Knobs) -> i32 {
    let mut death = Death {
        at: unix_secs_f64(ctx.clock.now()),
        code: (code != S6_SIGNALLED).then_some(code),
        signal: (code == S6_SIGNALLED).then_some(signal),
        killed: None,
        cause: None,
    };
    let Ok(scandir) = ctx.open_scandir() else { return contract(death.class()) };
    let Ok(slot) = ctx.fs.open_dir(&scandir, OsStr::new(&slot_name(profile))) else { return contract(death.class()) };
    // The watcher's verdict is in the profile's own state directory, read as its owner.
    let profile_dir = crate::volume::open_profile_dir(ctx, profile).ok().flatten();
    death.killed = profile_dir.and_then(|d| crate::liveness::verdict_for(ctx.fs, &d, pid, death.at)).map(|v| v.killed);
    // What root knows beyond the exit: it restarted the gateway for its memory (a reason the
    // registrar left in the slot), or the kernel's OOM killer took it (the cgroup's counter
    // moved). The watcher's verdict, when it has one, is the more specific.
    let reason = reason::take(ctx, &slot, death.at);
    if death.killed.is_none() {
        death.cause = match reason {
            Some(r) => Some(r.cause),
            None => oom::killed_by_oom(ctx, &slot, death.signal).then_some(Cause::Oom),
        };
    }
    let class = death.class();
    let _held = lock::hold(ctx, &slot, LOCK_WAIT).ok().flatten();
    let rec = record::read(ctx, profile);
    let wanted_up = svstat::read(ctx.fs, &slot).ok().flatten().is_none_or(|st| st.want_up);
    let (decision, mut next) = if class != ExitClass::ConfigError && !wanted_up {
        // Asked for (a stop, a teardown, the container stopping, an `s6-svc -d` by hand): s6
        // will not restart it, and it is no crash; nor is a clean exit on that SIGTERM a park
        // (`status` would call a gateway held down by hand parked, and `health` ready).
        let mut r = rec.clone();
        r.last_exit = Some(death.last_exit());
        (Decision::StayDown, r)
    } else if class.restarts() && (rec.restart_asked_until.is_some_and(|t| death.at <= t) || superseded(&rec, death.at)) {
        // The death an operator `restart` asked for, or one that an operator `start` made
        // while it happened already overrides: the operator's intent is newer than this death.
        let mut r = rec.clone();
        r.restart_asked_until = None;
        r.state = PolicyState::Restarting;
        r.running_since = death.at + crate::policy::S6_THROTTLE.as_secs_f64();
        r.last_exit = Some(death.last_exit());
        (Decision::Restart, r)
    } else {
        on_death(&rec, &death, knobs, unit(ctx))
    };
    next.restart_asked_until = next.restart_asked_until.filter(|t| *t >= death.at);
    let recorded = next == rec || record::write(ctx, profile, &next).is_ok();
    if decision == Decision::StayDown && next.next_start.is_some() && recorded {
        // The registrar is the policy's clock: it starts the gateway when the time comes.
        let _ = doorbell::ring(ctx, Some(profile));
    }
    match decision {
        Decision::Restart => 0,
        Decision::StayDown if class.restarts() && !recorded => 0,
        Decision::StayDown => S6_PERMANENT_FAILURE,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::{on_death, on_operator_start, Record};

    #[test]
    fn a_death_before_an_operator_start_is_superseded_and_a_later_one_is_not() {
        let started = on_operator_start(&Record::default(), 100.0);
        assert!(superseded(&started, 99.5), "the start was recorded after this death");
        assert!(!superseded(&started, 100.5), "a death of the run the start began");
        assert!(!superseded(&started, 100.0 - SUPERSEDED_WITHIN - 1.0), "too old to be the death the start raced");
        // The policy's own restart moves running_since past the death: not an operator start.
        let (_, restarting) =
            on_death(&started, &Death { at: 150.0, code: Some(1), signal: None, killed: None, cause: None }, &Knobs::default(), 0.5);
        assert!(!superseded(&restarting, 150.0));
        let edited = Record { running_since: 1e300, ..Record::default() };
        assert!(!superseded(&edited, 100.0), "a hand-edited far future holds nothing");
    }
}

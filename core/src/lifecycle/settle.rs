//! Watching a gateway after a command, by polling its `supervise/status` (the user cannot
//! subscribe to s6's events): until it is up and has stayed up for a while, or until it is
//! down. What a command then tells the user is what happened, not what was asked.

use crate::clock::wait_until;
use crate::ctx::Ctx;
use crate::fs::Dir;
use crate::s6::svstat::{self, Status};
use std::time::Duration;

const POLL: Duration = Duration::from_millis(20);
/// How long a started gateway has to come up at all (its finish may still be running).
pub const UP_WAIT: Duration = Duration::from_secs(10);

/// How a run ended, in words: "it exited 1", "it was killed by signal 9 (SIGKILL)".
pub fn describe_end(st: &Status) -> String {
    match (st.exit_code(), st.signal()) {
        (_, Some(sig)) => format!("it was killed by signal {sig} ({})", signal_name(sig)),
        (Some(code), _) => format!("it exited {code}"),
        _ => "it stopped".into(),
    }
}

pub fn signal_name(sig: i32) -> String {
    nix::sys::signal::Signal::try_from(sig).map(|s| s.as_str().to_string()).unwrap_or_else(|_| format!("signal {sig}"))
}

/// The outcome of waiting for a gateway to come up and stay up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Settled {
    /// Up since `pid` started, ready (when its slot tells readiness), and still up the settle
    /// window after.
    Up { pid: u64, ready: bool },
    /// Up as `pid` but not ready within the limit (the start timeout, when it is off).
    NotReady { pid: u64, waited: Duration },
    /// It died within the window (or never came up): how, seen in its last status.
    Died { how: String },
    /// It did not come up within [`UP_WAIT`].
    NotUp,
    /// Before it came up, s6 stopped wanting it up: a finish answered "stay down" (125), or
    /// someone told s6 `d`. Nothing will start it now.
    WantedDown,
}

/// Down, not wanted up and no finish running: s6 will not start it by itself.
fn wanted_down(st: &Status) -> bool {
    !st.is_up() && !st.want_up && !st.finishing
}

/// How long a start waits for readiness: the watcher kills a gateway not ready within the start
/// timeout (a death the wait then reports), so a little longer than that; with no start timeout,
/// at most an hour.
pub fn ready_wait(ctx: &Ctx) -> Duration {
    match ctx.cfg.liveness.start_timeout {
        t if t.is_zero() => Duration::from_secs(3600),
        t => t + Duration::from_secs(2),
    }
}

/// Wait until the gateway runs as a pid other than `not`, is ready (when its slot tells
/// readiness: `notification-fd`), and has kept that pid for `window` after.
pub fn until_stable(ctx: &Ctx, slot: &Dir, not: Option<u64>, window: Duration) -> Settled {
    let read = || svstat::read(ctx.fs, slot).ok().flatten();
    let mut seen: Option<u64> = None;
    let mut down = false;
    let came_up = wait_until(ctx.clock, UP_WAIT, POLL, || match read() {
        Some(st) if st.is_up() && Some(st.pid) != not => {
            seen = Some(st.pid);
            true
        }
        Some(st) if wanted_down(&st) => {
            down = true;
            true
        }
        _ => false,
    });
    if down {
        return Settled::WantedDown;
    }
    let Some(pid) = seen.filter(|_| came_up) else {
        return match read() {
            Some(st) if svstat::died(ctx.fs, slot) && !st.is_up() => Settled::Died { how: describe_end(&st) },
            _ => Settled::NotUp,
        };
    };
    let notifies = ctx.fs.lstat(slot, std::ffi::OsStr::new("notification-fd")).is_ok();
    // Already settled: up (and ready, where the slot tells readiness) for longer than the
    // window by s6's own stamp when first seen, as a start of a running gateway finds it.
    // Watching it for another window would say nothing new.
    if let Some(st) = read().filter(|st| st.is_up() && st.pid == pid && (st.ready || !notifies)) {
        let came_up = std::time::UNIX_EPOCH + Duration::new(u64::try_from(st.since).unwrap_or(0), st.since_ns);
        if ctx.clock.now().duration_since(came_up).is_ok_and(|up_for| up_for >= window) {
            return Settled::Up { pid, ready: notifies };
        }
    }
    let mut was_ready = false;
    if notifies {
        let limit = ready_wait(ctx);
        let mut ended = None;
        let ready = wait_until(ctx.clock, limit, POLL, || match read() {
            Some(st) if st.is_up() && st.pid == pid => st.ready,
            other => {
                ended = Some(other);
                true
            }
        });
        match ended {
            Some(Some(st)) if !st.is_up() => return Settled::Died { how: describe_end(&st) },
            Some(_) => return Settled::Died { how: "it exited and was restarted".into() },
            None if !ready => return Settled::NotReady { pid, waited: limit },
            None => was_ready = true,
        }
    }
    let mut ended = None;
    wait_until(ctx.clock, window, POLL, || match read() {
        Some(st) if st.is_up() && st.pid == pid => false,
        other => {
            ended = Some(other);
            true
        }
    });
    match ended {
        None => Settled::Up { pid, ready: was_ready },
        Some(Some(st)) if !st.is_up() => Settled::Died { how: describe_end(&st) },
        Some(_) => Settled::Died { how: "it exited and was restarted".into() },
    }
}

/// Whether a stop (or a death) is still in progress: the gateway is up but no longer wanted
/// up, or its finish is running. Telling s6 `u` then would be undone by that finish's answer.
pub fn in_progress(st: &Status) -> bool {
    st.finishing || (st.is_up() && !st.want_up)
}

/// Wait (bounded) until no stop or finish is in progress on the slot; whether it is quiet.
pub fn until_quiet(ctx: &Ctx, slot: &Dir, limit: Duration) -> bool {
    wait_until(ctx.clock, limit, POLL, || svstat::read(ctx.fs, slot).ok().flatten().is_none_or(|st| !in_progress(&st)))
}

/// How long a command waits for its supervisor to act on what it was told.
pub const ACK_WAIT: Duration = Duration::from_secs(2);

/// Wait (bounded) until the supervisor shows it has taken in `want_up`: a command holds the
/// profile's lock until then, so the next one (or a finish) sees what this one did.
pub fn until_acknowledged(ctx: &Ctx, slot: &Dir, want_up: bool) -> bool {
    wait_until(ctx.clock, ACK_WAIT, Duration::from_millis(2), || {
        svstat::read(ctx.fs, slot).ok().flatten().is_none_or(|st| st.want_up == want_up)
    })
}

/// How long a command waits for a dead gateway's finish (s6 gives a finish 5 s).
pub const FINISH_WAIT: Duration = Duration::from_secs(6);

/// Wait until no finish runs for the slot (bounded): what the crash policy decided is then
/// recorded.
pub fn until_finished(ctx: &Ctx, slot: &Dir, limit: Duration) {
    wait_until(ctx.clock, limit, POLL, || svstat::read(ctx.fs, slot).ok().flatten().is_none_or(|st| !st.finishing));
}

/// Wait until the gateway is down (its finish done); the status then, or `None` when it did
/// not go down within `limit`.
pub fn until_down(ctx: &Ctx, slot: &Dir, limit: Duration) -> Option<Status> {
    let mut last = None;
    let down = wait_until(ctx.clock, limit, POLL, || match svstat::read(ctx.fs, slot).ok().flatten() {
        Some(st) if !st.is_up() && !st.finishing => {
            last = Some(st);
            true
        }
        _ => false,
    });
    down.then_some(last).flatten()
}

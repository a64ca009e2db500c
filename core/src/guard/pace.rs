//! Boot pacing: after a boot, wanted gateways start at most K at a time
//! (`HERMES_GATEWAY_BOOT_PACE`, default the CPUs plus one: [`crate::config::default_boot_pace`]),
//! each next one released when one starting before it is ready or its start timeout has passed. All at once, N gateways share the CPUs and all become
//! ready near the end; paced, the first is ready in about a lone start's time and the last no
//! later.
//!
//! The boot pass never waits for it (the static services and the registrar start right after
//! it): it starts the first K and publishes the rest down, each marked `data/queued` in its
//! slot (root's; readable by all, so `status` can say "queued"). The registrar is the pacer: it
//! looks at every slot's s6 status at [`POLL`] while anything is queued, and releases queued
//! slots (removes `down`, tells s6 `u`) while fewer than K are in flight. A queued gateway the
//! operator started meanwhile is no longer queued; one stopped meanwhile is not started.

use crate::boot::plan::{starts, Container};
use crate::ctx::Ctx;
use crate::fs::{write_atomic, Dir};
use crate::lifecycle::lock;
use crate::name::{slot_name, DEFAULT_PROFILE};
use crate::s6::svc;
use crate::s6::svstat::{self, Status};
use crate::volume::open_profile_dir;
use crate::volume::state::{effective_state, read_json_object, STATE_FILE};
use std::ffi::OsStr;
use std::time::Duration;

/// The marker of a queued slot, in its `data/`: the Unix time it was queued.
pub const QUEUED_FILE: &str = "queued";
/// How often the pacer looks while anything is queued: a release waits at most this long
/// after the readiness it waits for (a look reads only the queued and the starting slots).
pub const POLL: Duration = Duration::from_millis(50);

fn data(ctx: &Ctx, slot: &Dir) -> Option<Dir> {
    ctx.fs.open_dir(slot, OsStr::new(crate::slot::DATA_DIR)).ok()
}

/// Mark a slot queued (root: the boot pass).
pub fn queue(ctx: &Ctx, slot: &Dir) -> std::io::Result<()> {
    let d = data(ctx, slot).ok_or_else(|| std::io::Error::new(std::io::ErrorKind::NotFound, "the slot has no data/ directory"))?;
    let now = crate::clock::unix_secs_f64(ctx.clock.now());
    write_atomic(ctx.fs, &d, OsStr::new(QUEUED_FILE), format!("{now:.3}\n").as_bytes(), 0o644)
}

/// Since when the slot has been queued (Unix seconds), if it is.
pub fn queued_since(ctx: &Ctx, slot: &Dir) -> Option<f64> {
    let d = data(ctx, slot)?;
    match ctx.fs.read_capped(&d, OsStr::new(QUEUED_FILE), 64) {
        Ok(crate::fs::Capped::Data(b)) => Some(String::from_utf8_lossy(&b).trim().parse().unwrap_or(0.0)),
        _ => None,
    }
}

fn unqueue(ctx: &Ctx, slot: &Dir) {
    if let Some(d) = data(ctx, slot) {
        let _ = ctx.fs.unlink(&d, OsStr::new(QUEUED_FILE));
    }
}

/// Whether a gateway is still starting, as the pace counts it: wanted up, not (up and ready),
/// and its last transition less than the start timeout ago. A slot without `notification-fd`
/// (`notifies` false) never gets s6's ready flag: it is ready once up.
pub fn in_flight(st: &Status, notifies: bool, now: f64, timeout: Duration) -> bool {
    let ready = st.is_up() && (st.ready || !notifies);
    let since = st.since as f64 + f64::from(st.since_ns) / 1e9;
    st.want_up && !ready && now - since < timeout.as_secs_f64()
}

/// Whether the slot speaks s6's readiness protocol.
fn notifies(ctx: &Ctx, slot: &Dir) -> bool {
    ctx.fs.lstat(slot, OsStr::new("notification-fd")).is_ok()
}

/// What one look of the pacer did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Paced {
    /// Released now, in order.
    pub released: Vec<String>,
    /// Still queued after this look.
    pub queued: usize,
    pub errors: Vec<String>,
}

/// The queued slots first the root profile, then by name: the boot pass's own order.
fn ordered(mut names: Vec<String>) -> Vec<String> {
    names.sort_by_key(|n| (n != DEFAULT_PROFILE, n.clone()));
    names
}

/// One look: release queued slots while fewer than `k` gateways are in flight. `settled` holds
/// the slots found neither queued nor starting by an earlier look of this pacing (ready, down,
/// or the crash policy's): they are not read again until the queue is empty.
pub fn release(ctx: &Ctx, scandir: &Dir, k: usize, container: &Container, settled: &mut std::collections::BTreeSet<String>) -> Paced {
    let mut out = Paced::default();
    let Ok(names) = crate::lifecycle::registered(ctx, scandir) else { return out };
    let now = crate::clock::unix_secs_f64(ctx.clock.now());
    let mut flying = 0usize;
    let mut queued = Vec::new();
    let unsettled: Vec<String> = ordered(names).into_iter().filter(|p| !settled.contains(p)).collect();
    for p in unsettled {
        let Ok(slot) = ctx.fs.open_dir(scandir, OsStr::new(&slot_name(&p))) else { continue };
        let st = svstat::read(ctx.fs, &slot).ok().flatten();
        let is_queued = queued_since(ctx, &slot).is_some();
        // A gateway that died since its supervisor started is the crash policy's, no longer a
        // start the pace waits for (one never ready would otherwise hold a place forever, killed
        // at each start timeout and started again).
        let first_run = svstat::deaths(ctx.fs, &slot) == 0;
        match st {
            // Started by someone else meanwhile (an operator `start`): no longer queued.
            Some(s) if is_queued && (s.want_up || s.is_up()) => {
                unqueue(ctx, &slot);
                flying += usize::from(first_run && in_flight(&s, notifies(ctx, &slot), now, ctx.cfg.pace_timeout()));
            }
            Some(s) if !is_queued => {
                if first_run && in_flight(&s, notifies(ctx, &slot), now, ctx.cfg.pace_timeout()) {
                    flying += 1;
                } else {
                    settled.insert(p);
                }
            }
            // Not supervised yet: released once its supervisor listens.
            Some(_) | None if is_queued => queued.push((p, slot)),
            _ => {}
        }
    }
    let mut left = queued.len();
    for (p, slot) in queued {
        if k > 0 && flying >= k {
            break;
        }
        match release_one(ctx, &slot, &p, container) {
            Ok(true) => {
                out.released.push(p);
                flying += 1;
                left -= 1;
            }
            Ok(false) => left -= 1,
            Err(e) => out.errors.push(e),
        }
    }
    out.queued = left;
    out
}

/// Start one queued gateway, if it is still wanted: `Ok(true)` started, `Ok(false)` not wanted
/// any more (left down, no longer queued), `Err` to try again at the next look.
fn release_one(ctx: &Ctx, slot: &Dir, profile: &str, container: &Container) -> Result<bool, String> {
    // Under the profile's lock, so an operator's `stop` either comes before (and wins) or after.
    let Ok(Some(_held)) = lock::hold(ctx, slot, Duration::ZERO) else {
        return Err(format!("{profile}: its lock is busy; released at the next look"));
    };
    let wanted = open_profile_dir(ctx, profile)
        .ok()
        .flatten()
        .and_then(|d| read_json_object(ctx.fs, &d, STATE_FILE).ok().flatten())
        .and_then(|m| effective_state(&m));
    let held = crate::policy::record::read(ctx, profile).holds_down();
    if !starts(profile == DEFAULT_PROFILE, wanted.as_ref(), container) || held {
        unqueue(ctx, slot);
        return Ok(false);
    }
    if let Err(e) = ctx.fs.unlink(slot, OsStr::new("down")) {
        if e.kind() != std::io::ErrorKind::NotFound {
            return Err(format!("{profile}: could not remove {}: {e}", slot.child(OsStr::new("down")).display()));
        }
    }
    match svc::send(ctx.fs, slot, b"u") {
        Ok(()) => {
            unqueue(ctx, slot);
            crate::policy::record::note_started(ctx, profile);
            Ok(true)
        }
        Err(e) => Err(format!("{profile}: {e}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn st(want_up: bool, up: bool, ready: bool, since: i64) -> Status {
        Status {
            since,
            since_ns: 500_000_000,
            ready_since: since,
            pid: if up { 42 } else { 0 },
            wstat: 0,
            paused: false,
            finishing: false,
            want_up,
            ready,
        }
    }

    #[test]
    fn in_flight_is_wanted_up_not_yet_ready_and_within_the_timeout() {
        let t = Duration::from_secs(60);
        assert!(in_flight(&st(true, true, false, 100), true, 110.0, t), "starting");
        assert!(in_flight(&st(true, false, false, 100), true, 110.0, t), "told to start, not spawned yet");
        assert!(!in_flight(&st(true, true, true, 100), true, 110.0, t), "ready");
        assert!(!in_flight(&st(true, true, false, 100), false, 110.0, t), "up, and no readiness to wait for");
        assert!(in_flight(&st(true, true, false, 100), true, 160.4, t), "to the nanosecond: 59.9 s after it went up");
        assert!(!in_flight(&st(true, true, false, 100), true, 160.6, t), "its start timeout passed");
        assert!(!in_flight(&st(false, false, false, 100), true, 110.0, t), "down and not wanted");
        assert_eq!(ordered(vec!["b".into(), "default".into(), "a".into()]), ["default", "a", "b"]);
    }
}

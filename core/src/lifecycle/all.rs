//! `--all`: one verb applied to every registered slot, going on past failures.

use super::{registered, Asked, Done};
use crate::ctx::Ctx;
use crate::problem::Problem;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

/// Outcome of a verb applied to every registered slot.
pub struct AllResults {
    pub results: Vec<(String, Result<Done, Problem>)>,
}

impl AllResults {
    pub fn failed(&self) -> usize {
        self.results.iter().filter(|r| r.1.is_err()).count()
    }
}

/// How many profiles `--all` acts on at once.
pub const CONCURRENCY: usize = 8;

/// Apply a verb (`ask`, then `confirm`: tell s6, then watch the outcome) to every registered
/// slot, [`CONCURRENCY`] profiles at a time, going on past failures; the results in the
/// profiles' order. Each profile's own command still runs under its locks, so profiles run
/// side by side while one profile's operations stay one after the other. With a file system
/// or clock that cannot be shared between threads (the fault-injecting test double), one at a
/// time.
pub fn for_all(
    ctx: &Ctx,
    ask: impl Fn(&Ctx, &str) -> Result<Asked, Problem> + Sync,
    confirm: impl Fn(&Ctx, Asked) -> Result<Done, Problem> + Sync,
) -> Result<AllResults, Problem> {
    for_all_paced(ctx, 0, ask, confirm)
}

/// [`for_all`] for a verb that starts gateways (`start`, `restart`), at most `pace` starting at
/// once (0: [`CONCURRENCY`] at a time, without waiting): each worker moves on to its next
/// profile once the gateway it started is ready, or down, or its start timeout has passed. A
/// `restart --all` so paced restarts each gateway in turn, the others still serving meanwhile.
pub fn for_all_paced(
    ctx: &Ctx,
    pace: usize,
    ask: impl Fn(&Ctx, &str) -> Result<Asked, Problem> + Sync,
    confirm: impl Fn(&Ctx, Asked) -> Result<Done, Problem> + Sync,
) -> Result<AllResults, Problem> {
    for_those_paced(ctx, pace, |_, _, _| true, ask, confirm)
}

/// `restart --all`: the gateways that are wanted running (by s6 or by their recorded intent);
/// one the operator stopped stays stopped instead of being started by a restart.
pub fn wanted_running(ctx: &Ctx, scandir: &crate::fs::Dir, profile: &str) -> bool {
    let want_up = ctx
        .fs
        .open_dir(scandir, std::ffi::OsStr::new(&crate::name::slot_name(profile)))
        .is_ok_and(|slot| crate::s6::svstat::wanted_up(ctx.fs, &slot));
    want_up || crate::volume::desired::read(ctx, profile) == Some(crate::volume::state::Wanted::Running)
}

/// [`for_all_paced`] over the registered slots `keep` keeps (given the open scandir).
pub fn for_those_paced(
    ctx: &Ctx,
    pace: usize,
    keep: impl Fn(&Ctx, &crate::fs::Dir, &str) -> bool,
    ask: impl Fn(&Ctx, &str) -> Result<Asked, Problem> + Sync,
    confirm: impl Fn(&Ctx, Asked) -> Result<Done, Problem> + Sync,
) -> Result<AllResults, Problem> {
    let scandir = ctx.open_scandir()?;
    let mut names = registered(ctx, &scandir)?;
    names.retain(|p| keep(ctx, &scandir, p));
    let one = |ctx: &Ctx, p: &str| {
        let r = ask(ctx, p).and_then(|a| confirm(ctx, a));
        if pace > 0 && r.is_ok() {
            if let Ok(slot) = ctx.fs.open_dir(&scandir, std::ffi::OsStr::new(&crate::name::slot_name(p))) {
                started(ctx, &slot);
            }
        }
        r
    };
    // Under multiplexing the root gateway serves every named profile: it goes first, alone, so
    // the named profiles' folds find it up instead of watching it while a restart kills it.
    let mut first = Vec::new();
    if super::fold::multiplexing(ctx) {
        if let Some(i) = names.iter().position(|p| p == crate::name::DEFAULT_PROFILE) {
            let p = names.remove(i);
            let r = one(ctx, &p);
            first.push((p, r));
        }
    }
    let workers = if pace > 0 { pace } else { CONCURRENCY };
    let (Some(fs), Some(clock)) = (ctx.fs.shareable(), ctx.clock.shareable()) else {
        first.extend(names.iter().map(|p| (p.clone(), one(ctx, p))));
        return Ok(AllResults { results: first });
    };
    let next = AtomicUsize::new(0);
    let slots: Vec<Mutex<Option<Result<Done, Problem>>>> = names.iter().map(|_| Mutex::new(None)).collect();
    let work = || {
        let ctx = Ctx::new(fs, clock, ctx.cfg);
        loop {
            let i = next.fetch_add(1, Ordering::Relaxed);
            let Some(p) = names.get(i) else { break };
            let r = one(&ctx, p);
            *slots[i].lock().unwrap_or_else(|e| e.into_inner()) = Some(r);
        }
    };
    std::thread::scope(|scope| {
        // Helpers as the system allows (at a task limit, none: a thread is a task), and this
        // thread works too, so every profile is done whatever could be spawned.
        for _ in 1..workers.min(names.len()) {
            if std::thread::Builder::new().spawn_scoped(scope, work).is_err() {
                break;
            }
        }
        work();
    });
    first.extend(names.into_iter().zip(slots).map(|(p, r)| {
        let r = r.into_inner().unwrap_or_else(|e| e.into_inner());
        (p, r.expect("every profile was done by a worker"))
    }));
    Ok(AllResults { results: first })
}

/// Wait (up to the start timeout) until the gateway in `slot` is no longer starting, as the
/// boot pace counts it ([`crate::guard::pace::in_flight`]).
fn started(ctx: &Ctx, slot: &crate::fs::Dir) {
    let notifies = ctx.fs.lstat(slot, std::ffi::OsStr::new("notification-fd")).is_ok();
    crate::clock::wait_until(ctx.clock, ctx.cfg.pace_timeout(), std::time::Duration::from_millis(50), || {
        let now = crate::clock::unix_secs_f64(ctx.clock.now());
        crate::s6::svstat::read(ctx.fs, slot)
            .ok()
            .flatten()
            .is_none_or(|st| !crate::guard::pace::in_flight(&st, notifies, now, ctx.cfg.pace_timeout()))
    });
}

//! The registrar's event loop, its system edge: it waits, without polling the volume, on
//! SIGTERM/SIGINT (a signalfd), the doorbell FIFO and inotify, with a timeout for whatever
//! the [`Registrar`] has scheduled (deletions to confirm, teardown steps, the resync). No step
//! blocks: a stop request is served within one poll.

use super::doorbell::{self, Rings};
use super::volume_watch::VolumeWatch;
use super::{Converged, Registrar, Scope};
use crate::problem::Problem;
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::signal::{SigSet, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use std::collections::BTreeSet;
use std::os::fd::AsFd;
use std::time::Duration;

fn merge(a: Scope, b: Scope) -> Scope {
    match (a, b) {
        (Scope::Everything, _) | (_, Scope::Everything) => Scope::Everything,
        (Scope::Profiles(mut x), Scope::Profiles(y)) => {
            x.extend(y);
            Scope::Profiles(x)
        }
    }
}

/// Run until SIGTERM or SIGINT. `report` is given every look that changed something;
/// `ready` is called once the doorbell listens and the first full look is done.
pub fn run(reg: &mut Registrar, mut report: impl FnMut(&Converged), ready: impl FnOnce()) -> Result<(), Problem> {
    let ctx = *reg.ctx();
    let mut mask = SigSet::empty();
    mask.add(Signal::SIGTERM);
    mask.add(Signal::SIGINT);
    mask.thread_block().map_err(|e| Problem::Io { path: "signals".into(), action: "block".into(), error: e.into() })?;
    let signals = SignalFd::with_flags(&mask, SfdFlags::SFD_NONBLOCK | SfdFlags::SFD_CLOEXEC).map_err(|e| Problem::Io {
        path: "signalfd".into(),
        action: "open".into(),
        error: e.into(),
    })?;
    let fifo = doorbell::open(&ctx)?;
    let mut rings = Rings::default();
    let budget = super::volume_watch::budget(ctx.cfg.max_services, super::volume_watch::host_limit());
    let mut watch = VolumeWatch::new(budget).map_err(|e| Problem::Io { path: "inotify".into(), action: "open".into(), error: e })?;
    watch.any_entry = super::take_over::active(&ctx);
    let mut home = ctx.open_home().ok();
    if let Some(h) = &home {
        watch.watch_all(ctx.fs, h);
    }
    if let Ok(s) = ctx.open_scandir() {
        watch.watch_scandir(&s);
    }
    let _ = super::notice::set(&ctx, super::notice::WATCH_BUDGET, watch.degraded.as_deref());
    let mut last_degraded = watch.degraded.clone();
    if let Some(d) = &last_degraded {
        report(&Converged { errors: vec![d.clone()], ..Default::default() });
    }
    let first = reg.converge(&Scope::Everything);
    report(&first);
    ready();
    loop {
        if watch.degraded != last_degraded {
            if let Some(d) = &watch.degraded {
                report(&Converged { errors: vec![d.clone()], ..Default::default() });
            }
            let _ = super::notice::set(&ctx, super::notice::WATCH_BUDGET, watch.degraded.as_deref());
            last_degraded = watch.degraded.clone();
        }
        let wait = reg.next_deadline().saturating_duration_since(ctx.clock.instant()).min(Duration::from_secs(60));
        let mut fds = [
            PollFd::new(signals.as_fd(), PollFlags::POLLIN),
            PollFd::new(fifo.read.as_fd(), PollFlags::POLLIN),
            PollFd::new(watch.fd(), PollFlags::POLLIN),
        ];
        let ms = u16::try_from(wait.as_millis().saturating_add(1)).unwrap_or(u16::MAX);
        match poll(&mut fds, PollTimeout::from(ms)) {
            Ok(_) | Err(nix::errno::Errno::EINTR) => {}
            Err(e) => return Err(Problem::Io { path: "poll".into(), action: "wait in".into(), error: e.into() }),
        }
        let ready: Vec<bool> = fds.iter().map(|f| f.revents().is_some_and(|r| !r.is_empty())).collect();
        let ready = |i: usize| ready[i];
        if ready(0) {
            return Ok(());
        }
        let mut scope = Scope::Profiles(BTreeSet::new());
        if ready(1) {
            let rung = rings.read(&fifo);
            scope = merge(scope, if rung.everything { Scope::Everything } else { Scope::Profiles(rung.profiles) });
        }
        if home.is_none() {
            // The volume appeared (mounted late): watch it and look at everything.
            home = ctx.open_home().ok();
            if let Some(h) = &home {
                watch.watch_all(ctx.fs, h);
                scope = Scope::Everything;
            }
        }
        if ready(2) {
            scope = merge(scope, watch.read(ctx.fs, home.as_ref()));
        }
        if scope != Scope::Profiles(BTreeSet::new()) {
            let c = reg.converge(&scope);
            if !c.is_empty() {
                report(&c);
            }
        }
        let c = reg.tick();
        if !c.is_empty() {
            report(&c);
        }
    }
}

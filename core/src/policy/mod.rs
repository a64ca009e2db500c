//! The crash policy: what happens when a gateway dies, decided in one place and recorded on
//! the volume so that a container restart does not replay a crash loop.
//!
//! - An exit is classified by [`crate::exit_policy`]: 0 finished, 78 configuration error
//!   (both parked, as the finish contract always said), anything else a crash.
//! - Consecutive crashes back off exponentially from [`Knobs::backoff_initial`] up to
//!   [`Knobs::backoff_max`], with jitter; the count restarts once a run has stayed up for
//!   [`Knobs::stable_after`]. The first delay is s6's own one-second throttle.
//! - [`Knobs::crash_limit`] crashes within [`Knobs::crash_window`] quarantine the gateway:
//!   down, not restarted by s6. After [`Knobs::cooldown`] it is started again as a probe; a
//!   probe that stays up for `stable_after` clears the quarantine, one that crashes doubles the
//!   cool-down (up to [`Knobs::cooldown_max`]).
//! - An operator `start`/`restart` clears everything; `stop` wins over the policy.
//!
//! The mechanism: the slot's `finish` runs `hermes-reconcile finish` ([`finish`]), which
//! reads and writes the record and tells s6 what to do (exit 0: restart now; exit 125: stay
//! down); a delayed restart or a probe is the registrar's job, which it learns of
//! from the record (the finish rings it), see [`schedule`]. Nothing here sleeps.

use crate::exit_policy::ExitClass;
use std::time::Duration;

pub use crate::volume::policy_record::{self as record, PolicyState, Record};

pub use crate::config::knobs::Knobs;

impl Death {
    /// What the record keeps of this death.
    pub fn last_exit(&self) -> record::LastExit {
        record::LastExit { at: self.at, code: self.code, signal: self.signal, killed: self.killed, cause: self.cause }
    }
}

/// s6 restarts a dead service by itself one second after its finish ends: the shortest delay
/// the policy ever asks for, and the only one it leaves to s6.
pub const S6_THROTTLE: Duration = Duration::from_secs(1);

/// How a run ended, as `finish` learns it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Death {
    /// Unix seconds (with fractions) of the death.
    pub at: f64,
    /// Exit code, or `None` when killed by a signal.
    pub code: Option<i32>,
    pub signal: Option<i32>,
    /// Killed by the slot's watcher, and why: its own exit class.
    pub killed: Option<crate::liveness::Killed>,
    /// What root knew beyond the exit (a memory restart, an OOM kill): its own exit class.
    pub cause: Option<crate::exit_policy::Cause>,
}

impl Death {
    pub fn class(&self) -> ExitClass {
        match self.cause {
            Some(c) => c.class(),
            None => ExitClass::of_death(self.code, self.killed),
        }
    }
}

/// What `finish` tells s6.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Let s6 restart it after its one-second throttle (finish exits 0).
    Restart,
    /// Leave it down (finish exits 125); the record says whether and when it starts again.
    StayDown,
}

fn secs(d: Duration) -> f64 {
    d.as_secs_f64()
}

/// `base · 2^(n-1)`, capped.
fn doubling(base: Duration, n: u32, cap: Duration) -> Duration {
    let factor = 2f64.powi(n.saturating_sub(1).min(62) as i32);
    Duration::from_secs_f64((secs(base) * factor).min(secs(cap)))
}

/// Spread a delay by ±20 % so gateways that crashed together do not restart together;
/// `unit` in [0, 1) is the caller's randomness.
fn jittered(d: Duration, unit: f64) -> Duration {
    Duration::from_secs_f64(secs(d) * (0.8 + 0.4 * unit.clamp(0.0, 1.0)))
}

/// The policy's answer to a death, and the record to write. Pure: `unit` is randomness in
/// [0, 1) for the jitter.
pub fn on_death(rec: &Record, death: &Death, k: &Knobs, unit: f64) -> (Decision, Record) {
    let mut r = rec.clone();
    r.last_exit = Some(death.last_exit());
    // A gateway that asked to be restarted (exit 75) is backed off like a crash but never
    // quarantined for it, and a probe that asks so has not failed.
    let counts = death.class().is_crash();
    match death.class() {
        ExitClass::Finished => {
            r.state = PolicyState::Finished;
            r.next_start = None;
            r.consecutive = 0;
            return (Decision::StayDown, r);
        }
        ExitClass::ConfigError => {
            r.state = PolicyState::ConfigError;
            r.next_start = None;
            return (Decision::StayDown, r);
        }
        ExitClass::Crash | ExitClass::Restart | ExitClass::Hung | ExitClass::StartTimeout | ExitClass::Memory | ExitClass::Oom => {}
    }
    let ran_for = death.at - r.running_since;
    let healthy_run = ran_for >= secs(k.stable_after);
    let was_probing = r.state == PolicyState::Probing;
    if healthy_run {
        r.consecutive = 0;
        r.crashes.clear();
        r.probes = 0;
    }
    r.consecutive += 1;
    r.crashes.retain(|t| death.at - t < secs(k.crash_window));
    if counts {
        r.crashes.push(death.at);
    }
    if was_probing && !healthy_run && counts {
        r.probes += 1;
        let cool = doubling(k.cooldown, r.probes + 1, k.cooldown_max);
        r.state = PolicyState::Quarantined;
        r.next_start = Some(death.at + secs(cool));
        return (Decision::StayDown, r);
    }
    if counts && r.crashes.len() >= k.crash_limit {
        r.probes = 0;
        r.state = PolicyState::Quarantined;
        r.next_start = Some(death.at + secs(k.cooldown));
        return (Decision::StayDown, r);
    }
    let nominal = doubling(k.backoff_initial, r.consecutive, k.backoff_max);
    // A delay s6's own throttle covers is left to s6: a lone crash never depends on the
    // registrar being alive. Longer ones are jittered, then capped (the cap is a promise, and
    // gateways at the cap still spread).
    if nominal <= S6_THROTTLE {
        r.state = PolicyState::Restarting;
        r.next_start = None;
        r.running_since = death.at + secs(S6_THROTTLE);
        (Decision::Restart, r)
    } else {
        let delay = jittered(nominal, unit).min(k.backoff_max);
        r.state = PolicyState::BackingOff;
        r.next_start = Some(death.at + secs(delay));
        (Decision::StayDown, r)
    }
}

/// The registrar starts a gateway whose time has come: a delayed restart, or a probe.
pub fn on_scheduled_start(rec: &Record, now: f64) -> Record {
    let mut r = rec.clone();
    r.state = if r.state == PolicyState::Quarantined { PolicyState::Probing } else { PolicyState::Restarting };
    r.next_start = None;
    r.running_since = now;
    r
}

/// A probe that has stayed up for the stable window ends the quarantine.
pub fn on_stable(rec: &Record, now: f64, k: &Knobs) -> Option<Record> {
    let stable = now - rec.running_since >= secs(k.stable_after);
    (stable && matches!(rec.state, PolicyState::Probing | PolicyState::Restarting)).then(|| {
        let mut r = rec.clone();
        r.state = PolicyState::Running;
        r.consecutive = 0;
        r.crashes.clear();
        r.probes = 0;
        r
    })
}

/// An operator `start`/`restart`, or a boot pass starting it: whatever the policy held is
/// cleared; the run starts now.
pub fn on_operator_start(rec: &Record, now: f64) -> Record {
    Record { running_since: now, ..Record::default() }.with_last_exit(rec.last_exit)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn crash(at: f64) -> Death {
        Death { at, code: Some(1), signal: None, killed: None, cause: None }
    }

    /// Run a gateway that crashes `after` seconds into every run, restarting when the policy
    /// says, for `horizon` seconds; the times it was started.
    fn simulate(k: &Knobs, after: f64, horizon: f64) -> (Vec<f64>, Record) {
        let mut rec = on_operator_start(&Record::default(), 0.0);
        let mut now = 0.0;
        let mut starts = vec![0.0];
        while now < horizon {
            now += after;
            let (d, r) = on_death(&rec, &crash(now), k, 0.5);
            rec = r;
            let next = match d {
                Decision::Restart => now + 1.0,
                Decision::StayDown => match rec.next_start {
                    Some(t) => t,
                    None => break,
                },
            };
            now = next;
            if d == Decision::StayDown {
                rec = on_scheduled_start(&rec, now);
            }
            starts.push(now);
        }
        (starts, rec)
    }

    #[test]
    fn delays_grow_double_and_cap() {
        let k = Knobs { crash_limit: usize::MAX, ..Knobs::default() };
        let (starts, _) = simulate(&k, 0.1, 3600.0);
        let gaps: Vec<f64> = starts.windows(2).map(|w| w[1] - w[0] - 0.1).collect();
        assert!((gaps[0] - 1.0).abs() < 1e-9, "the first restart is s6's own second: {gaps:?}");
        assert!((gaps[1] - 2.0).abs() < 1e-9 && (gaps[2] - 4.0).abs() < 1e-9, "{gaps:?}");
        assert!(gaps.iter().all(|g| *g <= 60.0 + 1e-9), "capped at 60 s: {gaps:?}");
        assert!(gaps.iter().rev().take(10).all(|g| (g - 60.0).abs() < 1e-9), "and stays at the cap: {gaps:?}");
    }

    #[test]
    fn jitter_stays_within_a_fifth() {
        for unit in [0.0, 0.25, 0.999] {
            let d = jittered(Duration::from_secs(10), unit);
            assert!(d >= Duration::from_secs(8) && d <= Duration::from_secs(12), "{d:?}");
        }
    }

    #[test]
    fn the_nth_crash_in_the_window_quarantines_and_probes_double_up_to_the_cap() {
        let k = Knobs::default();
        let (starts, rec) = simulate(&k, 0.1, 48.0 * 3600.0);
        // 1 s, 2 s, 4 s, 8 s of backoff, then the 5th crash (within 5 min) quarantines.
        let probes: Vec<f64> = starts.windows(2).map(|w| w[1] - w[0]).filter(|g| *g > 120.0).collect();
        assert!((probes[0] - 600.1).abs() < 1e-6, "first probe after 10 min: {probes:?}");
        assert!((probes[1] - 1200.1).abs() < 1e-6, "then 20 min: {probes:?}");
        assert!(probes.iter().all(|p| *p <= 6.0 * 3600.0 + 1.0), "capped at 6 h: {probes:?}");
        assert!((probes.last().unwrap() - (6.0 * 3600.0 + 0.1)).abs() < 1e-6, "{probes:?}");
        assert_eq!(rec.state, PolicyState::Probing);
    }

    #[test]
    fn a_stable_run_resets_the_count_and_a_stable_probe_clears_the_quarantine() {
        let k = Knobs::default();
        let mut rec = on_operator_start(&Record::default(), 0.0);
        for i in 0..4 {
            rec = on_death(&rec, &crash(10.0 + i as f64), &k, 0.5).1;
        }
        assert_eq!(rec.consecutive, 4);
        rec.running_since = 100.0;
        let (d, r) = on_death(&rec, &crash(100.0 + 61.0), &k, 0.5);
        assert_eq!((d, r.consecutive, r.crashes.len()), (Decision::Restart, 1, 1), "a 61 s run was healthy");

        let mut q = Record { state: PolicyState::Quarantined, next_start: Some(500.0), probes: 2, ..Record::default() };
        q = on_scheduled_start(&q, 500.0);
        assert_eq!(q.state, PolicyState::Probing);
        assert!(on_stable(&q, 559.0, &k).is_none());
        let cleared = on_stable(&q, 560.0, &k).unwrap();
        assert_eq!((cleared.state, cleared.probes, cleared.consecutive), (PolicyState::Running, 0, 0));
    }

    #[test]
    fn clean_exits_and_config_errors_park_without_counting() {
        let k = Knobs::default();
        let rec = Record { consecutive: 3, ..Record::default() };
        let (d, r) = on_death(&rec, &Death { at: 1.0, code: Some(0), signal: None, killed: None, cause: None }, &k, 0.5);
        assert_eq!((d, r.state, r.consecutive), (Decision::StayDown, PolicyState::Finished, 0));
        let (d, r) = on_death(&rec, &Death { at: 1.0, code: Some(78), signal: None, killed: None, cause: None }, &k, 0.5);
        assert_eq!((d, r.state), (Decision::StayDown, PolicyState::ConfigError));
        let (d, _) = on_death(&rec, &Death { at: 1.0, code: None, signal: Some(9), killed: None, cause: None }, &k, 0.5);
        assert_eq!(d, Decision::StayDown, "a signal is a crash: the 4th in a row backs off");
        let hung = Death { at: 1.0, code: Some(0), signal: None, killed: Some(crate::liveness::Killed::Hung), cause: None };
        let (d, r) = on_death(&Record::default(), &hung, &k, 0.5);
        assert_eq!(
            (d, r.state, r.crashes.len()),
            (Decision::Restart, PolicyState::Restarting, 1),
            "hung counts as a crash, even after exit 0"
        );
        assert_eq!(r.last_exit.unwrap().killed, Some(crate::liveness::Killed::Hung), "and is recorded as hung");
    }

    /// hermes-agent's `/restart` under a supervisor exits 75 ("restart me"): measured, the
    /// policy counted each one as a crash, and the fifth in 5 minutes quarantined the gateway.
    #[test]
    fn restart_me_backs_off_but_never_quarantines_or_parks() {
        let k = Knobs::default();
        let mut rec = on_operator_start(&Record::default(), 0.0);
        let mut now = 0.0;
        for i in 0..50 {
            now += 0.5;
            let (d, r) = on_death(&rec, &Death { at: now, code: Some(75), signal: None, killed: None, cause: None }, &k, 0.5);
            assert_ne!(r.state, PolicyState::Quarantined, "exit 75 number {i} quarantined");
            assert!(r.crashes.is_empty(), "counted as a crash: {:?}", r.crashes);
            now = match d {
                Decision::Restart => now + 1.0,
                Decision::StayDown => r.next_start.expect("backing off has a time: never parked"),
            };
            assert!(now - 0.5 * (i as f64 + 1.0) >= 0.0);
            rec = if d == Decision::StayDown { on_scheduled_start(&r, now) } else { r };
        }
        // A probe that asks to be restarted has not failed.
        let probing = Record { state: PolicyState::Probing, running_since: 0.0, crashes: vec![1.0; 5], ..Record::default() };
        let (_, r) = on_death(&probing, &Death { at: 2.0, code: Some(75), signal: None, killed: None, cause: None }, &k, 0.5);
        assert_ne!(r.state, PolicyState::Quarantined);
    }

    /// A gateway SIGTERMed for its memory may exit 0 (a clean shutdown): the supervisor's
    /// cause wins, so it is restarted and counted, never parked as finished.
    #[test]
    fn a_memory_restart_or_an_oom_kill_is_a_counted_crash_whatever_the_exit() {
        use crate::exit_policy::Cause;
        let k = Knobs::default();
        let rec = on_operator_start(&Record::default(), 0.0);
        for (code, signal, cause) in [(Some(0), None, Cause::Memory), (Some(1), None, Cause::Memory), (None, Some(9), Cause::Oom)] {
            let (d, r) = on_death(&rec, &Death { at: 10.0, code, signal, killed: None, cause: Some(cause) }, &k, 0.5);
            assert_eq!((d, r.state, r.crashes.len()), (Decision::Restart, PolicyState::Restarting, 1), "{cause:?} {code:?}");
            assert_eq!(r.last_exit.and_then(|e| e.cause), Some(cause));
        }
    }

    #[test]
    fn an_operator_start_clears_everything() {
        let q = Record {
            state: PolicyState::Quarantined,
            next_start: Some(9.0),
            probes: 3,
            consecutive: 7,
            crashes: vec![1.0, 2.0],
            ..Record::default()
        };
        let r = on_operator_start(&q, 50.0);
        assert_eq!(
            (r.state, r.next_start, r.probes, r.consecutive, r.crashes.len(), r.running_since),
            (PolicyState::Running, None, 0, 0, 0, 50.0)
        );
    }
}

//! The watcher's decisions, apart from its effects: given what the gateway said and when, is
//! it ready, is it still alive, is it time to kill it. Times are durations since the gateway
//! was exec'd (a monotonic clock).

use super::{Killed, Knobs};
use std::time::Duration;

/// How the gateway proves itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    /// sd_notify over the slot's socket: `READY=1`, then `WATCHDOG=1` within `interval`.
    Notify { interval: Duration },
    /// Its state file says `running`, then its heartbeat keeps changing.
    StateFile,
}

/// What the watcher saw.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sign {
    /// `READY=1` from the gateway's pid.
    NotifyReady,
    /// `WATCHDOG=1` from the gateway's pid.
    WatchdogPing,
    /// `WATCHDOG=trigger`: the gateway asks to be treated as hung.
    WatchdogTrigger,
    /// `STOPPING=1`: it is shutting down; its stop is s6's to time.
    Stopping,
    /// Its state file says `running` for this very process.
    StateRunning,
    /// Its state file says `draining` for this very process: a drain stops the heartbeat.
    StateDraining,
    /// Its heartbeat changed (naming this very process).
    Heartbeat,
}

/// What to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Act {
    /// Tell s6 it is ready; the words say how it showed it.
    Ready(String),
    /// Kill it, for this reason.
    Kill(Killed, String),
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Phase {
    Starting,
    /// Ready; last proof of life at `alive_at`.
    Ready {
        alive_at: Duration,
    },
    /// Stopping on its own: nothing more to check.
    Disarmed,
}

/// With sd_notify enabled, a state file that says `running` this long without a `READY=1`
/// means the gateway may not speak it after all (its config reads differently than ours): it
/// is taken as ready, and judged by its heartbeat, rather than killed for a start timeout. A
/// `READY=1` that comes later (hermes-agent sends it after its cron and housekeeping start,
/// which a loaded machine can delay) puts it back on its watchdog.
pub const NOTIFY_GRACE: Duration = Duration::from_secs(10);
/// How often the state file is looked at while starting.
pub const STATE_POLL: Duration = Duration::from_millis(100);

#[derive(Debug, Clone)]
pub struct Watch {
    knobs: Knobs,
    protocol: Protocol,
    phase: Phase,
    /// With sd_notify: when the state file first said `running`.
    running_seen: Option<Duration>,
    /// The sd_notify interval it was given, kept when it is judged by its heartbeat instead.
    given: Option<Duration>,
}

fn secs(d: Duration) -> String {
    crate::clock::human_duration(d.as_secs_f64())
}

impl Watch {
    pub fn new(knobs: Knobs, protocol: Protocol) -> Watch {
        let given = match protocol {
            Protocol::Notify { interval } => Some(interval),
            Protocol::StateFile => None,
        };
        Watch { knobs, protocol, phase: Phase::Starting, running_seen: None, given }
    }

    pub fn protocol(&self) -> Protocol {
        self.protocol
    }

    /// Whether the state file should be looked at now.
    pub fn wants_state(&self) -> bool {
        self.phase == Phase::Starting
    }

    /// Whether the heartbeat should be looked at now.
    pub fn wants_heartbeat(&self) -> bool {
        matches!(self.phase, Phase::Ready { .. }) && self.protocol == Protocol::StateFile && !self.knobs.heartbeat_timeout.is_zero()
    }

    /// How often the heartbeat is looked at: a tenth of its bound, between 100 ms and 5 s.
    pub fn heartbeat_poll(&self) -> Duration {
        (self.knobs.heartbeat_timeout / 10).clamp(Duration::from_millis(100), Duration::from_secs(5))
    }

    fn ready(&mut self, now: Duration, how: String) -> Option<Act> {
        self.phase = Phase::Ready { alive_at: now };
        Some(Act::Ready(how))
    }

    pub fn sign(&mut self, s: Sign, now: Duration) -> Option<Act> {
        match (self.phase, s) {
            (Phase::Disarmed, _) => None,
            (_, Sign::Stopping) => {
                self.phase = Phase::Disarmed;
                None
            }
            (_, Sign::WatchdogTrigger) if matches!(self.protocol, Protocol::Notify { .. }) => {
                Some(Act::Kill(Killed::Hung, "it asked to be killed (WATCHDOG=trigger)".into()))
            }
            (Phase::Starting, Sign::NotifyReady) if matches!(self.protocol, Protocol::Notify { .. }) => self.ready(now, "READY=1".into()),
            (Phase::Starting, Sign::StateRunning) => match self.protocol {
                Protocol::StateFile => self.ready(now, "its state file says running".into()),
                Protocol::Notify { .. } => {
                    self.running_seen.get_or_insert(now);
                    self.tick(now)
                }
            },
            (Phase::Ready { .. }, Sign::NotifyReady) if self.protocol == Protocol::StateFile && self.given.is_some() => {
                self.protocol = Protocol::Notify { interval: self.given.unwrap_or_default() };
                self.phase = Phase::Ready { alive_at: now };
                None
            }
            (Phase::Ready { .. }, Sign::WatchdogPing) if matches!(self.protocol, Protocol::Notify { .. }) => {
                self.phase = Phase::Ready { alive_at: now };
                None
            }
            (Phase::Ready { .. }, Sign::Heartbeat | Sign::StateDraining) if self.protocol == Protocol::StateFile => {
                self.phase = Phase::Ready { alive_at: now };
                None
            }
            _ => None,
        }
    }

    /// What is due at `now` (a deadline passed).
    pub fn tick(&mut self, now: Duration) -> Option<Act> {
        match self.phase {
            Phase::Disarmed => None,
            Phase::Starting => {
                if let (Protocol::Notify { .. }, Some(seen)) = (self.protocol, self.running_seen) {
                    if now >= seen + NOTIFY_GRACE {
                        self.protocol = Protocol::StateFile;
                        return self.ready(
                            now,
                            format!(
                                "its state file says running (no READY=1 within {} of it: judged by its heartbeat)",
                                secs(NOTIFY_GRACE)
                            ),
                        );
                    }
                }
                let limit = self.knobs.start_timeout;
                (!limit.is_zero() && now >= limit).then(|| {
                    Act::Kill(Killed::StartTimeout, format!("not ready {} after it started (HERMES_GATEWAY_START_TIMEOUT)", secs(limit)))
                })
            }
            Phase::Ready { alive_at } => match self.protocol {
                Protocol::Notify { interval } => (now >= alive_at + interval)
                    .then(|| Act::Kill(Killed::Hung, format!("no WATCHDOG=1 for {} (gateway.systemd_watchdog_seconds)", secs(interval)))),
                Protocol::StateFile => {
                    let limit = self.knobs.heartbeat_timeout;
                    (!limit.is_zero() && now >= alive_at + limit).then(|| {
                        Act::Kill(
                            Killed::Hung,
                            format!(
                                "its heartbeat (state/gateway.heartbeat) has not changed for {} (HERMES_GATEWAY_HEARTBEAT_TIMEOUT)",
                                secs(limit)
                            ),
                        )
                    })
                }
            },
        }
    }

    /// How long the watcher may sleep from `now` before something is due or should be looked at.
    pub fn sleep(&self, now: Duration) -> Option<Duration> {
        let left = |at: Duration| at.saturating_sub(now);
        match self.phase {
            Phase::Disarmed => None,
            Phase::Starting => {
                let grace = self.running_seen.map(|s| left(s + NOTIFY_GRACE));
                let start = (!self.knobs.start_timeout.is_zero()).then(|| left(self.knobs.start_timeout));
                [Some(STATE_POLL), grace, start].into_iter().flatten().min()
            }
            Phase::Ready { alive_at } => match self.protocol {
                Protocol::Notify { interval } => Some(left(alive_at + interval)),
                Protocol::StateFile if self.wants_heartbeat() => {
                    Some(left(alive_at + self.knobs.heartbeat_timeout).min(self.heartbeat_poll()))
                }
                Protocol::StateFile => None,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const fn s(n: u64) -> Duration {
        Duration::from_secs(n)
    }
    const KNOBS: Knobs = Knobs { start_timeout: s(120), heartbeat_timeout: s(90) };

    #[test]
    fn the_state_file_makes_it_ready_and_a_still_heartbeat_kills_it() {
        let mut w = Watch::new(KNOBS, Protocol::StateFile);
        assert_eq!(w.tick(s(2)), None);
        assert!(matches!(w.sign(Sign::StateRunning, s(2)), Some(Act::Ready(_))));
        assert!(!w.wants_state() && w.wants_heartbeat());
        assert_eq!(w.sign(Sign::Heartbeat, s(30)), None);
        assert_eq!(w.tick(s(119)), None, "90 s after the last beat, not after ready");
        assert!(matches!(w.tick(s(120)), Some(Act::Kill(Killed::Hung, _))));
        let mut draining = Watch::new(KNOBS, Protocol::StateFile);
        draining.sign(Sign::StateRunning, s(1));
        draining.sign(Sign::StateDraining, s(100));
        assert_eq!(draining.tick(s(150)), None, "a drain is alive");
    }

    #[test]
    fn not_ready_in_time_is_a_start_timeout_and_zero_turns_it_off() {
        let mut w = Watch::new(KNOBS, Protocol::StateFile);
        assert_eq!(w.tick(s(119)), None);
        assert!(matches!(w.tick(s(120)), Some(Act::Kill(Killed::StartTimeout, why)) if why.contains("2 min")));
        let mut off = Watch::new(Knobs { start_timeout: Duration::ZERO, heartbeat_timeout: Duration::ZERO }, Protocol::StateFile);
        assert_eq!(off.tick(s(100_000)), None);
        off.sign(Sign::StateRunning, s(1));
        assert_eq!((off.tick(s(100_000)), off.sleep(s(5))), (None, None), "no heartbeat bound: nothing to look at");
    }

    #[test]
    fn with_sd_notify_ready_is_ready_1_and_life_is_watchdog_1() {
        let mut w = Watch::new(KNOBS, Protocol::Notify { interval: s(10) });
        assert_eq!(w.sign(Sign::Heartbeat, s(1)), None);
        assert_eq!(w.sign(Sign::WatchdogPing, s(1)), None, "no ping before ready counts");
        assert!(matches!(w.sign(Sign::NotifyReady, s(2)), Some(Act::Ready(how)) if how == "READY=1"));
        assert_eq!(w.sleep(s(2)), Some(s(10)));
        assert_eq!(w.sign(Sign::WatchdogPing, s(7)), None);
        assert_eq!(w.tick(s(16)), None);
        assert!(matches!(w.tick(s(17)), Some(Act::Kill(Killed::Hung, why)) if why.contains("WATCHDOG=1")));
        assert!(matches!(w.sign(Sign::WatchdogTrigger, s(17)), Some(Act::Kill(Killed::Hung, _))));
        w.sign(Sign::Stopping, s(18));
        assert_eq!(w.tick(s(1000)), None, "a gateway stopping on its own is s6's to time");
    }

    #[test]
    fn a_gateway_that_never_says_ready_1_but_runs_is_judged_by_its_heartbeat() {
        let mut w = Watch::new(KNOBS, Protocol::Notify { interval: s(10) });
        assert_eq!(w.sign(Sign::StateRunning, s(2)), None);
        assert_eq!(w.sleep(s(3)), Some(STATE_POLL));
        assert_eq!(w.tick(s(11)), None);
        assert!(matches!(w.tick(s(12)), Some(Act::Ready(how)) if how.contains("no READY=1")));
        assert_eq!(w.protocol(), Protocol::StateFile);
        let mut late = w.clone();
        assert!(matches!(w.tick(s(102)), Some(Act::Kill(Killed::Hung, why)) if why.contains("heartbeat")));
        // A READY=1 after all: back on its watchdog.
        assert_eq!(late.sign(Sign::NotifyReady, s(20)), None);
        assert_eq!(late.protocol(), Protocol::Notify { interval: s(10) });
        assert_eq!(late.tick(s(29)), None);
        assert!(matches!(late.tick(s(30)), Some(Act::Kill(Killed::Hung, why)) if why.contains("WATCHDOG=1")));
    }
}

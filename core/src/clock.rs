//! Time, behind a seam like the file system: the library never reads the system clock or
//! sleeps by itself, so waits and schedules can run on a virtual clock in tests.

use std::time::{Duration, Instant, SystemTime};

pub trait Clock {
    /// Wall-clock time, for records and what people read.
    fn now(&self) -> SystemTime;
    /// Monotonic time, for deadlines.
    fn instant(&self) -> Instant;
    fn sleep(&self, d: Duration);
    /// This clock as one that threads may share, when it is one (see
    /// [`crate::fs::Fs::shareable`]).
    fn shareable(&self) -> Option<&(dyn Clock + Sync)> {
        None
    }
}

/// The system's clocks.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> SystemTime {
        SystemTime::now()
    }
    fn instant(&self) -> Instant {
        Instant::now()
    }
    fn sleep(&self, d: Duration) {
        std::thread::sleep(d)
    }
    fn shareable(&self) -> Option<&(dyn Clock + Sync)> {
        Some(self)
    }
}

/// A clock that moves only when slept on or told to: for tests and simulations, where hours
/// of schedule must pass in no time.
#[derive(Debug)]
pub struct ManualClock {
    base: Instant,
    wall: SystemTime,
    offset: std::cell::Cell<Duration>,
}

impl ManualClock {
    pub fn new(wall: SystemTime) -> ManualClock {
        ManualClock { base: Instant::now(), wall, offset: std::cell::Cell::new(Duration::ZERO) }
    }
    pub fn advance(&self, d: Duration) {
        self.offset.set(self.offset.get() + d);
    }
    /// How far it has moved since it was made.
    pub fn elapsed(&self) -> Duration {
        self.offset.get()
    }
}

impl Clock for ManualClock {
    fn now(&self) -> SystemTime {
        self.wall + self.offset.get()
    }
    fn instant(&self) -> Instant {
        self.base + self.offset.get()
    }
    fn sleep(&self, d: Duration) {
        self.advance(d)
    }
}

/// Poll `cond` every `every` until it holds or `limit` passes; whether it held.
pub fn wait_until(clock: &dyn Clock, limit: Duration, every: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let end = clock.instant() + limit;
    loop {
        if cond() {
            return true;
        }
        let now = clock.instant();
        if now >= end {
            return false;
        }
        clock.sleep(every.min(end - now));
    }
}

/// Unix seconds of a wall-clock time (0 before the epoch).
pub fn unix_secs(t: SystemTime) -> u64 {
    t.duration_since(SystemTime::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

/// Unix seconds with fractions, as the crash policy's record keeps times.
pub fn unix_secs_f64(t: SystemTime) -> f64 {
    t.duration_since(SystemTime::UNIX_EPOCH).map(|d| d.as_secs_f64()).unwrap_or(0.0)
}

/// A Unix time (seconds) back as a wall-clock time, for [`rfc3339`].
pub fn from_unix_secs(t: f64) -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs_f64(t.max(0.0))
}

/// RFC 3339 in UTC with seconds, as every record and `status` shows times.
pub fn rfc3339(t: SystemTime) -> String {
    chrono::DateTime::<chrono::Utc>::from(t).to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// A duration as a person reads it: "45 s", "4 min", "2 h 5 min".
pub fn human_duration(secs: f64) -> String {
    let s = secs.max(0.0).round() as u64;
    match s {
        0..=99 => format!("{s} s"),
        100..=5999 => format!("{} min", (s + 30) / 60),
        _ => {
            let m = (s + 30) / 60;
            if m.is_multiple_of(60) {
                format!("{} h", m / 60)
            } else {
                format!("{} h {} min", m / 60, m % 60)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wait_until_gives_up_at_the_limit_without_real_time() {
        let c = ManualClock::new(SystemTime::UNIX_EPOCH);
        let mut polls = 0;
        assert!(!wait_until(&c, Duration::from_secs(3600), Duration::from_millis(20), || {
            polls += 1;
            false
        }));
        assert_eq!(c.offset.get(), Duration::from_secs(3600));
        assert_eq!(polls, 180_001);
        assert!(wait_until(&c, Duration::from_secs(1), Duration::from_millis(20), || c.offset.get() >= Duration::from_secs(3600)));
    }

    #[test]
    fn times_render_as_rfc3339_utc() {
        assert_eq!(rfc3339(SystemTime::UNIX_EPOCH + Duration::from_secs(1_795_300_645)), "2026-11-21T22:37:25Z");
    }
}

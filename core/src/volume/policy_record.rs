//! The policy's record of one gateway, `gateway_policy.json` beside its `gateway_state.json`:
//! written crash-safely (fresh temporary, fsync, rename) as the volume's owner, read with the
//! same care as any file in the volume. The user can edit it; it only ever decides when that
//! user's own gateway starts, and every value is bounded when read.

use crate::ctx::Ctx;
use crate::fs::{write_atomic, Capped, Dir, Fs};
use crate::problem::Problem;
use crate::volume::open_profile_dir;
use std::ffi::OsStr;

pub const RECORD_FILE: &str = "gateway_policy.json";
const CAP: u64 = 64 * 1024;
/// Crash times kept (only those inside the window matter).
const MAX_CRASHES: usize = 64;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum PolicyState {
    /// Nothing to say: running as far as the policy knows.
    #[default]
    Running,
    /// Died, left to s6's one-second restart.
    Restarting,
    /// Died, down until `next_start`.
    BackingOff,
    /// Too many crashes: down until the probe at `next_start`.
    Quarantined,
    /// Started as a probe; clears the quarantine if it stays up.
    Probing,
    /// Exited 0 on purpose: parked.
    Finished,
    /// Exited 78: its configuration is wrong; parked.
    ConfigError,
}

impl PolicyState {
    pub fn as_str(self) -> &'static str {
        match self {
            PolicyState::Running => "running",
            PolicyState::Restarting => "restarting",
            PolicyState::BackingOff => "backing-off",
            PolicyState::Quarantined => "quarantined",
            PolicyState::Probing => "probing",
            PolicyState::Finished => "finished",
            PolicyState::ConfigError => "config-error",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct LastExit {
    pub at: f64,
    pub code: Option<i32>,
    pub signal: Option<i32>,
    /// Killed by the slot's watcher: `hung` or `start-timeout`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub killed: Option<crate::liveness::Killed>,
    /// What root knew beyond the exit: `memory` (restarted over its limit) or `oom`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cause: Option<crate::exit_policy::Cause>,
}

#[derive(Debug, Clone, PartialEq, Default, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct Record {
    pub state: PolicyState,
    /// Unix time the policy plans to start the gateway (a backoff's end, a probe).
    pub next_start: Option<f64>,
    /// Crashes since the last healthy run.
    pub consecutive: u32,
    /// Unix times of the recent crashes (inside the window).
    pub crashes: Vec<f64>,
    /// Failed probes in this quarantine.
    pub probes: u32,
    /// Unix time the current (or last) run started, as far as the policy knows.
    pub running_since: f64,
    pub last_exit: Option<LastExit>,
    /// Until this Unix time, a death is the one an operator `restart` asked for, not a crash.
    pub restart_asked_until: Option<f64>,
}

impl Record {
    pub fn with_last_exit(mut self, e: Option<LastExit>) -> Record {
        self.last_exit = e;
        self
    }

    /// Whether the policy holds the gateway down.
    pub fn holds_down(&self) -> bool {
        matches!(self.state, PolicyState::BackingOff | PolicyState::Quarantined)
    }

    /// Values a hand-edited file could make absurd are brought back into range (what needs
    /// the clock and the knobs is [`Record::clamped`]).
    fn bounded(mut self) -> Record {
        let sane = |t: f64| t.is_finite() && (0.0..=4.0e9).contains(&t);
        // Too far is clamped (below, to the policy's own maxima), not forgotten: a forgotten
        // next start would leave a hold with no end.
        self.next_start = self.next_start.filter(|t| t.is_finite() && *t >= 0.0).map(|t| t.min(4.0e9));
        self.crashes.retain(|t| sane(*t));
        let extra = self.crashes.len().saturating_sub(MAX_CRASHES);
        self.crashes.drain(..extra);
        if !sane(self.running_since) {
            self.running_since = 0.0;
        }
        self.consecutive = self.consecutive.min(1000);
        self.probes = self.probes.min(64);
        self
    }
}

/// How far in the future a time the policy recorded itself can be: a `restarting` run is timed
/// from s6's restart, one second after the death (and a second more for clock steps).
const FUTURE_SLACK: f64 = 2.0;

impl Record {
    /// Every stored time brought within what the policy itself could have written, at `now`:
    /// crash times, the run's start and the last exit are not in the future (a future one is
    /// dropped, as if unknown); a hold ends no later than its maximum after the death that
    /// caused it (`backoff_max` for a backoff, `cooldown_max` for a quarantine), and a hold
    /// with no end, or no known death, is due now. So an edited `next_start: 1e300` costs at
    /// most the longest wait the operator configured, and the bound does not move with the
    /// clock (the registrar's timer reaches it).
    pub fn clamped(mut self, now: f64, k: &crate::config::knobs::Knobs) -> Record {
        let past = |t: f64| t.is_finite() && t <= now + FUTURE_SLACK;
        self.crashes.retain(|t| past(*t));
        if !past(self.running_since) {
            self.running_since = 0.0;
        }
        self.last_exit = self.last_exit.filter(|e| past(e.at) && e.at >= 0.0);
        // An operator restart asks for at most its stop's grace and a few seconds.
        let restart_max = crate::slot::STOP_GRACE_MS as f64 / 1000.0 + 5.0 + FUTURE_SLACK;
        self.restart_asked_until = self.restart_asked_until.filter(|t| t.is_finite() && *t <= now + restart_max);
        let longest = match self.state {
            PolicyState::BackingOff => k.backoff_max,
            PolicyState::Quarantined => k.cooldown_max,
            _ => k.backoff_max.max(k.cooldown_max),
        }
        .as_secs_f64();
        // The death the hold follows: the last exit recorded, else the last crash counted.
        let death = self.last_exit.map(|e| e.at).or_else(|| self.crashes.iter().copied().reduce(f64::max));
        self.next_start = match (self.next_start, death) {
            (Some(t), Some(d)) => Some(t.min(d + longest)),
            (Some(t), None) => Some(t.min(now)),
            (None, _) if self.holds_down() => Some(now),
            (None, _) => None,
        };
        self
    }
}

/// The record in a profile directory, `None` when it has none. An unusable one (too big, not
/// JSON, a FIFO) is an empty record: the policy then knows nothing, which only ever errs
/// towards running.
pub fn read_in(fs: &dyn Fs, dir: &Dir) -> Option<Record> {
    match fs.read_capped(dir, OsStr::new(RECORD_FILE), CAP) {
        Ok(Capped::Data(d)) => Some(serde_json::from_slice::<Record>(&d).map(Record::bounded).unwrap_or_default()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        _ => Some(Record::default()),
    }
}

/// The record in a profile directory, clamped at the context's clock to its policy's maxima
/// ([`Record::clamped`]): what every reader that acts on or shows a record uses.
pub fn read_now(ctx: &Ctx, dir: &Dir) -> Option<Record> {
    read_in(ctx.fs, dir).map(|r| r.clamped(crate::clock::unix_secs_f64(ctx.clock.now()), &ctx.cfg.policy))
}

/// The record of `profile`, or an empty one when it has none (or no directory).
pub fn read(ctx: &Ctx, profile: &str) -> Record {
    match open_profile_dir(ctx, profile) {
        Ok(Some(dir)) => read_now(ctx, &dir).unwrap_or_default(),
        _ => Record::default(),
    }
}

/// What a boot pass needs to know of a record: whether the policy holds the gateway down,
/// and until when (Unix seconds).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Hold {
    pub state: PolicyState,
    pub until: Option<u64>,
}

impl Record {
    pub fn hold(&self) -> Option<Hold> {
        self.holds_down().then(|| Hold { state: self.state, until: self.next_start.map(|t| t as u64) })
    }
}

/// Replace the record of `profile`, durably. Nothing to do without a profile directory.
pub fn write(ctx: &Ctx, profile: &str, rec: &Record) -> Result<(), Problem> {
    let Some(dir) = open_profile_dir(ctx, profile)? else { return Ok(()) };
    let mut body = serde_json::to_vec(rec).expect("a record serialises");
    body.push(b'\n');
    write_atomic(ctx.fs, &dir, OsStr::new(RECORD_FILE), &body, 0o644)
        .map_err(|e| ctx.problem(dir.child(OsStr::new(RECORD_FILE)), "write", e))
}

/// A boot pass started the gateway: its run is timed from now. Only a record with a count
/// to protect is touched (most profiles have none, and a pass over a thousand stays cheap).
pub fn note_started(ctx: &Ctx, profile: &str) {
    let Ok(Some(dir)) = open_profile_dir(ctx, profile) else { return };
    let Some(mut rec) = read_now(ctx, &dir) else { return };
    if rec.consecutive == 0 && rec.crashes.is_empty() {
        return;
    }
    rec.running_since = crate::clock::unix_secs_f64(ctx.clock.now());
    let _ = write(ctx, profile, &rec);
}

/// Whether a record exists (so nothing is written for a profile the policy never touched).
pub fn exists(ctx: &Ctx, profile: &str) -> bool {
    matches!(open_profile_dir(ctx, profile), Ok(Some(d)) if ctx.fs.lstat(&d, OsStr::new(RECORD_FILE)).is_ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_hand_edited_record_is_bounded() {
        let r: Record =
            serde_json::from_str(r#"{"state":"quarantined","next_start":1e300,"crashes":[-5,1,2],"probes":99999,"running_since":"x"}"#)
                .map(Record::bounded)
                .unwrap_or_default();
        assert_eq!(r, Record::default(), "a wrong type anywhere: nothing is trusted");
        let r: Record = serde_json::from_str::<Record>(r#"{"state":"quarantined","next_start":1e300,"crashes":[-5,1,2],"probes":99999}"#)
            .unwrap()
            .bounded();
        assert_eq!((r.state, r.next_start, r.crashes, r.probes), (PolicyState::Quarantined, Some(4.0e9), vec![1.0, 2.0], 64));
    }

    #[test]
    fn every_stored_time_is_clamped_to_what_the_policy_could_have_written() {
        let k = crate::config::knobs::Knobs::default();
        let now = 1_800_000_000.0;
        let exit = |at: f64| Some(LastExit { at, code: Some(1), signal: None, killed: None, cause: None });
        let q = Record { state: PolicyState::Quarantined, next_start: Some(4.0e9), last_exit: exit(now - 10.0), ..Record::default() };
        assert_eq!(q.clone().clamped(now, &k).next_start, Some(now - 10.0 + 6.0 * 3600.0), "a quarantine: cooldown_max after its death");
        assert_eq!(
            q.clone().clamped(now + 3600.0, &k).next_start,
            Some(now - 10.0 + 6.0 * 3600.0),
            "the bound does not move with the clock"
        );
        let b = Record { state: PolicyState::BackingOff, ..q.clone() };
        assert_eq!(b.clamped(now, &k).next_start, Some(now - 10.0 + 60.0), "a backoff: backoff_max after its death");
        let legit = Record { next_start: Some(now + 500.0), ..q.clone() };
        assert_eq!(legit.clone().clamped(now, &k), legit, "what the policy wrote is kept");
        // A hold without an end or without a known death is due now; NaN and infinities go.
        let odd =
            Record { state: PolicyState::Quarantined, next_start: Some(f64::NAN), last_exit: exit(f64::INFINITY), ..Record::default() };
        let r = odd.bounded().clamped(now, &k);
        assert_eq!((r.next_start, r.last_exit), (Some(now), None));
        // Crash times, the run's start, the last exit: not in the future.
        let f = Record {
            crashes: vec![now - 5.0, now + 1.0e6],
            running_since: now + 1.0e6,
            last_exit: exit(now + 1.0e6),
            restart_asked_until: Some(now + 1.0e6),
            ..Record::default()
        };
        let r = f.clamped(now, &k);
        assert_eq!((r.crashes, r.running_since, r.last_exit, r.restart_asked_until), (vec![now - 5.0], 0.0, None, None));
        let restarting =
            Record { state: PolicyState::Restarting, running_since: now + 1.0, restart_asked_until: Some(now + 9.0), ..Record::default() };
        assert_eq!(restarting.clone().clamped(now, &k), restarting, "s6's restart a second after the death is the policy's own");
    }
}

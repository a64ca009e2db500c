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

    /// Values a hand-edited file could make absurd are brought back into range.
    fn bounded(mut self) -> Record {
        let sane = |t: f64| t.is_finite() && (0.0..=4.0e9).contains(&t);
        self.next_start = self.next_start.filter(|t| sane(*t));
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

/// The record of `profile`, or an empty one when it has none (or no directory).
pub fn read(ctx: &Ctx, profile: &str) -> Record {
    match open_profile_dir(ctx, profile) {
        Ok(Some(dir)) => read_in(ctx.fs, &dir).unwrap_or_default(),
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
    write_atomic(ctx.fs, &dir, OsStr::new(RECORD_FILE), &body, 0o644).map_err(|e| ctx.problem(dir.child(OsStr::new(RECORD_FILE)), "write", e))
}

/// A boot pass started the gateway: its run is timed from now. Only a record with a count
/// to protect is touched (most profiles have none, and a pass over a thousand stays cheap).
pub fn note_started(ctx: &Ctx, profile: &str) {
    let Ok(Some(dir)) = open_profile_dir(ctx, profile) else { return };
    let Some(mut rec) = read_in(ctx.fs, &dir) else { return };
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
        let r: Record = serde_json::from_str(r#"{"state":"quarantined","next_start":1e300,"crashes":[-5,1,2],"probes":99999,"running_since":"x"}"#)
            .map(Record::bounded)
            .unwrap_or_default();
        assert_eq!(r, Record::default(), "a wrong type anywhere: nothing is trusted");
        let r: Record = serde_json::from_str::<Record>(r#"{"state":"quarantined","next_start":1e300,"crashes":[-5,1,2],"probes":99999}"#).unwrap().bounded();
        assert_eq!((r.state, r.next_start, r.crashes, r.probes), (PolicyState::Quarantined, None, vec![1.0, 2.0], 64));
    }
}

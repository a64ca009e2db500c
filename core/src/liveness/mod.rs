//! Readiness and liveness: s6 learns that a gateway is ready when the gateway itself says so,
//! and a gateway that stops proving it is alive is killed and restarted.
//!
//! hermes-agent already tells a supervisor both (read from 0.19.0's own code):
//! - `gateway_state.json` in its profile directory goes `starting` -> `running`, stamped with
//!   its `pid` and `start_time` (field 22 of `/proc/<pid>/stat`);
//! - every 30 s its event loop rewrites `state/gateway.heartbeat` (`pid`, `updated_at`), so a
//!   loop that stalls stops it while the pid lives;
//! - with `gateway.systemd_watchdog_seconds` in its `config.yaml` and `NOTIFY_SOCKET` /
//!   `WATCHDOG_USEC` in its environment it speaks sd_notify: `READY=1` once truly running,
//!   then `WATCHDOG=1` every half interval while the loop keeps up, `STOPPING=1` at shutdown.
//!
//! s6's readiness is the slot's `notification-fd`: a line written on it marks the service ready
//! (`s6-svstat`, `s6-svwait -U`). The slot's `run` execs the [`bridge`] (`hermes-reconcile
//! bridge`) after dropping privileges; it forks a watcher and execs the gateway in its place
//! (so the gateway keeps the pid s6 runs, as with skarnet's sdnotify-wrapper); the watcher
//! writes the notification when the gateway is ready ([`watch`] decides), and kills a gateway
//! that is not ready within the start timeout (`start-timeout`) or stops proving it is alive
//! (`hung`), leaving the reason in the profile's own `state/` ([`VERDICT_FILE`], written as
//! the user) for the slot's `finish` to record.

pub mod bridge;
pub(crate) mod signs;
pub(crate) mod watch;
pub(crate) mod watchdog;

use crate::fs::{Capped, Dir, Fs};
use std::ffi::OsStr;
use std::time::Duration;

/// The descriptor s6-supervise gives the run for readiness (the slot's `notification-fd`).
pub const NOTIFICATION_FD: i32 = 3;
/// In the profile's `state/` directory (where hermes-agent keeps its heartbeat): why the
/// watcher killed the last run. The watcher writes it as the hermes user, and `finish` reads
/// it as that user (no link followed, capped). It is the user's file: nothing root owns is
/// handed to a process the user could trace (an earlier design gave the watcher a descriptor
/// to a root file in the slot, which any uid 10000 process could copy out of it and fill
/// `/run` with). A forged verdict can only change how that profile's own death is counted,
/// which the user, who owns its gateway, could cause anyway.
pub const VERDICT_FILE: &str = "hermes-s6-verdict.json";
/// The profile's state directory, where [`VERDICT_FILE`] is (hermes-agent's `state/`, the
/// volume's `STATE_SUBDIR`).
pub const VERDICT_DIR: &str = "state";
const VERDICT_CAP: u64 = 4096;

/// How long a gateway may take from exec to ready by default: a lone 0.19.0 gateway takes
/// 1.6 s; 60 started at once on two cores took 55 s.
pub const DEFAULT_START_TIMEOUT: Duration = Duration::from_secs(120);
/// How old the heartbeat may get by default: upstream rewrites it every 30 s
/// (`DEFAULT_HEARTBEAT_INTERVAL_S`), so this is three missed beats.
pub const DEFAULT_HEARTBEAT_TIMEOUT: Duration = Duration::from_secs(90);
/// The heartbeat upstream writes, relative to the profile directory (its `HERMES_HOME`).
pub const HEARTBEAT_FILE: [&str; 2] = ["state", "gateway.heartbeat"];

/// The settings (environment: `HERMES_GATEWAY_START_TIMEOUT`, `HERMES_GATEWAY_HEARTBEAT_TIMEOUT`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Knobs {
    /// From exec to ready; zero: never killed for it.
    pub start_timeout: Duration,
    /// The oldest a heartbeat may be when the gateway does not speak sd_notify; zero: not
    /// checked.
    pub heartbeat_timeout: Duration,
}

impl Default for Knobs {
    fn default() -> Self {
        Knobs { start_timeout: DEFAULT_START_TIMEOUT, heartbeat_timeout: DEFAULT_HEARTBEAT_TIMEOUT }
    }
}

impl Knobs {
    /// From the environment; a bad value is a problem naming its variable.
    pub fn from_env(env: &dyn Fn(&str) -> Option<String>) -> Result<Knobs, String> {
        let mut k = Knobs::default();
        for (var, into) in
            [("HERMES_GATEWAY_START_TIMEOUT", &mut k.start_timeout), ("HERMES_GATEWAY_HEARTBEAT_TIMEOUT", &mut k.heartbeat_timeout)]
        {
            if let Some(v) = env(var).filter(|v| !v.trim().is_empty()) {
                *into = crate::config::parse_duration(&v)
                    .ok_or_else(|| format!("{var} must be a duration like 500ms, 90s or 2m (0 turns it off), got {v:?}"))?;
            }
        }
        Ok(k)
    }
}

/// Why the watcher killed a gateway: each is its own exit class for the crash policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Killed {
    /// It stopped proving it is alive: no `WATCHDOG=1` within `WATCHDOG_USEC`, or a heartbeat
    /// older than the bound.
    Hung,
    /// It was not ready within the start timeout.
    StartTimeout,
}

impl Killed {
    pub fn as_str(self) -> &'static str {
        match self {
            Killed::Hung => "hung",
            Killed::StartTimeout => "start-timeout",
        }
    }
}

/// What the watcher leaves in [`VERDICT_FILE`] before it kills.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Verdict {
    pub killed: Killed,
    /// The gateway's pid (the pgid s6 gives `finish`).
    pub pid: u64,
    /// Unix seconds of the kill.
    pub at: f64,
    /// In words, for the log.
    pub why: String,
}

/// How long after a kill its verdict still explains a death whose pid s6 did not pass.
const VERDICT_FRESH: f64 = 30.0;

/// The watcher's verdict on the death `finish` is looking at: the run with `pid` (what s6
/// passes as its fourth argument), or, without one, a verdict at most 30 s old. Read without
/// following links, capped; anything else (no file, another run's verdict) is `None`.
/// `profile_dir` is the profile's directory opened in the volume (read as its owner).
pub fn verdict_for(fs: &dyn Fs, profile_dir: &Dir, pid: Option<u64>, now: f64) -> Option<Verdict> {
    let state = fs.open_dir(profile_dir, OsStr::new(VERDICT_DIR)).ok()?;
    let Ok(Capped::Data(d)) = fs.read_capped(&state, OsStr::new(VERDICT_FILE), VERDICT_CAP) else { return None };
    let v: Verdict = serde_json::from_slice(d.trim_ascii()).ok()?;
    let matches = match pid {
        Some(p) => v.pid == p,
        None => v.at.is_finite() && v.at <= now + 1.0 && now - v.at <= VERDICT_FRESH,
    };
    matches.then_some(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn knobs_read_their_variables_and_name_a_bad_one() {
        let env = |k: &str| match k {
            "HERMES_GATEWAY_START_TIMEOUT" => Some("30s".to_string()),
            "HERMES_GATEWAY_HEARTBEAT_TIMEOUT" => Some("0".to_string()),
            _ => None,
        };
        assert_eq!(Knobs::from_env(&env).unwrap(), Knobs { start_timeout: Duration::from_secs(30), heartbeat_timeout: Duration::ZERO });
        assert_eq!(Knobs::from_env(&|_| None).unwrap(), Knobs::default());
        let bad = Knobs::from_env(&|k: &str| (k == "HERMES_GATEWAY_START_TIMEOUT").then(|| "soon".to_string())).unwrap_err();
        assert!(bad.contains("HERMES_GATEWAY_START_TIMEOUT") && bad.contains("soon"), "{bad}");
    }

    #[test]
    fn a_verdict_speaks_only_for_its_own_run() {
        let tmp = tempfile::tempdir().unwrap();
        std::fs::create_dir(tmp.path().join(VERDICT_DIR)).unwrap();
        let file = tmp.path().join(VERDICT_DIR).join(VERDICT_FILE);
        let v = Verdict { killed: Killed::Hung, pid: 42, at: 1000.0, why: "no heartbeat for 90 s".into() };
        std::fs::write(&file, serde_json::to_string(&v).unwrap() + "\n").unwrap();
        let fs = crate::fs::RealFs;
        let slot = fs.open_root(tmp.path()).unwrap();
        assert_eq!(verdict_for(&fs, &slot, Some(42), 5000.0), Some(v.clone()));
        assert_eq!(verdict_for(&fs, &slot, Some(43), 1000.0), None, "another run's verdict");
        assert_eq!(verdict_for(&fs, &slot, None, 1010.0), Some(v.clone()));
        assert_eq!(verdict_for(&fs, &slot, None, 1100.0), None, "too old without a pid");
        std::fs::write(&file, "").unwrap();
        assert_eq!(verdict_for(&fs, &slot, Some(42), 1000.0), None, "emptied by the next run's watcher");
        // A link in its place is not followed (the file is the user's: root reads it as such).
        let elsewhere = tmp.path().join("elsewhere.json");
        std::fs::write(&elsewhere, serde_json::to_string(&v).unwrap()).unwrap();
        std::fs::remove_file(&file).unwrap();
        std::os::unix::fs::symlink(&elsewhere, &file).unwrap();
        assert_eq!(verdict_for(&fs, &slot, Some(42), 1000.0), None, "a link is not followed");
    }
}

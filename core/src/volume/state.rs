//! What a profile's files on the volume say about its last wanted state and its last exit.
//!
//! Both files are written by the unprivileged user, so they are read through a directory
//! descriptor, without following links, non-blocking (a FIFO cannot stall the boot) and with a
//! size cap. Anything unreadable means "no prior state": the gateway is registered down,
//! which is the safe direction.

use super::py_json::{top_level_members, Py};
use crate::fs::{Capped, Dir, Fs};
use serde_json::Value;
use std::ffi::OsStr;
use std::io;

pub const STATE_FILE: &str = "gateway_state.json";
pub const LIFECYCLE_FILE: &str = "gateway.lifecycle.json";
pub const STATE_SUBDIR: &str = "state";
/// Larger state files are refused unread: a real one is a few hundred bytes.
pub const STATE_CAP: u64 = 1024 * 1024;
/// What a profile's state file says the operator (or, failing that, the gateway) last wanted.
/// Only [`Wanted::Running`] autostarts a gateway at boot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Wanted {
    Running,
    Stopped,
    /// Any other value, verbatim (a string) or in compact JSON form: not started.
    Other(String),
}

impl Wanted {
    pub fn parse(s: &str) -> Wanted {
        match s {
            "running" => Wanted::Running,
            "stopped" => Wanted::Stopped,
            other => Wanted::Other(other.to_string()),
        }
    }
    pub fn as_str(&self) -> &str {
        match self {
            Wanted::Running => "running",
            Wanted::Stopped => "stopped",
            Wanted::Other(s) => s,
        }
    }
    pub fn autostarts(&self) -> bool {
        *self == Wanted::Running
    }
}

impl serde::Serialize for Wanted {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

/// The outcome of reading one profile's prior wanted state.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PriorState {
    /// `None` when there is no usable state.
    pub value: Option<Wanted>,
    /// Why the file was not usable, for the operator (`None` when absent or fine).
    pub warning: Option<String>,
    /// Whether anything (even an unusable file) stands at the state file's name.
    pub file_present: bool,
}


/// How the previous container's gateway ended, from the lifecycle sentinel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum PriorExit {
    Clean,
    Unclean,
    Unknown,
}

impl PriorExit {
    pub fn as_str(self) -> &'static str {
        match self {
            PriorExit::Clean => "clean",
            PriorExit::Unclean => "unclean",
            PriorExit::Unknown => "unknown",
        }
    }
}

/// Read a small JSON object from an untrusted directory. `Ok(None)` when absent.
pub fn read_json_object(fs: &dyn Fs, dir: &Dir, name: &str) -> Result<Option<serde_json::Map<String, Value>>, String> {
    let data = match fs.read_capped(dir, OsStr::new(name), STATE_CAP) {
        Ok(Capped::Data(d)) => d,
        Ok(Capped::NotRegular(kind)) => return Err(format!("is a {}, not a regular file", kind.describe())),
        Ok(Capped::TooLarge(n)) => return Err(format!("is {n} bytes, over the {STATE_CAP}-byte cap")),
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e.to_string()),
    };
    let body = data.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(&data);
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(map)) => Ok(Some(map)),
        Ok(_) => Err("is not a JSON object".to_string()),
        Err(e) => Err(format!("is not valid JSON ({e})")),
    }
}

/// `desired_state` (the operator's intent) beats `gateway_state` (the runtime's last word);
/// `draining` and `degraded` are a running gateway mid-flight and count as `running`.
pub fn effective_state(map: &serde_json::Map<String, Value>) -> Option<Wanted> {
    fn wanted(v: &Value) -> Wanted {
        match v {
            Value::String(s) => Wanted::parse(s),
            other => Wanted::Other(other.to_string()),
        }
    }
    match map.get("desired_state") {
        Some(v) if !v.is_null() => return Some(wanted(v)),
        _ => {}
    }
    match map.get("gateway_state") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) if s == "draining" || s == "degraded" => Some(Wanted::Running),
        Some(v) => Some(wanted(v)),
    }
}

/// [`effective_state`] over the members Python's `json.loads` sees (the last of a repeated
/// key), a value that is not a string shown as Python's `str()` shows it.
fn effective_py(members: &[(String, Py)]) -> Option<Wanted> {
    let get = |key: &str| members.iter().rev().find(|(k, _)| k == key).map(|(_, v)| v);
    let wanted = |v: &Py| match v {
        Py::Str(s) => Wanted::parse(s),
        other => Wanted::Other(other.python_str()),
    };
    match get("desired_state") {
        Some(Py::Null) | None => {}
        Some(v) => return Some(wanted(v)),
    }
    match get("gateway_state") {
        None | Some(Py::Null) => None,
        Some(Py::Str(s)) if s == "draining" || s == "degraded" => Some(Wanted::Running),
        Some(v) => Some(wanted(v)),
    }
}

/// The top-level members of a profile's state file as upstream's reconciler reads it (see
/// [`super::py_json`]): `Ok(None)` when there is no file, `Err` says why it is unusable.
fn read_members(fs: &dyn Fs, dir: &Dir) -> Result<Option<Vec<(String, Py)>>, String> {
    let data = match fs.read_capped(dir, OsStr::new(STATE_FILE), STATE_CAP) {
        Ok(Capped::Data(d)) => d,
        Ok(Capped::NotRegular(kind)) => return Err(format!("is a {}, not a regular file", kind.describe())),
        Ok(Capped::TooLarge(n)) => return Err(format!("is {n} bytes, over the {STATE_CAP}-byte cap")),
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e.to_string()),
    };
    top_level_members(&data).map(Some)
}

/// The wanted state a profile's state file says, decided as the boot pass decides it: `Ok(None)`
/// when there is no file or no state in it.
pub fn read_wanted(fs: &dyn Fs, dir: &Dir) -> Result<Option<Wanted>, String> {
    Ok(read_members(fs, dir)?.and_then(|m| effective_py(&m)))
}

pub fn read_prior_state(fs: &dyn Fs, dir: &Dir) -> PriorState {
    match read_members(fs, dir) {
        Ok(None) => PriorState::default(),
        Ok(Some(m)) => PriorState { value: effective_py(&m), warning: None, file_present: true },
        Err(why) => PriorState {
            value: None,
            file_present: true,
            warning: Some(format!("could not read {}: {why}; treating as no prior state", dir.child(OsStr::new(STATE_FILE)).display())),
        },
    }
}

/// `state/gateway.lifecycle.json` phase `exited` means the gateway ended cleanly; `running`
/// means the old container died under it. Anything else, or any problem, is `unknown`.
pub fn read_prior_exit(fs: &dyn Fs, dir: &Dir) -> PriorExit {
    let Ok(sub) = fs.open_dir(dir, OsStr::new(STATE_SUBDIR)) else {
        return PriorExit::Unknown;
    };
    match read_json_object(fs, &sub, LIFECYCLE_FILE) {
        Ok(Some(map)) => match map.get("phase").and_then(Value::as_str) {
            Some("exited") => PriorExit::Clean,
            Some("running") => PriorExit::Unclean,
            _ => PriorExit::Unknown,
        },
        _ => PriorExit::Unknown,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_watchers_verdict_is_in_this_state_directory() {
        assert_eq!(crate::liveness::VERDICT_DIR, STATE_SUBDIR);
    }
    use rstest::rstest;
    use serde_json::json;

    #[rstest]
    #[case(json!({"gateway_state": "running"}), Some("running"))]
    #[case(json!({"gateway_state": "draining"}), Some("running"))]
    #[case(json!({"gateway_state": "degraded"}), Some("running"))]
    #[case(json!({"gateway_state": "starting"}), Some("starting"))]
    #[case(json!({"gateway_state": "startup_failed"}), Some("startup_failed"))]
    #[case(json!({"gateway_state": "stopped"}), Some("stopped"))]
    #[case(json!({"desired_state": "running", "gateway_state": "startup_failed"}), Some("running"))]
    #[case(json!({"desired_state": "stopped", "gateway_state": "running"}), Some("stopped"))]
    #[case(json!({"desired_state": null, "gateway_state": "degraded"}), Some("running"))]
    #[case(json!({"desired_state": 5}), Some("5"))]
    #[case(json!({}), None)]
    fn precedence(#[case] doc: Value, #[case] want: Option<&str>) {
        let map = doc.as_object().unwrap().clone();
        assert_eq!(effective_state(&map).as_ref().map(Wanted::as_str), want);
    }
}

//! Persist the operator's intent (`desired_state`) into the *target* profile's
//! `gateway_state.json`: read-modify-write that keeps every other key, written to a fresh
//! temporary and renamed (atomic), never through a link. Upstream wrote into whichever home
//! the CLI ran under; here the target is derived from the profile name.

use super::{open_profile_dir, Error};
use crate::config::Config;
use crate::safe_fs::{write_atomic, Fs};
use crate::state::{read_json_object, STATE_FILE};
use serde_json::Value;
use std::ffi::OsStr;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Desired {
    Running,
    Stopped,
}

impl Desired {
    pub fn as_str(self) -> &'static str {
        match self {
            Desired::Running => "running",
            Desired::Stopped => "stopped",
        }
    }
}

/// What happened to the state file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Written {
    Yes,
    /// The profile directory does not exist: nothing to record.
    NoProfileDir,
    /// The old file was unusable (corrupt, link, FIFO…) and was replaced; the reason.
    ReplacedUnreadable(String),
}

pub fn write(fs: &dyn Fs, cfg: &Config, profile: &str, desired: Desired) -> Result<Written, Error> {
    let Some(dir) = open_profile_dir(fs, cfg, profile)? else { return Ok(Written::NoProfileDir) };
    let (mut map, outcome) = match read_json_object(fs, &dir, STATE_FILE) {
        Ok(Some(m)) => (m, Written::Yes),
        Ok(None) => (serde_json::Map::new(), Written::Yes),
        Err(why) => (serde_json::Map::new(), Written::ReplacedUnreadable(why)),
    };
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
    map.insert("desired_state".into(), Value::from(desired.as_str()));
    map.insert("updated_at".into(), Value::from(now));
    let mut body = serde_json::to_vec(&Value::Object(map)).expect("json");
    body.push(b'\n');
    // Root writing into the user's volume leaves the file the user's.
    let owner = nix::unistd::geteuid().is_root().then_some((cfg.uid, cfg.gid));
    write_atomic(fs, &dir, OsStr::new(STATE_FILE), &body, 0o644, owner)
        .map_err(|e| Error::io(dir.child(OsStr::new(STATE_FILE)), "write", e))?;
    Ok(outcome)
}

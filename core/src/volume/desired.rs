//! Persist the operator's intent (`desired_state`) into the *target* profile's
//! `gateway_state.json`: read-modify-write that keeps every other key, written to a fresh
//! temporary, flushed and renamed (atomic and durable), never through a link, as the volume's
//! owner. Upstream wrote into whichever home the CLI ran under; here the target is derived from
//! the profile name.

use super::open_profile_dir;
use super::state::{read_json_object, Wanted, STATE_FILE};
use crate::clock::unix_secs;
use crate::ctx::Ctx;
use crate::fs::write_atomic;
use crate::problem::Problem;
use serde_json::Value;
use std::ffi::OsStr;

/// What happened to the state file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Written {
    Yes,
    /// The profile directory does not exist: nothing to record.
    NoProfileDir,
    /// The old file was unusable (corrupt, link, FIFO…) and was replaced; the reason.
    ReplacedUnreadable(String),
}

pub fn write(ctx: &Ctx, profile: &str, wanted: &Wanted) -> Result<Written, Problem> {
    let Some(dir) = open_profile_dir(ctx, profile)? else { return Ok(Written::NoProfileDir) };
    let (mut map, outcome) = match read_json_object(ctx.fs, &dir, STATE_FILE) {
        Ok(Some(m)) => (m, Written::Yes),
        Ok(None) => (serde_json::Map::new(), Written::Yes),
        Err(why) => (serde_json::Map::new(), Written::ReplacedUnreadable(why)),
    };
    map.insert("desired_state".into(), Value::from(wanted.as_str()));
    map.insert("updated_at".into(), Value::from(unix_secs(ctx.clock.now())));
    let mut body = serde_json::to_vec(&Value::Object(map)).expect("a JSON map serialises");
    body.push(b'\n');
    write_atomic(ctx.fs, &dir, OsStr::new(STATE_FILE), &body, 0o644)
        .map_err(|e| ctx.problem(dir.child(OsStr::new(STATE_FILE)), "write", e))?;
    Ok(outcome)
}

/// The wanted state the profile's file says now (`None`: no file, no key, or unreadable).
pub fn read(ctx: &Ctx, profile: &str) -> Option<Wanted> {
    let dir = open_profile_dir(ctx, profile).ok()??;
    let map = read_json_object(ctx.fs, &dir, STATE_FILE).ok()??;
    map.get("desired_state").and_then(Value::as_str).map(Wanted::parse)
}

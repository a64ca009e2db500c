//! Root-made entries in a profile, taken over at run time (root mode only).
//!
//! Our own tools drop to the hermes user before they write the volume, but any other root
//! command does not (`docker exec C python …`, upstream's CLI run as root): it leaves
//! root-owned files the gateway, running as the hermes user, cannot read or replace (the real
//! gateway dies with `PermissionError` on its `.env`; `stop` cannot record the wanted state).
//! Nothing in the volume is root's on purpose, so when the registrar looks at a profile it
//! gives what root owns there to the configured uid/gid, with `adopt-volume`'s walk (every
//! step on the descriptor it examined; a hard link with another name, which may be outside the
//! volume, left alone), bounded by [`MAX_DEPTH`] and [`MAX_ENTRIES`]:
//! - a named profile: `profiles/<p>/` and everything below it;
//! - `default`: the home and everything below it except `profiles/` (the named profiles,
//!   each looked at on its own) and `logs/` (the boot log and the loggers' directories).
//!
//! The last take-over is recorded next to the doorbell ([`RECORD`], a root-owned directory)
//! for `status`, and reported in the registrar's log.

use crate::ctx::Ctx;
use crate::fs::{self, Capped, Kind, Node};
use crate::name::DEFAULT_PROFILE;
use crate::problem::Problem;
use crate::volume::adopt::{self, Adopted, Walk};
use crate::volume::gateway_logs::LOGS;
use crate::volume::PROFILES_DIR;
use std::ffi::OsStr;
use std::path::Path;

/// Directories deeper than this below a profile are not entered.
pub const MAX_DEPTH: usize = 16;
/// At most this many entries of one profile are examined per look.
pub const MAX_ENTRIES: usize = 10_000;
/// The record of the last take-over, next to the doorbell.
pub const RECORD: &str = "last-take-over.json";

/// What `status` shows of the last take-over.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct TakeOver {
    pub profile: String,
    /// Entries re-owned.
    pub entries: usize,
    /// When (Unix time).
    pub at: f64,
}

/// Whether this process takes over root-made entries: root, with another configured uid.
pub fn active(ctx: &Ctx) -> bool {
    ctx.fs.euid() == 0 && ctx.cfg.uid != 0
}

/// The profile's top, opened by root without following a link; `None` when it is not a
/// directory (gone, a link).
fn top(ctx: &Ctx, profile: &str) -> Result<Option<Node>, Problem> {
    let fs = ctx.fs;
    let home = fs.open_root(&ctx.cfg.home).map_err(|e| ctx.problem(&ctx.cfg.home, "open", e))?;
    let node = if profile == DEFAULT_PROFILE {
        fs.open_node(&home, OsStr::new("."))
    } else {
        let Ok(profiles) = fs.open_node(&home, OsStr::new(PROFILES_DIR)) else { return Ok(None) };
        let Ok(profiles) = fs.enter_node(&profiles) else { return Ok(None) };
        fs.open_node(&profiles, OsStr::new(profile))
    };
    Ok(node.ok().filter(|n| n.meta.kind == Kind::Dir))
}

/// Take over what root owns in `profile`; `None` when this process does not take over.
pub fn profile(ctx: &Ctx, profile: &str) -> Result<Option<Adopted>, Problem> {
    if !active(ctx) {
        return Ok(None);
    }
    let Some(top) = top(ctx, profile)? else { return Ok(None) };
    let skip: &[&str] = if profile == DEFAULT_PROFILE { &[PROFILES_DIR, LOGS] } else { &[] };
    let walk = Walk { from: 0, max_depth: MAX_DEPTH, max_entries: MAX_ENTRIES, skip };
    adopt::take_over(ctx, &top, &walk).map(Some)
}

fn record_dir<'a>(ctx: &Ctx<'a>) -> &'a Path {
    ctx.cfg.registrar_fifo.parent().unwrap_or(Path::new("/"))
}

/// Remember a take-over for `status` (root writes it in the doorbell's root-owned directory).
pub fn record(ctx: &Ctx, t: &TakeOver) -> Result<(), Problem> {
    let dir = record_dir(ctx);
    let d = ctx.fs.open_root(dir).map_err(|e| ctx.problem(dir, "open", e))?;
    let data = serde_json::to_vec(t).expect("serialises");
    fs::write_atomic(ctx.fs, &d, OsStr::new(RECORD), &data, 0o644).map_err(|e| ctx.problem(dir.join(RECORD), "write", e))
}

/// The last take-over recorded, if any (a missing, foreign or unreadable record is none).
pub fn last(ctx: &Ctx) -> Option<TakeOver> {
    let d = ctx.fs.open_root(record_dir(ctx)).ok()?;
    let meta = ctx.fs.lstat(&d, OsStr::new(RECORD)).ok()?;
    if meta.uid != 0 {
        return None;
    }
    match ctx.fs.read_capped(&d, OsStr::new(RECORD), 4096).ok()? {
        // Root's own file, but still checked: one line of `status` is made from it.
        Capped::Data(b) => {
            serde_json::from_slice::<TakeOver>(&b).ok().filter(|t| crate::name::validate(&t.profile).is_ok() && (0.0..1e11).contains(&t.at))
        }
        _ => None,
    }
}

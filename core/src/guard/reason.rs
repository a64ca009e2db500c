//! Why root restarted a gateway, left for its finish: the registrar writes `data/restart-reason`
//! in the slot (root-owned, so the user cannot forge one) just before it SIGTERMs the gateway
//! through s6; the finish that follows reads it once, removes it, and records the death as
//! that class instead of a plain crash. A reason is stamped with its time, so a stale one (left
//! by a registrar killed before it sent the signal) is not applied to a later death.

use crate::ctx::Ctx;
use crate::exit_policy::Cause;
use crate::fs::{write_atomic, Capped, Dir};
use std::ffi::OsStr;

pub const REASON_FILE: &str = "restart-reason";

/// One reason: the class, the pid it is for, and what a person should read.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Reason {
    pub cause: Cause,
    pub pid: u64,
    /// Unix seconds it was left.
    pub at: f64,
    pub detail: String,
}

fn data(ctx: &Ctx, slot: &Dir) -> Option<Dir> {
    ctx.fs.open_dir(slot, OsStr::new(crate::slot::DATA_DIR)).ok()
}

/// Leave `r` for the slot's next finish.
pub fn leave(ctx: &Ctx, slot: &Dir, r: &Reason) -> std::io::Result<()> {
    let d = data(ctx, slot).ok_or_else(|| std::io::Error::new(std::io::ErrorKind::NotFound, "the slot has no data/ directory"))?;
    let mut body = serde_json::to_vec(r).expect("a reason serialises");
    body.push(b'\n');
    write_atomic(ctx.fs, &d, OsStr::new(REASON_FILE), &body, 0o644)
}

/// How long after it was left a reason still explains a death: the stop grace after which s6
/// kills, and some slack for a loaded machine.
pub const FRESH_FOR: f64 = crate::slot::STOP_GRACE_MS as f64 / 1000.0 + 25.0;

/// The reason left for a death at `now`, taken (removed) whatever it says.
pub fn take(ctx: &Ctx, slot: &Dir, now: f64) -> Option<Reason> {
    let d = data(ctx, slot)?;
    let r = match ctx.fs.read_capped(&d, OsStr::new(REASON_FILE), 4096) {
        Ok(Capped::Data(b)) => serde_json::from_slice::<Reason>(&b).ok(),
        _ => None,
    };
    let _ = ctx.fs.unlink(&d, OsStr::new(REASON_FILE));
    r.filter(|r| r.at <= now + 2.0 && now - r.at <= FRESH_FOR)
}

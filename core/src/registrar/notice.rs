//! What the registrar wants every `status` to say about itself (today: that its inotify
//! budget is spent and the resync covers the rest). One short file per topic beside the
//! doorbell, in the root-owned directory the doorbell already checks, so any user can read
//! it and only root can write it.

use crate::ctx::Ctx;
use crate::fs::{ignore_missing, write_atomic, Capped};
use std::ffi::OsStr;
use std::path::Path;

/// The one topic so far: watches beyond the budget.
pub const WATCH_BUDGET: &str = "notice-watch";

const CAP: u64 = 4096;

fn dir<'a>(ctx: &'a Ctx<'_>) -> &'a Path {
    ctx.cfg.registrar_fifo.parent().unwrap_or(Path::new("/"))
}

/// Say `text` under `topic`, or say nothing more (`None`).
pub fn set(ctx: &Ctx, topic: &str, text: Option<&str>) -> std::io::Result<()> {
    let d = ctx.fs.open_root(dir(ctx))?;
    match text {
        Some(t) => write_atomic(ctx.fs, &d, OsStr::new(topic), format!("{t}\n").as_bytes(), 0o644),
        None => ignore_missing(ctx.fs.unlink(&d, OsStr::new(topic))),
    }
}

/// Every notice standing now, by topic.
pub fn read_all(ctx: &Ctx) -> Vec<String> {
    let Ok(d) = ctx.fs.open_root(dir(ctx)) else { return Vec::new() };
    [WATCH_BUDGET]
        .iter()
        .filter_map(|t| match ctx.fs.read_capped(&d, OsStr::new(t), CAP) {
            Ok(Capped::Data(b)) => Some(String::from_utf8_lossy(&b).trim().to_string()).filter(|s| !s.is_empty()),
            _ => None,
        })
        .collect()
}

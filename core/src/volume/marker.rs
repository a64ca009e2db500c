//! The planned-stop marker: written into the target profile's home just before `stop`, so the
//! gateway can tell an operator stop (persist `stopped`, exit 0, slot parked) from a container
//! stop or crash (persist `running`, exit non-zero, restart). It names the pid and the pid's
//! start time, so a marker can never match a recycled pid.

use super::open_profile_dir;
use crate::clock::rfc3339;
use crate::ctx::Ctx;
use crate::fs::{write_atomic, Capped, Fs};
use crate::problem::Problem;
use std::ffi::OsStr;
use std::path::Path;

pub const MARKER_FILE: &str = ".gateway-planned-stop.json";
/// A marker older than this is ignored by the gateway.
pub const MARKER_TTL_SECS: u64 = 60;

/// Field 22 of `/proc/<pid>/stat`: the process start time in clock ticks since boot.
pub fn process_start_time(fs: &dyn Fs, proc_root: &Path, pid: u64) -> Option<u64> {
    let proc = fs.open_root(proc_root).ok()?;
    let dir = fs.open_dir(&proc, OsStr::new(&pid.to_string())).ok()?;
    let Ok(Capped::Data(stat)) = fs.read_capped(&dir, OsStr::new("stat"), 4096) else { return None };
    let stat = String::from_utf8_lossy(&stat);
    // The command name (field 2) may contain spaces and parentheses: split after the last ')'.
    let rest = &stat[stat.rfind(')')? + 2..];
    rest.split(' ').nth(19)?.parse().ok()
}

pub fn write(ctx: &Ctx, profile: &str, pid: u64) -> Result<bool, Problem> {
    let Some(dir) = open_profile_dir(ctx, profile)? else { return Ok(false) };
    let doc = serde_json::json!({
        "target_pid": pid,
        "target_start_time": process_start_time(ctx.fs, &ctx.cfg.proc_root, pid),
        "stopper_pid": std::process::id(),
        "written_at": rfc3339(ctx.clock.now()),
    });
    write_atomic(ctx.fs, &dir, OsStr::new(MARKER_FILE), format!("{doc}\n").as_bytes(), 0o644)
        .map_err(|e| ctx.problem(dir.child(OsStr::new(MARKER_FILE)), "write", e))?;
    Ok(true)
}

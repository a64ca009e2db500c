//! The planned-stop marker: written into the target profile's home just before `stop`, so the
//! gateway can tell an operator stop (persist `stopped`, exit 0, slot parked) from a container
//! stop or crash (persist `running`, exit non-zero, restart). It names the pid and the pid's
//! start time, so a marker can never match a recycled pid.

use super::{open_profile_dir, Error};
use crate::config::Config;
use crate::safe_fs::{write_atomic, Fs};
use std::ffi::OsStr;

pub const MARKER_FILE: &str = ".gateway-planned-stop.json";
/// A marker older than this is ignored by the gateway.
pub const MARKER_TTL_SECS: u64 = 60;

/// Field 22 of `/proc/<pid>/stat`: the process start time in clock ticks since boot.
pub fn process_start_time(pid: u64) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may contain spaces and parentheses: split after the last ')'.
    let rest = &stat[stat.rfind(')')? + 2..];
    rest.split(' ').nth(19)?.parse().ok()
}

pub fn write(fs: &dyn Fs, cfg: &Config, profile: &str, pid: u64) -> Result<bool, Error> {
    let Some(dir) = open_profile_dir(fs, cfg, profile)? else { return Ok(false) };
    let doc = serde_json::json!({
        "target_pid": pid,
        "target_start_time": process_start_time(pid),
        "stopper_pid": std::process::id(),
        "written_at": chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
    });
    let owner = nix::unistd::geteuid().is_root().then_some((cfg.uid, cfg.gid));
    write_atomic(fs, &dir, OsStr::new(MARKER_FILE), format!("{doc}\n").as_bytes(), 0o644, owner)
        .map_err(|e| Error::io(dir.child(OsStr::new(MARKER_FILE)), "write", e))?;
    Ok(true)
}

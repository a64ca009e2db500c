//! Telling a kernel OOM kill from any other SIGKILL. The kernel counts the processes its OOM
//! killer took in the cgroup's `memory.events` (v2) or `memory.oom_control` (v1), both as an
//! `oom_kill N` line. A gateway that died of SIGKILL while that counter moved past what was
//! last seen for its slot (the baseline the registrar keeps in the slot's root-only `data/`)
//! is classified `oom`; without the counter, or without a baseline, it stays a crash: the
//! evidence has to be there.

use crate::ctx::Ctx;
use crate::fs::{write_atomic, Capped, Dir};
use std::ffi::OsStr;
use std::path::{Path, PathBuf};

/// The per-slot baseline, in the slot's root-owned `data/` (the user can read it, not write it).
pub const BASELINE_FILE: &str = "oom-kills";
const CAP: u64 = 64 * 1024;

/// The `oom_kill` counter in an events file's text.
pub fn parse_oom_kills(text: &str) -> Option<u64> {
    text.lines().find_map(|l| l.strip_prefix("oom_kill ").and_then(|n| n.trim().parse().ok()))
}

/// Where this process's cgroup counts OOM kills: `HERMES_S6_OOM_EVENTS`, else found from
/// `/proc/self/cgroup` (v2's unified entry, else v1's memory controller).
pub fn events_path(ctx: &Ctx) -> Option<PathBuf> {
    if let Some(p) = &ctx.cfg.oom_events {
        return Some(p.clone());
    }
    let proc = ctx.fs.open_root(&ctx.cfg.proc_root.join("self")).ok()?;
    let text = match ctx.fs.read_capped(&proc, OsStr::new("cgroup"), CAP) {
        Ok(Capped::Data(d)) => String::from_utf8_lossy(&d).into_owned(),
        _ => return None,
    };
    let rel = |p: &str| p.trim_start_matches('/').to_string();
    let v2 = text.lines().find_map(|l| l.strip_prefix("0::")).map(|p| Path::new("/sys/fs/cgroup").join(rel(p)).join("memory.events"));
    let v1 = text.lines().find_map(|l| {
        let mut f = l.splitn(3, ':');
        let (_, ctrl, p) = (f.next()?, f.next()?, f.next()?);
        ctrl.split(',').any(|c| c == "memory").then(|| Path::new("/sys/fs/cgroup/memory").join(rel(p)).join("memory.oom_control"))
    });
    [v2, v1].into_iter().flatten().find(|p| {
        ctx.fs.open_root(p.parent().unwrap_or(Path::new("/"))).is_ok_and(|d| ctx.fs.lstat(&d, p.file_name().unwrap_or_default()).is_ok())
    })
}

/// The kernel's count of OOM kills now, when it can be read.
pub fn kills(ctx: &Ctx) -> Option<u64> {
    let path = events_path(ctx)?;
    let dir = ctx.fs.open_root(path.parent()?).ok()?;
    match ctx.fs.read_capped(&dir, path.file_name()?, CAP) {
        Ok(Capped::Data(d)) => parse_oom_kills(&String::from_utf8_lossy(&d)),
        _ => None,
    }
}

fn data_dir(ctx: &Ctx, slot: &Dir) -> Option<Dir> {
    ctx.fs.open_dir(slot, OsStr::new(crate::slot::DATA_DIR)).ok()
}

/// The count last recorded for this slot.
pub fn baseline(ctx: &Ctx, slot: &Dir) -> Option<u64> {
    let data = data_dir(ctx, slot)?;
    match ctx.fs.read_capped(&data, OsStr::new(BASELINE_FILE), 64) {
        Ok(Capped::Data(d)) => String::from_utf8_lossy(&d).trim().parse().ok(),
        _ => None,
    }
}

/// Record `count` as the slot's baseline (root only: `data/` is root's).
pub fn set_baseline(ctx: &Ctx, slot: &Dir, count: u64) {
    if baseline(ctx, slot) == Some(count) {
        return;
    }
    if let Some(data) = data_dir(ctx, slot) {
        let _ = write_atomic(ctx.fs, &data, OsStr::new(BASELINE_FILE), format!("{count}\n").as_bytes(), 0o644);
    }
}

/// Whether a death by `signal` was the kernel's OOM killer, by the evidence: SIGKILL, and the
/// counter past the slot's baseline. The baseline moves to the count now either way, so the
/// next death is judged against it.
pub fn killed_by_oom(ctx: &Ctx, slot: &Dir, signal: Option<i32>) -> bool {
    let Some(now) = kills(ctx) else { return false };
    let before = baseline(ctx, slot);
    set_baseline(ctx, slot, now);
    signal == Some(nix::libc::SIGKILL) && before.is_some_and(|b| now > b)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_counter_is_read_from_v1_and_v2_files() {
        assert_eq!(parse_oom_kills("low 0\nhigh 0\nmax 3\noom 2\noom_kill 2\noom_group_kill 0\n"), Some(2));
        assert_eq!(parse_oom_kills("oom_kill_disable 0\nunder_oom 0\noom_kill 7\n"), Some(7));
        assert_eq!(parse_oom_kills("oom_kill_disable 0\n"), None);
    }
}

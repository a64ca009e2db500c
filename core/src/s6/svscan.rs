//! `<scandir>/.s6-svscan/control`: one byte per command, as `s6-svscanctl` writes them.

use crate::fs::{Dir, Fs};
use std::ffi::OsStr;
use std::io;

pub const CONTROL_DIR: &str = ".s6-svscan";
pub const CONTROL_FIFO: &str = "control";

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Rescan {
    /// The scanner accepted the command.
    Sent,
    /// No s6-svscan is listening on this scandir; it will see the slots when it starts.
    NoScanner,
}

/// Whether an s6-svscan holds this scandir's lock (`.s6-svscan/lock`, taken by every s6
/// since 2.10): it is running and supervising what is here. `None` when that cannot be told:
/// s6-svscan makes `.s6-svscan` root's alone (0700), so only root can look.
pub fn running(fs: &dyn Fs, scandir: &Dir) -> Option<bool> {
    match fs.open_dir(scandir, OsStr::new(CONTROL_DIR)).and_then(|ctl| fs.lock_held(&ctl, OsStr::new("lock"))) {
        Ok(held) => Some(held),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Some(false),
        Err(_) => None,
    }
}

/// Whether s6 is the service manager here, as anyone can tell: an `s6-svscan` runs (PID 1
/// in the image, or a child of tini or of a pod's pause process: read from
/// `/proc/<pid>/comm`, never `/exe`) and our scan directory has its control directory (not
/// s6-overlay's `/run/s6/basedir`, which the image never makes: it would switch on
/// hermes-agent's own s6 code).
pub fn supervising(ctx: &crate::ctx::Ctx) -> bool {
    let fs = ctx.fs;
    let Ok(proc) = fs.open_root(&ctx.cfg.proc_root) else { return false };
    let is_svscan = |pid: &OsStr| {
        fs.open_dir(&proc, pid)
            .and_then(|d| fs.read_capped(&d, OsStr::new("comm"), 64))
            .is_ok_and(|c| matches!(c, crate::fs::Capped::Data(b) if String::from_utf8_lossy(&b).trim() == "s6-svscan"))
    };
    let numeric = |n: &OsStr| n.to_str().is_some_and(|s| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()));
    let found = is_svscan(OsStr::new("1")) || fs.list(&proc).is_ok_and(|l| l.iter().filter(|(n, _)| numeric(n)).any(|(n, _)| is_svscan(n)));
    found
        && fs
            .open_root(&ctx.cfg.scandir)
            .and_then(|scandir| fs.lstat(&scandir, OsStr::new(CONTROL_DIR)))
            .is_ok_and(|st| st.kind == crate::fs::Kind::Dir)
}

/// Ask the scanner to scan now (`a`), and with `prune` also to stop supervisors whose
/// directory is gone or was replaced (`an`, s6's "reload").
pub fn rescan(fs: &dyn Fs, scandir: &Dir, prune: bool) -> io::Result<Rescan> {
    let cmd: &[u8] = if prune { b"an" } else { b"a" };
    let ctl = match fs.open_dir(scandir, OsStr::new(CONTROL_DIR)) {
        Ok(d) => d,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Rescan::NoScanner),
        Err(e) => return Err(e),
    };
    match fs.write_fifo(&ctl, OsStr::new(CONTROL_FIFO), cmd) {
        Ok(()) => Ok(Rescan::Sent),
        // ENXIO: the FIFO exists but nobody has it open for reading.
        Err(e) if e.kind() == io::ErrorKind::NotFound || e.raw_os_error() == Some(nix::libc::ENXIO) => Ok(Rescan::NoScanner),
        Err(e) => Err(e),
    }
}

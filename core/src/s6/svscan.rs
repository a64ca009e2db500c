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
        Err(e) if e.kind() == io::ErrorKind::NotFound || e.raw_os_error() == Some(nix::libc::ENXIO) => {
            Ok(Rescan::NoScanner)
        }
        Err(e) => Err(e),
    }
}

//! s6-svscan supervises at most `-c` service directories (Debian default 500), loggers
//! included; the 501st is refused with "too many services" and silently never starts. Count
//! before registering instead of finding out later.

use crate::safe_fs::{Dir, Fs, Kind};
use std::ffi::OsStr;
use std::io;

/// Services a profile slot adds: the gateway and its logger.
pub const PER_PROFILE: usize = 2;
/// Warn when usage passes this fraction of the limit.
pub const WARN_RATIO: f64 = 0.9;

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct Usage {
    pub used: usize,
    pub max: usize,
}

impl Usage {
    pub fn fits(&self, more: usize) -> bool {
        self.used + more <= self.max
    }
    pub fn near_limit(&self) -> bool {
        self.used as f64 >= self.max as f64 * WARN_RATIO
    }
}

/// Count what s6-svscan would supervise: every non-dot entry that is a directory (links to
/// directories count; the scanner follows them), plus one for each `log/` subdirectory.
pub fn usage(fs: &dyn Fs, scandir: &Dir, max: usize) -> io::Result<Usage> {
    let mut used = 0;
    for (name, kind) in fs.list(scandir)? {
        if name.to_string_lossy().starts_with('.') {
            continue;
        }
        let is_dir = match kind {
            Kind::Dir => true,
            Kind::Symlink => std::fs::metadata(scandir.child(&name)).map(|m| m.is_dir()).unwrap_or(false),
            _ => false,
        };
        if !is_dir {
            continue;
        }
        used += 1;
        let has_log = match kind {
            Kind::Dir => fs
                .open_dir(scandir, &name)
                .and_then(|d| fs.lstat(&d, OsStr::new("log")))
                .map(|m| m.kind == Kind::Dir)
                .unwrap_or(false),
            _ => std::fs::metadata(scandir.child(&name).join("log")).map(|m| m.is_dir()).unwrap_or(false),
        };
        if has_log {
            used += 1;
        }
    }
    Ok(Usage { used, max })
}

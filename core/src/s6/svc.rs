//! `supervise/control`: what `s6-svc` writes. Errors carry the exit code and message s6-svc
//! itself would give, so users see the s6 vocabulary they can look up.

use crate::fs::{Dir, Fs};
use std::ffi::OsStr;
use std::fmt;
use std::io;

#[derive(Debug)]
pub struct SvcError {
    /// What `s6-svc` would exit with: 102 no supervisor listening, 111 system error.
    pub code: i32,
    pub message: String,
}

impl fmt::Display for SvcError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

/// `s6-svc`'s exit code when no supervisor listens on the slot.
pub const NOT_LISTENING: i32 = 102;

/// Send control bytes (e.g. `b"u"`, `b"d"`, `b"t"`) to the supervisor of `slot`.
pub fn send(fs: &dyn Fs, slot: &Dir, cmds: &[u8]) -> Result<(), SvcError> {
    let path = slot.path().display().to_string();
    let not_listening = || SvcError { code: NOT_LISTENING, message: format!("unable to control {path}: supervisor not listening") };
    let sup = match fs.open_dir(slot, OsStr::new("supervise")) {
        Ok(d) => d,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Err(not_listening()),
        Err(e) => return Err(SvcError { code: 111, message: format!("unable to control {path}: {e}") }),
    };
    match fs.write_fifo(&sup, OsStr::new("control"), cmds) {
        Ok(()) => Ok(()),
        Err(e) if e.raw_os_error() == Some(nix::libc::ENXIO) => Err(not_listening()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            Err(SvcError { code: 1, message: format!("something is wrong with the {path}/supervise directory") })
        }
        Err(e) => Err(SvcError { code: 111, message: format!("unable to control {path}: {e}") }),
    }
}

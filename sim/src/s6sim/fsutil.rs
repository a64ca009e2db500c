//! Small file-system helpers shared by the simulated supervisor and scanner.

use super::wire::StatusRecord;
use std::fs;
use std::io;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

/// Take a whole-file write lock with an open-file-description lock. Unlike classic POSIX
/// locks, OFD locks are not dropped when another descriptor of the same file is closed in
/// this process, and other processes' `F_GETLK` (what s6-svstat and s6-svok use) sees them.
pub fn ofd_trylock(fd: i32) -> bool {
    let mut fl: nix::libc::flock = unsafe { std::mem::zeroed() };
    fl.l_type = nix::libc::F_WRLCK as _;
    fl.l_whence = nix::libc::SEEK_SET as _;
    unsafe { nix::libc::fcntl(fd, nix::libc::F_OFD_SETLK, &fl) == 0 }
}

/// Write the 35-byte status file as s6-supervise does: `status.new`, then rename.
pub fn write_status(dir: &Path, st: &StatusRecord) -> io::Result<()> {
    let b = st.encode();
    let tmp = dir.join("supervise/status.new");
    fs::write(&tmp, b)?;
    let _ = fs::set_permissions(&tmp, fs::Permissions::from_mode(0o644));
    fs::rename(&tmp, dir.join("supervise/status"))
}

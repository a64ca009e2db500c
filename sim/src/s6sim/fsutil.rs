//! Small file-system helpers shared by the simulated supervisor and scanner.

use hermes_core::s6::status::Status;
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
pub fn write_status(dir: &Path, st: &Status, stamp_nanos: u32, ready_nanos: u32) -> io::Result<()> {
    let mut b = st.encode();
    b[8..12].copy_from_slice(&stamp_nanos.to_be_bytes());
    b[20..24].copy_from_slice(&ready_nanos.to_be_bytes());
    let tmp = dir.join("supervise/status.new");
    fs::write(&tmp, b)?;
    let _ = fs::set_permissions(&tmp, fs::Permissions::from_mode(0o644));
    fs::rename(&tmp, dir.join("supervise/status"))
}

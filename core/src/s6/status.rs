//! `supervise/status`: the 35 bytes s6-supervise writes (via rename) on every transition, and
//! the "is a supervisor alive" check s6-svstat makes (an fcntl lock on `supervise/lock`).

use crate::safe_fs::{Capped, Dir, Fs};
use std::ffi::OsStr;
use std::io;
use std::os::fd::AsRawFd;

pub const STATUS_SIZE: usize = 35;
/// TAI64 label of the Unix epoch as skalibs writes it (2^62 + 10 s TAI-UTC at 1970, +27 leap
/// seconds since, i.e. + 37 today; checked against Debian's s6 by the real-s6 tests).
const TAI_UNIX_OFFSET: u64 = (1u64 << 62) + 37;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Status {
    /// Unix seconds of the last up/down transition.
    pub since: i64,
    pub ready_since: i64,
    /// Run pid when up, finish pid while finishing, 0 when down.
    pub pid: u64,
    /// Raw wait status of the last run.
    pub wstat: u16,
    pub paused: bool,
    pub finishing: bool,
    pub want_up: bool,
    pub ready: bool,
}

impl Status {
    pub fn parse(b: &[u8]) -> Option<Status> {
        if b.len() != STATUS_SIZE {
            return None;
        }
        let u64_at = |i: usize| u64::from_be_bytes(b[i..i + 8].try_into().unwrap());
        let secs = |label: u64| label.saturating_sub(TAI_UNIX_OFFSET) as i64;
        let flags = b[34];
        Some(Status {
            since: secs(u64_at(0)),
            ready_since: secs(u64_at(12)),
            pid: u64_at(24),
            wstat: u16::from_be_bytes([b[32], b[33]]),
            paused: flags & 1 != 0,
            finishing: flags & 2 != 0,
            want_up: flags & 4 != 0,
            ready: flags & 8 != 0,
        })
    }

    /// Encode, for the simulator and round-trip tests.
    pub fn encode(&self) -> [u8; STATUS_SIZE] {
        let mut b = [0u8; STATUS_SIZE];
        b[0..8].copy_from_slice(&(self.since as u64 + TAI_UNIX_OFFSET).to_be_bytes());
        b[12..20].copy_from_slice(&(self.ready_since as u64 + TAI_UNIX_OFFSET).to_be_bytes());
        b[24..32].copy_from_slice(&self.pid.to_be_bytes());
        b[32..34].copy_from_slice(&self.wstat.to_be_bytes());
        b[34] = self.paused as u8 | (self.finishing as u8) << 1 | (self.want_up as u8) << 2 | (self.ready as u8) << 3;
        b
    }

    pub fn is_up(&self) -> bool {
        self.pid != 0 && !self.finishing
    }
    /// Exit code of the last run if it exited normally (and the service is down).
    pub fn exit_code(&self) -> Option<i32> {
        (!self.is_up() && self.wstat & 0x7f == 0).then_some((self.wstat >> 8) as i32)
    }
    /// Signal that killed the last run, if any (and the service is down).
    pub fn signal(&self) -> Option<i32> {
        let sig = (self.wstat & 0x7f) as i32;
        (!self.is_up() && sig != 0).then_some(sig)
    }
}

/// Whether an s6-supervise holds the lock of this service directory.
pub fn supervisor_alive(fs: &dyn Fs, slot: &Dir) -> io::Result<bool> {
    let sup = match fs.open_dir(slot, OsStr::new("supervise")) {
        Ok(d) => d,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(false),
        Err(e) => return Err(e),
    };
    let fd = match nix::fcntl::openat(
        Some(sup.fd.as_raw_fd()),
        "lock",
        nix::fcntl::OFlag::O_RDONLY | nix::fcntl::OFlag::O_NOFOLLOW | nix::fcntl::OFlag::O_NONBLOCK | nix::fcntl::OFlag::O_CLOEXEC,
        nix::sys::stat::Mode::empty(),
    ) {
        Ok(fd) => unsafe { <std::os::fd::OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(fd) },
        Err(nix::errno::Errno::ENOENT) => return Ok(false),
        Err(e) => return Err(io::Error::from_raw_os_error(e as i32)),
    };
    let mut fl: nix::libc::flock = unsafe { std::mem::zeroed() };
    fl.l_type = nix::libc::F_WRLCK as _;
    fl.l_whence = nix::libc::SEEK_SET as _;
    nix::fcntl::fcntl(fd.as_raw_fd(), nix::fcntl::FcntlArg::F_GETLK(&mut fl))
        .map_err(|e| io::Error::from_raw_os_error(e as i32))?;
    Ok(i32::from(fl.l_type) != nix::libc::F_UNLCK)
}

/// Read the status file; `Ok(None)` when it does not exist yet.
pub fn read(fs: &dyn Fs, slot: &Dir) -> io::Result<Option<Status>> {
    let sup = match fs.open_dir(slot, OsStr::new("supervise")) {
        Ok(d) => d,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    match fs.read_capped(&sup, OsStr::new("status"), STATUS_SIZE as u64) {
        Ok(Capped::Data(d)) => Status::parse(&d)
            .map(Some)
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "supervise/status is not 35 bytes")),
        Ok(_) => Err(io::Error::new(io::ErrorKind::InvalidData, "supervise/status is not a 35-byte regular file")),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

/// Whether the service has died at least once under this supervisor (`death_tally` non-empty).
pub fn has_died(fs: &dyn Fs, slot: &Dir) -> bool {
    let Ok(sup) = fs.open_dir(slot, OsStr::new("supervise")) else { return false };
    fs.lstat(&sup, OsStr::new("death_tally")).map(|m| m.size > 0).unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_predicates() {
        let s = Status { since: 1_795_300_645, ready_since: 1_795_300_646, pid: 42, wstat: 0, paused: false, finishing: false, want_up: true, ready: false };
        let b = s.encode();
        assert_eq!(&b[0..8], &[0x40, 0, 0, 0, 0x6b, 0x02, 0x1d, 0x4a], "matches a label read off real s6");
        assert_eq!(Status::parse(&b), Some(s));
        assert!(s.is_up() && s.exit_code().is_none());
        let down = Status { pid: 0, wstat: 78 << 8, want_up: false, ..s };
        assert_eq!(down.exit_code(), Some(78));
        let killed = Status { pid: 0, wstat: 15, ..s };
        assert_eq!((killed.exit_code(), killed.signal()), (None, Some(15)));
        assert_eq!(Status::parse(&b[..34]), None);
    }
}

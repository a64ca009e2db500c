//! `supervise/status`: the 35 bytes s6-supervise writes (via rename) on every transition, and
//! the "is a supervisor alive" check s6-svstat makes (an fcntl lock on `supervise/lock`).

use crate::fs::{Capped, Dir, Fs};
use std::ffi::OsStr;
use std::io;

pub const STATUS_SIZE: usize = 35;
/// TAI64 label of the Unix epoch as skalibs writes it (2^62 + 10 s TAI-UTC at 1970, +27 leap
/// seconds since, i.e. + 37 today; checked against Debian's s6 by the real-s6 tests).
const TAI_UNIX_OFFSET: u64 = (1u64 << 62) + 37;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Status {
    /// Unix seconds of the last up/down transition.
    pub since: i64,
    /// Its nanoseconds (the TAI64N label's second part).
    pub since_ns: u32,
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
            since_ns: u32::from_be_bytes(b[8..12].try_into().unwrap()),
            ready_since: secs(u64_at(12)),
            pid: u64_at(24),
            wstat: u16::from_be_bytes([b[32], b[33]]),
            paused: flags & 1 != 0,
            finishing: flags & 2 != 0,
            want_up: flags & 4 != 0,
            ready: flags & 8 != 0,
        })
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

/// Whether an s6-supervise holds the lock of this service directory (what `s6-svok` asks).
pub fn supervisor_alive(fs: &dyn Fs, slot: &Dir) -> io::Result<bool> {
    let sup = match fs.open_dir(slot, OsStr::new("supervise")) {
        Ok(d) => d,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(false),
        Err(e) => return Err(e),
    };
    fs.lock_held(&sup, OsStr::new("lock"))
}

/// Whether s6 wants the slot's service up (an unreadable or absent status: no).
pub fn wanted_up(fs: &dyn Fs, slot: &Dir) -> bool {
    read(fs, slot).ok().flatten().is_some_and(|st| st.want_up)
}

/// Read the status file; `Ok(None)` when it does not exist yet.
pub fn read(fs: &dyn Fs, slot: &Dir) -> io::Result<Option<Status>> {
    let sup = match fs.open_dir(slot, OsStr::new("supervise")) {
        Ok(d) => d,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    match fs.read_capped(&sup, OsStr::new("status"), STATUS_SIZE as u64) {
        Ok(Capped::Data(d)) => {
            Status::parse(&d).map(Some).ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "supervise/status is not 35 bytes"))
        }
        Ok(_) => Err(io::Error::new(io::ErrorKind::InvalidData, "supervise/status is not a 35-byte regular file")),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

/// One death record in `death_tally`: 12-byte TAI64N stamp, exit code, signal.
const TALLY_RECORD: u64 = 14;

/// How many times the service died under this supervisor (the records in `death_tally`, which
/// the slot keeps up to 4096 of).
pub fn deaths(fs: &dyn Fs, slot: &Dir) -> usize {
    let Ok(sup) = fs.open_dir(slot, OsStr::new("supervise")) else { return 0 };
    fs.lstat(&sup, OsStr::new("death_tally")).map(|m| (m.size / TALLY_RECORD) as usize).unwrap_or(0)
}

/// Whether the service has died at least once under this supervisor.
pub fn died(fs: &dyn Fs, slot: &Dir) -> bool {
    deaths(fs, slot) > 0
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 35 bytes written by Debian's s6-supervise 2.11 for a service up as pid 42 since unix
    /// 1795300645, wanted up.
    fn real_up() -> [u8; STATUS_SIZE] {
        let mut b = [0u8; STATUS_SIZE];
        b[0..8].copy_from_slice(&[0x40, 0, 0, 0, 0x6b, 0x02, 0x1d, 0x4a]);
        b[12..20].copy_from_slice(&[0x40, 0, 0, 0, 0x6b, 0x02, 0x1d, 0x4a]);
        b[24..32].copy_from_slice(&42u64.to_be_bytes());
        b[34] = 0x04;
        b
    }

    #[test]
    fn decodes_what_s6_writes() {
        let s = Status::parse(&real_up()).unwrap();
        assert_eq!((s.since, s.pid, s.want_up, s.is_up()), (1_795_300_645, 42, true, true));
        assert!(s.exit_code().is_none() && s.signal().is_none());
        assert_eq!(Status::parse(&real_up()[..34]), None);
    }

    #[test]
    fn wait_status_reads_as_exit_code_or_signal() {
        let mut b = real_up();
        b[24..32].copy_from_slice(&0u64.to_be_bytes());
        b[32..34].copy_from_slice(&(78u16 << 8).to_be_bytes());
        b[34] = 0x08;
        let down = Status::parse(&b).unwrap();
        assert_eq!((down.exit_code(), down.signal()), (Some(78), None));
        b[32..34].copy_from_slice(&15u16.to_be_bytes());
        let killed = Status::parse(&b).unwrap();
        assert_eq!((killed.exit_code(), killed.signal()), (None, Some(15)));
    }
}

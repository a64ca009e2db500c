//! s6's on-disk records, written by this simulator's own code (never the core's): the 35-byte
//! `supervise/status` and the 14-byte `death_tally` record, both stamped in TAI64N as skalibs
//! stamps them. Keeping a second encoder here is what lets the differential suite catch an
//! encoding bug the core's decoder shares with it.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

pub const STATUS_SIZE: usize = 35;
pub const TALLY_RECORD: usize = 14;
/// skalibs' TAI64 label of a UTC instant: 2^62, plus the 10 s TAI-UTC offset of 1972, plus the
/// 27 leap seconds inserted since (the last at the end of 2016).
pub const TAI_LABEL_OFFSET: u64 = (1 << 62) + 10 + 27;

pub const FLAG_PAUSED: u8 = 1;
pub const FLAG_FINISHING: u8 = 2;
pub const FLAG_WANTUP: u8 = 4;
pub const FLAG_READY: u8 = 8;

/// The 12 bytes of a TAI64N stamp: label (8, big-endian) and nanoseconds (4, big-endian).
pub fn tai64n(t: SystemTime) -> [u8; 12] {
    let d = t.duration_since(UNIX_EPOCH).unwrap_or(Duration::ZERO);
    let mut b = [0u8; 12];
    b[..8].copy_from_slice(&(d.as_secs() + TAI_LABEL_OFFSET).to_be_bytes());
    b[8..].copy_from_slice(&d.subsec_nanos().to_be_bytes());
    b
}

/// The inverse of [`tai64n`] (for the simulator's own reads of what it wrote).
pub fn from_tai64n(b: &[u8]) -> SystemTime {
    let label = u64::from_be_bytes(b[..8].try_into().unwrap());
    let nanos = u32::from_be_bytes(b[8..12].try_into().unwrap());
    UNIX_EPOCH + Duration::new(label.saturating_sub(TAI_LABEL_OFFSET), nanos)
}

/// What s6-supervise's `announce()` writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StatusRecord {
    pub stamp: SystemTime,
    pub readystamp: SystemTime,
    /// Run pid when up, finish pid while finishing, 0 when down.
    pub pid: u64,
    /// Raw wait status of the last run.
    pub wstat: u16,
    pub flags: u8,
}

impl StatusRecord {
    pub fn encode(&self) -> [u8; STATUS_SIZE] {
        let mut b = [0u8; STATUS_SIZE];
        b[0..12].copy_from_slice(&tai64n(self.stamp));
        b[12..24].copy_from_slice(&tai64n(self.readystamp));
        b[24..32].copy_from_slice(&self.pid.to_be_bytes());
        b[32..34].copy_from_slice(&self.wstat.to_be_bytes());
        b[34] = self.flags;
        b
    }

    pub fn decode(b: &[u8]) -> Option<StatusRecord> {
        (b.len() == STATUS_SIZE).then(|| StatusRecord {
            stamp: from_tai64n(&b[0..12]),
            readystamp: from_tai64n(&b[12..24]),
            pid: u64::from_be_bytes(b[24..32].try_into().unwrap()),
            wstat: u16::from_be_bytes([b[32], b[33]]),
            flags: b[34],
        })
    }

    /// s6-svstat's "up": a run pid and not finishing.
    pub fn is_up(&self) -> bool {
        self.pid != 0 && self.flags & FLAG_FINISHING == 0
    }
}

/// One `death_tally` record: stamp, exit code (128 + signal when signalled), signal (0 when
/// the run exited).
pub fn tally_record(t: SystemTime, code: u8, sig: u8) -> [u8; TALLY_RECORD] {
    let mut b = [0u8; TALLY_RECORD];
    b[..12].copy_from_slice(&tai64n(t));
    b[12] = code;
    b[13] = sig;
    b
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_matches_one_read_off_real_s6() {
        // `@400000006b021d4a…` was printed by real s6 at unix 1795300645.
        let t = UNIX_EPOCH + Duration::from_secs(1_795_300_645);
        assert_eq!(&tai64n(t)[..8], &[0x40, 0, 0, 0, 0x6b, 0x02, 0x1d, 0x4a]);
    }

    #[test]
    fn status_round_trips_with_nanoseconds() {
        let t = UNIX_EPOCH + Duration::new(1_795_300_645, 123_456_789);
        let r = StatusRecord { stamp: t, readystamp: t + Duration::from_secs(1), pid: 42, wstat: 3 << 8, flags: FLAG_WANTUP };
        let b = r.encode();
        assert_eq!(StatusRecord::decode(&b), Some(r));
        assert!(r.is_up());
        assert!(!StatusRecord { flags: FLAG_FINISHING, ..r }.is_up());
    }
}

//! The s6 client: speaks s6's on-disk protocol directly (control FIFOs, the 35-byte status
//! file, the supervisor lock), so the same code drives real s6 and the simulator and needs no
//! s6 binaries on the caller's PATH.

pub(crate) mod capacity;
pub(crate) mod svc;
pub mod svscan;
pub mod svstat;

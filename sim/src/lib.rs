//! A simulator of s6-svscan and s6-supervise: a second implementation of s6's on-disk
//! protocol (control FIFOs, `supervise/status`, `death_tally`, the `event/` fifodir, the
//! scanner's control surface), with a real-time drop-in daemon (`hermes-svscan`) and a
//! virtual-clock world for fast deterministic tests. It shares no code with the core it is
//! used to check; `tests/differential.rs` holds it to Debian's real s6.

pub mod s6sim;

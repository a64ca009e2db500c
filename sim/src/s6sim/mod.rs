//! A second implementation of s6's supervision protocol (s6-svscan + s6-supervise), checked
//! against Debian's real s6 by the differential suite in `tests/differential.rs`.

pub mod fsutil;
pub mod realtime;
pub mod scan;
pub mod supervise;
pub mod virtual_world;

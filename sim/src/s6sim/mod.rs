//! A second implementation of s6's supervision protocol (s6-svscan + s6-supervise), as
//! Debian's s6 2.11.3.2 or s6 2.15.1.0 behaves, checked against Debian's real s6 by the
//! differential suite in `tests/differential.rs`.

pub mod fsutil;
pub mod options;
pub mod realtime;
pub mod scan;
pub mod supervise;
pub mod svdir;
pub mod version;
pub mod virtual_world;
pub mod wire;

//! The s6 client: speaks s6's on-disk protocol directly, so the same code drives real s6 and
//! the simulator. This module grows with the runtime commands; the boot pass needs only the
//! scanner's control FIFO.

pub mod svscan;

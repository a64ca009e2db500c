//! Stand-ins for the world around hermes-s6.
//!
//! - [`gateway`]: the reference gateway, a small program that keeps upstream's gateway
//!   state-file contract (`gateway.pid`, `gateway_state.json`, the planned-stop marker, the
//!   lifecycle sentinel, exit codes) and answers a health request, so the image and the tests
//!   exercise supervision without the real hermes-agent.
//! - [`s6sim`]: a simulator of s6-svscan/s6-supervise speaking s6's on-disk protocol, with a
//!   real-time drop-in daemon (`hermes-svscan`).

pub mod gateway;
pub mod s6sim;

//! hermes-s6's library: rebuilds and manages the s6 service slots of hermes-agent's
//! per-profile gateways. The binaries (`hermes-reconcile` in `cli/`, `hermes` in `front/`) are
//! thin shells over it.
//!
//! - [`volume`] reads (and, as the volume's owner, writes) `$HERMES_HOME`;
//! - [`boot`] is the boot pass: a pure [`boot::plan`] from a snapshot of the volume, then its
//!   effects;
//! - [`slot`] renders and publishes one service directory;
//! - [`s6`] is the client of s6's on-disk protocol;
//! - [`lifecycle`] holds one file per runtime verb; [`registrar`] keeps slots converged;
//!   [`policy`] is the crash policy;
//! - [`trusted`] finds the programs root runs by name in only-root-writable places;
//! - [`fs`] and [`clock`] are the only doors to the system, with doubles for tests; [`ctx`]
//!   carries them and the [`config`] to every operation; [`problem`] is what can go wrong.

pub mod boot;
pub mod clock;
pub mod config;
pub mod ctx;
pub mod env_dump;
pub mod escape;
pub mod exit_policy;
pub mod fs;
pub mod guard;
pub mod lifecycle;
pub mod liveness;
pub mod name;
pub mod policy;
pub mod problem;
pub mod registrar;
pub mod s6;
pub mod slot;
pub mod trusted;
pub mod volume;

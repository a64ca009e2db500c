//! hermes-s6's library: rebuilds and manages the s6 service slots of hermes-agent's
//! per-profile gateways. Both binaries (`hermes-reconcile` and `hermes`, in `cli/`) are thin
//! shells over it.
//!
//! Its public face is small: the [`Gateways`] facade (its methods are the verbs, its
//! [`gateways`] module holds the reports they return) and the base vocabulary every caller
//! needs to build one and read its answers: [`ctx`] (the [`fs`] and [`clock`] seams and the
//! [`config`]), [`problem`] (what can go wrong, and the exit codes), [`name`] (a validated
//! [`name::Profile`]), [`escape`] (printing what a user wrote) and [`agent_files`] (the files
//! hermes-agent's gateway shares with us).
//!
//! Below the facade, in layers (docs/architecture.md draws them): `volume` reads and writes
//! `$HERMES_HOME`; `slot` renders and publishes one service directory; `s6` speaks s6's
//! on-disk protocol; `boot` is the boot pass (a pure plan, then its effects); `lifecycle` one
//! file per runtime verb; `registrar` keeps slots converged; `policy` is the crash policy;
//! `liveness` the readiness bridge and its watchdog; `guard` the memory ceiling; `trusted`
//! finds the programs root runs. They are the crate's own; the `internals` feature (tests, the
//! simulator's suites, the benches) opens them.

pub mod agent_files;
pub mod clock;
pub mod config;
pub mod ctx;
pub mod escape;
pub mod fs;
pub mod gateways;
pub mod name;
pub mod problem;

pub use gateways::Gateways;

/// Declares the modules below the facade: `pub(crate)`, or `pub` when the `internals` feature
/// opens them to the workspace's tests, simulator suites and benches.
macro_rules! below_the_facade {
    ($($m:ident),* $(,)?) => {$(
        #[cfg(feature = "internals")]
        pub mod $m;
        #[cfg(not(feature = "internals"))]
        pub(crate) mod $m;
    )*};
}

below_the_facade!(boot, env_dump, exit_policy, guard, lifecycle, liveness, policy, registrar, s6, slot, trusted, volume);

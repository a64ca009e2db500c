//! `bridge P -- GATEWAY…` (a slot's `run`, as the gateway's user): the readiness and liveness
//! bridge. It never returns unless the gateway cannot be exec'd; see
//! `hermes_core::gateways::bridge`.

use clap::Args;
use hermes_core::gateways::{bridge, BridgeOptions, LivenessKnobs as Knobs, NOTIFICATION_FD};
use hermes_core::problem::Problem;
use std::ffi::OsString;
use std::path::PathBuf;

#[derive(Args, Debug)]
pub struct BridgeArgs {
    /// The profile whose gateway this is
    pub profile: String,
    /// s6's notification pipe (the slot's notification-fd)
    #[arg(long, default_value_t = NOTIFICATION_FD)]
    pub notify_fd: i32,
    /// The gateway's command line
    #[arg(last = true, required = true)]
    pub program: Vec<OsString>,
}

pub fn run(home: Option<PathBuf>, a: &BridgeArgs) -> Result<u8, Problem> {
    hermes_core::name::validate(&a.profile)?;
    let env = |k: &str| std::env::var(k).ok();
    let home = home
        .or_else(|| env("HERMES_HOME").filter(|v| !v.is_empty()).map(PathBuf::from))
        .unwrap_or_else(|| PathBuf::from(hermes_core::config::DEFAULT_HOME));
    // A bad setting must not keep the gateway from running: said, and the default used.
    let knobs = Knobs::from_env(&env).unwrap_or_else(|e| {
        eprintln!("hermes-s6 bridge[{}]: {e}; using the defaults", a.profile);
        Knobs::default()
    });
    let e = bridge(BridgeOptions {
        home: hermes_core::config::root_home(&home),
        profile: a.profile.clone(),
        notify_fd: Some(a.notify_fd),
        knobs,
        program: a.program.clone(),
    });
    eprintln!("hermes-s6 bridge[{}]: cannot run {:?}: {e}", a.profile, a.program.first().map(|p| p.to_string_lossy()).unwrap_or_default());
    // What a shell answers for a command it cannot run.
    Ok(if e.kind() == std::io::ErrorKind::NotFound { 127 } else { 126 })
}

//! `hermes [-p P] gateway run`: the supervised child (or an explicit opt-out) runs the gateway
//! in the foreground; anything else under s6 asks s6 to run it and becomes a heartbeat, so the
//! container outlives gateway restarts.

use super::start::start_or_register;
use crate::out::Out;
use clap::Args;
use hermes_core::gateways::{no_supervise_env, Wait};
use hermes_core::name::Profile;
use hermes_core::problem::Problem;
use hermes_core::Gateways;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::Command;

#[derive(Args, Debug)]
pub struct RunArgs {
    /// Run in the foreground, without s6 (also HERMES_GATEWAY_NO_SUPERVISE=1)
    #[arg(long)]
    pub no_supervise: bool,
    /// Take over from a gateway already running for this profile
    #[arg(long)]
    pub replace: bool,
    /// Extra arguments passed to the gateway program
    #[arg(trailing_var_arg = true, allow_hyphen_values = true, hide = true)]
    pub rest: Vec<String>,
}

/// The reference gateway, installed next to this binary (else where the image installs it):
/// always an absolute path, never looked up on PATH, whoever runs this.
pub fn gateway_binary() -> PathBuf {
    std::env::current_exe()
        .ok()
        .and_then(|p| p.parent().map(|d| d.join("hermes-gateway")))
        .filter(|p| p.is_absolute() && p.exists())
        .unwrap_or_else(|| PathBuf::from("/usr/local/bin/hermes-gateway"))
}

pub fn run(g: &Gateways, p: &Profile, a: &RunArgs, out: Out) -> Result<u8, Problem> {
    let env = &g.config().container_env;
    let no_supervise = a.no_supervise || no_supervise_env(env.no_supervise.as_deref());
    if no_supervise || env.supervised_child || !g.supervising() {
        let mut args = vec!["-p".to_string(), p.to_string(), "gateway".into(), "run".into()];
        if a.replace {
            args.push("--replace".into());
        }
        args.extend(a.rest.iter().cloned());
        let err = Command::new(gateway_binary()).args(&args).exec();
        return Err(Problem::Io { path: gateway_binary(), action: "run the gateway".into(), error: err });
    }
    // The heartbeat must not die with a gateway that crashes at once: s6 and the crash
    // policy own it from here, so this does not wait for it.
    start_or_register(g, p, Wait::No, out)?;
    eprintln!("\u{2192} gateway is now running under s6 supervision (auto-restart on crash,");
    eprintln!("  dashboard supervised alongside if HERMES_DASHBOARD is set).");
    eprintln!("  This is the recommended setup for the s6 container image \u{2014} the");
    eprintln!("  gateway will keep running even if it crashes.");
    eprintln!("  Use `--no-supervise` (or HERMES_GATEWAY_NO_SUPERVISE=1) to opt out");
    eprintln!("  and get the pre-s6 foreground behavior instead.");
    let err = Command::new("/bin/sleep").arg("infinity").exec();
    eprintln!("\u{2192} `sleep` is unavailable ({err}); keeping the s6 CMD process alive in-process until the container is stopped.");
    loop {
        std::thread::park();
    }
}

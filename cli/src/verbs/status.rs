//! `status`: `hermes-reconcile status [P]`, `hermes status`, `hermes [-p P] gateway status
//! [P]` and `hermes gateway list`. One report (core's), one table (`table.rs`); they answer
//! like an init script's `status` action (LSB), so probes and scripts can trust the exit code.

use crate::args::CapacityArgs;
use crate::out::{self, lsb, Out};
use crate::table::render_table;
use clap::Args;
use hermes_core::gateways::{ProfileStatus, StatusReport, Verdict};
use hermes_core::name::Profile;
use hermes_core::problem::Problem;
use hermes_core::Gateways;

pub const AFTER_HELP: &str = "\
Exit codes (LSB init-script status):
  0  with PROFILE: its gateway is running; without: every gateway is as wanted
  3  with PROFILE: its gateway is not running; without: some gateway wanted running is not
  4  status unknown: no such profile, or the scan directory cannot be used";

#[derive(Args, Debug)]
pub struct StatusArgs {
    /// Only this profile (`default` is the root profile at $HERMES_HOME)
    pub profile: Option<String>,
    #[command(flatten)]
    pub capacity: CapacityArgs,
}

/// The exit code of a report: one profile by whether it runs, all by whether each is as wanted.
fn code(r: &StatusReport, one: bool) -> u8 {
    // A profile the root gateway serves (multiplexing) is running when that gateway is.
    let running = |p: &ProfileStatus| p.up || p.state == Verdict::Served;
    let ok = if one { r.profiles.iter().all(running) } else { r.profiles.iter().all(ProfileStatus::as_wanted) };
    if ok {
        lsb::RUNNING
    } else {
        lsb::NOT_RUNNING
    }
}

/// The report, or the problem printed with LSB's "unknown".
fn report(g: &Gateways, only: Option<&Profile>, out: Out) -> Result<StatusReport, u8> {
    g.status(only).map_err(|e| {
        out.problem_exiting(&e, lsb::UNKNOWN);
        lsb::UNKNOWN
    })
}

/// `hermes-reconcile status [P]`: the table (or the report) of one profile or all.
pub fn run(g: &Gateways, only: Option<&Profile>, out: Out) -> Result<u8, Problem> {
    let r = match report(g, only, out) {
        Ok(r) => r,
        Err(code) => return Ok(code),
    };
    if out.json {
        out::json(&serde_json::to_value(&r).expect("the status report serialises"));
    } else {
        print!("{}", render_table(&r));
    }
    Ok(code(&r, only.is_some()))
}

/// `hermes gateway status [P]`: one gateway, and where its log is.
pub fn one(g: &Gateways, profile: &Profile, out: Out) -> Result<u8, Problem> {
    let r = match report(g, Some(profile), out) {
        Ok(r) => r,
        Err(code) => return Ok(code),
    };
    if out.json {
        let mut v = serde_json::to_value(&r.profiles[0]).expect("serialises");
        v["log_dir"] = v["log"].clone();
        out::json(&v);
    } else {
        print!("{}", render_table(&r));
        println!("(its log: hermes -p {profile} gateway logs)");
    }
    Ok(code(&r, true))
}

/// `hermes status`, `hermes gateway list`: the service manager, the home, every gateway.
pub fn everything(g: &Gateways, out: Out) -> Result<u8, Problem> {
    let r = g.status(None)?;
    let manager = if g.supervising() { "s6 (container supervisor)" } else { "none" };
    if out.json {
        let mut v = serde_json::to_value(&r).expect("serialises");
        v["manager"] = serde_json::json!(manager);
        v["home"] = serde_json::json!(g.config().home.display().to_string());
        out::json(&v);
    } else {
        println!("Manager:      {manager}");
        println!("Home:         {}", g.config().home.display());
        println!();
        print!("{}", render_table(&r));
    }
    Ok(code(&r, false))
}

//! `status [P]`: answers like an init script's `status` action (LSB), so probes and scripts
//! can trust the exit code.

use crate::out;
use crate::CapacityArgs;
use clap::Args;
use hermes_core::ctx::Ctx;
use hermes_core::lifecycle::profile_arg;
use hermes_core::lifecycle::status::{self, render_table, ProfileStatus};
use hermes_core::problem::Problem;

pub const AFTER_HELP: &str = "\
Exit codes (LSB init-script status):
  0  with PROFILE: its gateway is running; without: every gateway is as wanted
  3  with PROFILE: its gateway is not running; without: some gateway wanted running is not
  4  status unknown: no such profile, or the scan directory cannot be used";

/// LSB's codes for `status`.
const RUNNING: u8 = 0;
const NOT_RUNNING: u8 = 3;
const UNKNOWN: u8 = 4;

#[derive(Args, Debug)]
pub struct StatusArgs {
    /// Only this profile (`default` is the root profile at $HERMES_HOME)
    pub profile: Option<String>,
    #[command(flatten)]
    pub capacity: CapacityArgs,
}

pub fn run(ctx: &Ctx, a: &StatusArgs, json: bool) -> Result<u8, Problem> {
    let only = a.profile.as_deref().map(profile_arg).transpose()?;
    let r = match status::status(ctx, only.as_deref()) {
        Ok(r) => r,
        Err(e) => {
            crate::out::fail_exiting(&e, json, UNKNOWN);
            return Ok(UNKNOWN);
        }
    };
    if json {
        out::json(&serde_json::to_value(&r).expect("the status report serialises"));
    } else {
        print!("{}", render_table(&r));
    }
    let code = match only {
        Some(_) if r.profiles.iter().all(|p| p.up) => RUNNING,
        Some(_) => NOT_RUNNING,
        None if r.profiles.iter().all(ProfileStatus::as_wanted) => RUNNING,
        None => NOT_RUNNING,
    };
    Ok(code)
}

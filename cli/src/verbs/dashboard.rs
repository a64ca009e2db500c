//! `hermes dashboard`: the image's dashboard service runs the reference gateway's dashboard.

use super::run_gateway::gateway_binary;
use hermes_core::problem::Problem;
use std::os::unix::process::CommandExt;

pub fn run(port: u16) -> Result<u8, Problem> {
    let err = std::process::Command::new(gateway_binary()).args(["--dashboard", "--port", &port.to_string()]).exec();
    Err(Problem::Io { path: gateway_binary(), action: "run the dashboard".into(), error: err })
}

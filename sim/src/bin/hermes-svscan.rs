//! `hermes-svscan`: the simulator as a drop-in for `s6-svscan`, Debian's 2.11 by default or
//! 2.15 with `--s6-version 2.15` (or `HERMES_SVSCAN_S6_VERSION=2.15`).

use hermes_sim::s6sim::{options, realtime, version};
use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let env = std::env::var(version::ENV).ok();
    match options::parse(&args, env.as_deref()) {
        Ok(inv) => ExitCode::from(realtime::run(&inv.scandir, inv.settings) as u8),
        Err(r) => {
            eprintln!("{}", r.message);
            ExitCode::from(r.code)
        }
    }
}

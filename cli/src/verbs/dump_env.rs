//! `dump-env DIR` (the image's stage 1): this process's environment, one file per variable,
//! for `with-contenv`.

use clap::Args;
use hermes_core::problem::{exit, Problem};
use hermes_core::Gateways;
use std::path::PathBuf;

#[derive(Args, Debug)]
pub struct DumpEnvArgs {
    /// The directory to (re)create, e.g. /run/s6/container_environment
    pub dir: PathBuf,
}

pub fn run(g: &Gateways, a: &DumpEnvArgs) -> Result<u8, Problem> {
    let d = g.dump_env(&a.dir, std::env::vars_os())?;
    for k in d.skipped {
        eprintln!("dump-env: warning: {k:?} cannot be a file name; not passed to services");
    }
    Ok(exit::OK)
}

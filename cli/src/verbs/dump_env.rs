//! `dump-env DIR` (the image's stage 1): this process's environment, one file per variable,
//! for `with-contenv`.

use clap::Args;
use hermes_core::ctx::Ctx;
use hermes_core::env_dump;
use hermes_core::problem::{exit, Problem};
use std::path::PathBuf;

#[derive(Args, Debug)]
pub struct DumpEnvArgs {
    /// The directory to (re)create, e.g. /run/s6/container_environment
    pub dir: PathBuf,
}

pub fn run(ctx: &Ctx, a: &DumpEnvArgs) -> Result<u8, Problem> {
    let (Some(parent), Some(name)) = (a.dir.parent(), a.dir.file_name()) else {
        return Err(Problem::usage(format!("{} is not a directory path with a parent", a.dir.display())));
    };
    let p = ctx.fs.open_root(parent).map_err(|e| ctx.problem(parent, "open", e))?;
    let d = env_dump::dump(ctx.fs, &p, name, std::env::vars_os()).map_err(|e| ctx.problem(&a.dir, "write the environment into", e))?;
    for k in d.skipped {
        eprintln!("dump-env: warning: {k:?} cannot be a file name; not passed to services");
    }
    Ok(exit::OK)
}

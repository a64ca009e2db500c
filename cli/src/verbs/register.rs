//! `register P [--start]` (root).

use crate::args::RenderArgs;
use crate::out::Out;
use clap::Args;
use hermes_core::ctx::Ctx;
use hermes_core::lifecycle::profile_arg;
use hermes_core::lifecycle::register::register;
use hermes_core::problem::Problem;
use hermes_core::s6::svscan::Rescan;

#[derive(Args, Debug)]
pub struct RegisterArgs {
    /// The profile (it must exist on the volume)
    pub profile: String,
    /// Publish it without a `down` file: the gateway starts as soon as it is supervised
    #[arg(long)]
    pub start: bool,
    #[command(flatten)]
    pub render: RenderArgs,
}

pub fn run(ctx: &Ctx, a: &RegisterArgs, out: Out) -> Result<u8, Problem> {
    let p = profile_arg(&a.profile)?;
    let r = register(ctx, &p, a.start).map(|rescan| match rescan {
        Rescan::NoScanner => {
            vec![format!("no s6-svscan is listening on {}; the slot is picked up when it starts", ctx.cfg.scandir.display())]
        }
        _ => Vec::new(),
    });
    out.slot_outcome("register", &p, r)
}

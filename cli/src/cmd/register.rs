//! `register P [--start]` (root).

use super::common::one_slot;
use crate::RenderArgs;
use clap::Args;
use hermes_core::ctx::Ctx;
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

pub fn run(ctx: &Ctx, a: &RegisterArgs, json: bool) -> Result<u8, Problem> {
    one_slot(ctx, &a.profile, "register", json, |ctx, p| {
        Ok(match register(ctx, p, a.start)? {
            Rescan::NoScanner => vec![format!("no s6-svscan is listening on {}; the slot is picked up when it starts", ctx.cfg.scandir.display())],
            _ => Vec::new(),
        })
    })
}

//! `request P [--gone]` (the user): ring the registrar and wait for the slot.

use crate::args::RegistrarArgs;
use crate::out::Out;
use clap::Args;
use hermes_core::ctx::Ctx;
use hermes_core::lifecycle::profile_arg;
use hermes_core::problem::Problem;
use hermes_core::registrar;

#[derive(Args, Debug)]
pub struct RequestArgs {
    /// The profile whose slot to wait for
    pub profile: String,
    /// Wait for the slot to be removed instead
    #[arg(long)]
    pub gone: bool,
    #[command(flatten)]
    pub registrar: RegistrarArgs,
}

pub fn run(ctx: &Ctx, a: &RequestArgs, out: Out) -> Result<u8, Problem> {
    let p = profile_arg(&a.profile)?;
    let r = registrar::request(ctx, &p, !a.gone).map(|_| Vec::new());
    out.slot_outcome("request", &p, r)
}

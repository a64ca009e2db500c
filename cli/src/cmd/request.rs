//! `request P [--gone]` (the user): ring the registrar and wait for the slot.

use super::common::one_slot;
use crate::RegistrarArgs;
use clap::Args;
use hermes_core::ctx::Ctx;
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

pub fn run(ctx: &Ctx, a: &RequestArgs, json: bool) -> Result<u8, Problem> {
    one_slot(ctx, &a.profile, "request", json, |ctx, p| registrar::request(ctx, p, !a.gone).map(|_| Vec::new()))
}

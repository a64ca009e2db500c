//! `request P [--gone]` (the user): ring the registrar and wait for the slot.

use crate::args::RegistrarArgs;
use crate::out::Out;
use clap::Args;
use hermes_core::name::Profile;
use hermes_core::problem::Problem;
use hermes_core::Gateways;

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

pub fn run(g: &Gateways, a: &RequestArgs, out: Out) -> Result<u8, Problem> {
    let p = Profile::new(&a.profile)?;
    let r = g.request(&p, !a.gone).map(|_| Vec::new());
    out.slot_outcome("request", &p, r)
}

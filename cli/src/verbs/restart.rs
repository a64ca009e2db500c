//! `restart`: `hermes-reconcile restart P|--all`, `hermes [-p P] gateway restart [P|--all]`.

use super::common::one_or_all;
use crate::args::{OneOrAll, Settle, Which};
use crate::out::{Out, VerbName};
use clap::Args;
use hermes_core::gateways::Verb;
use hermes_core::problem::Problem;
use hermes_core::Gateways;

pub const NAME: VerbName = VerbName { name: "restart", past: "Restarted" };

#[derive(Args, Debug)]
pub struct RestartArgs {
    #[command(flatten)]
    pub which: OneOrAll,
    #[command(flatten)]
    pub settle: Settle,
}

pub fn run(g: &Gateways, which: &Which, settle: &Settle, out: Out) -> Result<u8, Problem> {
    one_or_all(g, which, out, settle.wait()?, Verb::Restart, NAME)
}

//! `stop`: `hermes-reconcile stop P|--all`, `hermes [-p P] gateway stop [P|--all]`.

use super::common::one_or_all;
use crate::args::{OneOrAll, StopWait, Which};
use crate::out::{Out, VerbName};
use clap::Args;
use hermes_core::gateways::Verb;
use hermes_core::problem::Problem;
use hermes_core::Gateways;

pub const NAME: VerbName = VerbName { name: "stop", past: "Stopped" };

#[derive(Args, Debug)]
pub struct StopArgs {
    #[command(flatten)]
    pub which: OneOrAll,
    #[command(flatten)]
    pub wait: StopWait,
}

pub fn run(g: &Gateways, which: &Which, wait: &StopWait, out: Out) -> Result<u8, Problem> {
    one_or_all(g, which, out, wait.wait(), Verb::Stop, NAME)
}

//! `stop`: `hermes-reconcile stop P|--all`, `hermes [-p P] gateway stop [P|--all]`.

use super::common::{one_or_all, Verb};
use crate::args::{OneOrAll, StopWait, Which};
use crate::out::{Out, VerbName};
use clap::Args;
use hermes_core::ctx::Ctx;
use hermes_core::lifecycle::stop;
use hermes_core::problem::Problem;

pub const NAME: VerbName = VerbName { name: "stop", past: "Stopped" };

#[derive(Args, Debug)]
pub struct StopArgs {
    #[command(flatten)]
    pub which: OneOrAll,
    #[command(flatten)]
    pub wait: StopWait,
}

pub fn run(ctx: &Ctx, which: &Which, wait: &StopWait, out: Out) -> Result<u8, Problem> {
    one_or_all(ctx, which, out, wait.wait(), Verb { name: NAME, ask: stop::ask, confirm: stop::confirm })
}

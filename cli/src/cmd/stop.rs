//! `stop P|--all`.

use super::common::{one_or_all, OneOrAllArgs, StopWaitArgs, Verb};
use clap::Args;
use hermes_core::ctx::Ctx;
use hermes_core::lifecycle::stop;
use hermes_core::problem::Problem;

#[derive(Args, Debug)]
pub struct StopArgs {
    #[command(flatten)]
    pub target: OneOrAllArgs,
    #[command(flatten)]
    pub wait: StopWaitArgs,
}

pub fn run(ctx: &Ctx, a: &StopArgs, json: bool) -> Result<u8, Problem> {
    one_or_all(ctx, &a.target, json, a.wait.wait(), Verb { name: "stop", past: "Stopped", ask: stop::ask, confirm: stop::confirm })
}

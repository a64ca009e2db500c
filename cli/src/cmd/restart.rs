//! `restart P|--all`.

use super::common::{one_or_all, OneOrAllArgs, SettleArgs, Verb};
use clap::Args;
use hermes_core::ctx::Ctx;
use hermes_core::lifecycle::{confirm_up, restart};
use hermes_core::problem::Problem;

#[derive(Args, Debug)]
pub struct RestartArgs {
    #[command(flatten)]
    pub target: OneOrAllArgs,
    #[command(flatten)]
    pub settle: SettleArgs,
}

pub fn run(ctx: &Ctx, a: &RestartArgs, json: bool) -> Result<u8, Problem> {
    one_or_all(ctx, &a.target, json, a.settle.wait()?, Verb { name: "restart", past: "Restarted", ask: restart::ask, confirm: confirm_up })
}

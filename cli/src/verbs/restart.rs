//! `restart`: `hermes-reconcile restart P|--all`, `hermes [-p P] gateway restart [P|--all]`.

use super::common::{one_or_all, Verb};
use crate::args::{OneOrAll, Settle, Which};
use crate::out::{Out, VerbName};
use clap::Args;
use hermes_core::ctx::Ctx;
use hermes_core::lifecycle::{confirm_up, restart};
use hermes_core::problem::Problem;

pub const NAME: VerbName = VerbName { name: "restart", past: "Restarted" };

#[derive(Args, Debug)]
pub struct RestartArgs {
    #[command(flatten)]
    pub which: OneOrAll,
    #[command(flatten)]
    pub settle: Settle,
}

pub fn run(ctx: &Ctx, which: &Which, settle: &Settle, out: Out) -> Result<u8, Problem> {
    one_or_all(ctx, which, out, settle.wait()?, Verb { name: NAME, ask: restart::ask, confirm: confirm_up })
}

//! `start`: `hermes-reconcile start P|--all`, `hermes [-p P] gateway start [P|--all]`.

use super::common::{one_or_all, Verb};
use crate::args::{OneOrAll, Settle, Which};
use crate::out::{Out, VerbName, Voice};
use clap::Args;
use hermes_core::ctx::Ctx;
use hermes_core::lifecycle::{confirm_up, start, Done, Wait};
use hermes_core::problem::Problem;
use hermes_core::registrar;

pub const NAME: VerbName = VerbName { name: "start", past: "Started" };

#[derive(Args, Debug)]
pub struct StartArgs {
    #[command(flatten)]
    pub which: OneOrAll,
    #[command(flatten)]
    pub settle: Settle,
}

pub fn run(ctx: &Ctx, which: &Which, settle: &Settle, out: Out) -> Result<u8, Problem> {
    let wait = settle.wait()?;
    match (which, out.voice) {
        (Which::One(p), Voice::Hermes) => {
            let r = start_or_register(ctx, p, wait, out);
            out.outcome(NAME, p, wait, r)
        }
        _ => one_or_all(ctx, which, out, wait, Verb { name: NAME, ask: start::ask, confirm: confirm_up }),
    }
}

/// `hermes`'s `start`, self-healing: a profile on the volume without a slot (created from
/// outside, or while the registrar was down) gets one from the registrar, then starts.
pub fn start_or_register(ctx: &Ctx, p: &str, wait: Wait, out: Out) -> Result<Done, Problem> {
    match start::start(ctx, p, wait) {
        Err(Problem::NotRegistered { .. }) if hermes_core::volume::require_profile(ctx, p).is_ok() => {
            registrar::request(ctx, p, true)?;
            out.say(format_args!("\u{2713} registered the s6 gateway slot for profile '{p}'"));
            start::start(ctx, p, wait)
        }
        other => other,
    }
}

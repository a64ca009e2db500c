//! `start`: `hermes-reconcile start P|--all`, `hermes [-p P] gateway start [P|--all]`.

use super::common::one_or_all;
use crate::args::{OneOrAll, Settle, Which};
use crate::out::{Out, VerbName, Voice};
use clap::Args;
use hermes_core::gateways::{Done, Verb, Wait};
use hermes_core::name::Profile;
use hermes_core::problem::Problem;
use hermes_core::Gateways;

pub const NAME: VerbName = VerbName { name: "start", past: "Started" };

#[derive(Args, Debug)]
pub struct StartArgs {
    #[command(flatten)]
    pub which: OneOrAll,
    #[command(flatten)]
    pub settle: Settle,
}

pub fn run(g: &Gateways, which: &Which, settle: &Settle, out: Out) -> Result<u8, Problem> {
    let wait = settle.wait()?;
    match (which, out.voice) {
        (Which::One(p), Voice::Hermes) => {
            let r = start_or_register(g, p, wait, out);
            out.outcome(NAME, p, wait, r)
        }
        _ => one_or_all(g, which, out, wait, Verb::Start, NAME),
    }
}

/// `hermes`'s `start`, self-healing: a profile on the volume without a slot gets one from the
/// registrar first, and the user is told.
pub fn start_or_register(g: &Gateways, p: &Profile, wait: Wait, out: Out) -> Result<Done, Problem> {
    g.start_registering(p, wait, || out.say(format_args!("\u{2713} registered the s6 gateway slot for profile '{p}'")))
}

//! What the lifecycle verbs (start, stop, restart) share: one profile or `--all`, told s6
//! then watched, and the outcome printed.

use crate::args::Which;
use crate::out::{Out, VerbName};
use hermes_core::gateways::{Verb, Wait};
use hermes_core::problem::Problem;
use hermes_core::Gateways;

/// One verb on one profile or on every registered slot.
pub fn one_or_all(g: &Gateways, which: &Which, out: Out, wait: Wait, verb: Verb, name: VerbName) -> Result<u8, Problem> {
    match which {
        Which::One(profile) => out.outcome(name, profile, wait, g.one(verb, profile, wait)),
        Which::All => Ok(out.outcomes(name, &g.all(verb, wait)?)),
    }
}

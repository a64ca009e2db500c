//! What the lifecycle verbs (start, stop, restart) share: one profile or `--all`, told s6
//! then watched, and the outcome printed.

use crate::args::Which;
use crate::out::{Out, VerbName};
use hermes_core::ctx::Ctx;
use hermes_core::lifecycle::{all, Asked, Done, Wait};
use hermes_core::problem::Problem;

/// What a lifecycle verb does, as the two halves `--all` overlaps: tell s6, then watch.
pub struct Verb<A, C> {
    pub name: VerbName,
    pub ask: A,
    pub confirm: C,
}

/// One verb on one profile or on every registered slot.
pub fn one_or_all<A, C>(ctx: &Ctx, which: &Which, out: Out, wait: Wait, verb: Verb<A, C>) -> Result<u8, Problem>
where
    A: Fn(&Ctx, &str) -> Result<Asked, Problem> + Sync,
    C: Fn(&Ctx, Asked, Wait) -> Result<Done, Problem> + Sync,
{
    match which {
        Which::One(profile) => {
            let r = (verb.ask)(ctx, profile).and_then(|asked| (verb.confirm)(ctx, asked, wait));
            out.outcome(verb.name, profile, wait, r)
        }
        Which::All => {
            let r = all::for_all(ctx, &verb.ask, |ctx, asked| (verb.confirm)(ctx, asked, wait))?;
            Ok(out.outcomes(verb.name, &r))
        }
    }
}

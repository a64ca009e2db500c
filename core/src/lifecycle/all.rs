//! `--all`: one verb applied to every registered slot, going on past failures.

use super::{registered, Asked, Done};
use crate::ctx::Ctx;
use crate::problem::Problem;

/// Outcome of a verb applied to every registered slot.
pub struct AllResults {
    pub results: Vec<(String, Result<Done, Problem>)>,
}

impl AllResults {
    pub fn failed(&self) -> usize {
        self.results.iter().filter(|r| r.1.is_err()).count()
    }

    /// Upstream's summary line for the successes (`None` when there were none).
    pub fn summary(&self, past: &str) -> Option<String> {
        if self.results.is_empty() {
            return Some("\u{2717} No profile gateways registered under s6".into());
        }
        let ok = self.results.len() - self.failed();
        (ok > 0).then(|| format!("\u{2713} {past} {ok} profile gateway(s) under s6"))
    }

    /// Upstream's line per failure.
    pub fn failures(&self, verb: &str) -> Vec<String> {
        self.results
            .iter()
            .filter_map(|(p, r)| r.as_ref().err().map(|e| format!("\u{2717} Could not {verb} gateway-{p}: {}", crate::escape::terminal(&e.to_string()))))
            .collect()
    }
}

/// Ask every registered slot with `ask`, then watch each with `confirm` (so the waits
/// overlap instead of adding up), going on past failures.
pub fn for_all(
    ctx: &Ctx,
    ask: impl Fn(&Ctx, &str) -> Result<Asked, Problem>,
    confirm: impl Fn(&Ctx, Asked) -> Result<Done, Problem>,
) -> Result<AllResults, Problem> {
    let scandir = ctx.open_scandir()?;
    let names = registered(ctx, &scandir)?;
    let asked: Vec<(String, Result<Asked, Problem>)> = names.iter().map(|p| (p.clone(), ask(ctx, p))).collect();
    Ok(AllResults { results: asked.into_iter().map(|(p, a)| (p, a.and_then(|a| confirm(ctx, a)))).collect() })
}

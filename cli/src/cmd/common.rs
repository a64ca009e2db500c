//! What the single-profile and `--all` verbs share: their arguments and how one outcome is
//! printed.

use crate::out;
use clap::Args;
use hermes_core::ctx::Ctx;
use hermes_core::lifecycle::{all, outcome_json, profile_arg, Asked, Done, Wait};
use hermes_core::problem::{exit, Problem};

#[derive(Args, Debug)]
pub struct OneOrAllArgs {
    /// The profile (`default` is the root profile at $HERMES_HOME)
    #[arg(required_unless_present = "all")]
    pub profile: Option<String>,
    /// Every registered slot; goes on past failures, reports each, exits 1 if any failed
    #[arg(long, conflicts_with = "profile")]
    pub all: bool,
}

/// How long `start`/`restart` watch the gateway they started.
#[derive(Args, Debug, Clone, Default)]
pub struct SettleArgs {
    /// Succeed only once the gateway is ready (it says so; killed as start-timeout past HERMES_GATEWAY_START_TIMEOUT) and has stayed up this long after (default 1; 0: just ready)
    #[arg(long, value_name = "SECONDS", conflicts_with = "no_wait")]
    pub wait: Option<f64>,
    /// Return once s6 is told and the wanted state recorded, without watching the gateway
    #[arg(long)]
    pub no_wait: bool,
}

impl SettleArgs {
    pub fn wait(&self) -> Result<Wait, Problem> {
        Wait::from_flags(self.wait, self.no_wait)
    }
}

/// Whether `stop` watches the gateway go down.
#[derive(Args, Debug, Clone, Default)]
pub struct StopWaitArgs {
    /// Return once s6 is told and the wanted state recorded, without waiting for the gateway to be down
    #[arg(long)]
    pub no_wait: bool,
}

impl StopWaitArgs {
    pub fn wait(&self) -> Wait {
        if self.no_wait {
            Wait::No
        } else {
            Wait::Settle(hermes_core::lifecycle::SETTLE)
        }
    }
}

/// The outcome of one verb on one profile, printed: `✓ <verb> gateway-<p>` and what happened
/// (or its JSON), or the problem.
fn print_one(profile: &str, verb: &str, json: bool, wait: Wait, r: Result<Done, Problem>) -> Result<u8, Problem> {
    if json {
        out::json(&outcome_json(verb, profile, &r));
        return Ok(r.map(|_| exit::OK).unwrap_or_else(|e| e.exit_code()));
    }
    let done = r?;
    println!("\u{2713} {verb} gateway-{profile}");
    for line in done.details(wait) {
        println!("  {line}");
    }
    Ok(exit::OK)
}

/// A slot verb (register, unregister, request) on one profile: `✓ <verb> gateway-<p>` and its
/// notes (or its JSON), or the problem.
pub fn one_slot(ctx: &Ctx, arg: &str, verb: &str, json: bool, f: impl FnOnce(&Ctx, &str) -> Result<Vec<String>, Problem>) -> Result<u8, Problem> {
    let profile = profile_arg(arg)?;
    let r = f(ctx, &profile);
    if json {
        let v = match &r {
            Ok(notes) => serde_json::json!({"ok": true, "profile": profile, "action": verb, "notes": notes}),
            Err(e) => serde_json::json!({"ok": false, "profile": profile, "action": verb, "error": e.to_json()}),
        };
        out::json(&v);
        return Ok(r.map(|_| exit::OK).unwrap_or_else(|e| e.exit_code()));
    }
    let notes = r?;
    println!("\u{2713} {verb} gateway-{profile}");
    for n in notes {
        eprintln!("note: {}", hermes_core::escape::terminal(&n));
    }
    Ok(exit::OK)
}

/// What a verb does, as the two halves `--all` overlaps: tell s6, then watch.
pub struct Verb<A, C> {
    pub name: &'static str,
    pub past: &'static str,
    pub ask: A,
    pub confirm: C,
}

/// One verb on one profile or on every registered slot.
pub fn one_or_all<A, C>(ctx: &Ctx, a: &OneOrAllArgs, json: bool, wait: Wait, verb: Verb<A, C>) -> Result<u8, Problem>
where
    A: Fn(&Ctx, &str) -> Result<Asked, Problem> + Sync,
    C: Fn(&Ctx, Asked, Wait) -> Result<Done, Problem> + Sync,
{
    if !a.all {
        let p = a.profile.as_deref().ok_or_else(|| Problem::usage(format!("{} needs a PROFILE or --all", verb.name)))?;
        let profile = profile_arg(p)?;
        let r = (verb.ask)(ctx, &profile).and_then(|asked| (verb.confirm)(ctx, asked, wait));
        return print_one(&profile, verb.name, json, wait, r);
    }
    // Gateways that start are paced like a boot (HERMES_GATEWAY_BOOT_PACE).
    let pace = if matches!(verb.name, "start" | "restart") { ctx.cfg.boot_pace } else { 0 };
    let r = all::for_all_paced(ctx, pace, &verb.ask, |ctx, asked| (verb.confirm)(ctx, asked, wait))?;
    if json {
        out::json(&serde_json::Value::Array(r.results.iter().map(|(p, res)| outcome_json(verb.name, p, res)).collect()));
    } else {
        if let Some(s) = r.summary(verb.past) {
            println!("{s}");
        }
        for line in r.failures(verb.name) {
            eprintln!("{line}");
        }
    }
    Ok(if r.failed() == 0 { exit::OK } else { exit::FAILED })
}

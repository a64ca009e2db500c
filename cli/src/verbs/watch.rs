//! `watch` (root): the registrar daemon.

use crate::args::RenderArgs;
use crate::out::Out;
use clap::Args;
use hermes_core::gateways::{Container, Converged, Scope, DELETE_GRACE};
use hermes_core::problem::{exit, Problem};
use hermes_core::Gateways;

#[derive(Args, Debug)]
pub struct WatchArgs {
    /// One full pass, then exit: converge everything, confirm deletions after their grace and
    /// tear them down, do what the crash policy has due meanwhile; what it has scheduled
    /// later is reported and left to the running registrar
    #[arg(long)]
    pub once: bool,
    #[command(flatten)]
    pub render: RenderArgs,
}

/// A dashboard container gets no slots; multiplexing keeps named gateways down (read once:
/// the container's command and environment do not change while it runs). The legacy
/// `gateway run` command is the boot pass's to migrate, once.
fn container(g: &Gateways) -> Container {
    Container { legacy_gateway_run: false, ..g.container().0 }
}

fn print(c: &Converged, json: bool) {
    if json {
        println!("{}", serde_json::to_string(c).expect("serialises"));
        return;
    }
    for (p, up) in &c.added {
        println!("registrar: registered gateway-{p} ({})", if *up { "wanted up" } else { "down" });
    }
    for (slot, why) in &c.foreign {
        println!("registrar: replaced {slot}: not ours, not published by hermes-s6 or tampered with ({why}); disarmed and taken down, and its profile, if on the volume, gets a slot rendered here");
    }
    for p in &c.pending {
        println!("registrar: profiles/{p} is gone; removing gateway-{p} if it is still gone in {} s", DELETE_GRACE.as_secs());
    }
    for p in &c.removed {
        println!("registrar: unregistered gateway-{p}");
    }
    for (p, what) in &c.policy {
        println!("registrar: gateway-{p} {what}");
    }
    for t in &c.taken_over {
        let left =
            if t.hard_linked > 0 { format!("; {} root-owned with other hard links left alone", t.hard_linked) } else { String::new() };
        let more = if t.truncated { "; stopped at the walk's bound, the next look goes on" } else { "" };
        println!("registrar: took over {} root-owned entries in profile {} (now the hermes user's){left}{more}", t.entries, t.profile);
    }
    for (p, was) in &c.parked {
        let what = if *was { "stopped and kept down" } else { "kept down" };
        println!("registrar: gateway-{p} {what}: profiles/{p}/gateway.parked parks it (`hermes -p {p} gateway start` unparks it)");
    }
    for (p, started) in &c.unparked {
        let what = if *started { "started again (still wanted running)" } else { "left down (not wanted running, or held)" };
        println!("registrar: profiles/{p}/gateway.parked is gone: gateway-{p} {what}");
    }
    for p in &c.folded {
        println!(
            "registrar: {p} wants running under multiplexing: gateway-default serves it (started if it was down); gateway-{p} stays down"
        );
    }
    for (p, at) in &c.scheduled {
        let when = hermes_core::clock::rfc3339(hermes_core::clock::from_unix_secs(*at));
        println!("registrar: gateway-{p}: the crash policy starts or checks it at {when}; left to the running registrar");
    }
    for e in &c.errors {
        eprintln!("registrar: error: {e}");
    }
}

pub fn run(g: &Gateways, a: &WatchArgs, out: Out) -> Result<u8, Problem> {
    let json = out.json;
    let ctx = g.ctx();
    let mut reg = g.registrar(container(g))?;
    if a.once {
        // Until converged: deletions confirmed after their grace, teardowns finished, and
        // whatever the policy has due meanwhile done; every look's report kept.
        let mut c = reg.converge(&Scope::Everything);
        while !reg.idle() {
            ctx.clock.sleep(reg.next_deadline().saturating_duration_since(ctx.clock.instant()));
            c.absorb(reg.tick());
        }
        c.scheduled = reg.schedule().iter().map(|(p, t)| (p.clone(), *t)).collect();
        print(&c, json);
        return Ok(if c.errors.is_empty() { exit::OK } else { exit::FAILED });
    }
    g.watch(
        &mut reg,
        |c| print(c, json),
        || {
            if !json {
                println!("registrar: watching {} (doorbell {})", ctx.cfg.home.display(), ctx.cfg.registrar_fifo.display());
            }
        },
    )?;
    if !json {
        println!("registrar: stopping");
    }
    Ok(exit::OK)
}

//! `health [--live]`: the container's probe (the image's HEALTHCHECK, Kubernetes' liveness
//! and readiness probes).

use crate::out::{self, Out};
use clap::Args;
use hermes_core::gateways::Health;
use hermes_core::problem::{exit, Problem};
use hermes_core::Gateways;

pub const AFTER_HELP: &str = "\
Exit codes (what probes expect):
  0  healthy: live (s6-svscan runs, the registrar is up) and, without --live, ready (every
     gateway wanted running is up and ready, as it says itself, or down for a reason the
     crash policy accounts for: quarantined, backing off, parked, a configuration error)
  1  not healthy: each reason is printed on stderr
Run it as the container's user (root in root mode): the registrar's status is root's there.";

#[derive(Args, Debug)]
pub struct HealthArgs {
    /// Liveness only: the supervision tree can still act (Kubernetes' livenessProbe)
    #[arg(long)]
    pub live: bool,
}

pub fn run(g: &Gateways, a: &HealthArgs, out: Out) -> Result<u8, Problem> {
    let h = match g.health(!a.live) {
        Ok(h) => h,
        Err(p) => Health { problems: vec![p.to_string()], ..Default::default() },
    };
    let ok = if a.live { h.live } else { h.live && h.ready };
    if out.json {
        let mut v = serde_json::to_value(&h).expect("serialises");
        v["ok"] = serde_json::json!(ok);
        out::json(&v);
    } else if ok {
        println!(
            "healthy: {}{}",
            if a.live { "live" } else { "live and ready" },
            if h.accounted.is_empty() { String::new() } else { format!(" (down and accounted for: {})", h.accounted.join(", ")) }
        );
    } else {
        for p in &h.problems {
            eprintln!("unhealthy: {p}");
        }
    }
    Ok(if ok { exit::OK } else { exit::FAILED })
}

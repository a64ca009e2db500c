//! `hermes-gateway`: the reference gateway (see `hermes_sim::gateway`).
//!
//! Usage:
//!   hermes-gateway [-p PROFILE] [gateway run] [--replace] [--port N]   run a gateway
//!                  [--ready-after SECS] [--hang-after SECS]             (slow start, a stalled loop)
//!                  [--grow-memory MB_PER_S]                            (a memory leak)
//!   hermes-gateway --dashboard [--port N]                              the dashboard stand-in
//!   hermes-gateway --probe PORT | --probe-profile P                      GET /health, print it
//! The home is $HERMES_HOME (default /opt/data); the root profile is `default`.

use hermes_front::gateway::{self, Options};
use std::process::ExitCode;

fn main() -> ExitCode {
    let argv: Vec<String> = std::env::args().collect();
    let mut profile = "default".to_string();
    let (mut replace, mut dashboard, mut port, mut probe) = (false, false, None, None);
    let (mut ready_after, mut hang_after) = (None, None);
    let secs = |v: Option<&String>| {
        v.and_then(|s| s.parse::<f64>().ok()).filter(|s| s.is_finite() && *s >= 0.0).map(std::time::Duration::from_secs_f64)
    };
    let mut probe_profile: Option<String> = None;
    let mut grow: Option<f64> = None;
    let mut it = argv.iter().skip(1);
    while let Some(a) = it.next() {
        match a.as_str() {
            "-p" | "--profile" => profile = it.next().cloned().unwrap_or_default(),
            "--replace" => replace = true,
            "--dashboard" => dashboard = true,
            "--port" => port = it.next().and_then(|s| s.parse::<u16>().ok()),
            "--probe" => probe = it.next().and_then(|s| s.parse::<u16>().ok()),
            "--probe-profile" => probe_profile = it.next().cloned(),
            "--grow-memory" => grow = it.next().and_then(|s| s.parse::<f64>().ok()),
            "--ready-after" => ready_after = secs(it.next()),
            "--hang-after" => hang_after = secs(it.next()),
            "gateway" | "run" => {}
            "-h" | "--help" => {
                println!("usage: hermes-gateway [-p PROFILE] [gateway run] [--replace] [--port N] [--ready-after SECS] [--hang-after SECS] [--grow-memory MB_PER_S] | --dashboard [--port N] | --probe PORT | --probe-profile PROFILE");
                return ExitCode::SUCCESS;
            }
            other => {
                eprintln!("hermes-gateway: unknown argument {other:?} (see --help)");
                return ExitCode::from(2);
            }
        }
    }
    let root = hermes_core::config::root_home(std::path::Path::new(
        &std::env::var("HERMES_HOME").unwrap_or_else(|_| hermes_core::config::DEFAULT_HOME.into()),
    ));
    if let Some(name) = probe_profile {
        probe = Some(gateway::probe_port_for(&root, &name));
    }
    if let Some(p) = probe {
        return match gateway::probe(p) {
            Ok(body) => {
                println!("{body}");
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("hermes-gateway: health probe failed: {e}");
                ExitCode::from(1)
            }
        };
    }
    if dashboard {
        return ExitCode::from(gateway::run_dashboard(port.unwrap_or(gateway::DASHBOARD_PORT)) as u8);
    }
    let opts = Options { root, profile, replace, port, argv, ready_after, hang_after, grow_memory_mb_per_s: grow };
    ExitCode::from(gateway::run(&opts) as u8)
}

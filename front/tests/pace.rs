//! Boot pacing against Debian's real s6 with the stand-in gateway: the boot pass starts the
//! first K wanted gateways and queues the rest without waiting; `status` and `health` say they
//! are queued; the registrar releases them as the ones before are ready; an operator's stop
//! or start of a queued gateway wins over the queue.

use hermes_testkit as common;

use common::svscan::wait_for;
use common::world::{prerequisites, World};
use std::fs;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

const NAMES: [&str; 5] = ["pa", "pb", "pc", "pd", "pe"];

fn world(pace: usize, setup: impl FnOnce(&common::Fixture)) -> World {
    let mut w = World::new(|f| {
        f.state("default", Some("stopped"), None);
        for n in NAMES {
            f.profile(n, Some("running"), Some("running"));
        }
        setup(f);
    });
    w.f.cfg.gateway_program = env!("CARGO_BIN_EXE_hermes-gateway").to_string();
    w.set_bin(common::world::workspace_binary("hermes-reconcile").to_str().unwrap());
    w.env.push(("HERMES_GATEWAY_BOOT_PACE".into(), pace.to_string()));
    w.f.cfg.boot_pace = pace;
    w.boot();
    w
}

fn wanted_up(slot: &Path) -> bool {
    let o = Command::new("s6-svstat").args(["-o", "wantedup"]).arg(slot).output().unwrap();
    String::from_utf8_lossy(&o.stdout).trim() == "true"
}

fn states(w: &World) -> Vec<String> {
    NAMES.iter().map(|n| w.status_json(n)["state"].as_str().unwrap_or("?").to_string()).collect()
}

#[test]
#[ignore = "needs root, s6 and the hermes user"]
fn the_boot_pass_starts_k_queues_the_rest_and_the_registrar_releases_them() {
    prerequisites();
    let w = world(2, |_| {});
    // The pass returned without waiting for any gateway: the first two are wanted up, the
    // rest published down and queued.
    let up: Vec<bool> = NAMES.iter().map(|n| wanted_up(&w.f.slot(n))).collect();
    assert_eq!(up, [true, true, false, false, false], "{:?}", states(&w));
    let s = w.status_json("pc");
    assert_eq!(s["state"], "queued", "{s}");
    assert!(s["queued_since"].is_string() && s["explanation"].as_str().unwrap().contains("queued by the boot pace"), "{s}");
    let human = String::from_utf8_lossy(&w.cli(true, &["status"]).stdout).to_string();
    assert!(human.lines().any(|l| l.starts_with("pe ") && l.trim_end().ends_with("queued")), "{human}");
    let health = w.cli(true, &["--json", "health"]);
    let h: serde_json::Value = serde_json::from_slice(&health.stdout).unwrap();
    assert_eq!(h["ready"], false, "{h}");
    assert!(h["problems"].as_array().unwrap().iter().any(|p| p.as_str().unwrap().contains("pe is wanted running but is queued")), "{h}");

    // The registrar is the pacer: every queued gateway is started, none left queued.
    let _reg = w.spawn_registrar();
    assert!(wait_for(Duration::from_secs(20), || states(&w).iter().all(|s| s == "running")), "{:?}\n{}", states(&w), w.registrar_log());
    assert!(w.registrar_log().contains("gateway-pe started by the boot pace"), "{}", w.registrar_log());
    for n in NAMES {
        assert!(!w.f.slot(n).join("data/queued").exists(), "{n} still marked");
    }
    let h: serde_json::Value = serde_json::from_slice(&w.cli(true, &["--json", "health"]).stdout).unwrap();
    assert!(!h["problems"].to_string().contains("queued"), "{h}");
}

#[test]
#[ignore = "needs root, s6 and the hermes user"]
fn an_operator_stop_or_start_of_a_queued_gateway_wins_over_the_queue() {
    prerequisites();
    let w = world(1, |f| {
        // Names of their own (stand-ins listen on ports derived from them).
        f.profile("qa", Some("running"), Some("running"));
        f.profile("qz", Some("running"), Some("running"));
    });
    // K = 1: only `pa` started; `qa` and `qz` are queued. Stop one, start the other, by hand.
    assert!(wanted_up(&w.f.slot("pa")) && !wanted_up(&w.f.slot("qa")) && !wanted_up(&w.f.slot("qz")));
    let o = w.cli(true, &["stop", "qz"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(w.status_json("qz")["state"], "stopped");
    let o = w.cli(true, &["start", "qa"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let _reg = w.spawn_registrar();
    assert!(wait_for(Duration::from_secs(20), || states(&w).iter().all(|s| s == "running")), "{:?}\n{}", states(&w), w.registrar_log());
    assert_eq!(w.status_json("qa")["state"], "running");
    // The stopped one stays stopped, and is no longer queued.
    std::thread::sleep(Duration::from_millis(500));
    let s = w.status_json("qz");
    assert_eq!((s["state"].as_str(), s["up"].as_bool()), (Some("stopped"), Some(false)), "{s}");
    assert!(!w.f.slot("qz").join("data/queued").exists() && !w.f.slot("qa").join("data/queued").exists());
    let _ = fs::metadata(w.f.slot("qa"));
}

//! What `status` and `health` tell root, tried as an attacker holding uid 10000 would, against
//! Debian's real s6 (issue 19, items 2, 5 and 6; docs/security.md names these tests): the two
//! never contradict each other, a value from the volume can neither forge a row nor hide one,
//! and the registrar's inotify watches stay within their budget however many directories the
//! user makes.

use hermes_testkit as common;

use common::svscan::{as_hermes, is_up, wait_for};
use common::world::{prerequisites, World};
use std::fs;
use std::process::Output;
use std::time::Duration;

fn world() -> World {
    World::booted_with_up(env!("CARGO_BIN_EXE_hermes-reconcile"), "coder", |f| {
        f.state("default", Some("stopped"), None);
        f.profile("coder", Some("running"), None);
        f.profile("writer", Some("stopped"), None);
    })
}

fn json(o: &Output) -> serde_json::Value {
    serde_json::from_slice(&o.stdout)
        .unwrap_or_else(|_| panic!("not JSON: {}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr)))
}

/// Measured: with coder wanted running, uid 10000 ran `s6-svc -d` on its slot; `status` said
/// `parked` (exit 3) while `health` said "live and ready".
#[test]
#[ignore = "needs root, s6 and the hermes user"]
fn a_gateway_held_down_by_hand_is_not_parked_and_not_ready() {
    prerequisites();
    let w = world();
    let slot = w.f.slot("coder");
    assert!(as_hermes(&["s6-svc", "-d", slot.to_str().unwrap()]).status.success());
    assert!(wait_for(Duration::from_secs(10), || is_up(&slot) == Some(false)));
    // The finish has run once s6 reports the death with nothing finishing.
    assert!(wait_for(Duration::from_secs(10), || w.status_json("coder")["state"] != "restarting"));
    let st = w.status_json("coder");
    assert_eq!(st["state"], "held-down", "{st}");
    assert!(st["explanation"].as_str().unwrap().contains("gateway start"), "{st}");
    let all = w.cli(false, &["status"]);
    assert_eq!(all.status.code(), Some(3), "status of all must say a wanted gateway is down");
    let h = w.cli(false, &["--json", "health"]);
    assert_ne!(h.status.code(), Some(0));
    let h = json(&h);
    assert_eq!(h["ready"], false, "{h}");
    let problems = h["problems"].to_string();
    assert!(problems.contains("coder is wanted running but is held-down"), "{h}");
    assert!(!h["accounted"].to_string().contains("coder"), "{h}");
}

/// Measured: `desired_state` set to `"stopped\ndefault running up 4242 ... running\e[8m"`
/// printed a fake `default` row in root's terminal and hid the rows after it.
#[test]
#[ignore = "needs root, s6 and the hermes user"]
fn a_state_value_cannot_forge_or_hide_a_status_row() {
    prerequisites();
    let w = world();
    let forged = "stopped\ndefault  running up   4242     2026-12-04T00:00:00Z        0 -          running\u{1b}[8m\u{202e}";
    let state = w.f.profile_dir("writer").join("gateway_state.json");
    fs::write(&state, serde_json::json!({"desired_state": forged}).to_string()).unwrap();
    common::give(&state, 10000, 10000);
    for args in [&["status"][..], &["status", "writer"][..]] {
        let o = w.cli(false, args);
        let text = String::from_utf8_lossy(&o.stdout);
        assert!(!text.contains('\u{1b}') && !text.contains('\u{202e}'), "an escape sequence reached the terminal:\n{text}");
        assert!(!text.lines().any(|l| l.starts_with("default  running up   4242")), "a forged row:\n{text}");
        assert!(text.contains("\\n"), "the value is shown escaped:\n{text}");
    }
    let o = w.cli(false, &["status"]);
    let text = String::from_utf8_lossy(&o.stdout);
    for p in ["default", "coder", "writer"] {
        assert_eq!(text.lines().filter(|l| l.starts_with(&format!("{p} "))).count(), 1, "one row for {p}:\n{text}");
    }
    // JSON stays exact.
    assert_eq!(w.status_json("writer")["wanted"], forged);
}

/// The registrar's inotify watches held by process `pid` (its `fdinfo` lists one line each).
fn inotify_watches(pid: u32) -> usize {
    let mut n = 0;
    for e in fs::read_dir(format!("/proc/{pid}/fdinfo")).unwrap().flatten() {
        n += fs::read_to_string(e.path()).unwrap_or_default().lines().filter(|l| l.starts_with("inotify wd:")).count();
    }
    n
}

/// Measured: uid 10000 made thousands of directories under `profiles/` (no SOUL.md needed) and
/// the registrar added a watch for each: inotify's limit is per uid, so at the host's
/// `max_user_watches` every root process on the host gets ENOSPC.
#[test]
#[ignore = "needs root, s6 and the hermes user"]
fn the_registrar_watches_within_its_budget_and_says_so() {
    prerequisites();
    let mut w = world();
    // A scanner for 40 services: a budget of 40 watches.
    w.env.push(("HERMES_S6_MAX_SERVICES".into(), "40".into()));
    let r = w.spawn_registrar();
    let profiles = w.f.home.join("profiles");
    let script = format!("cd {} && for i in $(seq 1 300); do mkdir junk-$i; done", profiles.display());
    assert!(as_hermes(&["sh", "-c", &script]).status.success());
    // A real profile made after the flood is still registered (by its event or the resync).
    let late = profiles.join("late");
    assert!(as_hermes(&["mkdir", late.to_str().unwrap()]).status.success());
    assert!(as_hermes(&["sh", "-c", &format!("echo soul > {}/SOUL.md", late.display())]).status.success());
    assert!(as_hermes(&["sh", "-c", &format!("echo late > {}", w.f.cfg.registrar_fifo.display())]).status.success());
    assert!(wait_for(Duration::from_secs(15), || w.f.slot("late").is_dir()), "late was not registered:\n{}", w.registrar_log());
    let held = inotify_watches(r.pid().as_raw() as u32);
    assert!(held <= 40, "the registrar holds {held} inotify watches, over its budget of 40");
    assert!(w.registrar_log().contains("inotify budget of 40 watches is spent"), "{}", w.registrar_log());
    let o = w.cli(false, &["status"]);
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(text.contains("registrar: the registrar's inotify budget of 40 watches is spent"), "{text}");
    assert!(json(&w.cli(false, &["--json", "status"]))["registrar_notices"].to_string().contains("budget"));
}

/// `status` shows what each running gateway costs, like `pm2 ls`: resident memory and CPU,
/// in the table and in `--json` (issue 20).
#[test]
#[ignore = "needs root, s6 and the hermes user"]
fn status_shows_each_running_gateways_memory_and_cpu() {
    prerequisites();
    let w = world();
    let st = w.status_json("coder");
    let rss = st["usage"]["rss_bytes"].as_u64().unwrap_or(0);
    assert!(rss > 100_000, "no memory figure for a running gateway: {st}");
    assert!(st["usage"]["cpu_percent"].as_f64().is_some_and(|c| c >= 0.0), "{st}");
    assert!(w.status_json("writer")["usage"].is_null(), "a stopped gateway costs nothing");
    let o = w.cli(false, &["status"]);
    let text = String::from_utf8_lossy(&o.stdout);
    let header = text.lines().next().unwrap_or_default();
    assert!(header.contains(" MEM ") && header.contains(" CPU "), "{text}");
    let row = text.lines().find(|l| l.starts_with("coder ")).unwrap_or_default();
    assert!(row.contains(" MB ") || row.contains(" KB "), "{text}");
}

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
use std::time::{Duration, Instant};

/// Five wanted profiles; each test its own names (stand-ins listen on ports derived from them,
/// and tests run side by side).
type Names = [&'static str; 5];

fn world(names: Names, pace: usize, setup: impl FnOnce(&common::Fixture)) -> World {
    let mut w = World::new(|f| {
        f.state("default", Some("stopped"), None);
        for n in names {
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

fn states(w: &World, names: Names) -> Vec<String> {
    names.iter().map(|n| w.status_json(n)["state"].as_str().unwrap_or("?").to_string()).collect()
}

#[test]
#[ignore = "needs root, s6 and the hermes user"]
fn the_boot_pass_starts_k_queues_the_rest_and_the_registrar_releases_them() {
    prerequisites();
    const NAMES: Names = ["pa", "pb", "pc", "pd", "pe"];
    let w = world(NAMES, 2, |_| {});
    // The pass returned without waiting for any gateway: the first two are wanted up, the
    // rest published down and queued.
    let up: Vec<bool> = NAMES.iter().map(|n| wanted_up(&w.f.slot(n))).collect();
    assert_eq!(up, [true, true, false, false, false], "{:?}", states(&w, NAMES));
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
    assert!(
        wait_for(Duration::from_secs(20), || states(&w, NAMES).iter().all(|s| s == "running")),
        "{:?}\n{}",
        states(&w, NAMES),
        w.registrar_log()
    );
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
    const NAMES: Names = ["oa", "ob", "oc", "od", "oe"];
    let w = world(NAMES, 1, |f| {
        // Names of their own (stand-ins listen on ports derived from them).
        f.profile("qa", Some("running"), Some("running"));
        f.profile("qz", Some("running"), Some("running"));
    });
    // K = 1: only `oa` started; `qa` and `qz` are queued. Stop one, start the other, by hand.
    assert!(wanted_up(&w.f.slot("oa")) && !wanted_up(&w.f.slot("qa")) && !wanted_up(&w.f.slot("qz")));
    let o = w.cli(true, &["stop", "qz"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(w.status_json("qz")["state"], "stopped");
    let o = w.cli(true, &["start", "qa"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let _reg = w.spawn_registrar();
    assert!(
        wait_for(Duration::from_secs(20), || states(&w, NAMES).iter().all(|s| s == "running")),
        "{:?}\n{}",
        states(&w, NAMES),
        w.registrar_log()
    );
    assert_eq!(w.status_json("qa")["state"], "running");
    // The stopped one stays stopped, and is no longer queued.
    std::thread::sleep(Duration::from_millis(500));
    let s = w.status_json("qz");
    assert_eq!((s["state"].as_str(), s["up"].as_bool()), (Some("stopped"), Some(false)), "{s}");
    assert!(!w.f.slot("qz").join("data/queued").exists() && !w.f.slot("qa").join("data/queued").exists());
    let _ = fs::metadata(w.f.slot("qa"));
}

/// Gateways of `w` starting (wanted up, not yet ready) at most at once, sampled from their
/// status files until all are ready; and how long that took. A count is taken only when two
/// samples 50 ms apart agree (a sample reads one file after another, and a release can fall
/// between two reads; a pace really exceeded lasts a whole start).
fn watch_starts(w: &World, names: &[&str], limit: Duration) -> (usize, Duration) {
    let t0 = std::time::Instant::now();
    let (mut most, mut prev) = (0, 0);
    let done = wait_for(limit, || {
        let (mut starting, mut ready) = (0, 0);
        for n in names {
            let b = fs::read(w.f.slot(n).join("supervise/status")).unwrap_or_default();
            let Some(st) = hermes_core::s6::svstat::Status::parse(&b) else { continue };
            match (st.want_up, st.is_up(), st.ready) {
                (true, true, true) => ready += 1,
                (true, _, _) => starting += 1,
                _ => {}
            }
        }
        most = most.max(starting.min(prev));
        prev = starting;
        ready == names.len()
    });
    assert!(done, "not all ready within {limit:?}: {names:?}\n{}", w.registrar_log());
    (most, t0.elapsed())
}

#[test]
#[ignore = "needs root, s6 and the hermes user"]
fn paced_gateways_start_at_most_k_at_a_time_each_released_when_one_before_is_ready() {
    prerequisites();
    // Each stand-in takes 1.5 s from exec to `running` (s6's ready, through the bridge).
    const NAMES: Names = ["sa", "sb", "sc", "sd", "se"];
    let slow = |f: &common::Fixture| {
        for n in NAMES {
            fs::write(f.profile_dir(n).join("fake-start-delay-ms"), "1500").unwrap();
        }
    };
    let w = world(NAMES, 2, slow);
    let _reg = w.spawn_registrar();
    let (most, took) = watch_starts(&w, &NAMES, Duration::from_secs(30));
    eprintln!("paced K=2: at most {most} starting at once; all 5 ready after {took:?}");
    assert!(most <= 2, "{most} gateways were starting at once with K=2");
    // Three waves of 1.5 s: the pace waits for readiness, not for a timeout.
    assert!(took < Duration::from_secs(10), "{took:?}");
    drop(w);

    // All at once (K=0): every one starts together.
    let w = world(NAMES, 0, slow);
    let (most, took) = watch_starts(&w, &NAMES, Duration::from_secs(30));
    eprintln!("all at once: {most} starting at once; all 5 ready after {took:?}");
    assert!(most >= 4, "all at once started only {most} together");
}

#[test]
#[ignore = "needs root, s6 and the hermes user"]
fn a_gateway_never_ready_holds_its_place_only_until_its_start_timeout() {
    prerequisites();
    let names = ["ta", "tb", "tc"];
    let mut w = World::new(|f| {
        f.state("default", Some("stopped"), None);
        for n in names {
            f.profile(n, Some("running"), Some("running"));
        }
        // `ta` says running only after 10 minutes.
        fs::write(f.profile_dir("ta").join("fake-start-delay-ms"), "600000").unwrap();
    });
    w.f.cfg.gateway_program = env!("CARGO_BIN_EXE_hermes-gateway").to_string();
    w.set_bin(common::world::workspace_binary("hermes-reconcile").to_str().unwrap());
    w.env.push(("HERMES_GATEWAY_BOOT_PACE".into(), "1".into()));
    w.env.push(("HERMES_GATEWAY_START_TIMEOUT".into(), "2s".into()));
    w.f.cfg.boot_pace = 1;
    w.boot();
    // When `ta` went up, by its supervisor's own clock (before any death: it is never ready, so
    // its watcher kills it at 2 s and s6 starts it again).
    let ta_up = Instant::now();
    let status = |n: &str| hermes_core::s6::svstat::Status::parse(&fs::read(w.f.slot(n).join("supervise/status")).unwrap_or_default());
    let _reg = w.spawn_registrar();
    // `tb` waits for `ta`'s start timeout (2 s), `tc` for `tb`'s readiness.
    let mut tb_up = None;
    assert!(
        wait_for(Duration::from_secs(15), || {
            if tb_up.is_none() && status("tb").is_some_and(|s| s.is_up()) {
                tb_up = Some(ta_up.elapsed());
            }
            ["tb", "tc"].iter().all(|n| status(n).is_some_and(|s| s.is_up() && s.ready))
        }),
        "{:?}\n{}",
        names.map(|n| w.status_json(n)["state"].clone()),
        w.registrar_log()
    );
    let waited = tb_up.expect("tb went up");
    eprintln!("behind a gateway never ready (start timeout 2 s): the next released {waited:?} after it started");
    assert!(waited >= Duration::from_millis(1500), "tb did not wait for ta: {waited:?}");
    assert!(waited < Duration::from_secs(6), "ta held its place past its timeout: {waited:?}");
}

#[test]
#[ignore = "needs root, s6 and the hermes user"]
fn restart_all_restarts_k_at_a_time_each_next_once_one_is_ready() {
    prerequisites();
    let mut w = World::new(|f| {
        f.state("default", Some("stopped"), None);
        for n in ["ra", "rb", "rc", "rd", "re"] {
            f.profile(n, Some("running"), Some("running"));
            fs::write(f.profile_dir(n).join("fake-start-delay-ms"), "1000").unwrap();
        }
    });
    w.f.cfg.gateway_program = env!("CARGO_BIN_EXE_hermes-gateway").to_string();
    w.set_bin(common::world::workspace_binary("hermes-reconcile").to_str().unwrap());
    w.env.push(("HERMES_GATEWAY_BOOT_PACE".into(), "2".into()));
    w.boot();
    let names = ["ra", "rb", "rc", "rd", "re"];
    watch_starts(&w, &names, Duration::from_secs(20));
    let restarting = std::thread::scope(|s| {
        let cmd = s.spawn(|| w.cli(true, &["restart", "--all"]));
        // Sampled while the command runs: never more than two restarting at once.
        let (most, _) = watch_starts(&w, &names, Duration::from_secs(30));
        let mut most = most;
        while !cmd.is_finished() {
            most = most.max(watch_starts(&w, &names, Duration::from_secs(30)).0);
        }
        (most, cmd.join().unwrap())
    });
    let (most, o) = restarting;
    assert!(o.status.success(), "{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr));
    // The five wanted running; the root profile, stopped, stays stopped.
    assert!(String::from_utf8_lossy(&o.stdout).contains("Restarted 5 profile gateway(s)"), "{}", String::from_utf8_lossy(&o.stdout));
    assert!((1..=2).contains(&most), "{most} restarting at once with K=2");
}

//! Newer hermes-agent's vocabulary (issue 23), against Debian's real s6: exit 75 ("restart me")
//! is retried with the policy's backoff and never parked or quarantined; a `gateway.parked`
//! marker keeps a profile's slot down (boot pass, registrar, `status`) and `start` unparks it;
//! a `profiles/.deleted/<P>` tombstone is no profile; under multiplexing a named profile's
//! running intent starts gateway-default instead, and `status` says whom it serves.

use hermes_testkit as common;

use common::svscan::{is_up, wait_for};
use common::world::{chown_tree, prerequisites, text as out, World, SHORT_POLICY as SHORT};
use hermes_core::boot::plan::{Action, Container};
use std::fs;
use std::path::Path;
use std::time::{Duration, Instant};

fn has_down_file(w: &World, p: &str) -> bool {
    w.f.slot(p).join("down").exists()
}

fn status_all(w: &World) -> serde_json::Value {
    let o = w.cli(true, &["--json", "status"]);
    serde_json::from_slice(&o.stdout).unwrap_or_else(|_| panic!("status --json: {}", out(&o)))
}

/// A file the hermes user owns in the volume, as its own tools would leave it.
fn user_file(path: &Path) {
    fs::write(path, "").unwrap();
    chown_tree(path);
}

/// Exit 75 is a request, not a crash: s6 restarts it, the policy backs it off, and however
/// many come in the quarantine window (here more than the limit of 3), it is never
/// quarantined, never parked, never counted as a crash. Once it stops asking, it runs.
#[test]
#[ignore = "needs root, s6 and the hermes user"]
fn exit_75_is_retried_with_backoff_never_parked_and_never_counted_toward_quarantine() {
    prerequisites();
    let mut w = World::new(|f| {
        f.profile("again", None, None);
        fs::write(f.profile_dir("again").join("exit75"), "").unwrap();
    });
    w.set_bin(env!("CARGO_BIN_EXE_hermes-reconcile"));
    w.crash_policy(SHORT);
    w.boot();
    let _reg = w.spawn_registrar();
    let o = w.cli(true, &["start", "again", "--no-wait"]);
    assert!(o.status.success(), "{}", out(&o));

    // Watched until it has died more often than the quarantine limit (5 > 3), with the
    // policy's backoff seen: never held for good on the way.
    let mut seen = std::collections::BTreeSet::new();
    let until = Instant::now() + Duration::from_secs(40);
    while Instant::now() < until {
        let s = w.status_json("again");
        let state = s["state"].as_str().unwrap_or("?").to_string();
        assert!(
            !matches!(state.as_str(), "quarantined" | "parked" | "config-error" | "stopped"),
            "exit 75 was {state}: {s}\n{}",
            w.registrar_log()
        );
        // (No record yet while the first finish runs.)
        assert_eq!(s["policy"]["recent_crashes"].as_u64().unwrap_or(0), 0, "exit 75 counted as a crash: {s}");
        seen.insert(state);
        if s["restarts"].as_u64().unwrap_or(0) >= 5 && seen.contains("backing-off") {
            break;
        }
        std::thread::sleep(Duration::from_millis(150));
    }
    let s = w.status_json("again");
    let deaths = s["restarts"].as_u64().unwrap_or(0);
    assert!(deaths > 3, "retried past the quarantine limit of 3: {deaths} deaths: {s}");
    assert!(s["policy"]["consecutive_crashes"].as_u64().unwrap_or(0) > 3, "the backoff counts them in a row: {s}");
    assert_eq!(s["exit_code"], 75, "{s}");
    assert!(seen.contains("backing-off"), "the policy's backoff (beyond s6's 1 s) was applied: saw {seen:?}");
    assert!(w.registrar_log().contains("restarted after its backoff"), "{}", w.registrar_log());

    // It stops asking: the next start (the registrar's, at the backoff's end) stays up.
    fs::remove_file(w.f.profile_dir("again").join("exit75")).unwrap();
    assert!(wait_for(Duration::from_secs(10), || w.status_json("again")["state"] == "running"), "{}", w.status_json("again"));
}

/// `profiles/P/gateway.parked` keeps P's slot down: the boot pass registers it down and says
/// why, the registrar follows a marker that appears or goes at run time, `status` explains
/// it (JSON too), and `start` removes the marker first, as hermes-agent's own start does; one
/// it cannot remove stops it, naming the file and the fix. On the root profile it means
/// nothing (a warning).
#[test]
#[ignore = "needs root, s6 and the hermes user"]
fn a_parked_profile_stays_down_at_boot_in_the_registrar_and_in_status_and_start_unparks_it() {
    prerequisites();
    let mut w = World::new(|f| {
        f.state("default", Some("running"), None);
        fs::write(f.home.join("gateway.parked"), "").unwrap();
        f.profile("parkee", Some("running"), Some("running"));
        fs::write(f.profile_dir("parkee").join("gateway.parked"), "provisioned offline\n").unwrap();
        f.profile("live", Some("running"), None);
    });
    w.set_bin(env!("CARGO_BIN_EXE_hermes-reconcile"));
    let report = w.boot_with(&Container::default());

    let parkee = report.entries.iter().find(|e| e.profile == "parkee").unwrap();
    assert_eq!((parkee.action, parkee.reason.as_deref()), (Action::Registered, Some("parked")), "{report:?}");
    let default = report.entries.iter().find(|e| e.profile == "default").unwrap();
    assert_eq!(default.action, Action::Started, "the marker means nothing on the root profile");
    assert!(report.warnings.iter().any(|w| w.contains("gateway.parked is ignored")), "{:?}", report.warnings);
    let log = w.f.boot_log();
    assert!(log.lines().any(|l| l.contains("profile=parkee") && l.contains("action=registered") && l.ends_with("reason=parked")), "{log}");
    assert!(has_down_file(&w, "parkee") && is_up(&w.f.slot("parkee")) == Some(false));

    let s = w.status_json("parkee");
    assert_eq!((s["state"].as_str(), s["reason"].as_str()), (Some("parked"), Some("parked-marker")), "{s}");
    assert!(s["parked_by"].as_str().is_some_and(|p| p.ends_with("profiles/parkee/gateway.parked")), "{s}");
    assert!(s["explanation"].as_str().unwrap().contains("gateway start` removes the marker"), "{s}");
    let human = out(&w.cli(true, &["status", "parkee"]));
    assert!(human.contains("parked by") && human.contains("profiles/parkee/gateway.parked"), "{human}");

    // At run time: a marker that appears takes a running gateway down and keeps it down...
    let _reg = w.spawn_registrar();
    assert!(w.wait_gateway_ready("live"));
    let marker = w.f.profile_dir("live").join("gateway.parked");
    user_file(&marker);
    assert!(
        wait_for(Duration::from_secs(10), || is_up(&w.f.slot("live")) == Some(false) && has_down_file(&w, "live")),
        "{}",
        w.registrar_log()
    );
    assert_eq!(w.status_json("live")["state"], "parked");
    assert_eq!(w.state_json("live")["gateway_state"], "running", "the gateway's own intent is kept for when it is unparked");
    // The registrar reports a look once it is over (after the down file it wrote): wait for it.
    assert!(wait_for(Duration::from_secs(5), || w.registrar_log().contains("gateway-live stopped and kept down")), "{}", w.registrar_log());
    // ...and one that goes brings it back, still wanted running.
    fs::remove_file(&marker).unwrap();
    assert!(wait_for(Duration::from_secs(10), || is_up(&w.f.slot("live")) == Some(true)), "{}", w.registrar_log());
    assert!(!has_down_file(&w, "live"));

    // `start` of a parked profile unparks it (and says so), then starts it.
    let o = w.cli(true, &["start", "parkee"]);
    assert!(o.status.success(), "{}", out(&o));
    assert!(out(&o).contains("unparked: removed") && out(&o).contains("profiles/parkee/gateway.parked"), "{}", out(&o));
    assert!(!w.f.profile_dir("parkee").join("gateway.parked").exists());
    assert_eq!(w.status_json("parkee")["state"], "running");

    // A marker the start cannot remove (a directory): refused, naming the file and the fix.
    fs::create_dir(w.f.profile_dir("parkee").join("gateway.parked")).unwrap();
    fs::write(w.f.profile_dir("parkee").join("gateway.parked/keep"), "").unwrap();
    chown_tree(&w.f.profile_dir("parkee").join("gateway.parked"));
    assert!(wait_for(Duration::from_secs(10), || is_up(&w.f.slot("parkee")) == Some(false)), "{}", w.registrar_log());
    let o = w.cli(true, &["--json", "start", "parkee"]);
    assert_eq!(o.status.code(), Some(1), "{}", out(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap_or_else(|_| panic!("{}", out(&o)));
    let msg = v["error"]["message"].as_str().unwrap();
    assert!(msg.contains("profiles/parkee/gateway.parked") && msg.contains("rm -r") && msg.contains("to unpark"), "{v}");
    assert!(v["error"]["path"].as_str().is_some_and(|p| p.ends_with("gateway.parked")), "{v}");
    assert_eq!(is_up(&w.f.slot("parkee")), Some(false), "a refused start starts nothing");
}

/// A `profiles/.deleted/<P>` tombstone (what hermes-agent's `profile delete` leaves) makes P no
/// profile, whatever its directory still holds: no slot at boot, not in `status` or `list`;
/// `.deleted` and anything in it is never a profile; and a tombstone that appears at run time
/// makes the registrar take the slot down.
#[test]
#[ignore = "needs root, s6 and the hermes user"]
fn a_tombstoned_profile_with_soul_and_desired_running_gets_no_slot() {
    prerequisites();
    let mut w = World::new(|f| {
        f.state("default", Some("running"), None);
        f.profile("ghost", Some("running"), Some("running"));
        f.profile("live", Some("running"), None);
        let deleted = f.home.join("profiles/.deleted");
        fs::create_dir_all(deleted.join("inner")).unwrap();
        fs::write(deleted.join("ghost"), "deleted\n").unwrap();
        fs::write(deleted.join("SOUL.md"), "").unwrap();
        fs::write(deleted.join("inner/SOUL.md"), "").unwrap();
        fs::write(deleted.join("inner/gateway_state.json"), r#"{"desired_state":"running"}"#).unwrap();
    });
    w.set_bin(env!("CARGO_BIN_EXE_hermes-reconcile"));
    let report = w.boot_with(&Container::default());
    let profiles: Vec<&str> = report.entries.iter().map(|e| e.profile.as_str()).collect();
    assert_eq!(profiles, ["default", "live"], "{report:?}");
    assert!(!w.f.slot("ghost").exists() && !w.f.slot("inner").exists());
    assert!(!w.f.boot_log().contains("ghost") && !w.f.boot_log().contains(".deleted"), "{}", w.f.boot_log());
    assert!(report.warnings.iter().any(|m| m.contains("profiles/ghost is not a profile: it is tombstoned")), "{:?}", report.warnings);

    let all = status_all(&w);
    let names: Vec<&str> = all["profiles"].as_array().unwrap().iter().map(|p| p["profile"].as_str().unwrap()).collect();
    assert_eq!(names, ["default", "live"], "{all}");
    assert_eq!(w.cli(true, &["status", "ghost"]).status.code(), Some(4), "no such gateway");
    let list = out(&w.cli(true, &["list"]));
    assert!(!list.contains("ghost") && list.contains("live"), "{list}");

    // At run time: `live` is tombstoned; its slot goes after the registrar's grace.
    let _reg = w.spawn_registrar();
    let tomb = w.f.home.join("profiles/.deleted/live");
    user_file(&tomb);
    let o = w.cli(true, &["request", "live", "--gone"]);
    assert!(o.status.success(), "{}\n{}", out(&o), w.registrar_log());
    assert!(!w.f.slot("live").exists());
    assert_eq!(w.cli(true, &["status", "live"]).status.code(), Some(4));
}

/// Multiplexing on (`multiplex_profiles: true` in config.yaml): a named profile's running
/// intent starts gateway-default even though the root profile's own state is `stopped`
/// (upstream's fold); named slots stay down; a parked profile folds nothing; `status` says
/// which profiles gateway-default serves (JSON and human). The registrar decides alike for a
/// profile that appears at run time.
#[test]
#[ignore = "needs root, s6 and the hermes user"]
fn with_multiplexing_a_named_running_intent_starts_gateway_default_and_status_says_whom_it_serves() {
    prerequisites();
    let mut w = World::new(|f| {
        fs::write(f.home.join("config.yaml"), "gateway:\n  multiplex_profiles: true\n").unwrap();
        f.state("default", Some("stopped"), Some("stopped"));
        f.profile("coder", Some("running"), Some("running"));
        f.profile("writer", Some("stopped"), None);
        f.profile("parkee", Some("running"), None);
        fs::write(f.profile_dir("parkee").join("gateway.parked"), "").unwrap();
    });
    w.set_bin(env!("CARGO_BIN_EXE_hermes-reconcile"));
    let report = w.boot_with(&Container { multiplex: true, ..Container::default() });
    let by = |p: &str| report.entries.iter().find(|e| e.profile == p).map(|e| (e.action, e.reason.clone())).unwrap();
    assert_eq!(by("default"), (Action::Started, Some("folded".into())), "{report:?}");
    assert_eq!(by("coder"), (Action::Registered, Some("folded".into())));
    assert_eq!(by("writer"), (Action::Registered, None));
    assert_eq!(by("parkee"), (Action::Registered, Some("parked".into())));
    assert!(report.warnings.iter().any(|m| m.contains("multiplexing: coder want(s) running")), "{:?}", report.warnings);
    assert!(w.wait_gateway_ready("default"));
    for p in ["coder", "writer", "parkee"] {
        assert_eq!(is_up(&w.f.slot(p)), Some(false), "{p}'s own slot stays down");
    }

    let all = status_all(&w);
    assert_eq!(all["multiplexing"]["serves"], serde_json::json!(["default", "coder", "writer"]), "{all}");
    let entry = |p: &str| all["profiles"].as_array().unwrap().iter().find(|e| e["profile"] == p).cloned().unwrap();
    assert_eq!(
        (entry("coder")["state"].as_str(), entry("coder")["served_by"].as_str()),
        (Some("served-by-default"), Some("default")),
        "{all}"
    );
    assert!(entry("parkee")["served_by"].is_null() && entry("parkee")["state"] == "parked", "{all}");
    let human = out(&w.cli(true, &["status"]));
    assert!(human.contains("multiplexing: gateway-default serves default, coder, writer"), "{human}");
    let one = w.status_json("coder");
    assert_eq!(one["served_by"], "default", "{one}");

    // At run time: gateway-default stopped; a new profile that wants running is registered
    // down and starts gateway-default instead, as the boot pass would have.
    let o = w.cli(true, &["stop", "default"]);
    assert!(o.status.success(), "{}", out(&o));
    let _reg = w.spawn_registrar();
    // Made whole elsewhere and moved in, as a restore does (the registrar may look at a
    // directory the moment it appears).
    let staged = w.f.home.join("fresh.restoring");
    fs::create_dir(&staged).unwrap();
    fs::write(staged.join("SOUL.md"), "restored\n").unwrap();
    fs::write(staged.join("gateway_state.json"), r#"{"gateway_state":"running","desired_state":"running"}"#).unwrap();
    chown_tree(&staged);
    fs::rename(&staged, w.f.profile_dir("fresh")).unwrap();
    let o = w.cli(true, &["request", "fresh"]);
    assert!(o.status.success(), "{}\n{}", out(&o), w.registrar_log());
    assert!(wait_for(Duration::from_secs(10), || is_up(&w.f.slot("default")) == Some(true)), "{}", w.registrar_log());
    assert_eq!(is_up(&w.f.slot("fresh")), Some(false));
    assert!(has_down_file(&w, "fresh"));
    assert!(w.registrar_log().contains("fresh wants running under multiplexing"), "{}", w.registrar_log());
}

/// A world under multiplexing (`multiplex_profiles: true`), the root profile stopped, `setup`
/// adding the rest, booted as a multiplexing container.
fn multiplexed(setup: impl FnOnce(&common::Fixture)) -> World {
    let mut w = World::new(|f| {
        fs::write(f.home.join("config.yaml"), "multiplex_profiles: true\n").unwrap();
        f.state("default", Some("stopped"), Some("stopped"));
        setup(f);
    });
    w.set_bin(env!("CARGO_BIN_EXE_hermes-reconcile"));
    w.boot_with(&Container { multiplex: true, ..Container::default() });
    w
}

/// The fold for the operator's own command: under multiplexing, `start P` of a named profile
/// records P's running intent and brings up gateway-default, which serves it; P's own slot
/// stays down (hermes-agent's gateway would refuse to run beside the multiplexer and crash-loop).
/// `restart P` makes sure P is served without restarting the gateway every profile shares.
#[test]
#[ignore = "needs root, s6 and the hermes user"]
fn with_multiplexing_start_of_a_named_profile_starts_gateway_default_and_keeps_its_own_slot_down() {
    prerequisites();
    let mut w = multiplexed(|f| {
        f.profile("coder", Some("stopped"), Some("stopped"));
        f.profile("writer", Some("stopped"), None);
    });
    for p in ["default", "coder", "writer"] {
        assert_eq!(is_up(&w.f.slot(p)), Some(false), "{p} is down after the boot");
    }

    let o = w.cli(true, &["start", "coder"]);
    assert!(o.status.success(), "{}", out(&o));
    assert!(out(&o).contains("coder is served by gateway-default"), "{}", out(&o));
    assert_eq!(is_up(&w.f.slot("default")), Some(true), "the gateway that serves coder is up");
    assert_eq!(is_up(&w.f.slot("coder")), Some(false), "coder's own slot stays down");
    assert!(has_down_file(&w, "coder"));
    let desired = |dir: &Path| -> serde_json::Value {
        serde_json::from_slice::<serde_json::Value>(&fs::read(dir.join("gateway_state.json")).unwrap()).unwrap()["desired_state"].clone()
    };
    assert_eq!(desired(&w.f.profile_dir("coder")), "running", "coder's intent is recorded");
    assert_eq!(desired(&w.f.home), "stopped", "the root profile's own intent is untouched");

    // A second start under --json: the same gateway answers, nothing restarted.
    let pid = w.status_json("default")["pid"].as_u64().expect("gateway-default's pid");
    let o = w.cli(true, &["--json", "start", "writer"]);
    assert!(o.status.success(), "{}", out(&o));
    let j: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!((j["profile"].as_str(), j["served_by"].as_str(), j["pid"].as_u64()), (Some("writer"), Some("default"), Some(pid)), "{j}");
    assert_eq!(is_up(&w.f.slot("writer")), Some(false));

    let o = w.cli(true, &["restart", "coder"]);
    assert!(o.status.success(), "{}", out(&o));
    assert!(out(&o).contains("gateway-default was not restarted"), "{}", out(&o));
    assert_eq!(w.status_json("default")["pid"].as_u64(), Some(pid), "restarting one profile does not restart every profile's gateway");
    assert_eq!(is_up(&w.f.slot("coder")), Some(false));

    // Stopping a named profile cannot take it out of a multiplexer's service: said, and shown.
    let o = w.cli(true, &["--json", "stop", "writer"]);
    assert!(o.status.success(), "{}", out(&o));
    let j: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(j["served_by"], "default", "{j}");
    assert!(j["note"].as_str().is_some_and(|n| n.contains("gateway-default still serves writer")), "{j}");
    assert_eq!(is_up(&w.f.slot("default")), Some(true), "stopping one profile leaves the shared gateway up");

    // The next boot agrees: coder's running intent folds into gateway-default.
    let report = w.container_restart_with(&Container { multiplex: true, ..Container::default() });
    let default = report.entries.iter().find(|e| e.profile == "default").unwrap();
    assert_eq!((default.action, default.reason.as_deref()), (Action::Started, Some("folded")), "{report:?}");
}

/// Under multiplexing a named profile is served only while gateway-default runs: with it
/// down, `status` says the profile is not served and which gateway to start, and exits 3
/// (one profile and all), instead of calling it served.
#[test]
#[ignore = "needs root, s6 and the hermes user"]
fn with_multiplexing_nothing_is_served_while_gateway_default_is_down() {
    prerequisites();
    let w = multiplexed(|f| {
        f.profile("coder", Some("running"), Some("running"));
    });
    assert!(w.wait_gateway_ready("default"));
    assert_eq!(w.cli(true, &["status", "coder"]).status.code(), Some(0), "served while gateway-default runs");
    assert_eq!(w.status_json("coder")["state"], "served-by-default");

    let o = w.cli(true, &["stop", "default"]);
    assert!(o.status.success(), "{}", out(&o));
    let one = w.cli(true, &["status", "coder"]);
    assert_eq!(one.status.code(), Some(3), "{}", out(&one));
    let all = w.cli(true, &["status"]);
    assert_eq!(all.status.code(), Some(3), "{}", out(&all));
    assert!(out(&all).contains("gateway-default serves every profile, and it is down"), "{}", out(&all));
    let j = w.status_json("coder");
    assert!(j["served_by"].is_null() && j["state"] != "served-by-default", "{j}");
    assert!(j["explanation"].as_str().is_some_and(|e| e.contains("not served") && e.contains("gateway-default is down")), "{j}");

    // Starting the profile starts the gateway that serves it.
    let o = w.cli(true, &["start", "coder"]);
    assert!(o.status.success(), "{}", out(&o));
    assert_eq!(w.cli(true, &["status", "coder"]).status.code(), Some(0));
}

/// The fold's edges: a start of a profile the crash policy holds clears its own hold too (an
/// operator start always wins, and under multiplexing nothing else would ever clear it);
/// `restart --all` restarts gateway-default first, alone, so the named profiles' folds do not
/// watch it die; and a missing gateway-default slot is said as such, leaving a parked
/// profile's marker where it was.
#[test]
#[ignore = "needs root, s6 and the hermes user"]
fn with_multiplexing_the_fold_clears_a_hold_restarts_the_root_first_and_needs_its_slot() {
    prerequisites();
    let w = multiplexed(|f| {
        for p in ["alpha", "beta", "coder"] {
            f.profile(p, Some("stopped"), Some("stopped"));
        }
        let far = 4.0e9;
        fs::write(
            f.profile_dir("coder").join("gateway_policy.json"),
            format!(r#"{{"state":"quarantined","next_start":{far},"consecutive":5,"crashes":[],"probes":1,"running_since":0}}"#),
        )
        .unwrap();
    });

    let o = w.cli(true, &["start", "coder"]);
    assert!(o.status.success(), "{}", out(&o));
    assert!(out(&o).contains("cleared the crash policy's hold (quarantined)"), "{}", out(&o));
    let st = w.cli(true, &["status", "coder"]);
    assert_eq!(st.status.code(), Some(0), "{}", out(&st));
    assert_eq!(w.status_json("coder")["state"], "served-by-default");

    for p in ["alpha", "beta"] {
        let o = w.cli(true, &["start", p]);
        assert!(o.status.success(), "{}", out(&o));
    }
    for _ in 0..3 {
        let o = w.cli(true, &["restart", "--all", "--wait", "1"]);
        assert!(o.status.success(), "restart --all under multiplexing: {}", out(&o));
    }

    let o = w.cli(false, &["unregister", "default", "--force"]);
    assert!(o.status.success(), "{}", out(&o));
    fs::write(w.f.profile_dir("alpha").join("gateway.parked"), "").unwrap();
    chown_tree(&w.f.profile_dir("alpha").join("gateway.parked"));
    let o = w.cli(true, &["start", "alpha"]);
    assert_eq!(o.status.code(), Some(1), "{}", out(&o));
    assert!(out(&o).contains("the boot pass or the registrar makes its slot"), "{}", out(&o));
    assert!(!out(&o).contains("profile create default"), "{}", out(&o));
    assert!(w.f.profile_dir("alpha").join("gateway.parked").exists(), "a failed start leaves the marker");
}

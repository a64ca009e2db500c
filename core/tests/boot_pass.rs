//! The boot pass against upstream's contract (its 36 boot tests, ported by intent; README, "What a boot pass decides") and the
//! design's "deliberately better" items that the pass touches.

use hermes_testkit as common;

use common::*;
use hermes_core::boot::plan::{Action, Container};
use hermes_core::boot::Options;
use hermes_core::clock::SystemClock;
use hermes_core::ctx::Ctx;
use hermes_core::fs::RealFs;
use std::fs;
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};

fn running_slot_checks(f: &Fixture, name: &str) {
    let slot = f.slot(name);
    let run = slot.join("run");
    assert!(run.is_file(), "{} missing", run.display());
    assert_eq!(mode(&run) & 0o111, 0o111, "run must be executable");
    assert_eq!(fs::read_to_string(slot.join("type")).unwrap(), "longrun\n");
    assert!(!slot.join("down").exists(), "a started slot has no down file");
}

#[test]
fn running_profile_is_registered_and_autostarted() {
    let f = Fixture::new();
    f.profile("coder", Some("running"), None);
    let r = f.run();
    assert_eq!(named(&r), vec![("coder".into(), Some("running".into()), Action::Started)]);
    running_slot_checks(&f, "coder");
}

#[rstest::rstest]
#[case::stopped(Some("stopped"), None, Some("stopped"))]
#[case::startup_failed(Some("startup_failed"), None, Some("startup_failed"))]
#[case::starting(Some("starting"), None, Some("starting"))]
#[case::desired_stopped_beats_running(Some("running"), Some("stopped"), Some("stopped"))]
#[case::no_state_file(None, None, None)]
fn not_running_profiles_are_registered_down(#[case] state: Option<&str>, #[case] desired: Option<&str>, #[case] prior: Option<&str>) {
    let f = Fixture::new();
    f.profile("coder", state, desired);
    let r = f.run();
    assert_eq!(named(&r), vec![("coder".into(), prior.map(String::from), Action::Registered)]);
    assert!(f.slot("coder").join("down").is_file());
    assert!(f.slot("coder").join("run").is_file());
}

#[rstest::rstest]
#[case::desired_running_beats_failed(Some("startup_failed"), Some("running"))]
#[case::draining(Some("draining"), None)]
#[case::degraded(Some("degraded"), None)]
fn running_equivalents_autostart(#[case] state: Option<&str>, #[case] desired: Option<&str>) {
    let f = Fixture::new();
    f.profile("coder", state, desired);
    let r = f.run();
    assert_eq!(named(&r), vec![("coder".into(), Some("running".into()), Action::Started)]);
    running_slot_checks(&f, "coder");
}

#[test]
fn stale_runtime_files_are_removed_but_state_and_lock_kept() {
    let f = Fixture::new();
    f.profile("coder", Some("running"), None);
    f.profile("default", Some("stopped"), None);
    f.stale_runtime_files("coder");
    f.stale_runtime_files("default");
    fs::write(f.profile_dir("coder").join("gateway.lock"), "x").unwrap();
    f.run();
    for p in ["coder", "default"] {
        let d = f.profile_dir(p);
        assert!(!d.join("gateway.pid").exists(), "{p}: gateway.pid swept");
        assert!(!d.join("processes.json").exists(), "{p}: processes.json swept");
        assert!(d.join("gateway_state.json").exists(), "{p}: state kept");
    }
    assert!(f.profile_dir("coder").join("gateway.lock").exists());
}

#[test]
fn directory_without_marker_is_not_a_profile() {
    let f = Fixture::new();
    fs::create_dir_all(f.home.join("profiles/ghost")).unwrap();
    fs::write(f.home.join("profiles/ghost/config.yaml"), "x: 1\n").unwrap();
    fs::write(f.home.join("profiles/notes.txt"), "not a dir").unwrap();
    let r = f.run();
    assert!(named(&r).is_empty());
    assert!(!f.slot("ghost").exists());
}

/// `SOUL.md` is followed, as upstream's `exists()` follows it: a link to a file marks a
/// profile, a dangling or looping one marks nothing (it did here, and started the gateway).
#[test]
fn a_dangling_soul_link_marks_no_profile() {
    let f = Fixture::new();
    for (name, target) in [("ghost", "missing.md"), ("loop", "SOUL.md"), ("real", "persona.md")] {
        let d = f.profile(name, None, Some("running"));
        fs::remove_file(d.join("SOUL.md")).unwrap();
        fs::write(d.join("persona.md"), "x").unwrap();
        std::os::unix::fs::symlink(target, d.join("SOUL.md")).unwrap();
    }
    let r = f.run();
    assert_eq!(named(&r), vec![("real".into(), Some("running".into()), Action::Started)]);
    assert!(!f.slot("ghost").exists() && !f.slot("loop").exists());
}

#[test]
fn corrupt_non_object_and_bom_state_files() {
    let f = Fixture::new();
    for (name, body) in
        [("corrupt", &b"{ not valid json"[..]), ("list", b"[\"running\"]"), ("bom", b"\xEF\xBB\xBF{\"gateway_state\":\"running\"}")]
    {
        let d = f.profile(name, None, None);
        fs::write(d.join("gateway_state.json"), body).unwrap();
    }
    let r = f.run();
    assert_eq!(
        named(&r),
        vec![
            // Upstream 0.19.0's json.loads refuses a BOM: not started there, so not here.
            ("bom".into(), None, Action::Registered),
            ("corrupt".into(), None, Action::Registered),
            ("list".into(), None, Action::Registered),
        ]
    );
    assert!(r.warnings.iter().any(|w| w.contains("corrupt/gateway_state.json") && w.contains("not valid JSON")));
    assert!(r.warnings.iter().any(|w| w.contains("bom/gateway_state.json") && w.contains("BOM")));
}

#[test]
fn boot_log_has_one_line_per_profile_in_upstream_format() {
    let f = Fixture::new();
    f.profile("a", Some("running"), None);
    f.profile("b", Some("stopped"), None);
    let opts = Options { timestamp: Some("2026-05-21T06:18:05+0000".into()), ..Options::default() };
    f.run_with(&Container::default(), &opts);
    assert_eq!(
        f.boot_log(),
        "2026-05-21T06:18:05+0000 profile=default prior_state=None action=registered prior_exit=unknown\n\
         2026-05-21T06:18:05+0000 profile=a prior_state=running action=started prior_exit=unknown\n\
         2026-05-21T06:18:05+0000 profile=b prior_state=stopped action=registered prior_exit=unknown\n"
    );
}

#[test]
fn boot_log_timestamp_has_upstream_shape() {
    let f = Fixture::new();
    f.run();
    let log = f.boot_log();
    let ts = log.split(' ').next().unwrap();
    let parsed = chrono::DateTime::parse_from_str(ts, "%Y-%m-%dT%H:%M:%S%z");
    assert!(parsed.is_ok(), "timestamp {ts:?} must match %Y-%m-%dT%H:%M:%S%z");
    assert!(log.contains(" profile=default "), "the harness waits for the default line");
}

#[test]
fn boot_log_rotation() {
    let f = Fixture::new();
    let logs = f.home.join("logs");
    fs::create_dir(&logs).unwrap();
    let opts = Options { rotate_bytes: 200, ..Options::default() };

    // Below the threshold: appended in place, no .1.
    fs::write(logs.join("container-boot.log"), "old-small\n").unwrap();
    f.run_with(&Container::default(), &opts);
    assert!(f.boot_log().starts_with("old-small\n"));
    assert!(!logs.join("container-boot.log.1").exists());

    // At or above: moved to .1 (replacing an older .1), new log has none of the old bytes.
    fs::write(logs.join("container-boot.log.1"), "ancient\n").unwrap();
    fs::write(logs.join("container-boot.log"), "x".repeat(300)).unwrap();
    f.run_with(&Container::default(), &opts);
    assert_eq!(fs::read_to_string(logs.join("container-boot.log.1")).unwrap(), "x".repeat(300));
    assert!(!f.boot_log().contains("xxxx"), "old bytes left the live log");
    assert!(f.boot_log().contains("profile=default"));

    // A `.1` that cannot be replaced (a directory): warned, and appended to the log as it is,
    // as upstream does (this pass used to write nothing at all).
    fs::remove_file(logs.join("container-boot.log.1")).unwrap();
    fs::create_dir(logs.join("container-boot.log.1")).unwrap();
    fs::write(logs.join("container-boot.log"), "y".repeat(300)).unwrap();
    let r = f.run_with(&Container::default(), &opts);
    assert!(f.boot_log().starts_with(&"y".repeat(300)) && f.boot_log().contains("profile=default"), "{}", f.boot_log());
    assert!(r.warnings.iter().any(|w| w.contains("could not rotate") && w.contains("container-boot.log.1")), "{:?}", r.warnings);
    assert!(logs.join("container-boot.log.1").is_dir());
}

#[test]
fn dry_run_changes_nothing_and_reports_the_same_actions() {
    let f = Fixture::new();
    f.profile("coder", Some("running"), None);
    f.stale_runtime_files("coder");
    fs::create_dir(f.scandir.join(".gateway-old.tmp")).unwrap();
    let dry = f.run_with(&Container::default(), &Options { dry_run: true, ..Options::default() });
    assert!(f.profile_dir("coder").join("gateway.pid").exists());
    assert_eq!(f.scandir_names(), vec![".gateway-old.tmp"]);
    assert!(!f.home.join("logs").exists());
    assert_eq!(dry.rescan, None);
    let real = f.run();
    assert_eq!(actions(&dry), actions(&real));
}

#[test]
fn missing_profiles_root_still_registers_default_slot() {
    let f = Fixture::new();
    let r = f.run();
    assert_eq!(actions(&r), vec![("default".into(), None, Action::Registered)]);
    assert!(f.slot("default").join("run").is_file());
    assert!(f.slot("default").join("down").is_file());
}

#[test]
fn invalid_names_are_skipped_and_the_pass_goes_on() {
    // Upstream raised here, leaving later profiles unregistered and no boot log.
    let f = Fixture::new();
    f.profile("BadName", Some("running"), None);
    f.profile("zeta", Some("running"), None);
    let r = f.run();
    assert_eq!(named(&r), vec![("BadName".into(), None, Action::Skipped), ("zeta".into(), Some("running".into()), Action::Started)]);
    assert_eq!(r.entries[1].reason.as_deref(), Some("invalid-name"));
    assert!(!f.scandir.join("gateway-BadName").exists());
    assert!(f.boot_log().contains("profile=BadName prior_state=None action=skipped prior_exit=unknown reason=invalid-name"));
    assert!(f.boot_log().contains("profile=zeta"));
    assert!(r.errors.is_empty(), "a skip is not an error");
}

#[test]
fn publish_is_atomic_and_leaves_no_staging() {
    let f = Fixture::new();
    f.profile("coder", Some("running"), None);
    f.run();
    assert_eq!(f.scandir_names(), vec!["gateway-coder", "gateway-default"]);
    for p in ["type", "run", "finish", "log/run"] {
        assert!(f.slot("coder").join(p).is_file(), "{p}");
    }
}

#[test]
fn second_pass_replaces_the_slot_in_place() {
    let f = Fixture::new();
    f.profile("coder", Some("running"), None);
    f.run();
    let run1 = fs::read(f.slot("coder").join("run")).unwrap();
    assert!(!f.slot("coder").join("down").exists());
    f.state("coder", Some("stopped"), None);
    let r = f.run();
    assert_eq!(fs::read(f.slot("coder").join("run")).unwrap(), run1);
    assert!(f.slot("coder").join("down").exists(), "down appears when the state changes to stopped");
    assert_eq!(f.scandir_names(), vec!["gateway-coder", "gateway-default"], "no leftovers after a replace");
    assert!(r.errors.is_empty());
}

#[test]
fn stale_staging_leftovers_are_swept_including_root_owned_and_legacy_names() {
    let f = Fixture::new();
    for d in ["gateway-coder.tmp", ".gateway-coder.tmp", ".gateway-x.tmp.stale-123/supervise"] {
        fs::create_dir_all(f.scandir.join(d)).unwrap();
    }
    fs::write(f.scandir.join(".gateway-coder.tmp/run"), "#!/bin/sh\n").unwrap();
    // A leftover that is a symlink to a directory outside: the link goes, the target stays.
    let outside = f.tmp.path().join("outside");
    fs::create_dir(&outside).unwrap();
    fs::write(outside.join("precious"), "keep").unwrap();
    std::os::unix::fs::symlink(&outside, f.scandir.join(".gateway-evil.tmp")).unwrap();
    let r = f.run();
    assert_eq!(f.scandir_names(), vec!["gateway-default"]);
    assert_eq!(r.swept_staging.len(), 4, "{:?}", r.swept_staging);
    assert_eq!(fs::read_to_string(outside.join("precious")).unwrap(), "keep");
}

#[test]
fn default_slot_run_script_omits_profile_flag() {
    let f = Fixture::new();
    f.run();
    let run = fs::read_to_string(f.slot("default").join("run")).unwrap();
    assert!(run.contains("hermes gateway run --replace"));
    assert!(!run.contains("-p default") && !run.contains("-p 'default'"));
}

#[rstest::rstest]
#[case(Some("running"), Action::Started)]
#[case(Some("stopped"), Action::Registered)]
#[case(Some("startup_failed"), Action::Registered)]
fn default_slot_follows_root_state(#[case] state: Option<&str>, #[case] want: Action) {
    let f = Fixture::new();
    f.state("default", state, None);
    let r = f.run();
    assert_eq!(r.entries[0].action, want);
    assert_eq!(f.slot("default").join("down").exists(), want == Action::Registered);
}

#[test]
fn legacy_gateway_run_command_seeds_root_state_once() {
    let f = Fixture::new();
    let c = Container { legacy_gateway_run: true, ..Container::default() };
    let r = f.run_with(&c, &Options::default());
    assert_eq!(actions(&r), vec![("default".into(), Some("running".into()), Action::Started)]);
    assert!(r.migrated_legacy_state);
    let doc: serde_json::Value = serde_json::from_str(&fs::read_to_string(f.home.join("gateway_state.json")).unwrap()).unwrap();
    assert_eq!(doc["gateway_state"], "running");
    assert_eq!(doc["desired_state"], "running");
    assert_eq!(doc["migrated_from"], "legacy-container-cmd");
    assert!(doc["timestamp"].is_u64());
    if is_root() {
        assert_eq!(fs::metadata(f.home.join("gateway_state.json")).unwrap().uid(), 10000, "the user's file");
    }
}

#[test]
fn without_the_legacy_command_no_state_is_seeded() {
    let f = Fixture::new();
    let r = f.run();
    assert_eq!(r.entries[0].action, Action::Registered);
    assert!(!f.home.join("gateway_state.json").exists());
}

#[rstest::rstest]
#[case("stopped")]
#[case("startup_failed")]
fn an_existing_root_state_beats_the_legacy_command(#[case] state: &str) {
    let f = Fixture::new();
    f.state("default", Some(state), None);
    let before = fs::read(f.home.join("gateway_state.json")).unwrap();
    let c = Container { legacy_gateway_run: true, ..Container::default() };
    let r = f.run_with(&c, &Options::default());
    assert_eq!(r.entries[0].action, Action::Registered);
    assert!(!r.migrated_legacy_state);
    assert_eq!(fs::read(f.home.join("gateway_state.json")).unwrap(), before, "file untouched");
}

#[test]
fn default_comes_first_then_named_profiles_sorted() {
    let f = Fixture::new();
    for p in ["z-last", "a-first", "m-mid"] {
        f.profile(p, Some("stopped"), None);
    }
    let r = f.run();
    let order: Vec<_> = r.entries.iter().map(|e| e.profile.as_str()).collect();
    assert_eq!(order, ["default", "a-first", "m-mid", "z-last"]);
}

#[test]
fn profiles_default_subdir_is_skipped_with_warning() {
    let f = Fixture::new();
    f.profile("default", Some("stopped"), None); // the root
    let sub = f.home.join("profiles/default");
    fs::create_dir_all(&sub).unwrap();
    fs::write(sub.join("SOUL.md"), "x").unwrap();
    fs::write(sub.join("gateway_state.json"), r#"{"gateway_state":"running"}"#).unwrap();
    let r = f.run();
    assert_eq!(r.entries.iter().filter(|e| e.profile == "default").count(), 1);
    assert_eq!(r.entries[0].action, Action::Registered, "the root's own state decides");
    assert!(r.warnings.iter().any(|w| w.contains("profiles/default") && w.contains("reserved root-profile")));
}

/// As a link too: one `profile=default` line (upstream's harness waits for it), not a second
/// `profile=default … action=skipped reason=symlink`.
#[test]
fn profiles_default_as_a_link_gives_no_second_default_line() {
    let f = Fixture::new();
    let elsewhere = f.tmp.path().join("elsewhere");
    fs::create_dir_all(&elsewhere).unwrap();
    fs::write(elsewhere.join("SOUL.md"), "x").unwrap();
    fs::create_dir_all(f.home.join("profiles")).unwrap();
    std::os::unix::fs::symlink(&elsewhere, f.home.join("profiles/default")).unwrap();
    let r = f.run();
    assert_eq!(r.entries.iter().filter(|e| e.profile == "default").count(), 1, "{:?}", r.entries);
    assert!(f.boot_log().matches("profile=default").count() == 1, "{}", f.boot_log());
    assert!(r.warnings.iter().any(|w| w.contains("profiles/default") && w.contains("symbolic link")));
}

#[test]
fn dashboard_container_touches_nothing() {
    let f = Fixture::new();
    f.profile("worker", Some("running"), None);
    let c = Container { dashboard: true, ..Container::default() };
    let r = f.run_with(&c, &Options::default());
    assert!(r.dashboard_skip);
    assert!(r.entries.is_empty());
    assert!(f.scandir_names().is_empty(), "no gateway-worker, no gateway-default");
    assert!(!f.home.join("logs").exists());
}

#[test]
fn registered_profile_has_finish_script_with_the_exit_contract() {
    let f = Fixture::new();
    f.profile("coder", Some("stopped"), None);
    f.run();
    let finish = f.slot("coder").join("finish");
    assert_eq!(mode(&finish), 0o755);
    let body = fs::read_to_string(&finish).unwrap();
    assert!(body.contains("78") && body.contains("125"));
    // Run the contract itself: 0 and 78 park the slot, anything else restarts.
    let tmp = f.tmp.path().join("finish.sh");
    fs::write(&tmp, body.replacen("#!/command/with-contenv sh", "#!/bin/sh", 1)).unwrap();
    fs::set_permissions(&tmp, fs::Permissions::from_mode(0o755)).unwrap();
    for (code, want) in [("0", 125), ("78", 125), ("1", 0), ("137", 0), ("256", 0), ("75", 0)] {
        let st = std::process::Command::new(&tmp).args([code, "0", "gateway-coder", "1"]).status().unwrap();
        assert_eq!(st.code(), Some(want), "finish {code}");
    }
}

#[test]
fn multiplex_keeps_named_slots_down_but_default_follows_its_state() {
    let f = Fixture::new();
    f.state("default", Some("running"), None);
    f.profile("coder", Some("running"), None);
    let c = Container { multiplex: true, ..Container::default() };
    let r = f.run_with(&c, &Options::default());
    assert_eq!(
        actions(&r),
        vec![("default".into(), Some("running".into()), Action::Started), ("coder".into(), Some("running".into()), Action::Registered),]
    );
    assert!(f.slot("coder").join("down").exists());
    // Persisted states are not modified.
    assert!(fs::read_to_string(f.profile_dir("coder").join("gateway_state.json")).unwrap().contains("running"));
}

#[test]
fn multiplex_flag_from_config_yaml_top_level_or_nested_and_env_override() {
    use hermes_core::fs::Fs;
    use hermes_core::volume::multiplex::{read_config_flag, resolve};
    let f = Fixture::new();
    let home = RealFs.open_root(&f.home).unwrap();
    assert_eq!(read_config_flag(&RealFs, &home), Ok(None));
    fs::write(f.home.join("config.yaml"), "multiplex_profiles: true\n").unwrap();
    assert_eq!(read_config_flag(&RealFs, &home), Ok(Some(true)));
    fs::write(f.home.join("config.yaml"), "gateway:\n  multiplex_profiles: yes\n").unwrap();
    assert_eq!(read_config_flag(&RealFs, &home), Ok(Some(true)));
    assert!(!resolve(Some("false"), read_config_flag(&RealFs, &home)).0, "env false beats config true");
    fs::write(f.home.join("config.yaml"), "multiplex_profiles: [unclosed\n").unwrap();
    let (flag, warning) = resolve(Some("1"), read_config_flag(&RealFs, &home));
    assert!(flag && warning.is_none());
    let (flag, warning) = resolve(None, read_config_flag(&RealFs, &home));
    assert!(!flag && warning.unwrap().contains("config.yaml"));
}

#[rstest::rstest]
#[case(r#"{"phase":"exited","exit_code":0}"#, "clean")]
#[case(r#"{"phase":"running","pid":7}"#, "unclean")]
#[case(r#"{"phase":"weird"}"#, "unknown")]
#[case("garbage", "unknown")]
fn prior_exit_comes_from_the_lifecycle_sentinel(#[case] body: &str, #[case] want: &str) {
    let f = Fixture::new();
    let d = f.profile("coder", Some("running"), None);
    fs::create_dir(d.join("state")).unwrap();
    fs::write(d.join("state/gateway.lifecycle.json"), body).unwrap();
    let r = f.run();
    assert_eq!(r.entries[1].prior_exit.as_str(), want);
    assert!(f.boot_log().contains(&format!("profile=coder prior_state=running action=started prior_exit={want}\n")));
}

#[test]
fn slot_layout_modes_and_ownership() {
    let f = Fixture::new();
    f.profile("coder", Some("stopped"), None);
    f.run();
    let slot = f.slot("coder");
    for base in [slot.clone(), slot.join("log")] {
        // s6-svperms -G's model when root renders; private when a user does.
        let (sup, ctl) = if is_root() { (0o710, 0o620) } else { (0o700, 0o600) };
        assert_eq!(mode(&base.join("supervise")), sup, "{}", base.display());
        let control = base.join("supervise/control");
        assert!(fs::symlink_metadata(&control).unwrap().file_type().is_fifo());
        assert_eq!(mode(&control), ctl);
        assert!(!base.join("event").exists(), "event/ is s6-supervise's to make, never delegated");
        if is_root() {
            for p in ["supervise", "supervise/control"] {
                let m = fs::symlink_metadata(base.join(p)).unwrap();
                assert_eq!((m.uid(), m.gid()), (0, 10000), "{p}: root's, the hermes group's to use");
            }
        }
    }
    // Code root runs stays root's: owned by the pass's user, never group/other-writable.
    let me = nix::unistd::geteuid().as_raw();
    for p in ["run", "finish", "log/run", "type", "down", ".", "log"] {
        let m = fs::symlink_metadata(slot.join(p)).unwrap();
        assert_eq!(m.uid(), me, "{p}");
        assert_eq!(m.mode() & 0o022, 0, "{p} must not be group/other-writable");
    }
    assert_eq!(mode(&slot), 0o755, "published slot is readable, not the 0700 of staging");
}

#[test]
fn writes_nothing_outside_home_and_scandir() {
    use hermes_core::boot;
    use hermes_core::fs::faulty::FaultyFs;
    let f = Fixture::new();
    f.profile("coder", Some("running"), None);
    f.profile("writer", None, None);
    f.stale_runtime_files("coder");
    fs::create_dir(f.scandir.join(".gateway-old.tmp")).unwrap();
    let fs_ = FaultyFs::new(&RealFs, None);
    f.hand_over();
    boot::run(&Ctx::new(&fs_, &SystemClock, &f.cfg), &Container::default(), &Options::default()).unwrap();
    let log = fs_.log();
    assert!(log.len() > 40, "recorded {} steps", log.len());
    for (op, path) in log {
        assert!(
            path.starts_with(&f.home) || path.starts_with(&f.scandir),
            "{op} on {} is outside the home and the scandir",
            path.display()
        );
    }
}

#[test]
fn an_injected_failure_on_one_slot_fails_that_slot_only_and_exits_nonzero() {
    use hermes_core::boot;
    use hermes_core::fs::faulty::{Fault, FaultyFs};
    let f = Fixture::new();
    f.profile("aaa", Some("running"), None);
    f.profile("bbb", Some("running"), None);
    // Find the step that creates bbb's run script, then fail exactly that one.
    let probe = FaultyFs::new(&RealFs, None);
    let g = Fixture::new();
    g.profile("aaa", Some("running"), None);
    g.profile("bbb", Some("running"), None);
    g.hand_over();
    boot::run(&Ctx::new(&probe, &SystemClock, &g.cfg), &Container::default(), &Options::default()).unwrap();
    let step = probe.log().iter().position(|(op, p)| op == "create" && p.ends_with(".gateway-bbb.tmp/run")).unwrap() + 1;
    let faulty = FaultyFs::new(&RealFs, Some(Fault::ErrorAt(step)));
    f.hand_over();
    let r = boot::run(&Ctx::new(&faulty, &SystemClock, &f.cfg), &Container::default(), &Options::default()).unwrap();
    assert_eq!(r.entries.iter().map(|e| e.action).collect::<Vec<_>>(), [Action::Registered, Action::Started, Action::Failed]);
    assert_eq!(r.errors.len(), 1, "{:?}", r.errors);
    let e = r.errors[0].to_string();
    assert!(e.contains("gateway-bbb") && e.contains("injected fault"), "{e}");
    assert_eq!(f.scandir_names(), vec!["gateway-aaa", "gateway-default"], "no half-built slot, no staging left");
    assert!(f.boot_log().contains("profile=bbb prior_state=running action=failed prior_exit=unknown reason=publish-error"));
    // The next pass repairs it.
    let r2 = f.run();
    assert!(r2.errors.is_empty());
    running_slot_checks(&f, "bbb");
}

#[test]
fn profiles_beyond_the_scanners_room_are_skipped_and_reported_default_first() {
    let mut f = Fixture::new();
    for p in ["a1", "a2", "a3", "a4"] {
        f.profile(p, Some("running"), None);
    }
    // 8 kept for other services leaves 6: the default slot and two profiles.
    f.cfg.max_services = 14;
    f.cfg.reserved_services = 8;
    let r = f.run();
    assert_eq!(
        actions(&r).into_iter().map(|a| a.2).collect::<Vec<_>>(),
        [Action::Registered, Action::Started, Action::Started, Action::Skipped, Action::Skipped]
    );
    assert_eq!(r.entries[3].reason.as_deref(), Some("capacity"));
    assert!(r.errors.is_empty(), "over capacity is reported, not an error: {:?}", r.errors);
    let w = r.warnings.iter().find(|w| w.contains("not published")).expect("a warning says so");
    assert!(w.contains("2 profile(s)") && w.contains("at most 14 services") && w.contains("s6-svscan -c"), "{w}");
    assert!(f.boot_log().contains("profile=a3 prior_state=running action=skipped prior_exit=unknown reason=capacity"), "{}", f.boot_log());
    assert_eq!(f.scandir_names(), vec!["gateway-a1", "gateway-a2", "gateway-default"]);
}

#[test]
fn other_services_beyond_the_reserve_shrink_the_room() {
    let mut f = Fixture::new();
    for p in ["a1", "a2"] {
        f.profile(p, None, None);
    }
    // Five static services with loggers use 10: more than the reserve of 4.
    for i in 0..5 {
        fs::create_dir_all(f.scandir.join(format!("static{i}/log"))).unwrap();
    }
    f.cfg.max_services = 14;
    f.cfg.reserved_services = 4;
    let r = f.run();
    assert_eq!(named(&r).into_iter().map(|a| a.2).collect::<Vec<_>>(), [Action::Registered, Action::Skipped]);
}

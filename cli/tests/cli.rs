//! The binary as an operator and cont-init see it: output lines, exit codes, --json, errors.

use hermes_testkit as common;

use common::*;
use std::fs;
use std::process::{Command, Output};

fn bin(f: &Fixture) -> Command {
    f.hand_over();
    let mut c = Command::new(env!("CARGO_BIN_EXE_hermes-reconcile"));
    c.env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("HERMES_HOME", &f.home)
        .env("S6_PROFILE_GATEWAY_SCANDIR", &f.scandir)
        .args(["--proc-root", f.tmp.path().join("proc").to_str().unwrap()]);
    c
}

fn text(o: &Output) -> (String, String) {
    (String::from_utf8_lossy(&o.stdout).into_owned(), String::from_utf8_lossy(&o.stderr).into_owned())
}

#[test]
fn help_teaches_exit_codes_and_environment() {
    let f = Fixture::new();
    let o = bin(&f).arg("--help").output().unwrap();
    let (out, _) = text(&o);
    assert!(o.status.success());
    for needle in ["Exit codes", "HERMES_HOME", "S6_PROFILE_GATEWAY_SCANDIR", "plan", "--json", "container-boot.log"] {
        assert!(out.contains(needle), "--help lacks {needle:?}:\n{out}");
    }
}

#[test]
fn boot_pass_prints_upstream_lines_and_exits_zero() {
    let f = Fixture::new();
    f.profile("coder", Some("running"), None);
    f.profile("writer", Some("stopped"), None);
    let o = bin(&f).output().unwrap();
    let (out, err) = text(&o);
    assert_eq!(o.status.code(), Some(0), "{err}");
    assert_eq!(
        out,
        "reconcile: profile=default prior_state=None action=registered\n\
         reconcile: profile=coder prior_state=running action=started\n\
         reconcile: profile=writer prior_state=stopped action=registered\n"
    );
    assert!(err.contains("no s6-svscan is listening"), "{err}");
    assert!(f.slot("coder").join("run").is_file());
}

#[test]
fn plan_json_describes_without_touching() {
    let f = Fixture::new();
    f.profile("coder", Some("running"), None);
    let o = bin(&f).args(["plan", "--json"]).output().unwrap();
    assert!(o.status.success());
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["dry_run"], true);
    assert_eq!(v["entries"][1]["profile"], "coder");
    assert_eq!(v["entries"][1]["action"], "started");
    assert_eq!(v["entries"][0]["prior_state"], serde_json::Value::Null);
    assert!(f.scandir_names().is_empty());
    let o = bin(&f).args(["boot", "--dry-run"]).output().unwrap();
    assert!(o.status.success() && f.scandir_names().is_empty());
}

#[test]
fn boot_json_reports_rescan_and_entries() {
    let f = Fixture::new();
    let o = bin(&f).arg("--json").output().unwrap();
    assert!(o.status.success());
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["rescan"], "no-scanner");
    assert_eq!(v["entries"][0]["action"], "registered");
    assert_eq!(v["errors"], serde_json::json!([]));
}

#[test]
fn missing_scandir_exits_3_and_names_the_fix() {
    let f = Fixture::new();
    let o = bin(&f).env("S6_PROFILE_GATEWAY_SCANDIR", f.tmp.path().join("nope")).output().unwrap();
    let (_, err) = text(&o);
    assert_eq!(o.status.code(), Some(3));
    assert!(err.contains("nope") && err.contains("--scandir"), "{err}");
    assert!(!f.home.join("logs").exists(), "nothing changed");
}

#[test]
fn bad_configuration_exits_2_without_a_panic() {
    let f = Fixture::new();
    for (k, v) in [("HERMES_UID", "not-a-number"), ("HERMES_S6_INTERPRETER", "  "), ("HERMES_HOME", "relative/path")] {
        let o = bin(&f).env(k, v).output().unwrap();
        let (_, err) = text(&o);
        assert_eq!(o.status.code(), Some(2), "{k}={v}: {err}");
        assert!(!err.contains("panicked"), "{err}");
    }
}

fn fake_proc(f: &Fixture, argv: &[&str]) {
    let d = f.tmp.path().join("proc/1");
    fs::create_dir_all(&d).unwrap();
    let mut raw = Vec::new();
    for a in argv {
        raw.extend_from_slice(a.as_bytes());
        raw.push(0);
    }
    fs::write(d.join("cmdline"), raw).unwrap();
}

#[test]
#[ignore = "needs root (the container-argv check trusts only root-owned /proc entries)"]
fn dashboard_container_is_skipped_entirely() {
    need(is_root(), "needs root: the container-argv check trusts only root-owned /proc entries");
    let f = Fixture::new();
    f.profile("worker", Some("running"), None);
    fake_proc(&f, &["/init", "/opt/hermes/docker/main-wrapper.sh", "dashboard"]);
    let o = bin(&f).output().unwrap();
    let (out, _) = text(&o);
    assert!(o.status.success());
    assert!(out.contains("skipping (dashboard container"), "{out}");
    assert!(f.scandir_names().is_empty());
}

#[test]
#[ignore = "needs root (the container-argv check trusts only root-owned /proc entries)"]
fn legacy_gateway_run_seeds_unless_opted_out() {
    need(is_root(), "needs root: the container-argv check trusts only root-owned /proc entries");
    let f = Fixture::new();
    fake_proc(&f, &["/init", "/opt/hermes/docker/main-wrapper.sh", "gateway", "run"]);
    let o = bin(&f).env("HERMES_GATEWAY_NO_SUPERVISE", "yes").output().unwrap();
    assert!(text(&o).0.contains("profile=default prior_state=None action=registered"));
    assert!(!f.home.join("gateway_state.json").exists());
    // The removed upstream skip flag is ignored.
    let o = bin(&f).env("HERMES_SKIP_PROFILE_RECONCILE", "1").output().unwrap();
    assert!(text(&o).0.contains("profile=default prior_state=running action=started"));
    assert!(f.home.join("gateway_state.json").exists());
}

#[test]
fn multiplex_env_keeps_named_slots_down() {
    let f = Fixture::new();
    f.profile("coder", Some("running"), None);
    fs::write(f.home.join("config.yaml"), "multiplex_profiles: false\n").unwrap();
    let o = bin(&f).env("GATEWAY_MULTIPLEX_PROFILES", "true").output().unwrap();
    assert!(text(&o).0.contains("profile=coder prior_state=running action=registered"));
    assert!(f.slot("coder").join("down").exists());
}

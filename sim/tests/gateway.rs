//! The reference gateway keeps the state-file contract the supervision layer relies on.

use serde_json::Value;
use std::fs;
use std::path::Path;
use std::process::{Child, Command};
use std::time::{Duration, Instant};

fn spawn(home: &Path, profile: &str, port: u16, replace: bool) -> Child {
    let mut c = Command::new(env!("CARGO_BIN_EXE_hermes-gateway"));
    c.env("HERMES_HOME", home).args(["-p", profile, "gateway", "run", "--port", &port.to_string()]);
    if replace {
        c.arg("--replace");
    }
    c.spawn().unwrap()
}

fn state(dir: &Path) -> Value {
    serde_json::from_str(&fs::read_to_string(dir.join("gateway_state.json")).unwrap_or_else(|_| "null".into())).unwrap()
}

fn wait(mut f: impl FnMut() -> bool) -> bool {
    let end = Instant::now() + Duration::from_secs(5);
    while Instant::now() < end {
        if f() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    false
}

fn term(c: &Child) {
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(c.id() as i32), nix::sys::signal::Signal::SIGTERM).unwrap();
}

fn setup(profile: &str) -> (tempfile::TempDir, std::path::PathBuf) {
    let t = tempfile::tempdir().unwrap();
    let dir = t.path().join("profiles").join(profile);
    fs::create_dir_all(&dir).unwrap();
    fs::write(dir.join("gateway_state.json"), r#"{"desired_state":"running","custom":1}"#).unwrap();
    (t, dir)
}

#[test]
fn runs_answers_health_and_treats_unmarked_sigterm_as_restart() {
    let (t, dir) = setup("coder");
    let mut c = spawn(t.path(), "coder", 28111, false);
    assert!(wait(|| state(&dir)["gateway_state"] == "running"));
    let pidrec: Value = serde_json::from_str(&fs::read_to_string(dir.join("gateway.pid")).unwrap()).unwrap();
    assert_eq!(pidrec["pid"], c.id());
    assert_eq!(state(&dir)["desired_state"], "running", "other keys survive");
    assert_eq!(state(&dir)["custom"], 1);
    let body = hermes_sim::gateway::probe(28111).unwrap();
    assert!(body.contains("\"profile\":\"coder\""), "{body}");
    term(&c);
    assert_eq!(c.wait().unwrap().code(), Some(1), "container stop: exit non-zero so s6 revives it");
    assert_eq!(state(&dir)["gateway_state"], "running", "persists running for the next boot");
    assert!(!dir.join("gateway.pid").exists());
    let lc: Value = serde_json::from_str(&fs::read_to_string(dir.join("state/gateway.lifecycle.json")).unwrap()).unwrap();
    assert_eq!(lc["phase"], "exited");
}

#[test]
fn planned_stop_marker_for_this_pid_means_operator_stop() {
    let (t, dir) = setup("writer");
    let mut c = spawn(t.path(), "writer", 28112, false);
    assert!(wait(|| state(&dir)["gateway_state"] == "running"));
    // A marker for another pid is not ours.
    fs::write(dir.join(".gateway-planned-stop.json"), format!(r#"{{"target_pid":1,"written_at":"{}"}}"#, chrono::Utc::now().to_rfc3339())).unwrap();
    let start = hermes_core::lifecycle::marker::process_start_time(c.id() as u64);
    let marker = serde_json::json!({"target_pid": c.id(), "target_start_time": start, "stopper_pid": 1,
        "written_at": chrono::Utc::now().to_rfc3339()});
    fs::write(dir.join(".gateway-planned-stop.json"), marker.to_string()).unwrap();
    term(&c);
    assert_eq!(c.wait().unwrap().code(), Some(0));
    assert_eq!(state(&dir)["gateway_state"], "stopped");
    assert!(!dir.join(".gateway-planned-stop.json").exists(), "consumed");
}

#[test]
fn config_error_knob_exits_78_and_replace_takes_over() {
    let (t, dir) = setup("cfg");
    fs::write(dir.join("fake-exit-code"), "78").unwrap();
    let mut c = spawn(t.path(), "cfg", 28113, false);
    assert_eq!(c.wait().unwrap().code(), Some(78));
    assert_eq!(state(&dir)["gateway_state"], "startup_failed");
    fs::remove_file(dir.join("fake-exit-code")).unwrap();

    let mut first = spawn(t.path(), "cfg", 28114, false);
    assert!(wait(|| dir.join("gateway.pid").exists() && state(&dir)["gateway_state"] == "running"));
    let mut refused = spawn(t.path(), "cfg", 28115, false);
    assert_eq!(refused.wait().unwrap().code(), Some(1), "a second instance without --replace is refused");
    let mut second = spawn(t.path(), "cfg", 28116, true);
    assert_eq!(first.wait().unwrap().code(), Some(1), "the holder was asked to go");
    assert!(wait(|| fs::read_to_string(dir.join("gateway.pid")).is_ok_and(|s| s.contains(&second.id().to_string()))));
    term(&second);
    second.wait().unwrap();
}

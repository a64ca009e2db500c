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
    let body = hermes_front::gateway::probe(28111).unwrap();
    assert!(body.contains("\"profile\":\"coder\""), "{body}");
    term(&c);
    assert_eq!(c.wait().unwrap().code(), Some(1), "container stop: exit non-zero so s6 revives it");
    assert_eq!(state(&dir)["gateway_state"], "running", "persists running for the next boot");
    assert!(!dir.join("gateway.pid").exists());
    let lc: Value = serde_json::from_str(&fs::read_to_string(dir.join("state/gateway.lifecycle.json")).unwrap()).unwrap();
    assert_eq!(lc["phase"], "exited");
}

fn write_marker(dir: &Path, doc: serde_json::Value) {
    fs::write(dir.join(".gateway-planned-stop.json"), doc.to_string()).unwrap();
}

fn start_time(pid: u32) -> Option<u64> {
    hermes_core::volume::marker::process_start_time(&hermes_core::fs::RealFs, Path::new("/proc"), pid as u64)
}

#[test]
fn a_marker_naming_another_process_is_not_an_operator_stop() {
    let (t, dir) = setup("writer");
    let now = chrono::Utc::now().to_rfc3339();
    // Another pid; this pid with another start time (a recycled pid); this process but stale.
    for (i, marker) in [
        serde_json::json!({"target_pid": 1, "written_at": now}),
        serde_json::json!({"target_pid": "SELF", "target_start_time": 1, "written_at": now}),
        serde_json::json!({"target_pid": "SELF", "written_at": (chrono::Utc::now() - chrono::Duration::seconds(120)).to_rfc3339()}),
    ]
    .into_iter()
    .enumerate()
    {
        let mut c = spawn(t.path(), "writer", 28120 + i as u16, false);
        // Its own pid file (written after its SIGTERM handler is in place), not the last one's.
        assert!(wait(|| fs::read_to_string(dir.join("gateway.pid")).is_ok_and(|s| s.contains(&format!("\"pid\":{}", c.id())))));
        let mut marker = marker;
        if marker["target_pid"] == "SELF" {
            marker["target_pid"] = serde_json::json!(c.id());
        }
        write_marker(&dir, marker.clone());
        term(&c);
        assert_eq!(c.wait().unwrap().code(), Some(1), "{marker}: not ours, so a restart-worthy SIGTERM");
        assert_eq!(state(&dir)["gateway_state"], "running", "{marker}");
        assert!(dir.join(".gateway-planned-stop.json").exists(), "{marker}: a marker that is not ours is left alone");
    }
}

#[test]
fn planned_stop_marker_for_this_pid_means_operator_stop() {
    let (t, dir) = setup("writer");
    let mut c = spawn(t.path(), "writer", 28112, false);
    assert!(wait(|| state(&dir)["gateway_state"] == "running"));
    write_marker(
        &dir,
        serde_json::json!({"target_pid": c.id(), "target_start_time": start_time(c.id()), "stopper_pid": 1,
        "written_at": chrono::Utc::now().to_rfc3339()}),
    );
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

#[test]
fn a_gateway_whose_logger_died_first_still_exits_cleanly_with_its_record() {
    // A container stop TERMs everything at once: the logger (the read end of the gateway's
    // stdout and stderr) may be gone before the gateway says goodbye.
    let (t, dir) = setup("orphan");
    let (reader, writer) = std::io::pipe().unwrap();
    let mut c = Command::new(env!("CARGO_BIN_EXE_hermes-gateway"));
    c.env("HERMES_HOME", t.path()).args(["-p", "orphan", "gateway", "run", "--port", "28117"]);
    c.stdout(writer.try_clone().unwrap()).stderr(writer);
    let mut child = c.spawn().unwrap();
    drop(c);
    assert!(wait(|| state(&dir)["gateway_state"] == "running"));
    drop(reader);
    term(&child);
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(1), "an orderly restart exit, not a panic on EPIPE: {status:?}");
    let lc: Value = serde_json::from_str(&fs::read_to_string(dir.join("state/gateway.lifecycle.json")).unwrap()).unwrap();
    assert_eq!((lc["phase"].as_str(), lc["exit_code"].as_i64()), (Some("exited"), Some(1)), "the exit record is written: {lc}");
}

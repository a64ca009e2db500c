//! The `hermes` front against Debian's real s6, run as the hermes user as inside the image:
//! the profile named is the one acted on, `--all` reports failures on stderr, `profile list`
//! lists the volume, `gateway logs` shows the gateway's own output, `profile delete` takes its
//! log with it, and `gateway status` answers like an init script.

use hermes_testkit as common;

use common::svscan::{is_up, wait_for};
use common::world::{prerequisites, Registrar, World};
use hermes_testkit::world::text;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::Duration;

fn world() -> World {
    World::booted(env!("CARGO_BIN_EXE_hermes-reconcile"), |f| {
        f.state("default", Some("stopped"), None);
        f.profile("coder", None, None);
        f.profile("writer", Some("running"), None);
    })
}

fn hermes(w: &World, args: &[&str]) -> Output {
    w.run(Path::new(env!("CARGO_BIN_EXE_hermes")), true, args)
}

/// `writer`'s gateway ready under a running registrar (kept while the guard lives), its log
/// begun: where that log is.
fn writer_logging(w: &World) -> (Registrar, PathBuf) {
    let reg = w.spawn_registrar();
    assert!(w.wait_gateway_ready("writer"));
    let logs = w.f.home.join("logs/gateways/writer");
    assert!(wait_for(Duration::from_secs(5), || logs.join("current").exists()));
    (reg, logs)
}

#[test]
#[ignore = "needs root, s6 and the hermes user"]
fn a_positional_profile_is_the_one_started_never_default() {
    prerequisites();
    let w = world();
    let o = hermes(&w, &["gateway", "start", "coder"]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("Started gateway-coder") && text(&o).contains("still up after 1 s"), "{}", text(&o));
    assert_eq!(is_up(&w.f.slot("coder")), Some(true));
    assert_eq!(is_up(&w.f.slot("default")), Some(false), "default was not touched");
    assert_eq!(w.state_json("coder")["desired_state"], "running");

    // `gateway status P` answers like an init script: 0 running, 3 not running.
    assert_eq!(hermes(&w, &["gateway", "status", "coder"]).status.code(), Some(0));
    let o = hermes(&w, &["-p", "coder", "gateway", "stop"]);
    assert!(o.status.success() && text(&o).contains("Stopped gateway-coder"), "{}", text(&o));
    let o = hermes(&w, &["gateway", "status", "coder"]);
    assert_eq!(o.status.code(), Some(3), "{}", text(&o));
    assert!(text(&o).contains("coder: stopped by the operator") && text(&o).contains("logs/gateways/coder"), "{}", text(&o));
    let o = hermes(&w, &["--json", "gateway", "status", "nosuch"]);
    assert_eq!(o.status.code(), Some(4), "{}", text(&o));
}

#[test]
#[ignore = "needs root, s6 and the hermes user"]
fn all_reports_each_failure_on_stderr_and_exits_1() {
    prerequisites();
    let w = world();
    // A slot no supervisor runs: its control FIFO has no reader.
    let broken = w.f.slot("broken");
    fs::create_dir_all(broken.join("supervise")).unwrap();
    let o = hermes(&w, &["gateway", "stop", "--all", "--no-wait"]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let (out, err) = (String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr));
    assert!(out.contains("Stopped 3 profile gateway(s)"), "the summary on stdout: {out}");
    assert!(err.contains("Could not stop gateway-broken") && !out.contains("Could not"), "failures on stderr only: {err}");
}

#[test]
#[ignore = "needs root, s6 and the hermes user"]
fn profile_list_shows_the_volume_and_logs_show_the_gateways_output() {
    prerequisites();
    let w = world();
    w.f.profile("unslotted", None, None);
    common::world::chown_tree(&w.f.profile_dir("unslotted"));
    let o = hermes(&w, &["--json", "profile", "list"]);
    assert!(o.status.success(), "{}", text(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let names: Vec<&str> = v.as_array().unwrap().iter().map(|p| p["profile"].as_str().unwrap()).collect();
    assert_eq!(names, ["coder", "default", "unslotted", "writer"], "every profile on the volume, registered or not");
    let unslotted = v.as_array().unwrap().iter().find(|p| p["profile"] == "unslotted").unwrap();
    assert_eq!(unslotted["registered"], false);

    // The stand-in gateway says hello on stdout when it is up; s6-log keeps it.
    assert!(w.wait_gateway_ready("writer"));
    assert!(
        wait_for(Duration::from_secs(5), || text(&hermes(&w, &["gateway", "logs", "writer", "-n", "5"])).contains("fake gateway")),
        "{}",
        text(&hermes(&w, &["gateway", "logs", "writer"]))
    );
    let o = hermes(&w, &["-p", "coder", "gateway", "logs"]);
    assert!(o.status.success(), "a gateway that never ran has no log yet, and that is not an error: {}", text(&o));
}

#[test]
#[ignore = "needs root, s6 and the hermes user"]
fn profile_delete_takes_the_log_unless_asked_to_keep_it() {
    prerequisites();
    let w = world();
    let (_reg, logs) = writer_logging(&w);
    let o = hermes(&w, &["profile", "delete", "writer"]);
    assert_eq!(o.status.code(), Some(2), "no --yes: nothing is deleted: {}", text(&o));
    assert!(w.f.profile_dir("writer").exists());
    let o = hermes(&w, &["profile", "delete", "writer", "--yes"]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(!w.f.profile_dir("writer").exists() && !logs.exists(), "the profile and its log are gone");
    assert!(wait_for(Duration::from_secs(10), || !w.f.slot("writer").exists()), "the registrar removed the slot");
    let o = hermes(&w, &["profile", "delete", "coder", "--yes", "--keep-logs"]);
    assert!(o.status.success(), "{}", text(&o));
}

#[test]
#[ignore = "needs root, s6 and the hermes user"]
fn status_exits_3_when_a_wanted_gateway_is_down_and_logs_refuse_an_unknown_profile() {
    prerequisites();
    let w = world();
    assert!(wait_for(Duration::from_secs(10), || is_up(&w.f.slot("writer")) == Some(true)));
    // As wanted once it is ready (up, it is `starting` until it says so).
    assert!(
        wait_for(Duration::from_secs(10), || hermes(&w, &["status"]).status.code() == Some(0)),
        "every gateway as wanted: {}",
        text(&hermes(&w, &["status"]))
    );
    // Down behind the operator's back: wanted running, not running.
    assert!(std::process::Command::new("s6-svc").arg("-d").arg(w.f.slot("writer")).status().unwrap().success());
    assert!(wait_for(Duration::from_secs(10), || is_up(&w.f.slot("writer")) == Some(false)));
    let o = hermes(&w, &["status"]);
    assert_eq!(o.status.code(), Some(3), "{}", text(&o));
    assert_eq!(hermes(&w, &["--json", "status"]).status.code(), Some(3));

    let o = hermes(&w, &["gateway", "logs", "nosuch"]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(text(&o).contains("nosuch"), "{}", text(&o));
    let o = hermes(&w, &["--json", "gateway", "logs", "nosuch"]);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap_or_else(|e| panic!("{e}: {}", text(&o)));
    assert_eq!((o.status.code(), v["ok"].as_bool()), (Some(1), Some(false)), "{v}");
    // A known profile whose gateway never ran: said so, not silence.
    let o = hermes(&w, &["gateway", "logs", "coder"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(text(&o).contains("no log lines yet for gateway-coder"), "{}", text(&o));
    let o = hermes(&w, &["--json", "gateway", "logs", "coder"]);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap_or_else(|e| panic!("{e}: {}", text(&o)));
    assert_eq!(v["lines"], serde_json::json!([]), "{v}");
}

/// A command on the profile in progress (the test holds the profile's operation lock, the
/// `flock` on the slot's `data/`): `profile delete` waits for it instead of stopping the
/// gateway under it, then stops it as `stop` does (lock, planned-stop marker), and its log
/// directory is gone once the slot is, for good: removed after the logger is.
#[test]
#[ignore = "needs root, s6 and the hermes user"]
fn profile_delete_waits_for_a_command_in_progress_and_leaves_no_log_behind() {
    use std::os::fd::AsRawFd;
    prerequisites();
    let w = world();
    let (_reg, logs) = writer_logging(&w);
    let data = fs::File::open(w.f.slot("writer").join("data")).unwrap();
    // SAFETY: plain system call on a descriptor the test owns.
    assert_eq!(unsafe { nix::libc::flock(data.as_raw_fd(), nix::libc::LOCK_EX) }, 0);
    let mut c = std::process::Command::new("s6-setuidgid");
    c.arg("hermes").arg(env!("CARGO_BIN_EXE_hermes")).args(["profile", "delete", "writer", "--yes"]);
    c.env("HERMES_HOME", &w.f.home).env("S6_PROFILE_GATEWAY_SCANDIR", &w.f.scandir).env("HERMES_S6_REGISTRAR", &w.f.cfg.registrar_fifo);
    let child = c.stdout(std::process::Stdio::piped()).stderr(std::process::Stdio::piped()).spawn().unwrap();
    std::thread::sleep(Duration::from_millis(1500));
    let up = is_up(&w.f.slot("writer"));
    drop(data);
    let o = child.wait_with_output().unwrap();
    assert_eq!(up, Some(true), "the delete stopped the gateway while another command held the profile");
    assert!(o.status.success(), "{}", text(&o));
    assert!(!w.f.profile_dir("writer").exists() && !w.f.slot("writer").exists(), "{}", text(&o));
    let log = fs::read_to_string(w.f.tmp.path().join("registrar.log")).unwrap_or_default();
    std::thread::sleep(Duration::from_secs(2));
    assert!(!logs.exists(), "the log directory is gone and stays gone: {:?}\n{log}", fs::read_dir(&logs).map(|d| d.count()));
    assert_eq!(w.supervisors("gateway-writer"), 0, "no supervisor is left");
}

/// Deleting a profile whose gateway ignores SIGTERM: the gateway is killed (the slot's
/// `timeout-kill`), the slot torn down, and no s6-supervise is left running anywhere under the
/// scandir for it, its logger's included.
#[test]
#[ignore = "needs root, s6 and the hermes user"]
fn profile_delete_of_a_gateway_that_ignores_sigterm_leaves_no_supervisor() {
    prerequisites();
    let w = world();
    assert!(w.wait_gateway_ready("writer"));
    fs::write(w.f.profile_dir("writer").join("ignore-term"), "").unwrap();
    let o = w.cli(true, &["restart", "writer"]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(w.wait_gateway_ready("writer"));
    let _reg = w.spawn_registrar();
    let o = hermes(&w, &["profile", "delete", "writer", "--yes"]);
    assert!(o.status.success(), "{}", text(&o));
    let mine = || {
        let o = std::process::Command::new("pgrep").args(["-a", "s6-supervise"]).output().unwrap();
        String::from_utf8_lossy(&o.stdout)
            .lines()
            .filter_map(|l| l.split_whitespace().next().map(String::from))
            .filter_map(|pid| fs::read_link(format!("/proc/{pid}/cwd")).ok().map(|cwd| format!("{pid} {}", cwd.display())))
            .filter(|l| l.contains(&*w.f.scandir.to_string_lossy()) && l.contains("gateway-writer"))
            .collect::<Vec<_>>()
    };
    assert!(!w.f.slot("writer").exists());
    assert!(mine().is_empty(), "{:?}\n{}", mine(), w.registrar_log());
    std::thread::sleep(Duration::from_secs(1));
    assert!(mine().is_empty(), "{:?}\n{}", mine(), w.registrar_log());
}

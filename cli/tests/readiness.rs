//! Readiness and liveness (issue 21): s6 marks a gateway ready only when the gateway says so,
//! through the slot's `notification-fd` (so plain `s6-svstat` and `s6-svwait -U` agree with
//! `status`); a gateway that hangs, or is not ready in time, is killed and restarted under its
//! own exit class. Against Debian's real s6, with the shell stand-in of the test worlds and
//! the reference gateway (`hermes-gateway`).

use hermes_testkit as common;

use common::svscan::{is_up, wait_for};
use common::world::{prerequisites, World};
use std::fs;
use std::io::Read;
use std::os::fd::AsRawFd;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn svstat(slot: &std::path::Path, fields: &str) -> String {
    let o = Command::new("s6-svstat").args(["-o", fields]).arg(slot).output().unwrap();
    String::from_utf8_lossy(&o.stdout).trim().to_string()
}

/// `s6-svwait -U` on the slot, as the waiting program sees it.
fn svwait_ready(slot: &std::path::Path, ms: u64) -> bool {
    Command::new("s6-svwait").args(["-U", "-t", &ms.to_string()]).arg(slot).status().unwrap().success()
}

#[test]
#[ignore = "needs root, s6 and the hermes user"]
fn s6_marks_a_gateway_ready_only_when_it_says_so() {
    prerequisites();
    let mut w = World::new(|f| {
        f.profile("coder", Some("running"), None);
        f.profile("mute", Some("running"), None);
        fs::write(f.profile_dir("mute").join("never-ready"), "").unwrap();
    });
    w.set_bin(env!("CARGO_BIN_EXE_hermes-reconcile"));
    w.boot();
    let (coder, mute) = (w.f.slot("coder"), w.f.slot("mute"));
    assert!(svwait_ready(&coder, 10_000), "s6-svwait -U: coder never became ready: {}", svstat(&coder, "up,ready"));
    assert_eq!(svstat(&coder, "up,ready"), "true true");
    let pid = svstat(&coder, "pid");
    assert_eq!(w.state_json("coder")["pid"].to_string(), pid, "the gateway kept the pid s6 runs: {}", w.state_json("coder"));
    assert!(wait_for(Duration::from_secs(5), || is_up(&mute) == Some(true)));
    assert!(!svwait_ready(&mute, 2000), "a gateway that never said so was marked ready");
    assert_eq!(svstat(&mute, "up,ready"), "true false");
    // `status` and `health` agree with s6.
    let (c, m) = (w.status_json("coder"), w.status_json("mute"));
    assert_eq!((c["ready"].as_bool(), c["state"].as_str()), (Some(true), Some("running")), "{c}");
    assert_eq!((m["ready"].as_bool(), m["state"].as_str(), m["up"].as_bool()), (Some(false), Some("starting"), Some(true)), "{m}");
    assert!(m["explanation"].as_str().unwrap().contains("not ready yet"), "{m}");
    let table = String::from_utf8_lossy(&w.cli(true, &["status"]).stdout).into_owned();
    assert!(
        table.contains("READY") && table.lines().any(|l| l.starts_with("mute ") && l.contains(" no ") && l.contains("starting")),
        "{table}"
    );
    let h = w.cli(false, &["--json", "health"]);
    let h: serde_json::Value = serde_json::from_slice(&h.stdout).unwrap();
    let problems = h["problems"].to_string();
    assert!(problems.contains("mute is wanted running but is starting") && !problems.contains("coder is"), "{h}");
}

/// The bridge alone, as a run script would exec it, with a pipe for s6's notification-fd.
/// The state file names the very process the bridge will be (its pid, its start time) before
/// the bridge runs: left by an earlier run, it must not count until the gateway writes it.
#[test]
fn a_state_file_written_before_the_gateway_ran_does_not_make_it_ready() {
    let tmp = tempfile::tempdir().unwrap();
    let home = tmp.path();
    let (r, wr) = nix::unistd::pipe().unwrap();
    let script = format!(
        "start=$(cut -d' ' -f22 /proc/$$/stat); printf '{{\"gateway_state\":\"running\",\"pid\":%s,\"start_time\":%s}}\\n' $$ $start > {home}/gateway_state.json; exec 3>&{w} {bin} --home {home} bridge default -- sleep 30",
        home = home.display(),
        w = wr.as_raw_fd(),
        bin = env!("CARGO_BIN_EXE_hermes-reconcile"),
    );
    let mut child =
        Command::new("sh").arg("-c").arg(&script).env("HERMES_GATEWAY_HEARTBEAT_TIMEOUT", "0").stderr(Stdio::piped()).spawn().unwrap();
    drop(wr);
    nix::fcntl::fcntl(r.as_raw_fd(), nix::fcntl::FcntlArg::F_SETFL(nix::fcntl::OFlag::O_NONBLOCK)).unwrap();
    let mut pipe = fs::File::from(r);
    let readable = |pipe: &mut fs::File| {
        let mut b = [0u8; 8];
        matches!(pipe.read(&mut b), Ok(n) if n > 0)
    };
    std::thread::sleep(Duration::from_millis(1500));
    assert!(!readable(&mut pipe), "ready from a state file the gateway had not written");
    // The gateway (here: the test) writes it again: now it is this run's word.
    let state = home.join("gateway_state.json");
    let body = fs::read_to_string(&state).unwrap().replace('}', ",\"updated_at\":\"now\"}");
    fs::write(&state, body).unwrap();
    let t = Instant::now();
    let mut ready = false;
    while t.elapsed() < Duration::from_secs(5) && !ready {
        ready = readable(&mut pipe);
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
    let _ = child.wait();
    let mut err = String::new();
    let _ = child.stderr.take().unwrap().read_to_string(&mut err);
    assert!(ready, "never notified after the gateway wrote its state: {err}");
}

/// A world whose slots run the reference gateway, with these liveness settings.
fn standin_world(profiles: &[&str], env: &[(&str, &str)], setup: impl FnOnce(&common::Fixture)) -> World {
    let mut w = World::new(|f| {
        for p in profiles {
            f.profile(p, Some("running"), None);
        }
        setup(f);
    });
    w.set_bin(env!("CARGO_BIN_EXE_hermes-reconcile"));
    w.f.cfg.gateway_program = common::world::workspace_binary("hermes-gateway").to_string_lossy().into_owned();
    for (k, v) in env {
        w.env.retain(|(key, _)| key != k);
        w.env.push((k.to_string(), v.to_string()));
    }
    w.boot();
    w
}

fn pid_of(slot: &std::path::Path) -> Option<u64> {
    svstat(slot, "pid").parse().ok().filter(|p| *p > 0)
}

fn log_of(w: &World, profile: &str) -> String {
    fs::read_to_string(w.f.home.join("logs/gateways").join(profile).join("current")).unwrap_or_default()
}

/// Whether the gateway's log comes to hold every one of `words` (s6-log writes it a moment
/// after the line is said).
fn logged(w: &World, profile: &str, words: &[&str]) -> bool {
    wait_for(Duration::from_secs(3), || {
        let log = log_of(w, profile);
        words.iter().all(|x| log.contains(x))
    })
}

fn text(o: &std::process::Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr))
}

/// `start` returns once the gateway is ready, not once it has been up for a second; a gateway
/// not ready within the start timeout is killed, and the crash policy records `start-timeout`.
#[test]
#[ignore = "needs root, s6 and the hermes user"]
fn start_waits_for_ready_and_a_start_past_the_timeout_is_start_timeout() {
    prerequisites();
    let w = standin_world(&["rd-slow"], &[("HERMES_GATEWAY_START_TIMEOUT", "4s"), ("HERMES_CRASH_BACKOFF_INITIAL", "1s")], |f| {
        f.state("rd-slow", Some("stopped"), Some("stopped"));
        fs::write(f.profile_dir("rd-slow").join("fake-start-delay-ms"), "2500").unwrap();
    });
    let slot = w.f.slot("rd-slow");
    let t = Instant::now();
    let o = w.cli(true, &["start", "rd-slow"]);
    let took = t.elapsed();
    assert!(o.status.success(), "{}", text(&o));
    assert!(took >= Duration::from_millis(2500), "start returned after {took:?}, before the gateway was ready: {}", text(&o));
    assert!(text(&o).contains("ready"), "{}", text(&o));
    assert_eq!(svstat(&slot, "up,ready"), "true true");
    let st = w.status_json("rd-slow");
    assert_eq!((st["ready"].as_bool(), st["state"].as_str()), (Some(true), Some("running")), "{st}");
    assert!(st["ready_since"].is_string(), "{st}");

    // Now slower than the start timeout: killed at 4 s, recorded as start-timeout.
    fs::write(w.f.profile_dir("rd-slow").join("fake-start-delay-ms"), "60000").unwrap();
    let before = pid_of(&slot).unwrap();
    let o = w.cli(true, &["restart", "rd-slow"]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(text(&o).contains("start-timeout"), "the failure names the class: {}", text(&o));
    let st = w.status_json("rd-slow");
    assert_eq!(st["killed"], "start-timeout", "{st}");
    let rec: serde_json::Value =
        serde_json::from_str(&fs::read_to_string(w.f.profile_dir("rd-slow").join("gateway_policy.json")).unwrap()).unwrap();
    assert_eq!(rec["last_exit"]["killed"], "start-timeout", "{rec}");
    assert!(logged(&w, "rd-slow", &["as start-timeout: not ready"]), "{}", log_of(&w, "rd-slow"));
    // And restarted by the policy, like a crash.
    fs::write(w.f.profile_dir("rd-slow").join("fake-start-delay-ms"), "0").unwrap();
    assert!(
        wait_for(Duration::from_secs(15), || svstat(&slot, "up,ready") == "true true" && pid_of(&slot) != Some(before)),
        "{}",
        w.status_json("rd-slow")
    );
}

/// A gateway without sd_notify whose heartbeat stops (its loop stalled, its pid alive) is killed
/// once the heartbeat is older than the bound, and restarted; the policy says `hung`.
#[test]
#[ignore = "needs root, s6 and the hermes user"]
fn a_stalled_heartbeat_is_hung_killed_and_restarted() {
    prerequisites();
    let w = standin_world(&["rd-beat"], &[("HERMES_GATEWAY_HEARTBEAT_TIMEOUT", "2s")], |f| {
        let d = f.profile_dir("rd-beat");
        fs::write(d.join("fake-heartbeat-ms"), "200").unwrap();
        fs::write(d.join("fake-hang-after-ms"), "1500").unwrap();
    });
    let slot = w.f.slot("rd-beat");
    assert!(svwait_ready(&slot, 10_000), "{}", log_of(&w, "rd-beat"));
    let first = pid_of(&slot).unwrap();
    // It beats for 1.5 s, then stalls; 2 s later (and a poll) it is killed.
    let t = Instant::now();
    assert!(wait_for(Duration::from_secs(10), || pid_of(&slot).is_some_and(|p| p != first)), "never restarted: {}", log_of(&w, "rd-beat"));
    let took = t.elapsed();
    fs::remove_file(w.f.profile_dir("rd-beat").join("fake-hang-after-ms")).unwrap();
    assert!(took >= Duration::from_millis(3000), "killed while it was still beating ({took:?})");
    let st = w.status_json("rd-beat");
    assert_eq!(st["killed"], "hung", "{st}");
    assert!(st["explanation"].as_str().unwrap().contains("hung: killed by its watcher"), "{st}");
    assert!(logged(&w, "rd-beat", &["as hung: its heartbeat"]), "{}", log_of(&w, "rd-beat"));
    let rec: serde_json::Value =
        serde_json::from_str(&fs::read_to_string(w.f.profile_dir("rd-beat").join("gateway_policy.json")).unwrap()).unwrap();
    assert_eq!(rec["last_exit"]["killed"], "hung", "{rec}");
    assert_eq!(rec["consecutive"], 1, "counted like a crash: {rec}");
    // The verdict is the user's file in the profile, written by the watcher as the user: no
    // root file in the slot was ever handed to a process the user could trace.
    let verdict = w.f.profile_dir("rd-beat").join("state/hermes-s6-verdict.json");
    assert_eq!(std::os::unix::fs::MetadataExt::uid(&fs::symlink_metadata(&verdict).unwrap()), 10000, "{}", verdict.display());
    assert!(!slot.join("data/liveness").exists());
}

/// With `gateway.systemd_watchdog_seconds`, readiness is `READY=1` and life is `WATCHDOG=1`
/// from the gateway's own pid: a datagram from anyone else is ignored, and a gateway that stops
/// pinging is killed within twice its interval.
#[test]
#[ignore = "needs root, s6 and the hermes user"]
fn sd_notify_readiness_is_unspoofable_and_a_silent_watchdog_is_hung() {
    prerequisites();
    let w = standin_world(&["rd-notify"], &[], |f| {
        let d = f.profile_dir("rd-notify");
        fs::write(d.join("config.yaml"), "gateway:\n  systemd_watchdog_seconds: 2\n").unwrap();
        fs::write(d.join("fake-start-delay-ms"), "2000").unwrap();
    });
    let slot = w.f.slot("rd-notify");
    assert!(wait_for(Duration::from_secs(5), || pid_of(&slot).is_some()));
    let pid = pid_of(&slot).unwrap();
    // The bridge execs the gateway a moment after s6 ran it: its environment is then the one
    // the bridge gave.
    let gateway = common::world::workspace_binary("hermes-gateway");
    assert!(
        wait_for(Duration::from_secs(5), || fs::read_link(format!("/proc/{pid}/exe")).is_ok_and(|e| e == gateway)),
        "pid {pid} never became the gateway: {}",
        log_of(&w, "rd-notify")
    );
    let environ = fs::read(format!("/proc/{pid}/environ")).unwrap();
    let var = |name: &str| {
        environ
            .split(|b| *b == 0)
            .find_map(|kv| kv.strip_prefix(format!("{name}=").as_bytes()).map(|v| String::from_utf8_lossy(v).into_owned()))
    };
    let socket =
        var("NOTIFY_SOCKET").unwrap_or_else(|| panic!("the gateway was given no NOTIFY_SOCKET: {}", String::from_utf8_lossy(&environ)));
    assert_eq!(var("WATCHDOG_USEC").as_deref(), Some("2000000"));
    // Another process (root, even) says READY=1 for it: not the gateway, so not ready.
    {
        use std::os::linux::net::SocketAddrExt;
        let addr = std::os::unix::net::SocketAddr::from_abstract_name(socket.strip_prefix('@').unwrap().as_bytes()).unwrap();
        let s = std::os::unix::net::UnixDatagram::unbound().unwrap();
        s.send_to_addr(b"READY=1", &addr).unwrap();
    }
    std::thread::sleep(Duration::from_millis(700));
    assert_eq!(svstat(&slot, "up,ready"), "true false", "a forged READY=1 was believed");
    assert!(svwait_ready(&slot, 5000), "{}", log_of(&w, "rd-notify"));
    assert!(logged(&w, "rd-notify", &["ready after", "READY=1"]), "{}", log_of(&w, "rd-notify"));
    // Alive while it pings, for longer than the interval.
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(pid_of(&slot), Some(pid), "killed while it pinged: {}", log_of(&w, "rd-notify"));
    // Its loop stalls: no more WATCHDOG=1. Killed within twice the interval.
    fs::write(w.f.profile_dir("rd-notify").join("fake-start-delay-ms"), "0").unwrap();
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid as i32), nix::sys::signal::Signal::SIGSTOP).unwrap();
    let t = Instant::now();
    assert!(wait_for(Duration::from_secs(8), || pid_of(&slot).is_some_and(|p| p != pid)), "never restarted: {}", log_of(&w, "rd-notify"));
    let took = t.elapsed();
    assert!(took <= Duration::from_secs(4), "a silent watchdog of 2 s was restarted after {took:?}");
    let st = w.status_json("rd-notify");
    assert_eq!(st["killed"], "hung", "{st}");
    assert!(logged(&w, "rd-notify", &["as hung: no WATCHDOG=1"]), "{}", log_of(&w, "rd-notify"));
}

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
use std::os::fd::{AsRawFd, OwnedFd};
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
        "start=$(cut -d' ' -f22 /proc/$$/stat); printf '{{\"gateway_state\":\"running\",\"pid\":%s,\"start_time\":%s}}\\n' $$ $start > {home}/gateway_state.json; exec 3>&{w} {bin} --home {home} bridge default --verdict-fd 9 -- sleep 30",
        home = home.display(),
        w = wr.as_raw_fd(),
        bin = env!("CARGO_BIN_EXE_hermes-reconcile"),
    );
    let mut child = Command::new("sh").arg("-c").arg(&script).env("HERMES_GATEWAY_HEARTBEAT_TIMEOUT", "0").stderr(Stdio::piped()).spawn().unwrap();
    drop(wr);
    nix::fcntl::fcntl(r.as_raw_fd(), nix::fcntl::FcntlArg::F_SETFL(nix::fcntl::OFlag::O_NONBLOCK)).unwrap();
    let mut pipe = fs::File::from(OwnedFd::from(r));
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

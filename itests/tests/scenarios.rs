//! The seed scenarios and more, against real containers of the image (issue 6). Each test has
//! its own container and named volume; everything is done as a user would.

use itests::{docker, wait_until, Box};
use std::time::{Duration, Instant};

const SEC: Duration = Duration::from_secs(1);

fn create_and_start(b: &Box, p: &str) {
    let e = b.hermes(&["hermes", "profile", "create", p]);
    assert!(e.ok(), "profile create {p}: {}", e.out);
    let e = b.hermes(&["hermes", "-p", p, "gateway", "start"]);
    assert!(e.ok(), "gateway start {p}: {}", e.out);
    let slot = format!("gateway-{p}");
    assert!(wait_until(10 * SEC, || b.up(&slot) == Some(true) && b.health(p)), "{p} did not come up: {}", b.logs());
}

fn state_of(b: &Box, p: &str) -> serde_json::Value {
    let path = if p == "default" { "/opt/data/gateway_state.json".to_string() } else { format!("/opt/data/profiles/{p}/gateway_state.json") };
    serde_json::from_str(&b.hermes(&["cat", &path]).out).unwrap_or(serde_json::Value::Null)
}

#[test]
fn s01_restart_survival_end_to_end() {
    let Some(d) = docker() else { return };
    let b = Box::start(d, "restart", &[]);
    create_and_start(&b, "coder");
    // The reference gateway wrote its own state; nobody stamped it.
    let st = state_of(&b, "coder");
    assert_eq!(st["gateway_state"], "running");
    assert_eq!(st["kind"], "hermes-gateway");
    assert_eq!(st["pid"].as_u64(), b.pid("gateway-coder"));
    b.restart();
    let pass = b.last_pass();
    assert!(pass.iter().any(|l| l.contains("profile=coder prior_state=running action=started")), "{pass:?}");
    assert!(wait_until(10 * SEC, || b.up("gateway-coder") == Some(true) && b.health("coder")), "coder not back: {}", b.logs());
}

#[test]
fn s02_stopped_stays_stopped() {
    let Some(d) = docker() else { return };
    let b = Box::start(d, "stopped", &[]);
    create_and_start(&b, "coder");
    assert!(b.hermes(&["hermes", "-p", "coder", "gateway", "stop"]).ok());
    assert!(wait_until(10 * SEC, || b.up("gateway-coder") == Some(false)));
    b.restart();
    assert!(b.last_pass().iter().any(|l| l.contains("profile=coder prior_state=stopped action=registered")));
    assert!(b.hermes(&["test", "-e", "/run/service/gateway-coder/down"]).ok(), "down file present");
    std::thread::sleep(2 * SEC);
    assert_eq!(b.up("gateway-coder"), Some(false), "supervised but not up");
}

#[test]
fn s03_stale_runtime_files_are_swept() {
    let Some(d) = docker() else { return };
    let b = Box::start(d, "stale", &[]);
    create_and_start(&b, "coder");
    let old_pid = b.pid("gateway-coder").unwrap();
    assert!(b.hermes(&["sh", "-c", "echo '[{\"pid\": 4242}]' > /opt/data/profiles/coder/processes.json"]).ok());
    // A container that dies hard leaves its gateway's files behind.
    b.kill();
    b.start_again();
    assert!(wait_until(10 * SEC, || b.up("gateway-coder") == Some(true) && b.health("coder")), "{}", b.logs());
    assert!(!b.hermes(&["test", "-e", "/opt/data/profiles/coder/processes.json"]).ok(), "processes.json swept");
    let pidfile: serde_json::Value = serde_json::from_str(&b.hermes(&["cat", "/opt/data/profiles/coder/gateway.pid"]).out).unwrap();
    assert_eq!(pidfile["pid"].as_u64(), b.pid("gateway-coder"), "the new gateway's own pid file");
    assert!(b.last_pass().iter().any(|l| l.contains("profile=coder") && l.contains("prior_exit=unclean")), "{:?}", b.last_pass());
    let _ = old_pid;
}

#[test]
fn s04_default_slot_on_a_fresh_volume() {
    let Some(d) = docker() else { return };
    let b = Box::start(d, "default", &[]);
    let run = b.hermes(&["cat", "/run/service/gateway-default/run"]).out;
    assert!(run.contains("hermes gateway run --replace") && !run.contains("-p default"), "{run}");
    let e = b.hermes(&["hermes", "gateway", "start"]);
    assert!(e.ok(), "{}", e.out);
    assert!(wait_until(10 * SEC, || b.up("gateway-default") == Some(true) && b.health("default")));
    assert_eq!(state_of(&b, "default")["desired_state"], "running");
}

#[test]
fn s05_docker_stop_then_start_brings_wanted_gateways_back() {
    let Some(d) = docker() else { return };
    let b = Box::start(d, "stopstart", &[]);
    create_and_start(&b, "alpha");
    assert!(b.hermes(&["hermes", "profile", "create", "beta"]).ok());
    let t = Instant::now();
    b.stop();
    eprintln!("docker stop took {:?}", t.elapsed());
    assert_eq!(b.exit_code(), Some(0), "no command: the container exits 0");
    b.start_again();
    assert!(wait_until(10 * SEC, || b.up("gateway-alpha") == Some(true) && b.health("alpha")));
    assert_eq!(b.up("gateway-beta"), Some(false));
    // The gateway saw SIGTERM from s6 without a planned-stop marker: it persisted running.
    assert_eq!(state_of(&b, "alpha")["gateway_state"], "running");
}

#[test]
fn s06_unprivileged_control_and_no_authoring() {
    let Some(d) = docker() else { return };
    let b = Box::start(d, "unpriv", &[]);
    for cmd in [
        vec!["hermes", "profile", "create", "coder"],
        vec!["hermes", "-p", "coder", "gateway", "start"],
        vec!["hermes", "-p", "coder", "gateway", "restart"],
        vec!["hermes", "gateway", "status", "-p", "coder"],
        vec!["hermes", "status"],
        vec!["s6-svc", "-d", "/run/service/gateway-coder"],
        vec!["s6-svwait", "-D", "-t", "5000", "/run/service/gateway-coder"],
        vec!["s6-svc", "-u", "/run/service/gateway-coder"],
        vec!["hermes", "-p", "coder", "gateway", "stop"],
    ] {
        let e = b.hermes(&cmd);
        assert!(e.ok(), "as uid 10000: {cmd:?} failed: {}", e.out);
        assert!(!e.out.contains("Permission denied"), "{cmd:?}: {}", e.out);
    }
    assert!(b.hermes(&["hermes", "status"]).out.contains("Manager:      s6 (container supervisor)"));
    for cmd in [
        "echo 'id > /tmp/x' >> /run/service/gateway-coder/run",
        "echo x > /run/service/gateway-coder/finish",
        "echo x > /run/service/gateway-coder/log/run",
        "mkdir /run/service/evil",
        "ln -s /tmp /run/service/evil",
        "rm -rf /run/service/gateway-default",
        "echo x > /run/s6/services/registrar/run",
    ] {
        let e = b.hermes(&["sh", "-c", cmd]);
        assert!(!e.ok(), "hermes could: {cmd}");
    }
    assert!(b.hermes(&["test", "-x", "/run/service/gateway-default/run"]).ok());
}

#[test]
fn s07_crash_restart_and_config_error_parking() {
    let Some(d) = docker() else { return };
    let b = Box::start(d, "crash", &[]);
    create_and_start(&b, "coder");
    let pid = b.pid("gateway-coder").unwrap();
    let t = Instant::now();
    assert!(b.hermes(&["kill", "-9", &pid.to_string()]).ok());
    assert!(wait_until(5 * SEC, || b.pid("gateway-coder").is_some_and(|p| p != pid)), "not restarted");
    eprintln!("kill -9 → restarted by s6 in {:?}", t.elapsed());

    assert!(b.hermes(&["sh", "-c", "echo 78 > /opt/data/profiles/coder/fake-exit-code"]).ok());
    assert!(b.hermes(&["hermes", "-p", "coder", "gateway", "restart"]).ok());
    let reason = || {
        let e = b.hermes(&["hermes-reconcile", "status", "coder", "--json"]);
        serde_json::from_str::<serde_json::Value>(&e.out).ok().map(|v| v["profiles"][0]["reason"].clone())
    };
    assert!(wait_until(10 * SEC, || reason() == Some("config-error".into())), "{:?}", reason());
    std::thread::sleep(2 * SEC);
    assert_eq!(b.up("gateway-coder"), Some(false), "parked, not crash-looping");
    b.restart();
    std::thread::sleep(2 * SEC);
    assert_eq!(b.up("gateway-coder"), Some(false), "still down after a container restart");
    assert!(wait_until(5 * SEC, || reason() == Some("config-error".into())));
    assert!(b.hermes(&["rm", "/opt/data/profiles/coder/fake-exit-code"]).ok());
    assert!(b.hermes(&["hermes", "-p", "coder", "gateway", "start"]).ok());
    assert!(wait_until(10 * SEC, || b.up("gateway-coder") == Some(true) && b.health("coder")));
}

#[test]
fn s08_delete_tears_down_and_outside_profiles_get_slots() {
    let Some(d) = docker() else { return };
    let b = Box::start(d, "delete", &[]);
    create_and_start(&b, "coder");
    let e = b.hermes(&["hermes", "profile", "delete", "coder", "--yes"]);
    assert!(e.ok(), "{}", e.out);
    assert!(!b.hermes(&["test", "-e", "/run/service/gateway-coder"]).ok(), "slot gone");
    assert!(
        wait_until(5 * SEC, || !b.root(&["pgrep", "-f", "s6-supervise gateway-coder"]).ok()),
        "a supervisor is left: {}",
        b.root(&["ps", "-eo", "pid,args"]).out
    );
    // Written straight into the volume (as the host or an import would): no restart needed.
    let t = Instant::now();
    assert!(b.hermes(&["sh", "-c", "mkdir -p /opt/data/profiles/ext && echo persona > /opt/data/profiles/ext/SOUL.md"]).ok());
    assert!(wait_until(10 * SEC, || b.up("gateway-ext") == Some(false)), "no slot for the outside profile");
    eprintln!("outside profile got its slot in {:?}", t.elapsed());
}

#[test]
fn s09_dashboard_follows_its_switch() {
    let Some(d) = docker() else { return };
    let off = Box::start(d.clone(), "dash-off", &[]);
    std::thread::sleep(2 * SEC);
    assert_eq!(off.up("dashboard"), Some(false), "down when HERMES_DASHBOARD is unset");
    std::thread::sleep(2 * SEC);
    assert_eq!(off.up("dashboard"), Some(false), "and stays down (finish 125, no restart loop)");
    drop(off);

    let on = Box::start(d, "dash-on", &["HERMES_DASHBOARD=1"]);
    let probe = || on.hermes(&["hermes-gateway", "--probe", "9119"]).ok();
    assert!(wait_until(10 * SEC, || on.up("dashboard") == Some(true) && probe()), "{}", on.logs());
    let pid = on.pid("dashboard").unwrap();
    assert!(on.root(&["kill", "-9", &pid.to_string()]).ok());
    assert!(wait_until(5 * SEC, || on.pid("dashboard").is_some_and(|p| p != pid) && probe()), "not restarted after a crash");
}

#[test]
fn s10_scale_100_profiles_half_running() {
    let Some(d) = docker() else { return };
    let b = Box::start(d, "scale", &[]);
    // Written straight into the volume; each gets its own port so 50 gateways can listen.
    let script = r#"
        i=0
        while [ $i -lt 100 ]; do
          p=$(printf 'p%03d' $i); dir=/opt/data/profiles/$p
          mkdir -p $dir && echo persona > $dir/SOUL.md && echo $((30000 + i)) > $dir/gateway.port
          if [ $((i % 2)) -eq 0 ]; then echo '{"gateway_state":"running"}' > $dir/gateway_state.json
          else echo '{"gateway_state":"stopped"}' > $dir/gateway_state.json; fi
          i=$((i + 1))
        done"#;
    assert!(b.hermes(&["sh", "-c", script]).ok());
    let t = Instant::now();
    b.restart();
    let all_up = || {
        let out = b.hermes(&["sh", "-c", "for d in /run/service/gateway-p*; do printf '%s %s\\n' \"${d##*/}\" \"$(s6-svstat -o up $d)\"; done"]).out;
        let up: Vec<String> = out.lines().filter(|l| l.ends_with(" true")).map(|l| l.split(' ').next().unwrap().to_string()).collect();
        let total = out.lines().count();
        (up, total)
    };
    assert!(wait_until(60 * SEC, || all_up().0.len() == 50), "only {} up", all_up().0.len());
    eprintln!("scale: container restart to 50 of 100 gateways up: {:?}", t.elapsed());
    std::thread::sleep(2 * SEC);
    let (up, total) = all_up();
    assert_eq!(total, 100);
    let want: Vec<String> = (0..100).step_by(2).map(|i| format!("gateway-p{i:03}")).collect();
    assert_eq!(up, want, "exactly the even (running) profiles are up");
}

#[test]
fn s11_container_command_runs_under_s6_and_its_exit_code_is_the_containers() {
    let Some(d) = docker() else { return };
    // The legacy deployment shape: CMD `hermes gateway run` asks s6 to run the root gateway
    // and becomes a heartbeat; `docker stop` ends it (SIGTERM) and the code propagates.
    let b = Box::start_with_cmd(d.clone(), "cmd-run", &[], &["hermes", "gateway", "run"]);
    assert!(wait_until(10 * SEC, || b.up("gateway-default") == Some(true) && b.health("default")), "{}", b.logs());
    assert_eq!(state_of(&b, "default")["desired_state"], "running");
    b.stop();
    assert_eq!(b.exit_code(), Some(143), "the command was ended by SIGTERM");
    drop(b);

    let b = Box::start_with_cmd(d, "cmd-exit", &[], &["sh", "-c", "sleep 4; exit 7"]);
    assert_eq!(b.wait_exit(30 * SEC), Some(7), "the container exits with its command's code");
}

#[test]
fn s12_docker_exec_as_root_acts_as_the_hermes_user() {
    let Some(d) = docker() else { return };
    let b = Box::start(d, "asroot", &[]);
    let e = b.root(&["hermes", "profile", "create", "rooted"]);
    assert!(e.ok(), "{}", e.out);
    let owner = b.root(&["stat", "-c", "%U", "/opt/data/profiles/rooted", "/opt/data/profiles/rooted/SOUL.md"]).out;
    assert_eq!(owner.lines().collect::<Vec<_>>(), ["hermes", "hermes"], "created as the hermes user, not root");
    let e = b.exec_as("root", &["sh", "-c", "HERMES_DOCKER_EXEC_AS_ROOT=1 hermes profile create kept-root"]);
    assert!(e.ok(), "{}", e.out);
    assert_eq!(b.root(&["stat", "-c", "%U", "/opt/data/profiles/kept-root"]).out.trim(), "root", "the opt-out keeps root");
}

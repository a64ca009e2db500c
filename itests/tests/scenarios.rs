//! The seed scenarios and more, against real containers of the image (issue 6). Each test has
//! its own container and named volume; everything is done as a user would.

use itests::{wait_until, HermesContainer};
use std::time::{Duration, Instant};

const SEC: Duration = Duration::from_secs(1);

fn create_and_start(c: &HermesContainer, p: &str) {
    let e = c.hermes(&["hermes", "profile", "create", p]);
    assert!(e.ok(), "profile create {p}: {}", e.out);
    let e = c.hermes(&["hermes", "-p", p, "gateway", "start"]);
    assert!(e.ok(), "gateway start {p}: {}", e.out);
    let slot = format!("gateway-{p}");
    assert!(wait_until(10 * SEC, || c.up(&slot) == Some(true) && c.health(p)), "{p} did not come up: {}", c.logs());
}

fn state_of(c: &HermesContainer, p: &str) -> serde_json::Value {
    let path =
        if p == "default" { "/opt/data/gateway_state.json".to_string() } else { format!("/opt/data/profiles/{p}/gateway_state.json") };
    serde_json::from_str(&c.hermes(&["cat", &path]).out).unwrap_or(serde_json::Value::Null)
}

#[test]
#[ignore = "needs Docker"]
fn s01_restart_survival_end_to_end() {
    let c = HermesContainer::start("restart", &[]);
    create_and_start(&c, "coder");
    // The reference gateway wrote its own state; nobody stamped it.
    let st = state_of(&c, "coder");
    assert_eq!(st["gateway_state"], "running");
    assert_eq!(st["kind"], "hermes-gateway");
    assert_eq!(st["pid"].as_u64(), c.pid("gateway-coder"));
    c.restart();
    let pass = c.last_pass();
    assert!(pass.iter().any(|l| l.contains("profile=coder prior_state=running action=started")), "{pass:?}");
    assert!(wait_until(10 * SEC, || c.up("gateway-coder") == Some(true) && c.health("coder")), "coder not back: {}", c.logs());
}

#[test]
#[ignore = "needs Docker"]
fn s02_stopped_stays_stopped() {
    let c = HermesContainer::start("stopped", &[]);
    create_and_start(&c, "coder");
    assert!(c.hermes(&["hermes", "-p", "coder", "gateway", "stop"]).ok());
    assert!(wait_until(10 * SEC, || c.up("gateway-coder") == Some(false)));
    c.restart();
    assert!(c.last_pass().iter().any(|l| l.contains("profile=coder prior_state=stopped action=registered")));
    assert!(c.hermes(&["test", "-e", "/run/service/gateway-coder/down"]).ok(), "down file present");
    std::thread::sleep(2 * SEC);
    assert_eq!(c.up("gateway-coder"), Some(false), "supervised but not up");
}

#[test]
#[ignore = "needs Docker"]
fn s03_stale_runtime_files_are_swept() {
    let c = HermesContainer::start("stale", &[]);
    create_and_start(&c, "coder");
    let pidfile = || -> serde_json::Value {
        let e = c.hermes(&["cat", "/opt/data/profiles/coder/gateway.pid"]);
        serde_json::from_str(&e.out).unwrap_or_else(|err| panic!("gateway.pid is not JSON ({err}): {:?}", e.out))
    };
    let old_pid = c.pid("gateway-coder").unwrap();
    let old = pidfile();
    assert_eq!(old["pid"].as_u64(), Some(old_pid), "before: the pid file names the running gateway");
    assert!(c.hermes(&["sh", "-c", "echo '[{\"pid\": 4242}]' > /opt/data/profiles/coder/processes.json"]).ok());
    // A container that dies hard leaves its gateway's files behind.
    c.kill();
    c.start_again();
    assert!(wait_until(10 * SEC, || c.up("gateway-coder") == Some(true) && c.health("coder")), "{}", c.logs());
    assert!(!c.hermes(&["test", "-e", "/opt/data/profiles/coder/processes.json"]).ok(), "processes.json swept");
    let new_pid = c.pid("gateway-coder").expect("gateway-coder is up");
    assert_ne!(new_pid, old_pid, "after the hard kill and a start the gateway is a new process");
    let new = pidfile();
    assert_eq!(new["pid"].as_u64(), Some(new_pid), "the pid file names the new gateway, not the stale one");
    assert_ne!(new["start_time"], old["start_time"], "the pid file was written by the new process: {new}");
    assert!(c.last_pass().iter().any(|l| l.contains("profile=coder") && l.contains("prior_exit=unclean")), "{:?}", c.last_pass());
}

#[test]
#[ignore = "needs Docker"]
fn s04_default_slot_on_a_fresh_volume() {
    let c = HermesContainer::start("default", &[]);
    let run = c.hermes(&["cat", "/run/service/gateway-default/run"]).out;
    assert!(run.contains(" gateway run --replace") && !run.contains("-p default"), "{run}");
    let e = c.hermes(&["hermes", "gateway", "start"]);
    assert!(e.ok(), "{}", e.out);
    assert!(wait_until(10 * SEC, || c.up("gateway-default") == Some(true) && c.health("default")));
    assert_eq!(state_of(&c, "default")["desired_state"], "running");
}

#[test]
#[ignore = "needs Docker"]
fn s05_docker_stop_then_start_brings_wanted_gateways_back() {
    let c = HermesContainer::start("stopstart", &[]);
    create_and_start(&c, "alpha");
    assert!(c.hermes(&["hermes", "profile", "create", "beta"]).ok());
    let t = Instant::now();
    c.stop();
    eprintln!("docker stop took {:?}", t.elapsed());
    assert_eq!(c.exit_code(), Some(0), "no command: the container exits 0");
    c.start_again();
    assert!(wait_until(10 * SEC, || c.up("gateway-alpha") == Some(true) && c.health("alpha")));
    assert_eq!(c.up("gateway-beta"), Some(false));
    // The gateway saw SIGTERM from s6 without a planned-stop marker: it persisted running.
    assert_eq!(state_of(&c, "alpha")["gateway_state"], "running");
}

#[test]
#[ignore = "needs Docker"]
fn s06_unprivileged_control_and_no_authoring() {
    let c = HermesContainer::start("unpriv", &[]);
    for cmd in [
        vec!["hermes", "profile", "create", "coder"],
        vec!["hermes", "-p", "coder", "gateway", "start"],
        vec!["hermes", "-p", "coder", "gateway", "restart"],
        vec!["hermes", "status"],
        vec!["s6-svc", "-d", "/run/service/gateway-coder"],
        vec!["s6-svstat", "/run/service/gateway-coder"],
        vec!["s6-svc", "-u", "/run/service/gateway-coder"],
        vec!["hermes", "-p", "coder", "gateway", "stop"],
    ] {
        let e = c.hermes(&cmd);
        assert!(e.ok(), "as uid 10000: {cmd:?} failed: {}", e.out);
        assert!(!e.out.contains("Permission denied"), "{cmd:?}: {}", e.out);
    }
    assert!(c.hermes(&["hermes", "status"]).out.contains("Manager:      s6 (container supervisor)"));
    // `gateway status` answers like an init script: 3 while stopped, 0 once running.
    assert_eq!(c.hermes(&["hermes", "gateway", "status", "-p", "coder"]).code, 3);
    assert!(c.hermes(&["hermes", "-p", "coder", "gateway", "start"]).ok());
    assert!(wait_until(10 * SEC, || c.hermes(&["hermes", "gateway", "status", "-p", "coder"]).code == 0));
    // Events are not delegated: the user polls status instead of subscribing.
    let e = c.hermes(&["s6-svwait", "-D", "-t", "500", "/run/service/gateway-coder"]);
    assert!(!e.ok() && e.out.contains("Permission denied"), "{}", e.out);
    for cmd in [
        "echo 'id > /tmp/x' >> /run/service/gateway-coder/run",
        "echo x > /run/service/gateway-coder/finish",
        "echo x > /run/service/gateway-coder/log/run",
        "mkdir /run/service/evil",
        "ln -s /tmp /run/service/evil",
        "rm -rf /run/service/gateway-default",
        "echo x > /run/s6/services/registrar/run",
    ] {
        let e = c.hermes(&["sh", "-c", cmd]);
        assert!(!e.ok(), "hermes could: {cmd}");
    }
    assert!(c.hermes(&["test", "-x", "/run/service/gateway-default/run"]).ok());
}

#[test]
#[ignore = "needs Docker"]
fn s07_crash_restart_and_config_error_parking() {
    let c = HermesContainer::start("crash", &[]);
    create_and_start(&c, "coder");
    let pid = c.pid("gateway-coder").unwrap();
    let t = Instant::now();
    assert!(c.hermes(&["kill", "-9", &pid.to_string()]).ok());
    assert!(wait_until(5 * SEC, || c.pid("gateway-coder").is_some_and(|p| p != pid)), "not restarted");
    eprintln!("kill -9 → restarted by s6 in {:?}", t.elapsed());

    assert!(c.hermes(&["sh", "-c", "echo 78 > /opt/data/profiles/coder/fake-exit-code"]).ok());
    // The restart tells the truth: the new gateway did not stay up, and why.
    let e = c.hermes(&["hermes", "-p", "coder", "gateway", "restart"]);
    assert!(!e.ok() && e.out.contains("did not stay up: it exited 78") && e.out.contains("config-error"), "{}", e.out);
    let reason = || {
        let e = c.hermes(&["hermes-reconcile", "status", "coder", "--json"]);
        serde_json::from_str::<serde_json::Value>(&e.out).ok().map(|v| v["profiles"][0]["reason"].clone())
    };
    assert!(wait_until(10 * SEC, || reason() == Some("config-error".into())), "{:?}", reason());
    std::thread::sleep(2 * SEC);
    assert_eq!(c.up("gateway-coder"), Some(false), "parked, not crash-looping");
    c.restart();
    std::thread::sleep(2 * SEC);
    assert_eq!(c.up("gateway-coder"), Some(false), "still down after a container restart");
    assert!(wait_until(5 * SEC, || reason() == Some("config-error".into())));
    assert!(c.hermes(&["rm", "/opt/data/profiles/coder/fake-exit-code"]).ok());
    assert!(c.hermes(&["hermes", "-p", "coder", "gateway", "start"]).ok());
    assert!(wait_until(10 * SEC, || c.up("gateway-coder") == Some(true) && c.health("coder")));
}

#[test]
#[ignore = "needs Docker"]
fn s08_delete_tears_down_and_outside_profiles_get_slots() {
    let c = HermesContainer::start("delete", &[]);
    create_and_start(&c, "coder");
    let e = c.hermes(&["hermes", "profile", "delete", "coder", "--yes"]);
    assert!(e.ok(), "{}", e.out);
    assert!(!c.hermes(&["test", "-e", "/run/service/gateway-coder"]).ok(), "slot gone");
    assert!(
        wait_until(5 * SEC, || !c.root(&["pgrep", "-f", "s6-supervise gateway-coder"]).ok()),
        "a supervisor is left: {}",
        c.root(&["ps", "-eo", "pid,args"]).out
    );
    // Written straight into the volume (as the host or an import would): no restart needed.
    let t = Instant::now();
    assert!(c.hermes(&["sh", "-c", "mkdir -p /opt/data/profiles/ext && echo persona > /opt/data/profiles/ext/SOUL.md"]).ok());
    assert!(wait_until(10 * SEC, || c.up("gateway-ext") == Some(false)), "no slot for the outside profile");
    eprintln!("outside profile got its slot in {:?}", t.elapsed());
}

#[test]
#[ignore = "needs Docker"]
fn s09_dashboard_follows_its_switch() {
    let off = HermesContainer::start("dash-off", &[]);
    std::thread::sleep(2 * SEC);
    assert_eq!(off.up("dashboard"), Some(false), "down when HERMES_DASHBOARD is unset");
    std::thread::sleep(2 * SEC);
    assert_eq!(off.up("dashboard"), Some(false), "and stays down (finish 125, no restart loop)");
    drop(off);

    // hermes-agent's own dashboard (`hermes dashboard`), answering its status API.
    let on = HermesContainer::start("dash-on", &["HERMES_DASHBOARD=1"]);
    let probe = || {
        let e = on.hermes(&[
            "/opt/hermes/.venv/bin/python",
            "-c",
            "import urllib.request as u; print(u.urlopen('http://127.0.0.1:9119/api/status', timeout=2).read().decode())",
        ]);
        e.ok() && e.out.contains("\"version\"")
    };
    assert!(wait_until(30 * SEC, || on.up("dashboard") == Some(true) && probe()), "{}", on.logs());
    let pid = on.pid("dashboard").unwrap();
    assert!(on.root(&["kill", "-9", &pid.to_string()]).ok());
    assert!(wait_until(30 * SEC, || on.pid("dashboard").is_some_and(|p| p != pid) && probe()), "not restarted after a crash");
}

#[test]
#[ignore = "needs Docker"]
fn s10_scale_100_profiles_half_running() {
    let c = HermesContainer::start("scale", &[]);
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
    assert!(c.hermes(&["sh", "-c", script]).ok());
    let t = Instant::now();
    c.restart();
    let all_up = || {
        let out = c
            .hermes(&["sh", "-c", "for d in /run/service/gateway-p*; do printf '%s %s\\n' \"${d##*/}\" \"$(s6-svstat -o up $d)\"; done"])
            .out;
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
#[ignore = "needs Docker"]
fn s11_container_command_runs_under_s6_and_its_exit_code_is_the_containers() {
    // The legacy deployment shape: CMD `hermes gateway run` asks s6 to run the root gateway
    // and becomes a heartbeat; `docker stop` ends it (SIGTERM) and the code propagates.
    let c = HermesContainer::start_with_cmd("cmd-run", &[], &["hermes", "gateway", "run"]);
    assert!(wait_until(10 * SEC, || c.up("gateway-default") == Some(true) && c.health("default")), "{}", c.logs());
    assert_eq!(state_of(&c, "default")["desired_state"], "running");
    c.stop();
    assert_eq!(c.exit_code(), Some(143), "the command was ended by SIGTERM");
    drop(c);

    let c = HermesContainer::start_with_cmd("cmd-exit", &[], &["sh", "-c", "sleep 4; exit 7"]);
    assert_eq!(c.wait_exit(30 * SEC), Some(7), "the container exits with its command's code");
}

#[test]
#[ignore = "needs Docker"]
fn s12_docker_exec_as_root_acts_as_the_hermes_user() {
    let c = HermesContainer::start("asroot", &[]);
    let e = c.root(&["hermes", "profile", "create", "rooted"]);
    assert!(e.ok(), "{}", e.out);
    let owner = c.root(&["stat", "-c", "%U", "/opt/data/profiles/rooted", "/opt/data/profiles/rooted/SOUL.md"]).out;
    assert_eq!(owner.lines().collect::<Vec<_>>(), ["hermes", "hermes"], "created as the hermes user, not root");
    // Keeping root for the command still writes the volume as the hermes user: no root-owned
    // file ever lands in the volume.
    let e = c.exec_as("root", &["sh", "-c", "HERMES_DOCKER_EXEC_AS_ROOT=1 hermes profile create kept-root && HERMES_DOCKER_EXEC_AS_ROOT=1 hermes -p kept-root gateway start && HERMES_DOCKER_EXEC_AS_ROOT=1 hermes -p kept-root gateway stop"]);
    assert!(e.ok(), "{}", e.out);
    assert_eq!(
        c.root(&["stat", "-c", "%U", "/opt/data/profiles/kept-root", "/opt/data/profiles/kept-root/gateway_state.json"])
            .out
            .lines()
            .collect::<Vec<_>>(),
        ["hermes", "hermes"]
    );
    let roots = c.root(&["find", "/opt/data", "-uid", "0"]).out;
    assert!(roots.trim().is_empty(), "root-owned files in the volume: {roots}");
}

#[test]
#[ignore = "needs Docker"]
fn s13_the_user_cannot_make_root_write_through_a_planted_link() {
    let c = HermesContainer::start("attack", &["HERMES_DASHBOARD=1"]);
    create_and_start(&c, "coder");
    let shadow = || c.root(&["sha256sum", "/etc/shadow"]).out;
    let before = shadow();
    for dir in ["/run/service/gateway-coder", "/run/service/gateway-coder/log", "/run/s6/services/dashboard", "/run/s6/services/registrar"]
    {
        for name in ["supervise/status.new", "supervise/death_tally.new", "supervise/control", "event/ftrig1x"] {
            let e = c.hermes(&["ln", "-sf", "/etc/shadow", &format!("{dir}/{name}")]);
            assert!(!e.ok(), "hermes planted {dir}/{name}");
        }
    }
    for args in [["s6-svc", "-d"], ["s6-svc", "-u"], ["s6-svc", "-k"]] {
        for svc in ["/run/service/gateway-coder", "/run/service/dashboard"] {
            let e = c.hermes(&[args[0], args[1], svc]);
            assert!(e.ok(), "hermes controls {svc}: {}", e.out);
        }
    }
    assert!(wait_until(10 * SEC, || c.up("gateway-coder") == Some(true)));
    assert_eq!(shadow(), before, "/etc/shadow changed");
    // Root-side verbs refuse the user before doing anything.
    let e = c.hermes(&["hermes-reconcile", "unregister", "coder"]);
    assert!(!e.ok() && e.out.contains("needs root"), "{}", e.out);
    assert_eq!(c.up("gateway-coder"), Some(true));
}

#[test]
#[ignore = "needs Docker"]
fn s14_any_environment_value_reaches_the_services_whole() {
    let tricky = "a\nB=c \"quoted\" 'single' $(id) `x`\\";
    let env = format!("ZZ={tricky}");
    let c = HermesContainer::start("env", &[env.as_str()]);
    let seen = c.root(&["/command/with-contenv", "sh", "-c", "printf %s \"$ZZ\""]).out;
    assert_eq!(seen, tricky);
    assert!(c.root(&["test", "-e", "/run/s6/container_environment/B"]).code != 0, "no variable was forged from a value");
}

fn status_of(c: &HermesContainer, p: &str) -> serde_json::Value {
    let e = c.hermes(&["hermes-reconcile", "status", p, "--json"]);
    serde_json::from_str::<serde_json::Value>(&e.out).map(|v| v["profiles"][0].clone()).unwrap_or(serde_json::Value::Null)
}

#[test]
#[ignore = "needs Docker"]
fn s15_a_crash_loop_stays_quarantined_across_docker_restart_and_start_clears_it() {
    // Quarantine at the 3rd crash; the probe is far away (10 min): only an operator brings it back.
    let c = HermesContainer::start("quarantine", &["HERMES_CRASH_LIMIT=3", "HERMES_CRASH_BACKOFF_MAX=2s", "HERMES_CRASH_COOLDOWN=10m"]);
    create_and_start(&c, "steady");
    assert!(c.hermes(&["hermes", "profile", "create", "crashy"]).ok());
    assert!(c.hermes(&["sh", "-c", "echo 1 > /opt/data/profiles/crashy/fake-exit-code"]).ok());
    let e = c.hermes(&["hermes", "-p", "crashy", "gateway", "start"]);
    assert!(!e.ok() && e.out.contains("did not stay up: it exited 1") && e.out.contains("logs/gateways/crashy"), "{}", e.out);
    assert!(wait_until(30 * SEC, || status_of(&c, "crashy")["state"] == "quarantined"), "{}\n{}", status_of(&c, "crashy"), c.logs());
    let st = status_of(&c, "crashy");
    assert!(st["next_start"].is_string() && st["explanation"].as_str().unwrap_or("").contains("quarantined after 3 crashes"), "{st}");

    c.restart();
    let pass = c.last_pass();
    assert!(
        pass.iter().any(|l| l.contains("profile=crashy") && l.contains("action=registered") && l.contains("reason=quarantined")),
        "{pass:?}"
    );
    assert!(wait_until(10 * SEC, || c.up("gateway-steady") == Some(true) && c.health("steady")), "the healthy one is back: {}", c.logs());
    std::thread::sleep(3 * SEC);
    assert_eq!(c.up("gateway-crashy"), Some(false), "the crash loop was not replayed");
    assert_eq!(status_of(&c, "crashy")["state"], "quarantined");

    assert!(c.hermes(&["rm", "/opt/data/profiles/crashy/fake-exit-code"]).ok());
    let e = c.hermes(&["hermes", "-p", "crashy", "gateway", "start"]);
    assert!(e.ok() && e.out.contains("cleared the crash policy's hold (quarantined)"), "{}", e.out);
    assert!(wait_until(10 * SEC, || c.up("gateway-crashy") == Some(true) && c.health("crashy")));
    assert_eq!(status_of(&c, "crashy")["state"], "running");
}

#[test]
#[ignore = "needs Docker"]
fn s16_the_front_a_new_user_meets() {
    let c = HermesContainer::start("front", &[]);
    let e = c.hermes(&["hermes", "--version"]);
    assert!(
        e.ok() && e.out.starts_with("Hermes Agent v") && e.out.contains("\nhermes (hermes-s6) "),
        "upstream's line, then ours: {}",
        e.out
    );
    let e = c.hermes(&["hermes", "gateway", "--help"]);
    assert!(e.ok() && e.out.contains("logs"), "{}", e.out);
    // Completions and man pages are installed, generated from the same definitions.
    for f in
        ["/usr/share/bash-completion/completions/hermes.bash", "/usr/share/man/man1/hermes.1", "/usr/share/man/man1/hermes-gateway-start.1"]
    {
        assert!(c.hermes(&["test", "-s", f]).ok(), "{f} is installed");
    }
    assert!(c.hermes(&["hermes", "profile", "create", "coder"]).ok());
    // The profile named after the verb is the one started, never `default`.
    let e = c.hermes(&["hermes", "gateway", "start", "coder"]);
    assert!(e.ok() && e.out.contains("Started gateway-coder"), "{}", e.out);
    assert!(wait_until(10 * SEC, || c.up("gateway-coder") == Some(true) && c.health("coder")));
    assert_eq!(c.up("gateway-default"), Some(false), "default was not started");
    let e = c.hermes(&["hermes", "gateway", "start", "coder", "-p", "default"]);
    assert_eq!(e.code, 2, "two different profiles: a usage error: {}", e.out);
    let e = c.hermes(&["hermes", "gateway", "status", "coder"]);
    assert!(e.ok() && e.out.contains("coder: up for"), "{}", e.out);
    let e = c.hermes(&["hermes", "gateway", "logs", "coder", "-n", "20"]);
    assert!(e.ok() && e.out.contains("gateway[coder]: running"), "its own output, from its own log: {}", e.out);
    let e = c.hermes(&["hermes", "--json", "profile", "list"]);
    let v: serde_json::Value = serde_json::from_str(&e.out).unwrap_or_else(|err| panic!("{err}: {}", e.out));
    assert_eq!(v.as_array().map(|a| a.len()), Some(2), "default and coder: {v}");
}

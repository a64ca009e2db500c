//! hermes-agent itself, supervised (issue 20): the image's real `hermes gateway run` in every
//! slot, driven as a user would, with upstream's own CLI behind the `hermes` front. The fast
//! suites run the stand-in; these run the real thing (about 1 s of CPU per gateway start).

use itests::{wait_until, HermesContainer, RunAs};
use std::time::Duration;

const SEC: Duration = Duration::from_secs(1);

fn real(tag: &str) -> HermesContainer {
    HermesContainer::start_as(tag, &RunAs { real_gateway: true, ..RunAs::default() })
}

fn state_of(c: &HermesContainer, p: &str) -> serde_json::Value {
    let path =
        if p == "default" { "/opt/data/gateway_state.json".to_string() } else { format!("/opt/data/profiles/{p}/gateway_state.json") };
    serde_json::from_str(&c.hermes(&["cat", &path]).out).unwrap_or(serde_json::Value::Null)
}

/// The real gateway says it runs, for the pid s6 runs (not a stale file of an earlier run).
fn running(c: &HermesContainer, p: &str) -> bool {
    let pid = c.pid(&format!("gateway-{p}"));
    let st = state_of(c, p);
    pid.is_some() && st["gateway_state"] == "running" && st["pid"].as_u64() == pid
}

fn status(c: &HermesContainer, p: &str) -> serde_json::Value {
    let e = c.hermes(&["hermes", "--json", "gateway", "status", p]);
    serde_json::from_str(&e.out).unwrap_or_else(|_| panic!("gateway status --json: {}", e.out))
}

fn create_and_start(c: &HermesContainer, p: &str) {
    let e = c.hermes(&["hermes", "profile", "create", p, "--no-alias"]);
    assert!(e.ok(), "profile create {p}: {}", e.out);
    assert!(c.hermes(&["test", "-f", &format!("/opt/data/profiles/{p}/.env")]).ok(), "upstream's create made no .env: {}", e.out);
    assert!(c.hermes(&["test", "-d", &format!("/run/service/gateway-{p}")]).ok(), "no slot after profile create: {}", e.out);
    let e = c.hermes(&["hermes", "-p", p, "gateway", "start"]);
    assert!(e.ok(), "gateway start {p}: {}", e.out);
    assert!(wait_until(30 * SEC, || running(c, p)), "{p}'s real gateway never said running: {:?}\n{}", state_of(c, p), c.logs());
}

/// The seed scenarios with the real CLI: running comes back with a new pid after a container
/// restart, stopped stays stopped, stale runtime files are swept, gateway-default exists.
#[test]
#[ignore = "needs Docker"]
fn r01_real_gateways_survive_a_restart_and_stopped_stays_stopped() {
    let c = real("real-seed");
    assert!(c.hermes(&["test", "-d", "/run/service/gateway-default"]).ok());
    create_and_start(&c, "coder");
    create_and_start(&c, "writer");
    let e = c.hermes(&["hermes", "-p", "writer", "gateway", "stop"]);
    assert!(e.ok(), "{}", e.out);
    let st = state_of(&c, "coder");
    assert_eq!(st["argv"][0], "/opt/hermes/.venv/bin/hermes", "the slot runs hermes-agent's own CLI: {st}");
    let before = c.pid("gateway-coder").unwrap();
    // A stale pid file from "before the restart": the pass sweeps it.
    c.restart();
    let pass = c.last_pass();
    assert!(pass.iter().any(|l| l.contains("profile=coder prior_state=running action=started")), "{pass:?}");
    assert!(pass.iter().any(|l| l.contains("profile=writer prior_state=stopped action=registered")), "{pass:?}");
    assert!(wait_until(30 * SEC, || running(&c, "coder")), "coder not back: {:?}", state_of(&c, "coder"));
    assert_ne!(c.pid("gateway-coder"), Some(before), "a new gateway, not a stale record");
    assert_eq!(c.up("gateway-writer"), Some(false), "writer stays stopped");
    assert_eq!(status(&c, "coder")["state"], "running");
    assert_eq!(status(&c, "writer")["state"], "stopped");
    // Delete: stopped through the lifecycle, upstream's delete, the slot and the log gone.
    let e = c.hermes(&["hermes", "profile", "delete", "coder", "--yes"]);
    assert!(e.ok(), "{}", e.out);
    for gone in ["/opt/data/profiles/coder", "/run/service/gateway-coder", "/opt/data/logs/gateways/coder"] {
        assert!(wait_until(15 * SEC, || !c.hermes(&["test", "-e", gone]).ok()), "{gone} is still there: {}", e.out);
    }
}

/// A real gateway killed with SIGKILL is restarted by the crash policy (not by its own storm
/// breaker, which the slot turns off) and says running again, with a new pid.
#[test]
#[ignore = "needs Docker"]
fn r02_a_killed_real_gateway_is_restarted_by_the_policy() {
    let c = real("real-kill");
    create_and_start(&c, "coder");
    // As the gateway's own user: root in a container has no CAP_SYS_PTRACE to read another
    // uid's environ.
    let env = c.hermes(&["sh", "-c", "tr '\\0' '\\n' < /proc/$(s6-svstat -o pid /run/service/gateway-coder)/environ"]).out;
    for marker in
        ["HERMES_S6_SUPERVISED_CHILD=1", "HERMES_GATEWAY_MAX_STARTS=0", "PYTHONUNBUFFERED=1", "HERMES_GATEWAY_EXTERNAL_SUPERVISOR=1"]
    {
        assert!(env.lines().any(|l| l == marker), "the gateway's environment lacks {marker}: {env}");
    }
    for round in 0..2 {
        let pid = c.pid("gateway-coder").unwrap();
        assert!(c.root(&["kill", "-9", &pid.to_string()]).ok());
        assert!(
            wait_until(30 * SEC, || c.pid("gateway-coder").is_some_and(|p| p != pid) && running(&c, "coder")),
            "round {round}: not restarted: {}",
            status(&c, "coder")
        );
    }
    assert!(status(&c, "coder")["restarts"].as_u64().unwrap_or(0) >= 2, "{}", status(&c, "coder"));
}

/// `hermes gateway logs` shows what the real gateway writes, as it writes it.
#[test]
#[ignore = "needs Docker"]
fn r03_gateway_logs_show_the_real_gateways_lines() {
    let c = real("real-logs");
    create_and_start(&c, "coder");
    assert!(
        wait_until(15 * SEC, || c
            .hermes(&["hermes", "gateway", "logs", "coder", "-n", "200"])
            .out
            .contains("No messaging platforms enabled")),
        "{}",
        c.hermes(&["hermes", "gateway", "logs", "coder", "-n", "200"]).out
    );
}

/// A root `docker exec hermes profile create` still yields a working gateway: the front drops
/// to the hermes user before upstream's create writes anything.
#[test]
#[ignore = "needs Docker"]
fn r04_a_profile_created_as_root_runs_a_working_gateway() {
    let c = real("real-root");
    let e = c.root(&["/usr/local/bin/hermes", "profile", "create", "ops", "--no-alias"]);
    assert!(e.ok(), "{}", e.out);
    let owners = c.root(&["find", "/opt/data/profiles/ops", "-not", "-user", "hermes"]).out;
    assert!(owners.trim().is_empty(), "root-owned files in the new profile: {owners}");
    let e = c.root(&["/usr/local/bin/hermes", "-p", "ops", "gateway", "start"]);
    assert!(e.ok(), "{}", e.out);
    assert!(wait_until(30 * SEC, || running(&c, "ops")), "{:?}\n{}", state_of(&c, "ops"), c.logs());
}

/// Upstream-only commands pass through unchanged; `--version` is upstream's line, then ours;
/// upstream's own s6 code never runs (its detector needs /run/s6/basedir, which this image
/// never makes), and nothing in the scandir becomes the user's.
#[test]
#[ignore = "needs Docker"]
fn r05_upstream_commands_pass_through_and_its_s6_code_never_runs() {
    let c = real("real-pass");
    let v = c.hermes(&["hermes", "--version"]);
    assert!(v.ok() && v.out.starts_with("Hermes Agent v0.19.0") && v.out.contains("hermes (hermes-s6)"), "{}", v.out);
    create_and_start(&c, "coder");
    let list = c.hermes(&["hermes", "profile", "list"]);
    assert!(list.ok() && list.out.contains("coder"), "{}", list.out);
    let cfg = c.hermes(&["hermes", "config", "path"]);
    assert!(cfg.ok() && cfg.out.contains("/opt/data"), "{}", cfg.out);
    let bad = c.hermes(&["hermes", "config", "no-such-subcommand"]);
    assert_eq!(bad.code, 2, "upstream's own exit code comes back: {}", bad.out);
    let help = c.hermes(&["hermes", "--help"]);
    assert!(help.ok() && help.out.contains("Interactive chat") && help.out.contains("Supervised by hermes-s6"), "{}", help.out);
    assert!(!c.root(&["test", "-e", "/run/s6/basedir"]).ok(), "/run/s6/basedir would switch on upstream's own s6 code");
    let s = c.hermes(&["hermes", "-p", "coder", "gateway", "status"]);
    assert!(s.ok() && s.out.contains("running"), "{}", s.out);
    let theirs = c.root(&["find", "/run/service", "-user", "hermes"]).out;
    assert!(theirs.trim().is_empty(), "entries the user owns in the scandir: {theirs}");
}

/// Kubernetes' root mode (only CHOWN SETUID SETGID KILL: no DAC_READ_SEARCH): hermes-agent's
/// gateway makes its profile directory (and the home, for the default profile) 0700, and root
/// could no longer look into them; the boot pass, the registrar and `status` then lost the
/// profile. Root's lookups in the volume are retried as the volume's owner.
#[test]
#[ignore = "needs Docker"]
fn r06_private_profile_dirs_under_minimal_capabilities() {
    let caps = ["CHOWN", "SETUID", "SETGID", "KILL"].iter().map(|s| s.to_string()).collect();
    let c = HermesContainer::start_as("real-caps", &RunAs { real_gateway: true, cap_drop_all: true, cap_add: caps, ..RunAs::default() });
    create_and_start(&c, "coder");
    let e = c.hermes(&["hermes", "gateway", "start"]);
    assert!(e.ok(), "{}", e.out);
    assert!(wait_until(30 * SEC, || running(&c, "default")), "{:?}", state_of(&c, "default"));
    let modes = c.hermes(&["stat", "-c", "%a %n", "/opt/data", "/opt/data/profiles/coder"]).out;
    assert!(modes.lines().all(|l| l.starts_with("700 ")), "the real gateway made them private: {modes}");
    let all = c.admin(&["/usr/local/bin/hermes-reconcile", "status"]);
    assert!(all.out.contains("coder ") && !all.out.contains("cannot watch"), "{}", all.out);
    let before = c.pid("gateway-coder");
    c.restart();
    assert!(c.last_pass().iter().any(|l| l.contains("profile=coder prior_state=running action=started")), "{:?}", c.last_pass());
    assert!(wait_until(30 * SEC, || running(&c, "coder") && running(&c, "default")), "not back: {}", c.logs());
    assert_ne!(c.pid("gateway-coder"), before);
}

/// hermes-agent's own code starts, stops and restarts gateways too (its dashboard's restart
/// button runs `python -m hermes_cli.main gateway restart`). With its s6 path off, that took
/// its host path: the supervised gateway killed (a crash to the policy) and an unsupervised
/// one started. The image's shim sends those calls to our front.
#[test]
#[ignore = "needs Docker"]
fn r07_upstreams_own_lifecycle_calls_go_through_the_front() {
    let c = real("real-shim");
    create_and_start(&c, "coder");
    let upstream = |verb: &str| c.hermes(&["/opt/hermes/.venv/bin/python", "-m", "hermes_cli.main", "-p", "coder", "gateway", verb]);
    let before = c.pid("gateway-coder");
    let e = upstream("restart");
    assert!(e.ok() && e.out.contains("Restarted gateway-coder under s6"), "{}", e.out);
    assert!(wait_until(30 * SEC, || running(&c, "coder") && c.pid("gateway-coder") != before), "{}", status(&c, "coder"));
    let st = status(&c, "coder");
    assert_eq!(st["policy"]["recent_crashes"].as_u64().unwrap_or(0), 0, "an asked-for restart is no crash: {st}");
    let gateways = c.hermes(&["sh", "-c", "ps -eo args | grep -c '[g]ateway run'"]).out;
    assert_eq!(gateways.trim(), "1", "one gateway, the supervised one");
    let e = upstream("stop");
    assert!(e.ok() && e.out.contains("Stopped gateway-coder under s6"), "{}", e.out);
    assert_eq!(status(&c, "coder")["state"], "stopped");
    assert_eq!(state_of(&c, "coder")["desired_state"], "stopped", "the operator's intent is recorded");
}

/// s6's readiness is the real gateway's own word (issue 21): `s6-svstat` says ready once its
/// state file says running (with its heartbeat beating), then, with
/// `gateway.systemd_watchdog_seconds` set, once it sends `READY=1`; a gateway whose event loop
/// stops (SIGSTOP: no `WATCHDOG=1`, its pid alive) is killed and restarted as `hung` within
/// twice its interval.
#[test]
#[ignore = "needs Docker"]
fn r08_a_real_gateway_is_ready_when_it_says_so_and_a_silent_watchdog_is_hung() {
    let c = real("real-ready");
    create_and_start(&c, "coder");
    let svstat = |fields: &str| c.root(&["s6-svstat", "-o", fields, "/run/service/gateway-coder"]).out.trim().to_string();
    assert!(wait_until(10 * SEC, || svstat("up,ready") == "true true"), "{}", svstat("up,ready"));
    let st = status(&c, "coder");
    assert_eq!((st["ready"].as_bool(), st["state"].as_str()), (Some(true), Some("running")), "{st}");
    let pid = c.pid("gateway-coder").unwrap();
    let beat = c.hermes(&["cat", "/opt/data/profiles/coder/state/gateway.heartbeat"]).out;
    let beat: serde_json::Value = serde_json::from_str(&beat).unwrap_or_else(|_| panic!("no heartbeat: {beat}"));
    assert_eq!(beat["pid"].as_u64(), Some(pid), "{beat}");
    let logs = || c.hermes(&["hermes", "gateway", "logs", "coder", "-n", "400"]).out;
    assert!(wait_until(10 * SEC, || logs().contains("ready after") && logs().contains("its state file says running")), "{}", logs());

    // sd_notify, as hermes-agent speaks it under systemd.
    let e = c.hermes(&["hermes", "-p", "coder", "config", "set", "gateway.systemd_watchdog_seconds", "5"]);
    assert!(e.ok(), "{}", e.out);
    let e = c.hermes(&["hermes", "-p", "coder", "gateway", "restart"]);
    assert!(e.ok() && e.out.contains("ready"), "{}", e.out);
    assert_eq!(svstat("up,ready"), "true true");
    let pid = c.pid("gateway-coder").unwrap();
    let env = c.hermes(&["sh", "-c", &format!("tr '\\0' '\\n' < /proc/{pid}/environ")]).out;
    assert!(
        env.lines().any(|l| l.starts_with("NOTIFY_SOCKET=@hermes-s6/notify/coder/")) && env.lines().any(|l| l == "WATCHDOG_USEC=5000000"),
        "{env}"
    );
    assert!(wait_until(10 * SEC, || logs().contains(": READY=1")), "{}", logs());
    // Kept alive by WATCHDOG=1 past its interval.
    std::thread::sleep(8 * SEC);
    assert_eq!(c.pid("gateway-coder"), Some(pid), "killed while it pinged: {}", logs());

    // Its event loop stops.
    assert!(c.root(&["kill", "-STOP", &pid.to_string()]).ok());
    let t = std::time::Instant::now();
    assert!(wait_until(20 * SEC, || c.pid("gateway-coder").is_some_and(|p| p != pid)), "never restarted: {}", logs());
    let took = t.elapsed();
    eprintln!("r08: a stopped real gateway (watchdog 5 s) was restarted after {took:?}");
    assert!(took <= 10 * SEC, "restarted after {took:?}, more than twice its interval");
    assert!(wait_until(10 * SEC, || logs().contains("as hung: no WATCHDOG=1")), "{}", logs());
    let st = status(&c, "coder");
    assert_eq!(st["killed"], "hung", "{st}");
    assert!(wait_until(30 * SEC, || svstat("up,ready") == "true true" && running(&c, "coder")), "not ready again: {}", status(&c, "coder"));
    let gateways = c.hermes(&["sh", "-c", "ps -eo args | grep -c '[g]ateway run'"]).out;
    assert_eq!(gateways.trim(), "1", "one gateway; no process scan takes the watcher for one");
}

/// Multiplexing with the real gateway: `hermes -p bob gateway start` brings up gateway-default,
/// whose real gateway serves bob (its own state file lists bob), and gateway-bob stays down
/// instead of running a second gateway that hermes-agent refuses beside the multiplexer (exit 1,
/// a crash loop into quarantine); `restart` of bob leaves the shared gateway alone; after a
/// container restart bob's intent brings gateway-default back.
#[test]
#[ignore = "needs Docker"]
fn r09_under_multiplexing_a_named_start_is_served_by_the_real_root_gateway() {
    let c = HermesContainer::start_as(
        "real-multiplex",
        &RunAs { real_gateway: true, env: vec!["GATEWAY_MULTIPLEX_PROFILES=true".into()], ..RunAs::default() },
    );
    let e = c.hermes(&["hermes", "profile", "create", "bob", "--no-alias"]);
    assert!(e.ok(), "profile create bob: {}", e.out);
    let e = c.hermes(&["hermes", "-p", "bob", "gateway", "start"]);
    assert!(e.ok() && e.out.contains("bob is served by gateway-default"), "{}", e.out);
    assert!(wait_until(30 * SEC, || running(&c, "default")), "gateway-default never said running: {:?}", state_of(&c, "default"));
    let serves = |c: &HermesContainer| state_of(c, "default")["served_profiles"].as_array().is_some_and(|v| v.iter().any(|p| p == "bob"));
    assert!(wait_until(30 * SEC, || serves(&c)), "the real root gateway does not serve bob: {:?}", state_of(&c, "default"));
    std::thread::sleep(3 * SEC);
    assert_eq!(c.up("gateway-bob"), Some(false), "bob's own slot stays down");
    let st = status(&c, "bob");
    assert_eq!((st["state"].as_str(), st["served_by"].as_str()), (Some("served-by-default"), Some("default")), "{st}");
    assert_eq!(st["policy"]["recent_crashes"].as_u64().unwrap_or(0), 0, "no crash loop: {st}");
    assert_eq!(state_of(&c, "bob")["desired_state"], "running", "bob's intent is recorded");

    let root = c.pid("gateway-default");
    let e = c.hermes(&["hermes", "-p", "bob", "gateway", "restart"]);
    assert!(e.ok() && e.out.contains("gateway-default was not restarted"), "{}", e.out);
    assert_eq!(c.pid("gateway-default"), root, "the gateway every profile shares kept running");

    c.restart();
    let pass = c.last_pass();
    assert!(pass.iter().any(|l| l.contains("profile=default") && l.contains("action=started")), "{pass:?}");
    assert!(wait_until(30 * SEC, || running(&c, "default") && serves(&c)), "not served after a restart: {:?}", state_of(&c, "default"));
    assert_eq!(c.up("gateway-bob"), Some(false));
}

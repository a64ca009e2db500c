//! The image under the settings Kubernetes (or a careful operator) applies, one container per
//! setting. Each must: boot, pass its own health probe, create and start a profile, bring the
//! wanted gateway back after a restart, stop within its grace with the command's exit code,
//! and leave no root-owned file in the volume. Settings it cannot work under must refuse to
//! start with exit 111 and say what to change.

use itests::{wait_until, HermesContainer, RunAs};
use std::time::{Duration, Instant};

const SEC: Duration = Duration::from_secs(1);
/// The capabilities root mode needs (docs/kubernetes.md says why each; without any one of
/// them something a user notices breaks).
const MINIMAL_CAPS: [&str; 4] = ["CHOWN", "SETUID", "SETGID", "KILL"];

fn tmpfs(path: &str, opts: &str) -> (String, String) {
    (path.to_string(), opts.to_string())
}

fn read_only_root() -> RunAs {
    RunAs { read_only: true, tmpfs: vec![tmpfs("/run", "exec,mode=0755"), tmpfs("/tmp", "")], ..RunAs::default() }
}

fn non_root() -> RunAs {
    RunAs {
        user: Some("10000:10000".into()),
        read_only: true,
        tmpfs: vec![tmpfs("/run", "exec,uid=10000,gid=10000,mode=0755"), tmpfs("/tmp", "")],
        cap_drop_all: true,
        ..RunAs::default()
    }
}

/// Everything a user needs from the container, under `c`'s settings.
fn exercise(c: &HermesContainer) {
    let h = c.admin(&["hermes-reconcile", "health"]);
    assert!(h.ok(), "health after boot: {}\n{}", h.out, c.logs());
    assert!(c.hermes(&["hermes", "profile", "create", "coder"]).ok(), "{}", c.logs());
    let e = c.hermes(&["hermes", "gateway", "start", "coder"]);
    assert!(e.ok(), "start: {}\n{}", e.out, c.logs());
    assert!(wait_until(10 * SEC, || c.up("gateway-coder") == Some(true) && c.health("coder")));

    c.restart();
    assert!(wait_until(10 * SEC, || c.up("gateway-coder") == Some(true) && c.health("coder")), "coder back after a restart: {}", c.logs());
    assert!(c.admin(&["hermes-reconcile", "health"]).ok());

    let t = Instant::now();
    c.stop();
    let took = t.elapsed();
    assert!(took < 10 * SEC, "stopped in {took:?}, within its grace (not killed at the timeout)");
    assert_eq!(c.exit_code(), Some(0), "the (empty) command's exit code: {}", c.logs());
    c.start_again();
    // As the volume's user: root without CAP_DAC_READ_SEARCH cannot enter the user's 0700
    // directories (its gateway logs, which s6-log makes as the user), and any directory the
    // user cannot enter is listed, with its owner, in its parent.
    let roots = c.hermes(&["find", "/opt/data", "-user", "0"]);
    assert!(roots.ok() && roots.out.trim().is_empty(), "root-owned files in the volume: {}", roots.out);
}

#[test]
#[ignore = "needs Docker"]
fn m01_baseline() {
    exercise(&HermesContainer::start_as("m-base", &RunAs::default()));
}

#[test]
#[ignore = "needs Docker"]
fn m02_read_only_root_with_a_tmpfs_run() {
    exercise(&HermesContainer::start_as("m-ro", &read_only_root()));
}

#[test]
#[ignore = "needs Docker"]
fn m03_root_mode_with_only_the_minimal_capabilities() {
    let run = RunAs { cap_drop_all: true, cap_add: MINIMAL_CAPS.iter().map(|s| s.to_string()).collect(), ..read_only_root() };
    exercise(&HermesContainer::start_as("m-caps", &run));
}

#[test]
#[ignore = "needs Docker"]
fn m04_non_root_read_only_no_capabilities() {
    let c = HermesContainer::start_as("m-nonroot", &non_root());
    assert!(c.logs().contains("non-root mode"), "{}", c.logs());
    exercise(&c);
    // Everything runs as the container's uid: nothing to drop to, nothing root's.
    let ps = c.root(&["ps", "-eo", "user=,comm="]);
    assert!(ps.out.lines().filter(|l| !l.contains(" ps")).all(|l| l.trim_start().starts_with("hermes")), "{}", ps.out);
}

#[test]
#[ignore = "needs Docker"]
fn m05_under_tini_as_pid_1() {
    let c = HermesContainer::start_as("m-init", &RunAs { init: true, ..RunAs::default() });
    assert!(c.logs().contains("not PID 1"), "{}", c.logs());
    exercise(&c);
}

#[test]
#[ignore = "needs Docker"]
fn m06_a_volume_populated_by_another_uid_is_adopted_without_writing_etc() {
    // Private directories, as another image's user may leave them: taking them over needs
    // DAC_READ_SEARCH on top of the minimal capabilities, and nothing more.
    let prepare = "mkdir -p /opt/data/profiles/old && echo soul > /opt/data/profiles/old/SOUL.md \
                   && echo '{\"desired_state\":\"running\"}' > /opt/data/profiles/old/gateway_state.json \
                   && chown -R 20000:20000 /opt/data && chmod 0700 /opt/data/profiles /opt/data/profiles/old";
    let mut caps: Vec<String> = MINIMAL_CAPS.iter().map(|s| s.to_string()).collect();
    caps.push("DAC_READ_SEARCH".into());
    let run = RunAs { prepare_volume: Some(prepare.into()), cap_drop_all: true, cap_add: caps, ..read_only_root() };
    let c = HermesContainer::start_as("m-adopt", &run);
    assert!(c.logs().contains("entries of uid 20000 now belong to 10000:10000"), "{}", c.logs());
    assert!(wait_until(10 * SEC, || c.up("gateway-old") == Some(true) && c.health("old")), "the old profile's gateway runs: {}", c.logs());
    let theirs = c.root(&["find", "/opt/data", "-user", "20000"]);
    assert!(theirs.out.trim().is_empty(), "{}", theirs.out);
    exercise(&c);
}

#[test]
#[ignore = "needs Docker"]
fn m07_a_task_limit_is_named_when_it_stops_gateways() {
    let c = HermesContainer::start_as("m-pids", &RunAs { pids_limit: Some(400), memory: Some(256 << 20), ..RunAs::default() });
    exercise(&c);
    for i in 0..6 {
        assert!(c.hermes(&["hermes", "profile", "create", &format!("p{i}")]).ok());
    }
    // Room for the tasks in use and a few more: not for six more gateways (their supervisors
    // and loggers run already; each gateway needs two tasks of its own).
    let used: i64 = c
        .root(&["sh", "-c", "cat /sys/fs/cgroup/pids.current 2>/dev/null || cat /sys/fs/cgroup/pids/pids.current"])
        .out
        .trim()
        .parse()
        .unwrap();
    c.set_pids_limit(used + 4);
    let _ = c.hermes(&["hermes", "gateway", "start", "--all", "--no-wait"]);
    // s6 tries at once; let it hit the limit, then lift it (at the limit, `docker exec` itself
    // cannot fork): s6 retries only every 10 s, so the failures are still there to be named.
    std::thread::sleep(3 * SEC);
    c.set_pids_limit(-1);
    let named = || {
        let s = c.hermes(&["hermes-reconcile", "status"]).out;
        s.contains("task limit").then_some(s)
    };
    assert!(wait_until(8 * SEC, || named().is_some()), "status names the task limit: {}", c.hermes(&["hermes-reconcile", "status"]).out);
    // The limit gone, the start the explanation names brings them all up now (s6 itself would
    // wait 60 s after a failed fork).
    let e = c.hermes(&["hermes", "gateway", "start", "--all"]);
    assert!(e.ok(), "{}", e.out);
    assert!(
        wait_until(10 * SEC, || (0..6).all(|i| c.up(&format!("gateway-p{i}")) == Some(true))),
        "{}",
        c.hermes(&["hermes-reconcile", "status"]).out
    );
}

#[test]
#[ignore = "needs Docker"]
fn m08_settings_it_cannot_work_under_refuse_with_the_fix() {
    // /run noexec (Docker's default for --tmpfs): s6 could not run a single script.
    let run = RunAs { read_only: true, tmpfs: vec![tmpfs("/run", ""), tmpfs("/tmp", "")], ..RunAs::default() };
    let c = HermesContainer::create_as("m-noexec", &run);
    assert_eq!(c.wait_exit(30 * SEC), Some(111), "{}", c.logs());
    assert!(c.logs().contains("/run is mounted noexec") && c.logs().contains("--tmpfs /run:exec"), "{}", c.logs());

    // Non-root on a volume it cannot write.
    // (A file in it: Docker copies the image's /opt/data, owner included, into an empty volume.)
    let run = RunAs { prepare_volume: Some("touch /opt/data/.keep && chown 0:0 /opt/data && chmod 0755 /opt/data".into()), ..non_root() };
    let c = HermesContainer::create_as("m-novol", &run);
    assert_eq!(c.wait_exit(30 * SEC), Some(111), "{}", c.logs());
    assert!(c.logs().contains("cannot write it") && c.logs().contains("fsGroup"), "{}", c.logs());

    // Non-root with no writable /run at all.
    let run = RunAs { tmpfs: vec![], ..non_root() };
    let c = HermesContainer::create_as("m-norun", &run);
    assert_eq!(c.wait_exit(30 * SEC), Some(111), "{}", c.logs());
    assert!(c.logs().contains("/run is not writable by uid 10000") && c.logs().contains("emptyDir"), "{}", c.logs());
}

//! The boot pass under Debian's real s6-svscan: exactly the wanted gateways come up with no
//! manual rescan, the hermes user can control its slots but cannot change what root runs,
//! and a simulated container restart (wipe the scandir, new scanner, new pass) gives the
//! same result.

use hermes_testkit as common;

use common::svscan::{as_hermes, is_up, wait_for};
use common::world::{prerequisites, World};
use common::*;
use std::fs;
use std::time::Duration;

const WANT_UP: [&str; 3] = ["default", "coder", "drainer"];
const WANT_DOWN: [&str; 3] = ["writer", "idle", "crashed"];

fn world() -> World {
    World::booted(env!("CARGO_BIN_EXE_hermes-reconcile"), |f| {
        f.state("default", Some("running"), None);
        f.profile("coder", Some("running"), None);
        f.profile("drainer", Some("draining"), None);
        f.profile("writer", Some("running"), Some("stopped"));
        f.profile("idle", None, None);
        f.profile("crashed", Some("startup_failed"), None);
        f.stale_runtime_files("coder");
    })
}

fn assert_wanted_set(f: &Fixture) {
    let all: Vec<&str> = WANT_UP.iter().chain(WANT_DOWN.iter()).copied().collect();
    let settled = wait_for(Duration::from_secs(10), || {
        WANT_UP.iter().all(|p| is_up(&f.slot(p)) == Some(true)) && WANT_DOWN.iter().all(|p| is_up(&f.slot(p)) == Some(false))
    });
    let states: Vec<_> = all.iter().map(|p| (p, is_up(&f.slot(p)))).collect();
    assert!(settled, "wanted up {WANT_UP:?}, down {WANT_DOWN:?}; s6-svstat says {states:?}");
    // Stays that way: nothing crash-loops, nothing wanted down starts by itself.
    std::thread::sleep(Duration::from_millis(1500));
    for p in WANT_UP {
        assert_eq!(is_up(&f.slot(p)), Some(true), "{p} stays up");
    }
    for p in WANT_DOWN {
        assert_eq!(is_up(&f.slot(p)), Some(false), "{p} stays down");
    }
}

#[test]
#[ignore = "needs root, s6 and the hermes user"]
fn boot_pass_under_real_s6_starts_exactly_the_wanted_gateways_and_survives_a_restart() {
    prerequisites();
    let mut w = world();
    assert_wanted_set(&w.f);
    // Loggers run as hermes and create their directories under the home.
    assert!(wait_for(Duration::from_secs(5), || w.f.home.join("logs/gateways/coder").is_dir()));
    assert!(!w.f.profile_dir("coder").join("gateway.pid").exists());

    // Container restart: the tree stops, /run/service is a fresh tmpfs, the pass runs again.
    w.container_restart();
    assert_wanted_set(&w.f);
    assert_eq!(w.f.boot_log().lines().filter(|l| l.contains(" profile=default ")).count(), 2);
}

#[test]
#[ignore = "needs root, s6 and the hermes user"]
fn hermes_user_controls_its_slots_but_cannot_change_what_root_runs() {
    prerequisites();
    let w = world();
    assert_wanted_set(&w.f);
    let slot = |p: &str| w.f.slot(p).to_string_lossy().into_owned();

    // Control: up, status, down, all as uid 10000 (upstream's EACCES regression).
    let o = as_hermes(&["s6-svc", "-u", &slot("writer")]);
    assert!(o.status.success(), "s6-svc -u as hermes: {}", String::from_utf8_lossy(&o.stderr));
    assert!(wait_for(Duration::from_secs(5), || is_up(&w.f.slot("writer")) == Some(true)));
    let o = as_hermes(&["s6-svstat", &slot("writer")]);
    assert!(String::from_utf8_lossy(&o.stdout).starts_with("up (pid "), "{o:?}");
    let o = as_hermes(&["s6-svc", "-d", &slot("coder")]);
    assert!(o.status.success(), "s6-svc -d as hermes: {}", String::from_utf8_lossy(&o.stderr));
    assert!(wait_for(Duration::from_secs(5), || is_up(&w.f.slot("coder")) == Some(false)));
    // Events are not delegated (a group that could create entries in event/ could plant a
    // link there too): s6-svwait is refused; the project's tools poll status instead.
    let o = as_hermes(&["s6-svwait", "-D", "-t", "5000", &slot("coder")]);
    assert!(!o.status.success() && String::from_utf8_lossy(&o.stderr).contains("Permission denied"), "s6-svwait as hermes: {o:?}");
    let o = w.cli(true, &["status", "coder"]);
    assert_eq!(o.status.code(), Some(3), "status polls and answers 'not running': {o:?}");

    // No authoring: scripts, the slot dir and the scandir are closed to the user.
    let run = format!("{}/run", slot("coder"));
    let before = fs::read(&run).unwrap();
    let attempts: Vec<(&str, Vec<String>)> = vec![
        ("append to run", vec!["sh".into(), "-c".into(), format!("echo 'id > /tmp/pwned' >> {run}")]),
        ("replace finish", vec!["sh".into(), "-c".into(), format!("echo x > {}/finish", slot("coder"))]),
        ("rename run away", vec!["mv".into(), run.clone(), format!("{run}.old")]),
        ("write log/run", vec!["sh".into(), "-c".into(), format!("echo x > {}/log/run", slot("coder"))]),
        ("add a file to the slot", vec!["touch".into(), format!("{}/down", slot("coder"))]),
        ("create a service dir", vec!["mkdir".into(), w.f.scandir.join("gateway-evil").to_string_lossy().into_owned()]),
        ("create a staging dir", vec!["mkdir".into(), w.f.scandir.join(".gateway-evil.tmp").to_string_lossy().into_owned()]),
        ("symlink a service in", vec!["ln".into(), "-s".into(), "/tmp".into(), w.f.scandir.join("evil").to_string_lossy().into_owned()]),
        ("remove a slot", vec!["rm".into(), "-rf".into(), slot("writer")]),
    ];
    for (what, argv) in attempts {
        let args: Vec<&str> = argv.iter().map(String::as_str).collect();
        let o = as_hermes(&args);
        assert!(!o.status.success(), "hermes could {what}: {o:?}");
    }
    assert_eq!(fs::read(&run).unwrap(), before);
    assert!(w.f.slot("writer").join("run").exists());
    assert!(!w.f.scandir.join("gateway-evil").exists());
}

/// Gateways running for `profile` (the stand-in's shell, by its command line).
fn gateways_of(w: &World, profile: &str) -> usize {
    let pat = if profile == "default" {
        format!("{} gateway run", w.f.cfg.gateway_program)
    } else {
        format!("{} -p {profile} gateway", w.f.cfg.gateway_program)
    };
    let o = std::process::Command::new("pgrep").args(["-fc", &pat]).output().unwrap();
    String::from_utf8_lossy(&o.stdout).trim().parse().unwrap_or(0)
}

fn svstat_pid(w: &World, p: &str) -> String {
    let o = std::process::Command::new("s6-svstat").args(["-o", "pid"]).arg(w.f.slot(p)).output().unwrap();
    String::from_utf8_lossy(&o.stdout).trim().to_string()
}

#[test]
#[ignore = "needs root, s6 and the hermes user"]
fn a_second_pass_on_a_live_tree_keeps_every_pid_and_never_doubles_a_gateway() {
    prerequisites();
    let w = world();
    assert_wanted_set(&w.f);
    let all: Vec<&str> = WANT_UP.iter().chain(WANT_DOWN.iter()).copied().collect();
    let before: Vec<String> = all.iter().map(|p| svstat_pid(&w, p)).collect();
    let o = w.cli(false, &[]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(out.contains("profile=coder prior_state=running action=started reason=unchanged"), "{out}");
    assert_eq!(all.iter().map(|p| svstat_pid(&w, p)).collect::<Vec<_>>(), before, "a rerun restarted something");
    let log = fs::read_to_string(w.f.scandir.with_extension("svscan.log")).unwrap_or_default();
    assert!(!log.contains("unable to write status file"), "{log}");

    // What is rendered changes: live gateways are left alone and said so; down ones are
    // replaced, each slot still with exactly one supervisor and one gateway.
    let other = w.f.tmp.path().join("other-gateway");
    fs::copy(&w.f.cfg.gateway_program, &other).unwrap();
    let o = w.cli(false, &["--gateway-program", other.to_str().unwrap()]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let (out, err) = (String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr));
    assert!(out.contains("profile=coder prior_state=running action=started reason=changed-live"), "{out}");
    assert!(err.contains("gateway-coder is live with files that differ") && err.contains("hermes -p coder gateway stop"), "{err}");
    assert!(out.contains("profile=writer prior_state=stopped action=registered reason=replaced"), "{out}");
    assert_eq!(WANT_UP.iter().map(|p| svstat_pid(&w, p)).collect::<Vec<_>>(), before[..3].to_vec(), "live gateways kept their pid");
    assert!(fs::read_to_string(w.f.slot("writer").join("run")).unwrap().contains("other-gateway"));
    assert!(fs::read_to_string(w.f.slot("coder").join("run")).unwrap().contains("fake-gateway"));
    for p in &all {
        assert!(gateways_of(&w, p) <= 1, "two gateways for {p}");
        assert!(is_up(&w.f.slot(p)).is_some(), "{p} is supervised");
    }
    assert!(w.f.scandir_names().iter().all(|n| !n.contains(".tmp")), "{:?}", w.f.scandir_names());
}

/// A small deterministic generator (xorshift), so a failing soak can be replayed.
struct Rng(u64);
impl Rng {
    fn next(&mut self, n: usize) -> usize {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 % n as u64) as usize
    }
}

#[test]
#[ignore = "needs root, s6 and the hermes user"]
fn soak_never_two_gateways_for_one_profile() {
    prerequisites();
    let mut w = World::new(|f| {
        f.state("default", Some("running"), None);
        for i in 0..8 {
            f.profile(&format!("s{i}"), Some(if i % 2 == 0 { "running" } else { "stopped" }), None);
        }
    });
    w.set_bin(env!("CARGO_BIN_EXE_hermes-reconcile"));
    w.boot();
    let _r = w.spawn_registrar();
    let seed = std::env::var("SOAK_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or(0x5eed_1234_u64);
    let mut rng = Rng(seed);
    let profiles: Vec<String> = (0..8).map(|i| format!("s{i}")).collect();
    let mut ops = Vec::new();
    for step in 0..120 {
        let p = profiles[rng.next(profiles.len())].clone();
        let op = rng.next(7);
        let what = match op {
            0 => w.cli(true, &["start", &p]).status.code(),
            1 => w.cli(true, &["stop", &p]).status.code(),
            2 => w.cli(true, &["restart", &p]).status.code(),
            3 => w.cli(false, &[]).status.code(),
            4 => {
                let pid = svstat_pid(&w, &p);
                if let Ok(n) = pid.parse::<i32>() {
                    let _ = nix::sys::signal::killpg(nix::unistd::Pid::from_raw(n), nix::sys::signal::Signal::SIGKILL);
                }
                Some(0)
            }
            5 => w.cli(false, &["--gateway-program", if step % 2 == 0 { "/bin/false" } else { &w.f.cfg.gateway_program }]).status.code(),
            _ => w.cli(true, &["request", &p]).status.code(),
        };
        ops.push(format!("{step}: op {op} on {p} -> {what:?}"));
        for q in profiles.iter().chain(std::iter::once(&"default".to_string())) {
            let settled = wait_for(Duration::from_secs(10), || gateways_of(&w, q) <= 1);
            assert!(settled, "seed {seed}: two gateways for {q} after\n{}", ops.join("\n"));
        }
    }
    assert!(w.f.scandir_names().iter().all(|n| !n.contains(".tmp")), "{:?}", w.f.scandir_names());
}

//! The boot pass under Debian's real s6-svscan: exactly the wanted gateways come up with no
//! manual rescan, the hermes user can control its slots but cannot change what root runs,
//! and a simulated container restart (wipe the scandir, new scanner, new pass) gives the
//! same result.

mod common;

use common::svscan::{as_hermes, is_up, wait_for};
use common::world::{prerequisites, World};
use common::*;
use std::fs;
use std::time::Duration;

const WANT_UP: [&str; 3] = ["default", "coder", "drainer"];
const WANT_DOWN: [&str; 3] = ["writer", "idle", "crashed"];

fn world() -> World {
    let mut w = World::new(|f| {
        f.state("default", Some("running"), None);
        f.profile("coder", Some("running"), None);
        f.profile("drainer", Some("draining"), None);
        f.profile("writer", Some("running"), Some("stopped"));
        f.profile("idle", None, None);
        f.profile("crashed", Some("startup_failed"), None);
        f.stale_runtime_files("coder");
    });
    w.boot();
    w
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
fn boot_pass_under_real_s6_starts_exactly_the_wanted_gateways_and_survives_a_restart() {
    if !prerequisites() {
        return;
    }
    let mut w = world();
    assert_wanted_set(&w.f);
    // Loggers run as hermes and create their directories under the home.
    assert!(wait_for(Duration::from_secs(5), || w.f.home.join("logs/gateways/coder").is_dir()));
    assert!(!w.f.profile_dir("coder").join("gateway.pid").exists());

    // Container restart: the tree stops, /run/service is a fresh tmpfs, the pass runs again.
    w.sv.take().unwrap().stop();
    fs::remove_dir_all(&w.f.scandir).unwrap();
    fs::create_dir(&w.f.scandir).unwrap();
    w.boot();
    assert_wanted_set(&w.f);
    assert_eq!(w.f.boot_log().lines().filter(|l| l.contains(" profile=default ")).count(), 2);
}

#[test]
fn hermes_user_controls_its_slots_but_cannot_change_what_root_runs() {
    if !prerequisites() {
        return;
    }
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
    let o = as_hermes(&["s6-svwait", "-D", "-t", "5000", &slot("coder")]);
    assert!(o.status.success(), "s6-svwait as hermes: {}", String::from_utf8_lossy(&o.stderr));

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

//! The registrar against Debian's real s6 (issue 12's findings, each reproduced): transient
//! absences keep every gateway's pid; a gateway that ignores SIGTERM is gone, with its
//! supervisors, within a bounded time after its profile is deleted; a registrar killed at any
//! step of a teardown is finished by the next one with no leftover and no orphan; rings and
//! SIGTERM are served while a teardown waits.

use hermes_testkit as common;

use common::svscan::{as_hermes, is_up, wait_for};
use common::world::{prerequisites, World};
use hermes_core::boot::plan::Container;
use hermes_core::clock::SystemClock;
use hermes_core::ctx::Ctx;
use hermes_core::fs::faulty::{Fault, FaultyFs};
use hermes_core::fs::RealFs;
use hermes_core::registrar::{Registrar, Scope};
use std::fs;
use std::process::Command;
use std::time::{Duration, Instant};

const ALL: [&str; 7] = ["default", "alpha", "beta", "gamma", "delta", "eps", "stubborn"];

/// Every profile running; `stubborn`'s gateway ignores SIGTERM.
fn world() -> World {
    world_of(&ALL)
}

fn world_of(profiles: &[&str]) -> World {
    let mut w = World::new(|f| {
        f.state("default", Some("running"), None);
        for p in profiles.iter().filter(|p| **p != "default") {
            f.profile(p, Some("running"), None);
        }
        if profiles.contains(&"stubborn") {
            fs::write(f.profile_dir("stubborn").join("ignore-term"), "").unwrap();
        }
    });
    w.set_bin(env!("CARGO_BIN_EXE_hermes-reconcile"));
    w.boot();
    for p in profiles {
        assert!(w.wait_gateway_ready(p), "{p} did not come up");
    }
    w
}

fn pid(w: &World, p: &str) -> Option<u64> {
    let o = Command::new("s6-svstat").args(["-o", "pid"]).arg(w.f.slot(p)).output().ok()?;
    String::from_utf8_lossy(&o.stdout).trim().parse::<i64>().ok().filter(|p| *p > 0).map(|p| p as u64)
}

fn pids(w: &World) -> Vec<(String, Option<u64>)> {
    ALL.iter().map(|p| (p.to_string(), pid(w, p))).collect()
}

/// Processes whose command line names `what` (s6-supervise of a slot, a gateway's sleep).
fn ring(w: &World, line: &str) {
    let o = as_hermes(&["sh", "-c", &format!("printf '{line}\\n' > {}", w.f.cfg.registrar_fifo.display())]);
    assert!(o.status.success());
}

#[test]
#[ignore = "needs root, s6 and the hermes user"]
fn transient_absences_keep_every_gateway_and_its_pid() {
    prerequisites();
    let w = world();
    let _r = w.spawn_registrar();
    let before = pids(&w);
    let profiles = w.f.home.join("profiles");
    let old = w.f.home.join("profiles.old");
    // A restore: profiles/ moved away, rings (all and each), moved back.
    assert!(as_hermes(&["mv", profiles.to_str().unwrap(), old.to_str().unwrap()]).status.success());
    ring(&w, "");
    for p in ["alpha", "beta", "gamma", "delta", "eps"] {
        ring(&w, p);
    }
    std::thread::sleep(Duration::from_millis(2600));
    assert!(as_hermes(&["mv", old.to_str().unwrap(), profiles.to_str().unwrap()]).status.success());
    // SOUL.md removed for 0.6 s and written again.
    let soul = w.f.profile_dir("alpha").join("SOUL.md");
    assert!(as_hermes(&["rm", soul.to_str().unwrap()]).status.success());
    ring(&w, "alpha");
    std::thread::sleep(Duration::from_millis(600));
    assert!(as_hermes(&["sh", "-c", &format!("echo persona > {}", soul.display())]).status.success());
    // One profile directory moved away and back inside the grace.
    let beta = w.f.profile_dir("beta");
    let aside = w.f.home.join("beta.bak");
    assert!(as_hermes(&["mv", beta.to_str().unwrap(), aside.to_str().unwrap()]).status.success());
    std::thread::sleep(Duration::from_millis(800));
    assert!(as_hermes(&["mv", aside.to_str().unwrap(), beta.to_str().unwrap()]).status.success());
    std::thread::sleep(Duration::from_millis(2500));
    assert_eq!(pids(&w), before, "every gateway kept its pid; the registrar said:\n{}", w.registrar_log());
    assert!(!w.registrar_log().contains("unregistered"), "{}", w.registrar_log());
}

#[test]
#[ignore = "needs root, s6 and the hermes user"]
fn a_deleted_profile_whose_gateway_ignores_sigterm_leaves_nothing_behind() {
    prerequisites();
    let w = world();
    let r = w.spawn_registrar();
    let gateway = pid(&w, "stubborn").unwrap();
    let d = w.f.profile_dir("stubborn");
    let t = Instant::now();
    assert!(as_hermes(&["rm", "-rf", d.to_str().unwrap()]).status.success());
    // While that teardown waits, a new profile is served at once, and so is SIGTERM.
    assert!(wait_for(Duration::from_secs(5), || w.registrar_log().contains("profiles/stubborn is gone")), "{}", w.registrar_log());
    std::thread::sleep(Duration::from_millis(2200)); // past the grace: the teardown is under way
    assert!(as_hermes(&["mkdir", "-p", w.f.profile_dir("late").to_str().unwrap()]).status.success());
    assert!(as_hermes(&["touch", w.f.profile_dir("late").join("SOUL.md").to_str().unwrap()]).status.success());
    let asked = Instant::now();
    let o = w.cli(true, &["request", "late"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    eprintln!("a ring during a stubborn teardown was served in {:?}", asked.elapsed());
    let still_tearing_down = w.f.scandir_names().iter().any(|n| n.contains("stubborn") && n.contains("removing"));
    assert!(still_tearing_down, "the teardown should still be waiting for the stubborn gateway: {:?}", w.f.scandir_names());
    let o = w.cli(true, &["request", "stubborn", "--gone"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    eprintln!("deleted to slot gone: {:?}", t.elapsed());
    assert!(
        wait_for(Duration::from_secs(12), || !std::path::Path::new(&format!("/proc/{gateway}")).exists()),
        "the gateway that ignored SIGTERM is still there"
    );
    assert!(wait_for(Duration::from_secs(3), || w.supervisors("gateway-stubborn") == 0), "a supervisor is left");
    assert!(
        wait_for(Duration::from_secs(3), || w.f.scandir_names().iter().all(|n| !n.contains("stubborn"))),
        "{:?}\n{}",
        w.f.scandir_names(),
        w.registrar_log()
    );
    // SIGTERM ends it within a second, whatever it was doing.
    let stopping = Instant::now();
    nix::sys::signal::kill(r.pid(), nix::sys::signal::Signal::SIGTERM).unwrap();
    let gone = wait_for(Duration::from_secs(1), || {
        !std::path::Path::new(&format!("/proc/{}", r.pid())).exists() || {
            fs::read_to_string(format!("/proc/{}/stat", r.pid())).is_ok_and(|s| s.contains(") Z "))
        }
    });
    assert!(gone, "the registrar took more than 1 s to stop");
    eprintln!("registrar stopped {:?} after SIGTERM", stopping.elapsed());
}

#[test]
#[ignore = "needs root, s6 and the hermes user"]
fn sigterm_during_a_stubborn_teardown_stops_the_registrar_at_once_and_the_next_one_finishes() {
    prerequisites();
    let w = world();
    let r = w.spawn_registrar();
    let gateway = pid(&w, "stubborn").unwrap();
    assert!(as_hermes(&["rm", "-rf", w.f.profile_dir("stubborn").to_str().unwrap()]).status.success());
    // Grace passed, teardown started, gateway still ignoring SIGTERM.
    assert!(wait_for(Duration::from_secs(6), || w.f.scandir_names().iter().any(|n| n.contains("stubborn") && n.contains("removing"))));
    let t = Instant::now();
    drop(r); // SIGTERM and wait
    assert!(t.elapsed() < Duration::from_secs(1), "stopping took {:?}", t.elapsed());
    // The next registrar finds the leftover and finishes it.
    let _r = w.spawn_registrar();
    assert!(
        wait_for(Duration::from_secs(15), || w.f.scandir_names().iter().all(|n| !n.contains("stubborn"))),
        "{:?}\n{}",
        w.f.scandir_names(),
        w.registrar_log()
    );
    assert!(!std::path::Path::new(&format!("/proc/{gateway}")).exists(), "orphaned gateway");
    assert_eq!(w.supervisors("gateway-stubborn"), 0, "orphaned supervisor");
}

#[test]
#[ignore = "needs root, s6 and the hermes user"]
fn a_registrar_killed_at_each_step_of_a_teardown_leaves_no_orphan_once_restarted() {
    prerequisites();
    // How many steps tearing down one profile takes, counted once.
    let small = ["default", "alpha", "eps"];
    let steps = {
        let w = world_of(&small);
        fs::remove_dir_all(w.f.profile_dir("eps")).unwrap();
        let probe = FaultyFs::new(&RealFs, None);
        let ctx = Ctx::new(&probe, &SystemClock, &w.f.cfg);
        let mut r = Registrar::new(ctx, Container::default()).unwrap();
        settle(&mut r);
        probe.steps()
    };
    assert!(steps >= 3, "{steps}");
    for k in 1..=steps {
        let w = world_of(&small);
        let gateway = pid(&w, "eps").unwrap();
        fs::remove_dir_all(w.f.profile_dir("eps")).unwrap();
        {
            let dying = FaultyFs::new(&RealFs, Some(Fault::KillAt(k)));
            let mut r = Registrar::new(Ctx::new(&dying, &SystemClock, &w.f.cfg), Container::default()).unwrap();
            settle(&mut r);
        }
        let mut r = Registrar::new(Ctx::new(&RealFs, &SystemClock, &w.f.cfg), Container::default()).unwrap();
        settle(&mut r);
        let names = w.f.scandir_names();
        assert!(names.iter().all(|n| !n.contains("eps")), "killed at step {k}: {names:?}");
        assert!(
            wait_for(Duration::from_secs(8), || !std::path::Path::new(&format!("/proc/{gateway}")).exists()),
            "killed at step {k}: orphaned gateway"
        );
        assert!(wait_for(Duration::from_secs(3), || w.supervisors("gateway-eps") == 0), "killed at step {k}: orphaned supervisor");
        assert_eq!(is_up(&w.f.slot("alpha")), Some(true), "killed at step {k}: a bystander went down");
    }
}

/// Converge everything and wait out the grace and the teardowns, for real.
fn settle(r: &mut Registrar) {
    eprintln!("{:?}", r.converge(&Scope::Everything));
    let end = Instant::now() + Duration::from_secs(20);
    while !r.idle() && Instant::now() < end {
        std::thread::sleep(Duration::from_millis(50));
        let c = r.tick();
        if !c.is_empty() {
            eprintln!("{c:?}");
        }
    }
}

/// Issue 19, item 8, end to end: a root command drops a file into a running profile (what
/// `docker exec C python …` does); the running registrar, woken by inotify, gives it to the
/// hermes user, says so in its log, and `status` (as the hermes user) shows when.
#[test]
#[ignore = "needs root, s6 and the hermes user"]
fn a_file_root_drops_into_a_running_profile_becomes_the_users_and_status_says_so() {
    prerequisites();
    let w = world_of(&["default", "coder"]);
    let _r = w.spawn_registrar();
    let env = w.f.profile_dir("coder").join(".env");
    fs::write(&env, "KEY=1\n").unwrap();
    use std::os::unix::fs::MetadataExt;
    assert!(
        wait_for(Duration::from_secs(10), || fs::metadata(&env).is_ok_and(|m| (m.uid(), m.gid()) == (10000, 10000))),
        "still root's; registrar log:\n{}",
        w.registrar_log()
    );
    assert!(
        wait_for(Duration::from_secs(5), || w.registrar_log().contains("took over 1 root-owned entries in profile coder")),
        "{}",
        w.registrar_log()
    );
    let o = w.cli(true, &["--json", "status"]);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["last_take_over"]["profile"], "coder", "{v}");
    assert_eq!(v["last_take_over"]["entries"], 1, "{v}");
    let o = w.cli(true, &["status"]);
    assert!(
        String::from_utf8_lossy(&o.stdout).contains("gave 1 root-owned entries in profile coder"),
        "{}",
        String::from_utf8_lossy(&o.stdout)
    );
}

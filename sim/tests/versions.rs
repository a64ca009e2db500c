//! What the simulator does differently as s6 2.11 (Debian's, checked against the real binaries
//! by `differential.rs`) and as s6 2.15 (s6-overlay's). Each test plays both versions on the
//! same input, with no real s6: supervisors driven directly through a recording host, the
//! scanner on the virtual clock.

use hermes_sim::s6sim::scan::Settings;
use hermes_sim::s6sim::supervise::{Host, SpawnSpec, Supervisor};
use hermes_sim::s6sim::version::S6Version::{self, V2_11, V2_15};
use hermes_sim::s6sim::virtual_world::{finish_restarts, Behaviour, VirtualWorld};
use hermes_sim::s6sim::wire::StatusRecord;
use nix::sys::signal::Signal;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

/// A host that runs nothing: spawns succeed when the program file exists, signals are noted,
/// and time moves only when a test moves `now`.
struct Recorder {
    now: Instant,
    spawns: Vec<SpawnSpec>,
    kills: Vec<(i32, Signal)>,
    next_pid: i32,
}

impl Recorder {
    fn new() -> Recorder {
        Recorder { now: Instant::now(), spawns: Vec::new(), kills: Vec::new(), next_pid: 100 }
    }
}

impl Host for Recorder {
    fn now(&self) -> Instant {
        self.now
    }
    fn wall(&self) -> SystemTime {
        SystemTime::now()
    }
    fn spawn(&mut self, sv: &SpawnSpec) -> std::io::Result<i32> {
        fs::metadata(sv.dir.join(&sv.argv[0]))?;
        self.spawns.push(sv.clone());
        self.next_pid += 1;
        Ok(self.next_pid)
    }
    fn kill(&mut self, pid: i32, sig: Signal) {
        self.kills.push((pid, sig));
    }
}

/// A service directory `name` with an executable `run` and the given extra files.
fn service(root: &Path, name: &str, files: &[(&str, &str)]) -> PathBuf {
    let d = root.join(name);
    fs::create_dir_all(&d).unwrap();
    for (f, body) in [("run", "#!/bin/sh\n")].iter().chain(files) {
        fs::write(d.join(f), body).unwrap();
        if *f == "run" || *f == "finish" {
            fs::set_permissions(d.join(f), fs::Permissions::from_mode(0o755)).unwrap();
        }
    }
    d
}

fn supervise(dir: &Path, version: S6Version, host: &mut Recorder) -> Supervisor {
    Supervisor::start(dir, "a", version, host, None, None).unwrap_or_else(|f| panic!("{}", f.message))
}

fn status(dir: &Path) -> StatusRecord {
    StatusRecord::decode(&fs::read(dir.join("supervise/status")).unwrap()).unwrap()
}

/// The raw wait status of a run that exited with `code`.
fn exited(code: i32) -> i32 {
    code << 8
}

#[test]
fn a_fresh_slot_with_down_is_0x08_in_2_11_and_0x09_not_started_yet_in_2_15() {
    for (v, flags) in [(V2_11, 0x08), (V2_15, 0x09)] {
        let tmp = tempfile::tempdir().unwrap();
        let d = service(tmp.path(), "a", &[("down", "")]);
        let mut h = Recorder::new();
        let sv = supervise(&d, v, &mut h);
        let st = status(&d);
        assert_eq!((st.pid, st.wstat, st.flags), (0, 0, flags), "{v}");
        assert_eq!(st.stamp, st.readystamp, "{v}");
        assert!(h.spawns.is_empty(), "{v}: a down slot is not started");
        assert_eq!(sv.status().flags, 0x08, "{v}: the paused marker is for the first write only");
    }
}

#[test]
fn a_slot_whose_run_cannot_start_keeps_the_first_record_and_retries_after_10_or_60_s() {
    for (v, flags, retry) in [(V2_11, 0x0c, 10), (V2_15, 0x0d, 60)] {
        let tmp = tempfile::tempdir().unwrap();
        let d = tmp.path().join("a");
        fs::create_dir(&d).unwrap();
        let mut h = Recorder::new();
        let sv = supervise(&d, v, &mut h);
        assert_eq!(status(&d).flags, flags, "{v}: want up, ready (and 2.15's not-started marker)");
        assert_eq!(sv.deadline(), Some(h.now + Duration::from_secs(retry)), "{v}");
    }
}

#[test]
fn finish_gets_three_arguments_in_2_11_and_the_pgid_as_a_fourth_in_2_15() {
    for v in [V2_11, V2_15] {
        let tmp = tempfile::tempdir().unwrap();
        let d = service(tmp.path(), "a", &[("finish", "#!/bin/sh\n")]);
        let mut h = Recorder::new();
        let mut sv = supervise(&d, v, &mut h);
        let run = sv.child().unwrap();
        sv.on_child_exit(run, exited(3), &mut h);
        let fin = sv.child().unwrap();
        sv.on_child_exit(fin, exited(0), &mut h);
        h.now += Duration::from_secs(2);
        sv.on_timeout(&mut h);
        let killed = sv.child().unwrap();
        sv.on_child_exit(killed, Signal::SIGTERM as i32, &mut h);
        let finishes: Vec<Vec<String>> = h.spawns.iter().filter(|s| s.is_finish).map(|s| s.argv.clone()).collect();
        let pgid = |p: i32| match v {
            V2_11 => vec![],
            V2_15 => vec![p.to_string()],
        };
        let expect = |code: &str, sig: &str, p: i32| [vec!["./finish".to_string(), code.into(), sig.into(), "a".into()], pgid(p)].concat();
        assert_eq!(finishes, vec![expect("3", "0", run), expect("256", "15", killed)], "{v}");
    }
}

#[test]
fn capital_q_parks_the_slot_in_2_11_and_is_ignored_by_2_15() {
    for (v, parks) in [(V2_11, true), (V2_15, false)] {
        let tmp = tempfile::tempdir().unwrap();
        let d = service(tmp.path(), "a", &[]);
        let mut h = Recorder::new();
        let mut sv = supervise(&d, v, &mut h);
        sv.on_control(b"Q", &mut h);
        assert_eq!(d.join("down").exists(), parks, "{v}");
        assert_eq!(status(&d).flags & 4 == 0, parks, "{v}: want down");
        assert!(h.kills.is_empty(), "{v}: Q never kills");
    }
}

#[test]
fn reload_and_group_signals_exist_only_in_2_15() {
    for v in [V2_11, V2_15] {
        let tmp = tempfile::tempdir().unwrap();
        let d = service(tmp.path(), "a", &[]);
        let mut h = Recorder::new();
        let mut sv = supervise(&d, v, &mut h);
        let pid = sv.child().unwrap();
        sv.on_control(b"l", &mut h);
        fs::write(d.join("reload-signal"), "USR1\n").unwrap();
        sv.on_control(b"lPCK", &mut h);
        let expect = match v {
            V2_11 => vec![],
            V2_15 => vec![
                (pid, Signal::SIGHUP),
                (pid, Signal::SIGUSR1),
                (-pid, Signal::SIGSTOP),
                (-pid, Signal::SIGCONT),
                (-pid, Signal::SIGKILL),
            ],
        };
        assert_eq!(h.kills, expect, "{v}");
    }
}

#[test]
fn timeout_kill_is_a_lone_sigkill_in_2_11_and_kill_plus_cont_with_the_pg_flag_in_2_15() {
    for (v, pg) in [(V2_11, false), (V2_11, true), (V2_15, false), (V2_15, true)] {
        let tmp = tempfile::tempdir().unwrap();
        let mut files = vec![("timeout-kill", "100\n")];
        if pg {
            files.push(("flag-timeout-killpg", ""));
        }
        let d = service(tmp.path(), "a", &files);
        let mut h = Recorder::new();
        let mut sv = supervise(&d, v, &mut h);
        let pid = sv.child().unwrap();
        sv.on_control(b"d", &mut h);
        h.kills.clear();
        h.now += Duration::from_millis(150);
        sv.on_timeout(&mut h);
        let target = if pg && v == V2_15 { -pid } else { pid };
        let expect = match v {
            V2_11 => vec![(pid, Signal::SIGKILL)],
            V2_15 => vec![(target, Signal::SIGKILL), (target, Signal::SIGCONT)],
        };
        assert_eq!(h.kills, expect, "{v}, flag-timeout-killpg: {pg}");
    }
}

/// A virtual s6-svscan of version `v` whose services all run forever.
fn world(scandir: &Path, v: S6Version, max: Option<usize>) -> VirtualWorld {
    let mut settings = Settings::of(v);
    settings.max = max.unwrap_or(settings.max);
    VirtualWorld::boot_with(scandir, settings, Box::new(|_, _| Behaviour::RunsForever), finish_restarts())
}

fn supervised(w: &VirtualWorld, name: &str) -> bool {
    w.scanner.entries.iter().any(|e| e.name == name && e.sup.as_ref().is_some_and(|s| !s.exited))
}

fn rescan(w: &mut VirtualWorld) {
    w.scanner.on_control(b"a", &mut w.host);
    w.advance(Duration::from_millis(10));
}

#[test]
fn only_2_15_removes_dangling_links_at_start_up() {
    for (v, kept) in [(V2_11, true), (V2_15, false)] {
        let tmp = tempfile::tempdir().unwrap();
        let scan = tmp.path().join("scan");
        fs::create_dir(&scan).unwrap();
        std::os::unix::fs::symlink(tmp.path().join("nowhere"), scan.join("dangling")).unwrap();
        service(&scan, "alpha", &[]);
        let w = world(&scan, v, None);
        assert_eq!(fs::symlink_metadata(scan.join("dangling")).is_ok(), kept, "{v}");
        assert!(supervised(&w, "alpha"), "{v}");
    }
}

#[test]
fn a_stat_failure_skips_one_name_in_2_11_and_drops_the_whole_scan_in_2_15() {
    for v in [V2_11, V2_15] {
        let tmp = tempfile::tempdir().unwrap();
        let scan = tmp.path().join("scan");
        let mut w = world(&scan, v, None);
        std::os::unix::fs::symlink(tmp.path().join("nowhere"), scan.join("dangling")).unwrap();
        service(&scan, "delta", &[]);
        rescan(&mut w);
        assert!(w.log.iter().any(|l| l.starts_with("unable to stat dangling: No such file or directory")), "{v}: {:?}", w.log);
        assert_eq!(supervised(&w, "delta"), v == V2_11, "{v}: delta in the same pass");
        match v {
            V2_11 => {
                // The failed stat scheduled a rescan in 3 s, which finds what came meanwhile.
                service(&scan, "eps", &[]);
                w.advance(Duration::from_millis(3100));
                assert!(supervised(&w, "eps"), "{v}");
            }
            V2_15 => {
                w.advance(Duration::from_secs(10));
                assert!(!supervised(&w, "delta"), "{v}: every retry fails on the same link");
                fs::remove_file(scan.join("dangling")).unwrap();
                w.advance(Duration::from_millis(4100));
                assert!(supervised(&w, "delta"), "{v}: the 4-s retry succeeds once the link is gone");
            }
        }
    }
}

#[test]
fn the_limit_counts_service_directories_in_2_11_and_every_supervisor_in_2_15() {
    let logged = |scan: &Path, names: &[&str]| {
        for n in names {
            service(scan, n, &[]);
            service(scan, &format!("{n}/log"), &[]);
        }
    };
    let tmp = tempfile::tempdir().unwrap();
    let scan = tmp.path().join("scan");
    fs::create_dir(&scan).unwrap();
    logged(&scan, &["a", "b", "c", "d"]);
    let w = world(&scan, V2_11, Some(3));
    let count = |w: &VirtualWorld| w.scanner.entries.iter().filter(|e| e.sup.as_ref().is_some_and(|s| !s.exited)).count();
    assert_eq!(count(&w), 6, "2.11: three services and their loggers share three slots");
    assert_eq!(w.log.iter().filter(|l| l.ends_with("too many services")).count(), 1);
    w.shutdown();

    let tmp = tempfile::tempdir().unwrap();
    let scan = tmp.path().join("scan");
    fs::create_dir(&scan).unwrap();
    logged(&scan, &["a", "b", "c", "d", "e"]);
    let mut w = world(&scan, V2_15, Some(8));
    assert_eq!(count(&w), 0, "2.15: the tenth supervisor does not fit, so the pass commits nothing");
    fs::remove_dir_all(scan.join("e")).unwrap();
    w.advance(Duration::from_secs(59));
    assert_eq!(count(&w), 0, "2.15: the next pass is 60 s after the failed one");
    w.advance(Duration::from_secs(2));
    assert_eq!(count(&w), 8);
}

#[test]
fn a_logger_added_later_is_started_by_2_15_only() {
    for v in [V2_11, V2_15] {
        let tmp = tempfile::tempdir().unwrap();
        let scan = tmp.path().join("scan");
        fs::create_dir(&scan).unwrap();
        service(&scan, "eps", &[]);
        let mut w = world(&scan, v, None);
        service(&scan, "eps/log", &[]);
        rescan(&mut w);
        assert_eq!(supervised(&w, "eps/log"), v == V2_15, "{v}");
    }
}

#[test]
fn only_2_15_limits_the_length_of_a_name() {
    let long = "x".repeat(12);
    for v in [V2_11, V2_15] {
        let tmp = tempfile::tempdir().unwrap();
        let scan = tmp.path().join("scan");
        fs::create_dir(&scan).unwrap();
        service(&scan, &long, &[]);
        let mut settings = Settings::of(v);
        settings.name_max = 11;
        let w = VirtualWorld::boot_with(&scan, settings, Box::new(|_, _| Behaviour::RunsForever), finish_restarts());
        assert_eq!(supervised(&w, &long), v == V2_11, "{v}");
    }
}

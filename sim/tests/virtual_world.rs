//! The virtual world's own contract: `finish` does what the caller's hook says (s6 itself only
//! knows that 125 means "leave it down"), and everything it stamps is on the virtual clock.

use hermes_sim::s6sim::virtual_world::{finish_restarts, Behaviour, FinishHook, Script, VirtualWorld};
use hermes_sim::s6sim::wire::{from_tai64n, TALLY_RECORD};
use std::cell::RefCell;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::time::{Duration, SystemTime};

/// A slot `name` with executable `run` and `finish` (their contents are never executed).
fn slot(scan: &Path, name: &str) -> PathBuf {
    let d = scan.join(name);
    fs::create_dir_all(&d).unwrap();
    for f in ["run", "finish"] {
        fs::write(d.join(f), "#!/bin/sh\n").unwrap();
        fs::set_permissions(d.join(f), fs::Permissions::from_mode(0o755)).unwrap();
    }
    d
}

fn runs(w: &VirtualWorld, name: &str) -> usize {
    w.host.spawns.iter().filter(|(n, finish)| n == name && !finish).count()
}

fn crashing(code: i32) -> Script {
    Box::new(move |_, _| Behaviour::ExitAfter { code, after: Duration::from_millis(100) })
}

#[test]
fn the_default_finish_lets_every_exit_restart() {
    let tmp = tempfile::tempdir().unwrap();
    let scan = tmp.path().join("scan");
    slot(&scan, "a");
    let mut w = VirtualWorld::boot(&scan, 500, crashing(0), finish_restarts());
    w.advance(Duration::from_secs(10));
    assert!(runs(&w, "a") > 5, "a clean exit is restarted once a second: {} runs", runs(&w, "a"));
}

#[test]
fn the_hook_sees_what_finish_would_see_and_its_125_parks_the_slot() {
    let tmp = tempfile::tempdir().unwrap();
    let scan = tmp.path().join("scan");
    let dir = slot(&scan, "a");
    let calls = Rc::new(RefCell::new(Vec::new()));
    let seen = calls.clone();
    let hook: FinishHook = Box::new(move |dir, name, code, sig| {
        seen.borrow_mut().push((dir.to_path_buf(), name.to_string(), code, sig));
        if code == 78 {
            125
        } else {
            0
        }
    });
    let mut w = VirtualWorld::boot(&scan, 500, crashing(78), hook);
    w.advance(Duration::from_secs(60));
    assert_eq!(runs(&w, "a"), 1, "parked by the hook's 125");
    assert_eq!(*calls.borrow(), vec![(dir, "a".to_string(), 78, 0)]);
    assert_eq!(w.up("a"), Some(false));
}

#[test]
fn a_killed_run_reaches_the_hook_as_256_and_its_signal() {
    let tmp = tempfile::tempdir().unwrap();
    let scan = tmp.path().join("scan");
    slot(&scan, "a");
    let calls = Rc::new(RefCell::new(Vec::new()));
    let seen = calls.clone();
    let hook: FinishHook = Box::new(move |_, _, code, sig| {
        seen.borrow_mut().push((code, sig));
        0
    });
    let mut w = VirtualWorld::boot(&scan, 500, Box::new(|_, _| Behaviour::RunsForever), hook);
    fs::OpenOptions::new()
        .write(true)
        .open(scan.join("a/supervise/control"))
        .and_then(|mut f| std::io::Write::write_all(&mut f, b"k"))
        .unwrap();
    w.advance(Duration::from_millis(10));
    assert_eq!(*calls.borrow(), vec![(256, 9)]);
}

#[test]
fn death_tally_stamps_are_on_the_virtual_clock() {
    let tmp = tempfile::tempdir().unwrap();
    let scan = tmp.path().join("scan");
    slot(&scan, "a");
    let script = Box::new(|_: &Path, _: &str| Behaviour::ExitAfter { code: 3, after: Duration::from_secs(3600) });
    let booted = SystemTime::now();
    let mut w = VirtualWorld::boot(&scan, 500, script, finish_restarts());
    w.advance(Duration::from_secs(3601));
    let tally = fs::read(scan.join("a/supervise/death_tally")).unwrap();
    assert_eq!(tally.len(), TALLY_RECORD, "one death");
    let stamp = from_tai64n(&tally[..12]);
    let virtual_age = stamp.duration_since(booted).unwrap_or_default();
    assert!(virtual_age >= Duration::from_secs(3600), "stamped {virtual_age:?} after boot, not an hour of virtual time");
    assert_eq!(tally[12..], [3, 0], "exit code 3, no signal");
}

//! The registrar's decisions on their own (no scanner needed), on a manual clock: new
//! profiles get a slot, deletions are acted on only once confirmed after the grace, transient
//! absences (a restore, a rewritten SOUL.md, a swapped profiles/) tear nothing down, a profile
//! that comes back gets its wanted state back, and a registrar pass killed at any step is
//! repaired by the next registrar.

use hermes_testkit as common;

use common::*;
use hermes_core::boot::plan::Container;
use hermes_core::clock::ManualClock;
use hermes_core::ctx::Ctx;
use hermes_core::fs::faulty::{Fault, FaultyFs};
use hermes_core::fs::{Fs, RealFs};
use hermes_core::registrar::{Converged, Registrar, Scope, DELETE_GRACE};
use std::fs;
use std::time::{Duration, SystemTime};

fn registrar<'a>(f: &'a Fixture, fs_: &'a dyn Fs, clock: &'a ManualClock) -> Registrar<'a> {
    f.hand_over();
    Registrar::new(Ctx::new(fs_, clock, &f.cfg), Container::default()).unwrap()
}

/// Look at everything, then let time pass until nothing is pending.
fn settle(r: &mut Registrar, clock: &ManualClock) -> Converged {
    let mut all = r.converge(&Scope::Everything);
    for _ in 0..100 {
        if r.idle() {
            break;
        }
        clock.advance(Duration::from_millis(500));
        let c = r.tick();
        all.added.extend(c.added);
        all.removed.extend(c.removed);
        all.errors.extend(c.errors);
    }
    all
}

fn booted() -> Fixture {
    let f = Fixture::new();
    f.profile("alpha", Some("running"), None);
    f.profile("beta", None, None);
    f.run();
    f
}

#[test]
fn a_deletion_is_acted_on_only_after_the_grace_and_a_second_look() {
    let f = booted();
    let clock = ManualClock::new(SystemTime::now());
    let mut r = registrar(&f, &RealFs, &clock);
    let c = r.converge(&Scope::Everything);
    assert!(c.is_empty(), "{c:?}");

    f.profile("gamma", None, None);
    fs::remove_dir_all(f.profile_dir("beta")).unwrap();
    f.hand_over();
    let c = r.converge(&Scope::Profiles(["gamma".to_string(), "beta".to_string()].into()));
    assert_eq!(c.added, vec![("gamma".to_string(), false)], "registered down: nothing says it should run");
    assert_eq!(c.pending, vec!["beta".to_string()]);
    assert!(f.slot("beta").is_dir(), "not torn down at first sight");
    assert!(f.slot("gamma").join("down").exists());

    clock.advance(DELETE_GRACE - Duration::from_millis(1));
    assert!(r.tick().removed.is_empty());
    assert!(f.slot("beta").is_dir(), "not before the grace");
    clock.advance(Duration::from_millis(1));
    let c = r.tick();
    assert_eq!(c.removed, vec!["beta".to_string()]);
    assert!(!f.slot("beta").exists());
    assert_eq!(f.scandir_names(), vec!["gateway-alpha", "gateway-default", "gateway-gamma"], "no leftover");
}

#[test]
fn transient_absences_tear_nothing_down() {
    let f = booted();
    let clock = ManualClock::new(SystemTime::now());
    let mut r = registrar(&f, &RealFs, &clock);
    let live = fs::metadata(f.slot("alpha").join("run")).unwrap();
    let profiles = f.home.join("profiles");
    let moved = f.home.join("profiles.old");

    // profiles/ moved away for a while (a restore): nothing can be concluded.
    fs::rename(&profiles, &moved).unwrap();
    let c = settle(&mut r, &clock);
    assert!(c.removed.is_empty() && c.pending.is_empty(), "{c:?}");
    fs::rename(&moved, &profiles).unwrap();

    // profiles/ replaced by a link to an empty directory: not trusted.
    let empty = f.tmp.path().join("empty");
    fs::create_dir(&empty).unwrap();
    fs::rename(&profiles, &moved).unwrap();
    std::os::unix::fs::symlink(&empty, &profiles).unwrap();
    let c = settle(&mut r, &clock);
    assert!(c.removed.is_empty(), "{c:?}");
    fs::remove_file(&profiles).unwrap();
    fs::rename(&moved, &profiles).unwrap();

    // SOUL.md rewritten (removed, then written again within the grace): the slot stays.
    fs::remove_file(f.profile_dir("alpha").join("SOUL.md")).unwrap();
    assert_eq!(r.converge(&Scope::Everything).pending, vec!["alpha".to_string()]);
    clock.advance(DELETE_GRACE / 2);
    fs::write(f.profile_dir("alpha").join("SOUL.md"), "again").unwrap();
    let c = settle(&mut r, &clock);
    assert!(c.removed.is_empty(), "{c:?}");

    // One profile moved away and back within the grace.
    let aside = f.home.join("alpha.bak");
    fs::rename(f.profile_dir("alpha"), &aside).unwrap();
    assert_eq!(r.converge(&Scope::Everything).pending, vec!["alpha".to_string()]);
    clock.advance(DELETE_GRACE / 2);
    fs::rename(&aside, f.profile_dir("alpha")).unwrap();
    let c = settle(&mut r, &clock);
    assert!(c.removed.is_empty(), "{c:?}");

    let now = fs::metadata(f.slot("alpha").join("run")).unwrap();
    use std::os::unix::fs::MetadataExt;
    assert_eq!(live.ino(), now.ino(), "the live slot was never replaced");
}

#[test]
fn a_profile_that_comes_back_gets_its_wanted_state_back() {
    let f = booted();
    let clock = ManualClock::new(SystemTime::now());
    let mut r = registrar(&f, &RealFs, &clock);
    let kept = f.tmp.path().join("alpha-kept");
    fs::rename(f.profile_dir("alpha"), &kept).unwrap();
    let c = settle(&mut r, &clock);
    assert_eq!(c.removed, vec!["alpha".to_string()]);
    fs::rename(&kept, f.profile_dir("alpha")).unwrap();
    let c = r.converge(&Scope::Profiles(["alpha".to_string()].into()));
    assert_eq!(c.added, vec![("alpha".to_string(), true)], "its state file says running");
    assert!(!f.slot("alpha").join("down").exists());
}

#[test]
fn names_that_are_not_profiles_are_never_registered() {
    let f = booted();
    let clock = ManualClock::new(SystemTime::now());
    let mut r = registrar(&f, &RealFs, &clock);
    let outside = f.tmp.path().join("outside");
    fs::create_dir(&outside).unwrap();
    fs::write(outside.join("SOUL.md"), "x").unwrap();
    std::os::unix::fs::symlink(&outside, f.profile_dir("linked")).unwrap();
    fs::create_dir_all(f.home.join("profiles/Bad Name")).unwrap();
    fs::write(f.home.join("profiles/Bad Name/SOUL.md"), "x").unwrap();
    fs::create_dir_all(f.home.join("profiles/default")).unwrap();
    fs::write(f.home.join("profiles/default/SOUL.md"), "x").unwrap();
    let c = settle(&mut r, &clock);
    assert!(c.added.is_empty(), "{c:?}");
    assert_eq!(f.scandir_names(), vec!["gateway-alpha", "gateway-beta", "gateway-default"]);
}

/// The registrar pass to interrupt: one profile to add, one deleted to remove.
fn changed() -> Fixture {
    let f = booted();
    f.profile("gamma", Some("running"), None);
    fs::remove_dir_all(f.profile_dir("beta")).unwrap();
    f
}

#[test]
fn a_registrar_killed_at_any_step_is_repaired_by_the_next() {
    // How many steps a whole run takes.
    let f = changed();
    let clock = ManualClock::new(SystemTime::now());
    let probe = FaultyFs::new(&RealFs, None);
    let mut r = registrar(&f, &probe, &clock);
    settle(&mut r, &clock);
    let total = probe.steps();
    let want = f.scandir_names();
    assert_eq!(want, vec!["gateway-alpha", "gateway-default", "gateway-gamma"]);
    assert!(total > 10, "{total} steps");

    for k in 1..=total {
        let f = changed();
        let clock = ManualClock::new(SystemTime::now());
        let dying = FaultyFs::new(&RealFs, Some(Fault::KillAt(k)));
        {
            let mut r = registrar(&f, &dying, &clock);
            settle(&mut r, &clock);
        }
        let mut r = registrar(&f, &RealFs, &clock);
        let c = settle(&mut r, &clock);
        assert_eq!(f.scandir_names(), want, "killed at step {k} ({:?}): {c:?}", dying.log().get(k - 1));
        assert!(!f.slot("gamma").join("down").exists(), "step {k}: gamma wants to run");
    }
}

/// A held gateway whose backoff ended: the registrar's schedule starts it only if a boot pass
/// would. With multiplexing (the root gateway serves every profile) a named one never is; the
/// schedule drops it instead of retrying.
#[test]
fn the_policy_schedule_starts_only_what_a_boot_pass_would() {
    for multiplex in [false, true] {
        let f = Fixture::new();
        f.profile("alpha", None, Some("running"));
        f.run();
        fs::write(f.profile_dir("alpha").join("gateway_policy.json"), r#"{"state":"backing-off","next_start":1}"#).unwrap();
        f.hand_over();
        let clock = ManualClock::new(SystemTime::now());
        let mut r = Registrar::new(Ctx::new(&RealFs, &clock, &f.cfg), Container { multiplex, ..Container::default() }).unwrap();
        let c = r.converge(&Scope::Everything);
        // No supervisor listens here: a start that should happen is retried shortly.
        assert!(c.policy.is_empty(), "{c:?}");
        assert_eq!(r.schedule().contains_key("alpha"), !multiplex, "multiplex={multiplex}: {:?}", r.schedule());
    }
}

/// A hold read from the user's record ends no later than the policy's own maxima after the
/// death that caused it (docs/crash-policy.md): an edited `next_start` of 1e300 (or of a
/// year like 2093, which looks like a time) does not hold a gateway down forever.
#[test]
fn an_edited_next_start_is_clamped_to_the_policys_maxima() {
    let now = SystemTime::now();
    let unix = now.duration_since(SystemTime::UNIX_EPOCH).unwrap().as_secs_f64();
    let death = unix - 10.0;
    let cases = [
        // (record, the latest the hold may end)
        (
            format!(r#"{{"state":"quarantined","next_start":1e300,"last_exit":{{"at":{death},"code":1,"signal":null}}}}"#),
            death + 6.0 * 3600.0,
        ),
        (
            format!(r#"{{"state":"quarantined","next_start":3.9e9,"last_exit":{{"at":{death},"code":1,"signal":null}}}}"#),
            death + 6.0 * 3600.0,
        ),
        (format!(r#"{{"state":"backing-off","next_start":3.9e9,"last_exit":{{"at":{death},"code":1,"signal":null}}}}"#), death + 60.0),
        // No known death (or one in the future): nothing to wait from; due now.
        (r#"{"state":"quarantined","next_start":3.9e9}"#.to_string(), unix),
        (r#"{"state":"quarantined","next_start":3.9e9,"last_exit":{"at":3.8e9,"code":1,"signal":null}}"#.to_string(), unix),
        (r#"{"state":"backing-off"}"#.to_string(), unix),
    ];
    for (record, latest) in cases {
        let f = Fixture::new();
        f.profile("alpha", None, Some("running"));
        f.run();
        fs::write(f.profile_dir("alpha").join("gateway_policy.json"), &record).unwrap();
        f.hand_over();
        let clock = ManualClock::new(now);
        let mut r = Registrar::new(Ctx::new(&RealFs, &clock, &f.cfg), Container::default()).unwrap();
        r.converge(&Scope::Everything);
        let due = r.schedule().get("alpha").copied();
        assert!(due.is_some_and(|t| t <= latest + 1.5), "{record}: due {due:?}, latest {latest}");
        // The bound does not move with the clock: an hour later it is still the same time.
        clock.advance(Duration::from_secs(3600));
        let again = hermes_core::registrar::schedule::due(
            &hermes_core::policy::record::read(&Ctx::new(&RealFs, &clock, &f.cfg), "alpha"),
            &f.cfg.policy,
        );
        if latest > unix + 3600.0 {
            assert_eq!(again, due, "{record}");
        }
    }
}

/// A profile removed with `rm -rf` while its gateway was writing into it: rm fails, the
/// directory stays, without `SOUL.md`. That is no profile: once confirmed after the grace, its
/// slot goes like a deleted one's.
#[test]
fn a_directory_left_without_soul_md_loses_its_slot_after_the_grace() {
    let f = booted();
    let clock = ManualClock::new(SystemTime::now());
    let mut r = registrar(&f, &RealFs, &clock);
    fs::remove_file(f.profile_dir("alpha").join("SOUL.md")).unwrap();
    fs::write(f.profile_dir("alpha").join("still-writing.log"), "x").unwrap();
    let c = r.converge(&Scope::Everything);
    assert_eq!(c.pending, vec!["alpha".to_string()]);
    assert!(f.slot("alpha").is_dir(), "not torn down at first sight");
    clock.advance(DELETE_GRACE);
    let c = settle(&mut r, &clock);
    assert_eq!(c.removed, vec!["alpha".to_string()], "{c:?}");
    assert!(!f.slot("alpha").exists());
    assert!(f.profile_dir("alpha").is_dir(), "the user's directory is the user's: left alone");
}

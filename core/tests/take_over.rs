//! Root-made files in a profile (issue 19, item 8): a root command that writes the volume
//! (`docker exec C python …`, upstream's CLI run as root) leaves root-owned entries the
//! gateway, running as the hermes user, then cannot read or replace. The registrar, in root
//! mode, takes them over when it looks at the profile: they become the configured user's,
//! through the same walk as `adopt-volume` (never a hard link with another name, which may be
//! outside the volume), bounded, and never across into other profiles or the loggers' logs.

use hermes_core::boot::plan::Container;
use hermes_core::clock::ManualClock;
use hermes_core::ctx::Ctx;
use hermes_core::fs::RealFs;
use hermes_core::lifecycle::status::status;
use hermes_core::registrar::{take_over, Registrar, Scope};
use hermes_testkit::{is_root, need, Fixture};
use std::collections::BTreeSet;
use std::fs;
use std::os::unix::fs::{symlink, MetadataExt, PermissionsExt};
use std::path::Path;
use std::time::SystemTime;

fn owner(p: &Path) -> (u32, u32) {
    let m = fs::symlink_metadata(p).unwrap();
    (m.uid(), m.gid())
}

fn fixture() -> Fixture {
    let mut f = Fixture::new();
    fs::set_permissions(f.tmp.path(), fs::Permissions::from_mode(0o755)).unwrap();
    fs::create_dir(f.tmp.path().join("run")).unwrap();
    f.cfg.registrar_fifo = f.tmp.path().join("run/registrar");
    f
}

fn only(p: &str) -> Scope {
    Scope::Profiles(BTreeSet::from([p.to_string()]))
}

#[test]
#[ignore = "needs root (root-owned files, the registrar as root)"]
fn root_made_entries_in_a_profile_become_the_users_and_an_outside_hard_link_does_not() {
    need(is_root(), "makes root-owned files and runs the registrar as root: run as root");
    let f = fixture();
    let coder = f.profile("coder", Some("running"), None);
    f.profile("other", None, None);
    f.hand_over();
    let clock = ManualClock::new(SystemTime::now());
    let mut r = Registrar::new(Ctx::new(&RealFs, &clock, &f.cfg), Container::default()).unwrap();
    r.converge(&Scope::Everything);

    // What `docker exec C python …` as root leaves behind.
    fs::write(coder.join(".env"), "KEY=1\n").unwrap();
    fs::set_permissions(coder.join(".env"), fs::Permissions::from_mode(0o600)).unwrap();
    fs::create_dir(coder.join("sessions")).unwrap();
    fs::write(coder.join("sessions/s1.json"), "{}").unwrap();
    symlink("/etc/shadow", coder.join("sessions/link")).unwrap();
    let outside = f.tmp.path().join("outside");
    fs::write(&outside, "root's").unwrap();
    fs::hard_link(&outside, coder.join("linked")).unwrap();
    fs::write(f.profile_dir("other").join("root-made"), "x").unwrap();

    let c = r.converge(&only("coder"));
    for p in [".env", "sessions", "sessions/s1.json", "sessions/link"] {
        assert_eq!(owner(&coder.join(p)), (10000, 10000), "{p}: {c:?}");
    }
    assert_eq!(owner(&outside), (0, 0), "a file with another name outside stays root's");
    assert_eq!(owner(Path::new("/etc/shadow")).0, 0);
    assert_eq!(owner(&f.profile_dir("other").join("root-made")), (0, 0), "another profile is not looked at");
    let t = &c.taken_over;
    assert_eq!((t.len(), t[0].profile.as_str(), t[0].entries, t[0].hard_linked), (1, "coder", 4, 1), "{c:?}");

    // `status` says so, and the registrar's log line is made from `taken_over`.
    let ctx = Ctx::new(&RealFs, &clock, &f.cfg);
    let report = status(&ctx, None).unwrap();
    let last = report.last_take_over.clone().expect("status shows the take-over");
    assert_eq!((last.profile.as_str(), last.entries), ("coder", 4));
    // (The table's sentence for it: `cli/src/table.rs`, `the_last_take_over_is_told`.)
    let rec = f.tmp.path().join("run/last-take-over.json");
    assert_eq!(owner(&rec).0, 0, "recorded where only root writes");

    // Nothing root-made left: the next look changes nothing and says nothing.
    assert!(r.converge(&only("coder")).taken_over.is_empty());
}

/// A configuration whose user is root itself has nothing to take over.
#[test]
fn with_root_as_the_configured_user_nothing_is_taken_over() {
    let mut f = fixture();
    f.profile("coder", None, None);
    f.cfg.uid = 0;
    let clock = ManualClock::new(SystemTime::now());
    let ctx = Ctx::new(&RealFs, &clock, &f.cfg);
    assert!(!take_over::active(&ctx));
    assert_eq!(take_over::profile(&ctx, "coder").unwrap(), None);
}

#[test]
#[ignore = "needs root (root-owned files, the registrar as root)"]
fn the_default_profile_takes_over_the_home_but_never_other_profiles_or_the_logs() {
    need(is_root(), "makes root-owned files and runs the registrar as root: run as root");
    let f = fixture();
    f.profile("coder", None, None);
    fs::create_dir_all(f.home.join("logs/gateways/coder")).unwrap();
    f.hand_over();
    let clock = ManualClock::new(SystemTime::now());
    let mut r = Registrar::new(Ctx::new(&RealFs, &clock, &f.cfg), Container::default()).unwrap();
    r.converge(&Scope::Everything);

    fs::write(f.home.join(".env"), "KEY=1\n").unwrap();
    fs::create_dir(f.home.join("skills")).unwrap();
    fs::write(f.home.join("skills/a.md"), "x").unwrap();
    fs::write(f.profile_dir("coder").join("root-made"), "x").unwrap();
    fs::write(f.home.join("logs/root-made.log"), "x").unwrap();

    let c = r.converge(&only("default"));
    for p in [".env", "skills", "skills/a.md"] {
        assert_eq!(owner(&f.home.join(p)), (10000, 10000), "{p}: {c:?}");
    }
    assert_eq!(owner(&f.profile_dir("coder").join("root-made")), (0, 0), "profiles/ is not entered from the home");
    assert_eq!(owner(&f.home.join("logs/root-made.log")), (0, 0), "logs/ is not the default profile's");
}

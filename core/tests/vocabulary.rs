//! The boot pass's decisions on newer hermes-agent's vocabulary (issue 23), in process and
//! without s6 (cli/tests/vocabulary.rs has them against real s6 with the registrar and
//! `status`): `gateway.parked`, `profiles/.deleted` tombstones, the multiplex fold.

use hermes_testkit as common;

use common::*;
use hermes_core::boot::plan::{Action, Container};
use hermes_core::boot::Options;
use std::fs;

fn entry(r: &hermes_core::boot::PassReport, p: &str) -> (Action, Option<String>) {
    r.entries.iter().find(|e| e.profile == p).map(|e| (e.action, e.reason.clone())).unwrap_or_else(|| panic!("no entry for {p}: {r:?}"))
}

#[test]
fn a_parked_profile_is_registered_down_whatever_its_state_and_a_link_counts_unfollowed() {
    let f = Fixture::new();
    f.profile("parkee", Some("running"), Some("running"));
    fs::write(f.profile_dir("parkee").join("gateway.parked"), "").unwrap();
    f.profile("linked", Some("running"), None);
    // A link named gateway.parked is the marker itself; root never looks where it points.
    std::os::unix::fs::symlink("/nonexistent/target", f.profile_dir("linked").join("gateway.parked")).unwrap();
    f.profile("plain", Some("running"), None);
    let r = f.run();
    assert_eq!(entry(&r, "parkee"), (Action::Registered, Some("parked".into())));
    assert_eq!(entry(&r, "linked"), (Action::Registered, Some("parked".into())));
    assert_eq!(entry(&r, "plain"), (Action::Started, None));
    assert!(f.slot("parkee").join("down").exists() && f.slot("linked").join("down").exists());
    assert!(
        f.boot_log().contains("profile=parkee prior_state=running action=registered prior_exit=unknown reason=parked\n"),
        "{}",
        f.boot_log()
    );
}

#[test]
fn tombstones_and_the_deleted_directory_are_never_profiles() {
    let f = Fixture::new();
    f.profile("ghost", Some("running"), Some("running"));
    f.profile("kept", None, None);
    let deleted = f.home.join("profiles/.deleted");
    fs::create_dir_all(deleted.join("coder")).unwrap();
    fs::write(deleted.join("ghost"), "deleted\n").unwrap();
    fs::write(deleted.join("SOUL.md"), "").unwrap();
    fs::write(deleted.join("coder/SOUL.md"), "").unwrap();
    let r = f.run();
    let names: Vec<&str> = r.entries.iter().map(|e| e.profile.as_str()).collect();
    assert_eq!(names, ["default", "kept"], "no ghost, no .deleted, no skipped line for it: {r:?}");
    assert!(!f.slot("ghost").exists());
}

/// Root looks names up in `.deleted`, never lists it (its size is the user's to choose, and the
/// pass's cost follows the profiles, not the tombstones): a `.deleted` that may be searched but
/// not read still tombstones what is in it. (Run as root, the pass can read it anyway; run as
/// the volume's owner, a listing pass would see no tombstone.)
#[test]
fn tombstones_are_looked_up_by_name_never_listed() {
    use std::os::unix::fs::PermissionsExt;
    let f = Fixture::new();
    f.profile("ghost", Some("running"), Some("running"));
    f.profile("kept", None, None);
    let deleted = f.home.join("profiles/.deleted");
    fs::create_dir(&deleted).unwrap();
    fs::write(deleted.join("ghost"), "deleted\n").unwrap();
    // Search without read: a name can be looked up, the directory cannot be listed.
    fs::set_permissions(&deleted, fs::Permissions::from_mode(0o311)).unwrap();
    let r = f.run();
    fs::set_permissions(&deleted, fs::Permissions::from_mode(0o755)).unwrap();
    let names: Vec<&str> = r.entries.iter().map(|e| e.profile.as_str()).collect();
    assert_eq!(names, ["default", "kept"], "ghost is tombstoned: {r:?}");
    assert!(!r.warnings.iter().any(|w| w.contains("tombstones")), "{:?}", r.warnings);
}

#[test]
fn a_deleted_directory_that_is_a_link_is_not_followed_and_tombstones_nothing() {
    let f = Fixture::new();
    f.profile("coder", None, None);
    let elsewhere = f.tmp.path().join("elsewhere");
    fs::create_dir(&elsewhere).unwrap();
    fs::write(elsewhere.join("coder"), "deleted\n").unwrap();
    std::os::unix::fs::symlink(&elsewhere, f.home.join("profiles/.deleted")).unwrap();
    let r = f.run();
    assert_eq!(entry(&r, "coder"), (Action::Registered, None));
    assert!(
        r.warnings.iter().any(|w| w.contains(".deleted is a symbolic link") && w.contains("tombstones are ignored")),
        "{:?}",
        r.warnings
    );
}

#[test]
fn the_fold_starts_the_root_gateway_for_a_named_running_intent_but_not_for_a_parked_one() {
    let mx = Container { multiplex: true, ..Container::default() };
    // The root profile stopped, a named one wanting running: the root gateway starts.
    let f = Fixture::new();
    f.state("default", Some("stopped"), Some("stopped"));
    f.profile("coder", Some("running"), None);
    f.profile("writer", Some("stopped"), None);
    let r = f.run_with(&mx, &Options::default());
    assert_eq!(entry(&r, "default"), (Action::Started, Some("folded".into())));
    assert_eq!(entry(&r, "coder"), (Action::Registered, Some("folded".into())));
    assert_eq!(entry(&r, "writer"), (Action::Registered, None));
    assert!(!f.slot("default").join("down").exists() && f.slot("coder").join("down").exists());
    assert!(r.warnings.iter().any(|w| w.contains("multiplexing: coder want(s) running")), "{:?}", r.warnings);

    // Only a parked profile wants running: it is not served, so it starts nothing.
    let f = Fixture::new();
    f.state("default", Some("stopped"), Some("stopped"));
    f.profile("parkee", Some("running"), None);
    fs::write(f.profile_dir("parkee").join("gateway.parked"), "").unwrap();
    let r = f.run_with(&mx, &Options::default());
    assert_eq!(entry(&r, "default"), (Action::Registered, None));
    assert_eq!(entry(&r, "parkee"), (Action::Registered, Some("parked".into())));

    // Without multiplexing there is no fold: each profile starts its own.
    let f = Fixture::new();
    f.state("default", Some("stopped"), Some("stopped"));
    f.profile("coder", Some("running"), None);
    let r = f.run();
    assert_eq!(entry(&r, "default"), (Action::Registered, None));
    assert_eq!(entry(&r, "coder"), (Action::Started, None));
}

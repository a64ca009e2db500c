//! The registrar's convergence step on its own (no scanner needed): new profiles get a slot
//! (down), slots of deleted profiles go, live slots are never replaced, and a profiles/ it
//! cannot trust never makes it tear anything down.

mod common;

use common::*;
use hermes_core::lifecycle::watch::converge;
use hermes_core::safe_fs::RealFs;
use std::fs;

#[test]
fn converges_additions_and_removals_but_not_over_an_unreadable_profiles_dir() {
    let f = Fixture::new();
    f.profile("alpha", Some("running"), None);
    f.profile("beta", None, None);
    f.run();
    let run_before = fs::metadata(f.slot("alpha").join("run")).unwrap();

    let c = converge(&RealFs, &f.cfg).unwrap();
    assert!(c.added.is_empty() && c.removed.is_empty() && c.errors.is_empty(), "{c:?}");

    f.profile("gamma", Some("running"), None);
    fs::remove_dir_all(f.profile_dir("beta")).unwrap();
    let c = converge(&RealFs, &f.cfg).unwrap();
    assert_eq!((c.added.as_slice(), c.removed.as_slice()), (&["gamma".to_string()][..], &["beta".to_string()][..]));
    assert!(f.slot("gamma").join("down").exists(), "registered down, whatever its state says");
    assert!(!f.slot("beta").exists());
    let run_after = fs::metadata(f.slot("alpha").join("run")).unwrap();
    assert_eq!(std::os::unix::fs::MetadataExt::ino(&run_before), std::os::unix::fs::MetadataExt::ino(&run_after), "live slot untouched");

    // profiles/ swapped for a link to an empty directory: no conclusion, no teardown.
    let empty = f.tmp.path().join("empty");
    fs::create_dir(&empty).unwrap();
    fs::rename(f.home.join("profiles"), f.tmp.path().join("profiles.real")).unwrap();
    std::os::unix::fs::symlink(&empty, f.home.join("profiles")).unwrap();
    let c = converge(&RealFs, &f.cfg).unwrap();
    assert!(c.removed.is_empty(), "{c:?}");
    assert!(c.errors.iter().any(|e| e.contains("symbolic link")), "{c:?}");
    assert!(f.slot("alpha").exists() && f.slot("gamma").exists());

    // profiles/ gone for real: every named slot goes, the default stays.
    fs::remove_file(f.home.join("profiles")).unwrap();
    let c = converge(&RealFs, &f.cfg).unwrap();
    assert_eq!(c.removed.len(), 2, "{c:?}");
    assert_eq!(f.scandir_names(), vec!["gateway-default"]);
}

//! A volume populated under another uid is taken over at boot in root mode: what the previous
//! owner owned becomes the configured user's, links are re-owned and never followed, a file
//! hard-linked from elsewhere and another file system are left alone.

use hermes_testkit::{is_root, need, Fixture};
use hermes_core::volume::adopt::adopt;
use std::fs;
use std::os::unix::fs::{chown, lchown, symlink, MetadataExt};

#[test]
#[ignore = "needs root (it changes owners)"]
fn a_volume_of_another_uid_becomes_the_users_and_nothing_outside_does() {
    need(is_root(), "changes owners: run as root");
    let f = Fixture::new();
    f.profile("coder", Some("running"), None);
    let outside = f.tmp.path().join("outside-secret");
    fs::write(&outside, "root's").unwrap();
    symlink(&outside, f.profile_dir("coder").join("link-out")).unwrap();
    // A hard link the previous owner made to a file of someone else (here, root's).
    fs::hard_link(&outside, f.profile_dir("coder").join("hard")).unwrap();
    fs::write(f.home.join("theirs-but-shared"), "x").unwrap();
    fs::hard_link(f.home.join("theirs-but-shared"), f.tmp.path().join("elsewhere")).unwrap();
    // Everything in the home belongs to uid 20000 (another image's user), but the hard link.
    for e in walk(&f.home) {
        if e != f.profile_dir("coder").join("hard") {
            lchown(&e, Some(20000), Some(20000)).unwrap();
        }
    }
    chown(f.tmp.path().join("elsewhere"), Some(20000), Some(20000)).unwrap();

    let done = adopt(&f.ctx()).unwrap().expect("the volume was another uid's");
    assert_eq!(done.from, 20000);
    assert_eq!(done.hard_linked, vec![f.home.join("theirs-but-shared")], "a file with another name somewhere is left");
    for e in walk(&f.home) {
        let m = fs::symlink_metadata(&e).unwrap();
        if e == f.profile_dir("coder").join("hard") {
            assert_eq!(m.uid(), 0, "root's file stays root's");
        } else if e == f.home.join("theirs-but-shared") {
            assert_eq!(m.uid(), 20000);
        } else {
            assert_eq!((m.uid(), m.gid()), (10000, 10000), "{}", e.display());
        }
    }
    assert_eq!(fs::metadata(&outside).unwrap().uid(), 0, "the link was re-owned, not its target");
    assert!(adopt(&f.ctx()).unwrap().is_none(), "a second boot has nothing to do");
}

fn walk(p: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = vec![p.to_path_buf()];
    if fs::symlink_metadata(p).unwrap().is_dir() {
        for e in fs::read_dir(p).unwrap() {
            out.extend(walk(&e.unwrap().path()));
        }
    }
    out
}

//! The hermes user controls the volume; root runs the pass. Every tree here is something that
//! user could plant. The pass must neither follow a link, nor hang on a FIFO, nor read a huge
//! file, nor let a name or value forge a log line, nor abort.

use hermes_testkit as common;

use common::*;
use hermes_core::boot::plan::Action;
use std::fs;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::symlink;
use std::path::Path;
use std::time::{Duration, Instant};

/// A directory outside home and scandir that a hostile link points at, with a profile-looking
/// content; the pass must leave it byte-for-byte alone.
fn bait(f: &Fixture) -> std::path::PathBuf {
    let d = f.tmp.path().join("bait");
    fs::create_dir_all(&d).unwrap();
    fs::write(d.join("SOUL.md"), "bait").unwrap();
    fs::write(d.join("gateway_state.json"), r#"{"gateway_state":"running"}"#).unwrap();
    fs::write(d.join("gateway.pid"), "1").unwrap();
    fs::write(d.join("processes.json"), "[]").unwrap();
    fs::write(d.join("container-boot.log"), "bait-log\n").unwrap();
    d
}

fn assert_bait_untouched(d: &Path) {
    assert_eq!(fs::read_to_string(d.join("gateway.pid")).unwrap(), "1");
    assert_eq!(fs::read_to_string(d.join("processes.json")).unwrap(), "[]");
    assert_eq!(fs::read_to_string(d.join("container-boot.log")).unwrap(), "bait-log\n");
    let mut names: Vec<_> = fs::read_dir(d).unwrap().map(|e| e.unwrap().file_name()).collect();
    names.sort();
    assert_eq!(names.len(), 5, "nothing created in the bait dir: {names:?}");
}

#[test]
fn symlinked_profile_dir_is_skipped_not_followed() {
    let f = Fixture::new();
    let b = bait(&f);
    fs::create_dir_all(f.home.join("profiles")).unwrap();
    symlink(&b, f.home.join("profiles/evil")).unwrap();
    let r = f.run();
    assert_eq!(named(&r), vec![("evil".into(), None, Action::Skipped)]);
    assert_eq!(r.entries[1].reason.as_deref(), Some("symlink"));
    assert!(!f.slot("evil").exists());
    assert_bait_untouched(&b);
}

#[test]
fn symlinked_profiles_root_is_not_followed() {
    let f = Fixture::new();
    let b = f.tmp.path().join("bait-profiles");
    fs::create_dir_all(b.join("coder")).unwrap();
    fs::write(b.join("coder/SOUL.md"), "x").unwrap();
    fs::write(b.join("coder/gateway.pid"), "1").unwrap();
    symlink(&b, f.home.join("profiles")).unwrap();
    let r = f.run();
    assert_eq!(actions(&r), vec![("default".into(), None, Action::Registered)]);
    assert!(r.warnings.iter().any(|w| w.contains("profiles is a symbolic link")));
    assert!(b.join("coder/gateway.pid").exists());
}

#[test]
fn symlinked_logs_dir_and_boot_log_are_not_written_through() {
    let f = Fixture::new();
    let b = bait(&f);
    symlink(&b, f.home.join("logs")).unwrap();
    let r = f.run();
    assert!(r.warnings.iter().any(|w| w.contains("logs is a symbolic link")), "{:?}", r.warnings);
    assert!(r.errors.is_empty(), "logging never fails the pass");
    assert_bait_untouched(&b);

    let g = Fixture::new();
    let b = bait(&g);
    fs::create_dir(g.home.join("logs")).unwrap();
    symlink(b.join("container-boot.log"), g.home.join("logs/container-boot.log")).unwrap();
    let r = g.run();
    assert!(r.warnings.iter().any(|w| w.contains("container-boot.log is a symbolic link")), "{:?}", r.warnings);
    assert_bait_untouched(&b);
}

#[test]
fn oversized_symlinked_boot_log_is_not_rotated_through() {
    // Rotation renames the entry itself; a link named container-boot.log moves, its target
    // does not, and nothing is appended to the target.
    let f = Fixture::new();
    let b = bait(&f);
    fs::write(b.join("container-boot.log"), "bait-log\n").unwrap();
    fs::create_dir(f.home.join("logs")).unwrap();
    symlink(b.join("container-boot.log"), f.home.join("logs/container-boot.log")).unwrap();
    let opts = hermes_core::boot::Options { rotate_bytes: 1, ..Default::default() };
    f.run_with(&Default::default(), &opts);
    assert_bait_untouched(&b);
}

#[test]
fn fifo_boot_log_and_fifo_state_files_do_not_hang_the_pass() {
    let f = Fixture::new();
    fs::create_dir(f.home.join("logs")).unwrap();
    nix::unistd::mkfifo(&f.home.join("logs/container-boot.log"), nix::sys::stat::Mode::from_bits_truncate(0o644)).unwrap();
    nix::unistd::mkfifo(&f.home.join("gateway_state.json"), nix::sys::stat::Mode::from_bits_truncate(0o644)).unwrap();
    let d = f.profile("coder", None, None);
    nix::unistd::mkfifo(&d.join("gateway_state.json"), nix::sys::stat::Mode::from_bits_truncate(0o644)).unwrap();
    fs::create_dir(d.join("state")).unwrap();
    nix::unistd::mkfifo(&d.join("state/gateway.lifecycle.json"), nix::sys::stat::Mode::from_bits_truncate(0o644)).unwrap();
    let t = Instant::now();
    let r = f.run();
    assert!(t.elapsed() < Duration::from_secs(20), "the pass must not block on a FIFO");
    assert_eq!(actions(&r), vec![("default".into(), None, Action::Registered), ("coder".into(), None, Action::Registered)]);
    assert!(r.warnings.iter().any(|w| w.contains("is a FIFO")));
}

#[test]
fn huge_state_file_is_refused_unread() {
    let f = Fixture::new();
    let d = f.profile("coder", None, None);
    let file = fs::File::create(d.join("gateway_state.json")).unwrap();
    file.set_len(64 * 1024 * 1024).unwrap(); // sparse 64 MiB
    let r = f.run();
    assert_eq!(named(&r), vec![("coder".into(), None, Action::Registered)]);
    assert!(r.warnings.iter().any(|w| w.contains("over the 1048576-byte cap")), "{:?}", r.warnings);
}

#[test]
fn symlinked_state_file_is_not_followed() {
    let f = Fixture::new();
    let b = bait(&f);
    let d = f.profile("coder", None, None);
    symlink(b.join("gateway_state.json"), d.join("gateway_state.json")).unwrap();
    let r = f.run();
    assert_eq!(named(&r), vec![("coder".into(), None, Action::Registered)], "a linked 'running' must not autostart");
    assert!(r.warnings.iter().any(|w| w.contains("is a symbolic link")));
}

#[test]
fn symlinked_runtime_files_are_unlinked_not_followed() {
    let f = Fixture::new();
    let b = bait(&f);
    let d = f.profile("coder", Some("running"), None);
    symlink(b.join("gateway.pid"), d.join("gateway.pid")).unwrap();
    symlink(b.join("processes.json"), d.join("processes.json")).unwrap();
    symlink(b.join("gateway.pid"), f.home.join("gateway.pid")).unwrap();
    f.run();
    assert!(fs::symlink_metadata(d.join("gateway.pid")).is_err(), "the link itself is gone");
    assert!(fs::symlink_metadata(f.home.join("gateway.pid")).is_err());
    assert_bait_untouched(&b);
}

#[test]
fn runtime_file_that_is_a_directory_is_reported_not_fatal() {
    let f = Fixture::new();
    let d = f.profile("coder", Some("running"), None);
    fs::create_dir(d.join("gateway.pid")).unwrap();
    let r = f.run();
    assert_eq!(r.entries[1].action, Action::Started);
    assert!(r.warnings.iter().any(|w| w.contains("could not remove stale") && w.contains("gateway.pid")));
}

#[test]
fn hostile_names_are_skipped_and_cannot_forge_log_lines() {
    let f = Fixture::new();
    let profiles = f.home.join("profiles");
    fs::create_dir_all(&profiles).unwrap();
    let names: Vec<Vec<u8>> = vec![
        b"evil\nprofile=root action=started".to_vec(),
        b"with space".to_vec(),
        b"UPPER".to_vec(),
        b"-dash".to_vec(),
        vec![b'a'; 65],
        vec![0xff, 0xfe, b'x'],
        b"..hidden".to_vec(),
        b"ok".to_vec(),
    ];
    for n in &names {
        let d = profiles.join(std::ffi::OsStr::from_bytes(n));
        fs::create_dir(&d).unwrap();
        fs::write(d.join("SOUL.md"), "x").unwrap();
        fs::write(d.join("gateway_state.json"), r#"{"gateway_state":"running"}"#).unwrap();
    }
    let r = f.run();
    let skipped: Vec<_> = r.entries.iter().filter(|e| e.action == Action::Skipped).collect();
    assert_eq!(skipped.len(), names.len() - 1);
    assert!(skipped.iter().any(|e| e.reason.as_deref() == Some("non-utf8-name")));
    assert_eq!(f.scandir_names(), vec!["gateway-default", "gateway-ok"]);
    let log = f.boot_log();
    assert_eq!(log.lines().count(), names.len() + 1, "one line per entry:\n{log}");
    for line in log.lines() {
        let fields: Vec<_> = line.split(' ').collect();
        assert!(fields.len() == 5 || fields.len() == 6, "line has extra fields: {line:?}");
        assert!(fields[1].starts_with("profile=") && fields[2].starts_with("prior_state=") && fields[3].starts_with("action="));
    }
    assert!(!log.contains("profile=root"), "forged field must be escaped:\n{log}");
}

#[test]
fn hostile_state_values_cannot_forge_log_lines() {
    let f = Fixture::new();
    let d = f.profile("coder", None, None);
    fs::write(
        d.join("gateway_state.json"),
        serde_json::json!({"desired_state": "stopped action=started\n2026 profile=default prior_state=running action=started"}).to_string(),
    )
    .unwrap();
    let r = f.run();
    assert_eq!(r.entries[1].action, Action::Registered);
    let log = f.boot_log();
    assert_eq!(log.lines().count(), 2, "{log}");
    assert!(log.lines().nth(1).unwrap().split(' ').count() == 5);
}

#[test]
fn slot_that_is_a_symlink_to_a_directory_outside_is_replaced_not_followed() {
    let f = Fixture::new();
    f.profile("coder", Some("running"), None);
    let outside = f.tmp.path().join("outside-slot");
    fs::create_dir_all(outside.join("supervise")).unwrap();
    fs::write(outside.join("run"), "#!/bin/sh\necho pwned\n").unwrap();
    symlink(&outside, f.slot("coder")).unwrap();
    let r = f.run();
    assert!(r.errors.is_empty(), "{:?}", r.errors);
    let m = fs::symlink_metadata(f.slot("coder")).unwrap();
    assert!(m.is_dir() && !m.file_type().is_symlink(), "a real slot directory now");
    assert_eq!(fs::read_to_string(outside.join("run")).unwrap(), "#!/bin/sh\necho pwned\n");
    assert!(outside.join("supervise").is_dir());
    assert_eq!(fs::read_dir(&outside).unwrap().count(), 2, "nothing written into the link target");
}

#[test]
fn unreadable_profile_dir_is_skipped_and_reported() {
    // What a profile directory the pass may not enter looks like (root reads everything, so
    // the refusal is injected at the seam): skipped, reported, and the others go on.
    use hermes_core::boot::{self, Options};
    use hermes_core::fs::faulty::FaultyFs;
    use hermes_core::fs::RealFs;
    let f = Fixture::new();
    let d = f.profile("locked", Some("running"), None);
    f.profile("open", Some("running"), None);
    f.hand_over();
    let denying = FaultyFs::new(&RealFs, None).deny(&d, nix::libc::EACCES);
    let ctx = hermes_core::ctx::Ctx::new(&denying, &hermes_core::clock::SystemClock, &f.cfg);
    let r = boot::run(&ctx, &hermes_core::boot::plan::Container::default(), &Options::default()).unwrap();
    assert_eq!(named(&r), vec![("locked".into(), None, Action::Skipped), ("open".into(), Some("running".into()), Action::Started)]);
    assert_eq!(r.entries[1].reason.as_deref(), Some("unreadable"));
    assert!(r.warnings.iter().any(|w| w.contains("locked") && w.contains("denied")), "{:?}", r.warnings);
    assert!(!f.slot("locked").exists() && f.slot("open").is_dir());
    assert!(
        f.boot_log().contains("profile=locked prior_state=None action=skipped prior_exit=unknown reason=unreadable"),
        "{}",
        f.boot_log()
    );
}

#[test]
fn home_that_does_not_exist_still_gets_a_default_slot() {
    let mut f = Fixture::new();
    f.cfg.home = f.tmp.path().join("missing-home");
    let r = f.run();
    assert_eq!(actions(&r), vec![("default".into(), None, Action::Registered)]);
    assert!(f.slot("default").join("down").exists());
    assert!(r.warnings.iter().any(|w| w.contains("could not open HERMES_HOME")));
    assert!(!f.cfg.home.exists(), "root does not create the volume");
}

/// `slot::trust`: a slot the pass published is ours; the same slot with one thing the user
/// could write, a link, or a run script we did not render is not (and says which).
#[test]
fn a_published_slot_is_ours_and_any_tampering_makes_it_foreign() {
    use hermes_core::slot::trust;
    use std::os::unix::fs::PermissionsExt;
    let f = Fixture::new();
    f.profile("coder", Some("running"), None);
    let r = f.run();
    assert!(r.errors.is_empty(), "{:?}", r.errors);
    let ctx = f.ctx();
    let scandir = ctx.open_scandir().unwrap();
    let euid = nix::unistd::geteuid().as_raw();
    let check = || trust::foreign(ctx.fs, ctx.cfg, &scandir, std::ffi::OsStr::new("gateway-coder"), euid).unwrap();
    assert_eq!(check(), None);
    let slot = f.slot("coder");
    type Step<'a> = Box<dyn Fn() + 'a>;
    let tamper: [(&str, Step, Step); 3] = [
        (
            "finish is writable by anyone",
            Box::new(|| fs::set_permissions(slot.join("finish"), fs::Permissions::from_mode(0o757)).unwrap()),
            Box::new(|| fs::set_permissions(slot.join("finish"), fs::Permissions::from_mode(0o755)).unwrap()),
        ),
        (
            "log/x is a symbolic link",
            Box::new(|| symlink("/etc/shadow", slot.join("log/x")).unwrap()),
            Box::new(|| fs::remove_file(slot.join("log/x")).unwrap()),
        ),
        (
            "its run script was not rendered by hermes-s6",
            Box::new(|| {
                let run = fs::read_to_string(slot.join("run")).unwrap().replace(trust::RUN_MARK, "\n[ \"$(id -u)\" = 0 ] || true\n");
                fs::write(slot.join("run"), run).unwrap()
            }),
            Box::new(|| ()),
        ),
    ];
    for (why, make, undo) in tamper {
        make();
        assert!(check().is_some_and(|w| w.contains(why)), "{why}: {:?}", check());
        undo();
    }
}

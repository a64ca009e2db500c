//! One `hermes`: commands that are not supervision verbs go to hermes-agent's CLI unchanged
//! (arguments, exit code), and it always runs as the hermes user, even when
//! `HERMES_DOCKER_EXEC_AS_ROOT=1` keeps root for this front's own verbs (hermes-agent loads
//! the volume's `.env` and plugins, which the user writes: docs/security.md, attack 27).
//! A stand-in for upstream's CLI records who ran it and with what.

use hermes_testkit::world::text;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Output};

/// A fake upstream CLI: appends `<uid> <args>` to `log` and exits 7 for `fail`.
fn fake_upstream(dir: &Path, log: &Path) -> std::path::PathBuf {
    let p = dir.join("upstream-hermes");
    std::fs::write(&p, format!("#!/bin/sh\necho \"$(id -u) $*\" >> {}\n[ \"$1\" = fail ] && exit 7\nexit 0\n", log.display())).unwrap();
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
    p
}

fn front(home: &Path, upstream: &Path, as_root_kept: bool, args: &[&str]) -> Output {
    let mut c = Command::new(env!("CARGO_BIN_EXE_hermes"));
    c.env_clear()
        .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
        .env("HERMES_HOME", home)
        .env("S6_PROFILE_GATEWAY_SCANDIR", home.join("no-scandir"))
        .env("HERMES_S6_UPSTREAM", upstream);
    if as_root_kept {
        c.env("HERMES_DOCKER_EXEC_AS_ROOT", "1");
    }
    c.args(args).output().unwrap()
}

#[test]
#[ignore = "needs root and the hermes user"]
fn upstream_commands_pass_through_and_never_run_as_root() {
    assert!(nix::unistd::geteuid().is_root(), "this test needs root");
    let t = tempfile::tempdir().unwrap();
    std::fs::set_permissions(t.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let home = t.path().join("home");
    std::fs::create_dir_all(&home).unwrap();
    std::os::unix::fs::chown(&home, Some(10000), Some(10000)).unwrap();
    let log = t.path().join("calls.log");
    std::fs::write(&log, "").unwrap();
    std::fs::set_permissions(&log, std::fs::Permissions::from_mode(0o666)).unwrap();
    let upstream = fake_upstream(t.path(), &log);

    for kept in [false, true] {
        let o = front(&home, &upstream, kept, &["-m", "gpt", "chat", "-q", "hi there"]);
        assert!(o.status.success(), "{}", text(&o));
        let o = front(&home, &upstream, kept, &["fail", "--x"]);
        assert_eq!(o.status.code(), Some(7), "upstream's exit code comes back: {}", text(&o));
        let o = front(&home, &upstream, kept, &["profile", "create", "coder", "--no-alias"]);
        assert!(o.status.success(), "{}", text(&o));
    }
    let calls = std::fs::read_to_string(&log).unwrap();
    let lines: Vec<&str> = calls.lines().collect();
    assert_eq!(lines.len(), 6, "{calls}");
    for l in &lines {
        assert!(l.starts_with("10000 "), "hermes-agent ran as root: {calls}");
    }
    assert_eq!(lines[0], "10000 -m gpt chat -q hi there", "arguments unchanged");
    assert_eq!(lines[2], "10000 profile create coder --no-alias");
}

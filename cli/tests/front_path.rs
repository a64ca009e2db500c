//! Run as root, `hermes` refuses a PATH the hermes user could fill, before it runs anything
//! (docs/security.md, attack 18): a program uid 10000 planted there never runs as root.

use hermes_testkit::world::text;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;

/// `hermes` copied alone into a root-only directory: no `hermes-gateway` beside it, so a front
/// that looked its gateway up on PATH would find the planted one.
fn lone_front(dir: &Path) -> std::path::PathBuf {
    let bin = dir.join("bin");
    std::fs::create_dir(&bin).unwrap();
    let front = bin.join("hermes");
    std::fs::copy(env!("CARGO_BIN_EXE_hermes"), &front).unwrap();
    front
}

fn plant(dir: &Path, name: &str, marker: &Path) {
    let p = dir.join(name);
    std::fs::write(&p, format!("#!/bin/sh\ntouch {}\n", marker.display())).unwrap();
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
    std::os::unix::fs::lchown(&p, Some(10000), Some(10000)).unwrap();
}

#[test]
#[ignore = "needs root"]
fn root_never_runs_a_program_planted_in_a_path_entry_the_user_owns() {
    assert!(nix::unistd::geteuid().is_root(), "this test needs root (it runs the front as root and chowns to uid 10000)");
    let t = tempfile::tempdir().unwrap();
    std::fs::set_permissions(t.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let front = lone_front(t.path());
    let home = t.path().join("home");
    std::fs::create_dir_all(home.join("profiles")).unwrap();
    // A directory of the user's on root's PATH (a deployment's /opt/hermes/bin, the volume…).
    let planted = t.path().join("users-bin");
    std::fs::create_dir(&planted).unwrap();
    std::os::unix::fs::chown(&planted, Some(10000), Some(10000)).unwrap();
    let marker = t.path().join("planted-ran");
    for name in ["hermes-gateway", "hermes-reconcile", "s6-svc", "sleep", "hermes"] {
        plant(&planted, name, &marker);
    }
    let run = |path: &str, args: &[&str]| {
        Command::new(&front)
            .env_clear()
            .env("PATH", path)
            .env("HERMES_HOME", &home)
            .env("S6_PROFILE_GATEWAY_SCANDIR", t.path().join("no-scandir"))
            .env("HERMES_DOCKER_EXEC_AS_ROOT", "1")
            .args(args)
            .output()
            .unwrap()
    };
    let bad = format!("{}:/usr/bin:/bin", planted.display());
    for args in [&["dashboard", "--port", "1"][..], &["gateway", "run", "--no-supervise"], &["status"]] {
        let o = run(&bad, args);
        assert!(!marker.exists(), "root ran the planted program for `hermes {}`:\n{}", args.join(" "), text(&o));
        assert_eq!(o.status.code(), Some(2), "`hermes {}` must refuse:\n{}", args.join(" "), text(&o));
        let t = text(&o);
        assert!(
            t.contains(&format!("PATH entry {:?}", planted.display().to_string()))
                && t.contains("uid 10000")
                && t.contains("remove it from PATH"),
            "{t}"
        );
    }
    for (path, what) in [(":/usr/bin:/bin", "empty"), ("bin:/usr/bin", "relative")] {
        let o = run(path, &["status"]);
        assert_eq!(o.status.code(), Some(2), "{}", text(&o));
        assert!(text(&o).contains(what), "{}", text(&o));
    }
    // A PATH of root's own directories is fine, and the gateway is never looked up on it.
    let o = run("/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", &["dashboard", "--port", "1"]);
    assert!(!marker.exists());
    assert!(text(&o).contains("/usr/local/bin/hermes-gateway") || o.status.success(), "{}", text(&o));
}

//! The `hermes` front's command line as a new user meets it: help and version everywhere,
//! arguments never silently ignored, the documented exit codes, and JSON errors under --json.
//! No s6 needed: the scan directory here does not exist.

use hermes_testkit::world::text;
use std::path::Path;
use std::process::{Command, Output};

struct Home {
    tmp: tempfile::TempDir,
}

fn home() -> Home {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(tmp.path().join("home/profiles/coder")).unwrap();
    std::fs::write(tmp.path().join("home/profiles/coder/SOUL.md"), "x").unwrap();
    Home { tmp }
}

impl Home {
    fn hermes(&self, args: &[&str]) -> Output {
        Command::new(env!("CARGO_BIN_EXE_hermes"))
            .env("HERMES_HOME", self.tmp.path().join("home"))
            .env("S6_PROFILE_GATEWAY_SCANDIR", self.tmp.path().join("no-such-scandir"))
            .env("HERMES_S6_REGISTRAR", self.tmp.path().join("no-registrar"))
            // Root in a test stays root (the image's `docker exec` drops to the hermes user).
            .env("HERMES_DOCKER_EXEC_AS_ROOT", "1")
            .env_remove("HERMES_S6_USER")
            .args(args)
            .output()
            .unwrap()
    }
}

fn json(o: &Output) -> serde_json::Value {
    serde_json::from_slice(&o.stdout).unwrap_or_else(|e| panic!("not JSON on stdout ({e}): {}", text(o)))
}

#[test]
fn version_and_help_work_at_every_level() {
    let h = home();
    let o = h.hermes(&["--version"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(String::from_utf8_lossy(&o.stdout).starts_with("hermes "), "{}", text(&o));
    for args in [
        &["--help"][..],
        &["gateway", "--help"],
        &["gateway", "start", "--help"],
        &["gateway", "logs", "--help"],
        &["profile", "--help"],
        &["profile", "list", "--help"],
        &["status", "--help"],
    ] {
        let o = h.hermes(args);
        assert_eq!(o.status.code(), Some(0), "{args:?}: {}", text(&o));
        assert!(String::from_utf8_lossy(&o.stdout).contains("Usage: hermes"), "{args:?}: {}", text(&o));
    }
    let o = h.hermes(&["gateway", "start", "--help"]);
    let help = String::from_utf8_lossy(&o.stdout);
    assert!(
        help.contains("--wait <SECONDS>") && help.contains("--no-wait") && help.contains("--all") && help.contains("[PROFILE]"),
        "{help}"
    );
    assert!(String::from_utf8_lossy(&h.hermes(&["--help"]).stdout).contains("Exit codes"), "the exit codes are documented once");
}

#[test]
fn unknown_or_incomplete_arguments_are_usage_errors_never_ignored() {
    let h = home();
    for args in [
        &["gateway", "status", "--frobnicate"][..],
        &["gateway", "status", "-p"],
        &["gateway", "start", "coder", "-p", "writer"],
        &["gateway", "start", "Bad/Name"],
        &["gateway", "start", "--all", "coder"],
        &["gateway", "start", "--wait", "-1"],
        &["gateway", "start", "--wait", "2", "--no-wait"],
        &["gateway", "frobnicate"],
        &["profile", "create"],
        // --version is the top level's only: a subcommand's would print another program's name.
        &["gateway", "--version"],
        // -p names one gateway, --all every one: a typo must not act on all of them.
        &["-p", "coder", "gateway", "stop", "--all"],
        // -p naming another profile than the one to delete: refused, never ignored.
        &["-p", "coder", "profile", "delete", "writer", "--yes"],
    ] {
        let o = h.hermes(args);
        assert_eq!(o.status.code(), Some(2), "{args:?} must be a usage error: {}", text(&o));
        assert!(!String::from_utf8_lossy(&o.stderr).is_empty(), "{args:?}: the problem is on stderr");
    }
    let o = h.hermes(&["gateway", "start", "coder", "-p", "writer"]);
    assert!(text(&o).contains("two different profiles"), "{}", text(&o));
    let o = h.hermes(&["gateway", "start", "Bad/Name"]);
    assert!(text(&o).contains("got 'Bad/Name'"), "the name as typed, not encoded: {}", text(&o));
}

#[test]
fn the_profile_may_be_given_either_way_and_is_the_one_acted_on() {
    let h = home();
    // With no scan directory, status of a profile answers LSB's "unknown" (4) and names the
    // profile it looked at: the one given, however it was given.
    for args in [
        &["gateway", "status", "coder"][..],
        &["-p", "coder", "gateway", "status"],
        &["--profile=coder", "gateway", "status"],
        &["gateway", "status", "--profile", "coder"],
    ] {
        let o = h.hermes(&[&["--json"][..], args].concat());
        assert_eq!(o.status.code(), Some(4), "{args:?}: {}", text(&o));
        let v = json(&o);
        assert_eq!(v["ok"], false, "{v}");
        assert_eq!(v["error"]["kind"], "scandir-unusable", "{v}");
        assert_eq!(v["error"]["exit_code"], 4, "the JSON names the exit code the command exits with: {v}");
    }
}

#[test]
fn errors_follow_the_exit_codes_and_are_json_under_json() {
    let h = home();
    let o = h.hermes(&["--json", "gateway", "start", "Bad/Name"]);
    assert_eq!(o.status.code(), Some(2));
    assert_eq!(json(&o)["ok"], false);
    let o = h.hermes(&["--json", "gateway", "status", "--frobnicate"]);
    assert_eq!(o.status.code(), Some(2));
    assert_eq!(json(&o)["error"]["kind"], "usage", "clap's own errors are JSON too");
    let o = h.hermes(&["--json", "profile", "create"]);
    assert_eq!(o.status.code(), Some(2));
    let msg = json(&o)["error"]["message"].as_str().unwrap_or_default().to_string();
    assert!(msg.contains("<NAME>"), "the missing argument is named: {msg}");
    // A missing scan directory: 3, for every command that needs it.
    for args in [
        &["gateway", "start", "coder"][..],
        &["gateway", "stop", "coder"],
        &["gateway", "restart", "--all"],
        &["status"],
        &["profile", "list"],
    ] {
        let o = h.hermes(args);
        assert_eq!(o.status.code(), Some(3), "{args:?}: {}", text(&o));
        assert!(String::from_utf8_lossy(&o.stderr).contains("no-such-scandir"), "{args:?}: the path is named: {}", text(&o));
        let o = h.hermes(&[&["--json"][..], args].concat());
        assert_eq!((o.status.code(), json(&o)["error"]["kind"].as_str()), (Some(3), Some("scandir-unusable")), "{args:?}");
    }
}

#[test]
fn completions_and_man_pages_come_from_the_same_definitions() {
    let h = home();
    let dir = h.tmp.path().join("gen");
    std::fs::create_dir(&dir).unwrap();
    for what in ["bash", "zsh", "fish", "man"] {
        let o = h.hermes(&["generate", what, dir.to_str().unwrap()]);
        assert_eq!(o.status.code(), Some(0), "{what}: {}", text(&o));
    }
    let bash = std::fs::read_to_string(dir.join("hermes.bash")).unwrap();
    assert!(bash.contains("--no-wait") && bash.contains("logs"), "the completion knows the verbs and flags");
    assert!(Path::new(&dir.join("hermes-gateway-start.1")).exists());
    let o = h.hermes(&["generate", "tcsh", dir.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
}

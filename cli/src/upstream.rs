//! One `hermes` for the user: this front owns the supervision verbs and hands every other
//! command to hermes-agent's own CLI (`/opt/hermes/.venv/bin/hermes` in the image), by
//! `exec`, so its argv, standard streams, terminal, signals and exit code are upstream's own.
//!
//! What is ours is decided from the words of the command line alone, before any parsing that
//! could reject upstream's options: the first word that is not a global option, and for
//! `gateway` and `profile` the word after it.

use std::ffi::{OsStr, OsString};
use std::path::Path;

/// Where a command line goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    /// A supervision verb, a profile lifecycle hook, or this front's own status.
    Ours,
    /// Everything else: upstream's CLI, unchanged.
    Upstream,
    /// `hermes --version`: upstream's version line, then ours.
    Version,
    /// `hermes --help` (or `-h`) with no command: upstream's help, then our verbs.
    Help,
}

/// `gateway` subcommands this front answers (upstream's would reach s6 its own way).
pub const GATEWAY_VERBS: [&str; 9] = ["start", "stop", "restart", "status", "logs", "list", "run", "install", "uninstall"];
/// `profile` subcommands this front wraps: upstream's create and delete run inside them.
pub const PROFILE_VERBS: [&str; 2] = ["create", "delete"];

/// The top-level words that are always ours.
const OURS: [&str; 2] = ["status", "generate"];

/// Global options that take a value in the next word (upstream's and ours).
fn takes_value(a: &str) -> bool {
    // hermes-agent 0.19.0's `_TOP_LEVEL_VALUE_FLAGS`, plus our `-p`.
    matches!(
        a,
        "-p" | "--profile"
            | "-z"
            | "--oneshot"
            | "--usage-file"
            | "-m"
            | "--model"
            | "--provider"
            | "-t"
            | "--toolsets"
            | "-r"
            | "--resume"
            | "-s"
            | "--skills"
    )
}

/// Options of ours after `status`: any other (`--deep`, `--all`) is hermes-agent's own
/// `status`.
const STATUS_OPTIONS: [&str; 3] = ["--json", "-h", "--help"];

/// Decide where `args` (without the program name) go.
pub fn route(args: &[OsString]) -> Route {
    let mut words = Vec::new();
    let mut flags = Vec::new();
    // Options after the first word (upstream's own `status --deep` is not ours).
    let mut later = Vec::new();
    let mut i = 0;
    while i < args.len() {
        let Some(a) = args[i].to_str() else {
            words.push("");
            i += 1;
            continue;
        };
        if a == "--" {
            words.extend(args[i + 1..].iter().map(|w| w.to_str().unwrap_or("")));
            break;
        }
        if a.starts_with('-') && a.len() > 1 {
            if words.is_empty() {
                flags.push(a);
            } else {
                later.push(a);
            }
            if takes_value(a) {
                i += 1;
            }
        } else {
            words.push(a);
        }
        i += 1;
    }
    match words.first().copied() {
        None if flags.iter().any(|f| matches!(*f, "--version" | "-V")) => Route::Version,
        None if flags.iter().any(|f| matches!(*f, "--help" | "-h")) => Route::Help,
        None => Route::Upstream,
        Some("status") if words.len() > 1 || later.iter().any(|f| !STATUS_OPTIONS.contains(f)) => Route::Upstream,
        Some(w) if OURS.contains(&w) => Route::Ours,
        Some("gateway") => match words.get(1) {
            None => Route::Ours,
            Some(v) if GATEWAY_VERBS.contains(v) => Route::Ours,
            Some(_) => Route::Upstream,
        },
        Some("profile") => match words.get(1) {
            Some(v) if PROFILE_VERBS.contains(v) => Route::Ours,
            // hermes-agent's `profile list` has no JSON; ours does.
            Some(&"list") if flags.contains(&"--json") || later.contains(&"--json") => Route::Ours,
            _ => Route::Upstream,
        },
        Some(_) => Route::Upstream,
    }
}

/// Whether upstream's CLI is installed where the configuration says.
pub fn installed(program: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(program).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// Become upstream's CLI with these arguments (returns only if the exec failed).
pub fn exec(program: &Path, args: &[OsString]) -> std::io::Error {
    use std::os::unix::process::CommandExt;
    std::process::Command::new(program).arg0("hermes").args(args).exec()
}

/// Run upstream's CLI to completion with these arguments, its streams the user's; its exit
/// code (128 + the signal that killed it). Run as root (`HERMES_DOCKER_EXEC_AS_ROOT` kept the
/// front root), it runs as `user` all the same: hermes-agent loads the volume's `.env` and
/// plugins, which are the user's to write.
pub fn run(program: &Path, args: &[&OsStr], user: (u32, u32)) -> std::io::Result<i32> {
    use std::os::unix::process::{CommandExt, ExitStatusExt};
    let mut cmd = std::process::Command::new(program);
    cmd.arg0("hermes").args(args);
    if nix::unistd::geteuid().is_root() {
        let (uid, gid) = user;
        // In the child, groups first, then gid, then uid (std's own uid/gid run before
        // pre_exec, after which setgroups is refused). SAFETY: these are async-signal-safe
        // system calls and nothing else runs between fork and exec.
        unsafe {
            cmd.pre_exec(move || become_user(uid, gid).map_err(|(_, e)| e.into()));
        }
    }
    let st = cmd.status()?;
    Ok(st.code().unwrap_or_else(|| 128 + st.signal().unwrap_or(0)))
}

/// Become `uid`/`gid` for good, in the order that works (groups, gid, uid); on failure, which
/// step failed. The one privilege drop of the front: itself, and upstream's CLI in its child.
pub fn become_user(uid: u32, gid: u32) -> Result<(), (&'static str, nix::Error)> {
    use nix::unistd::{setgid, setgroups, setuid, Gid, Uid};
    setgroups(&[Gid::from_raw(gid)]).map_err(|e| ("setgroups", e))?;
    setgid(Gid::from_raw(gid)).map_err(|e| ("setgid", e))?;
    setuid(Uid::from_raw(uid)).map_err(|e| ("setuid", e))
}

/// What upstream prints for `args`, when it runs and exits 0.
pub fn output(program: &Path, args: &[&str]) -> Option<String> {
    use std::os::unix::process::CommandExt;
    let o = std::process::Command::new(program).arg0("hermes").args(args).stdin(std::process::Stdio::null()).output().ok()?;
    o.status.success().then(|| String::from_utf8_lossy(&o.stdout).into_owned())
}

/// What `hermes --help` adds below upstream's help: which verbs this front answers.
pub const OUR_VERBS: &str = "\
Supervised by hermes-s6 (these are answered by s6 and the crash policy, not by the commands
above; `hermes gateway --help` for their options):
  * hermes [-p P] gateway start|stop|restart [P] [--all]   control a profile's gateway under s6
  * hermes [-p P] gateway status|logs|list [P]             its state, why, and its log
  * hermes profile create NAME / profile delete NAME --yes  upstream's create/delete, plus the gateway slot
  * hermes status [--json]                                 every gateway, as s6 and the crash policy see it
Every other command is hermes-agent's own.";

#[cfg(test)]
mod tests {
    use super::*;

    fn r(line: &str) -> Route {
        route(&line.split_whitespace().map(OsString::from).collect::<Vec<_>>())
    }

    #[test]
    fn supervision_verbs_are_ours_and_the_rest_is_upstreams() {
        for ours in [
            "gateway start",
            "-p coder gateway start",
            "gateway stop coder",
            "--profile coder gateway restart --all",
            "gateway status",
            "gateway logs -f coder",
            "gateway list",
            "gateway install",
            "gateway uninstall --force",
            "gateway run --replace",
            "gateway",
            "--json status",
            "status",
            "status --json",
            "profile create coder",
            "--json profile list",
            "profile list --json",
            "profile delete coder --yes",
        ] {
            assert_eq!(r(ours), Route::Ours, "{ours}");
        }
        for theirs in [
            "",
            "chat",
            "-p coder chat -q hi",
            "setup",
            "model",
            "config set x y",
            "profile list",
            "profile",
            "profile use coder",
            "gateway setup",
            "skills list",
            "version",
            "dashboard --port 9119",
            "-m gateway chat",
            "-r status chat",
            "status --deep",
            "status --all",
            "status gateway",
        ] {
            assert_eq!(r(theirs), Route::Upstream, "{theirs:?}");
        }
        assert_eq!(r("--version"), Route::Version);
        assert_eq!(r("-V"), Route::Version);
        assert_eq!(r("--help"), Route::Help);
        assert_eq!(r("gateway --help"), Route::Ours);
        assert_eq!(r("chat --help"), Route::Upstream);
    }
}

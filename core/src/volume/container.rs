//! The container's command line, as the boot pass needs it: a dashboard-only container gets
//! no gateways, and a legacy `gateway run` command seeds the root profile's state once.
//!
//! Read from `/proc`: PID 1 first, then its children and their children (under s6-overlay v3
//! PID 1 is s6-svscan and the command runs under rc.init, a child of PID 1), stopping at the
//! first process whose argv names the main wrapper; every process only when the kernel does
//! not list children. Only root-owned processes are considered (and, in a non-root container,
//! this process's own uid's), so the unprivileged user cannot fake the container's command.

use crate::fs::{Capped, Dir, Fs, Kind};
use std::ffi::OsStr;
use std::path::Path;

/// Facts about the container that are not on the volume.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Container {
    /// The container's command is `dashboard`: no gateways at all.
    pub dashboard: bool,
    /// The command is the legacy `gateway run` and opting out was not requested.
    pub legacy_gateway_run: bool,
    /// One root gateway serves every profile: named slots stay down.
    pub multiplex: bool,
}

impl Container {
    /// What this container is, read once: its command (from `/proc`), its environment (from
    /// the configuration) and the volume's `config.yaml`; plus a warning when the multiplex
    /// setting could not be read. The boot pass and the registrar both start from this.
    pub fn observe(ctx: &crate::ctx::Ctx) -> (Container, Option<String>) {
        let argv = read(ctx.fs, &ctx.cfg.proc_root);
        let env = &ctx.cfg.container_env;
        let config_flag = match ctx.open_home() {
            Ok(home) => super::multiplex::read_config_flag(ctx.fs, &home),
            Err(_) => Ok(None),
        };
        let (multiplex, warning) = super::multiplex::resolve(env.multiplex.as_deref(), config_flag);
        let no_supervise = no_supervise_env(env.no_supervise.as_deref());
        let c = Container { dashboard: is_dashboard(&argv), legacy_gateway_run: !no_supervise && is_legacy_gateway_run(&argv), multiplex };
        (c, warning)
    }
}

pub const WRAPPER: &str = "main-wrapper.sh";
const CMDLINE_CAP: u64 = 128 * 1024;

fn cmdline(fs: &dyn Fs, proc: &Dir, pid: &OsStr) -> Option<Vec<String>> {
    // Root's processes; in a non-root container (everything runs as one uid, so there is no
    // one else to fake it) this process's own uid's as well.
    let owner = fs.lstat(proc, pid).ok()?.uid;
    if owner != 0 && owner != fs.euid() {
        return None;
    }
    let dir = fs.open_dir(proc, pid).ok()?;
    let Ok(Capped::Data(raw)) = fs.read_capped(&dir, OsStr::new("cmdline"), CMDLINE_CAP) else { return None };
    Some(raw.split(|&b| b == 0).filter(|s| !s.is_empty()).map(|s| String::from_utf8_lossy(s).into_owned()).collect())
}

fn names_wrapper(argv: &[String]) -> bool {
    argv.iter().any(|t| t.contains(WRAPPER))
}

/// The children of `pid` (`/proc/<pid>/task/<pid>/children`); `None` when the kernel does not
/// say.
fn children(fs: &dyn Fs, proc: &Dir, pid: &str) -> Option<Vec<String>> {
    let p = fs.open_dir(proc, OsStr::new(pid)).ok()?;
    let task = fs.open_dir(&p, OsStr::new("task")).ok()?;
    let t = fs.open_dir(&task, OsStr::new(pid)).ok()?;
    match fs.read_capped(&t, OsStr::new("children"), CMDLINE_CAP).ok()? {
        Capped::Data(d) => Some(String::from_utf8_lossy(&d).split_whitespace().map(str::to_string).collect()),
        _ => None,
    }
}

/// The container argv, or empty when no process carries the wrapper.
pub fn read(fs: &dyn Fs, proc_root: &Path) -> Vec<String> {
    let Ok(proc) = fs.open_root(proc_root) else { return Vec::new() };
    if let Some(argv) = cmdline(fs, &proc, OsStr::new("1")) {
        if names_wrapper(&argv) {
            return argv;
        }
    }
    // The command runs a level or two below PID 1: look there, not at every process.
    if let Some(kids) = children(fs, &proc, "1") {
        let mut level = kids;
        for _ in 0..2 {
            let mut next = Vec::new();
            for pid in &level {
                if let Some(argv) = cmdline(fs, &proc, OsStr::new(pid)) {
                    if names_wrapper(&argv) {
                        return argv;
                    }
                }
                next.extend(children(fs, &proc, pid).unwrap_or_default());
            }
            level = next;
        }
        return Vec::new();
    }
    let Ok(entries) = fs.list(&proc) else { return Vec::new() };
    let mut pids: Vec<u64> = entries.iter().filter(|(_, k)| *k == Kind::Dir).filter_map(|(n, _)| n.to_str()?.parse().ok()).collect();
    pids.sort_unstable();
    pids.into_iter().filter_map(|pid| cmdline(fs, &proc, OsStr::new(&pid.to_string()))).find(|argv| names_wrapper(argv)).unwrap_or_default()
}

/// Drop the launcher prefix: everything through the wrapper; else a leading `init`; then a
/// leading `entrypoint-dispatch.sh` and a leading `hermes`.
pub fn strip_prefix(argv: &[String]) -> &[String] {
    let mut rest = match argv.iter().position(|t| t.ends_with(WRAPPER)) {
        Some(i) => &argv[i + 1..],
        None => match argv.first() {
            Some(first) if basename(first) == "init" => &argv[1..],
            _ => argv,
        },
    };
    if rest.first().is_some_and(|t| t.ends_with("entrypoint-dispatch.sh")) {
        rest = &rest[1..];
    }
    if rest.first().is_some_and(|t| basename(t) == "hermes") {
        rest = &rest[1..];
    }
    rest
}

fn basename(s: &str) -> &str {
    s.rsplit('/').next().unwrap_or(s)
}

/// A container whose command is `dashboard` runs no gateways.
pub fn is_dashboard(argv: &[String]) -> bool {
    strip_prefix(argv).first().is_some_and(|a| a == "dashboard")
}

/// The pre-s6 deployment shape `gateway run` (without `--no-supervise`).
pub fn is_legacy_gateway_run(argv: &[String]) -> bool {
    let args = strip_prefix(argv);
    args.len() >= 2 && args[0] == "gateway" && args[1] == "run" && !args.iter().any(|a| a == "--no-supervise")
}

/// `HERMES_GATEWAY_NO_SUPERVISE` opts out exactly when upstream's `gateway.py` says it does:
/// `1`, `true` or `yes` in any case, nothing else (no `on`, no surrounding spaces).
pub fn no_supervise_env(value: Option<&str>) -> bool {
    value.is_some_and(|v| matches!(v.to_lowercase().as_str(), "1" | "true" | "yes"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fs::RealFs;
    use rstest::rstest;

    fn v(xs: &[&str]) -> Vec<String> {
        xs.iter().map(|s| s.to_string()).collect()
    }

    #[rstest]
    #[case(&["dashboard"])]
    #[case(&["/init", "/opt/hermes/docker/main-wrapper.sh", "dashboard", "--port", "9119"])]
    #[case(&["/opt/hermes/docker/main-wrapper.sh", "hermes", "dashboard"])]
    #[case(&["/bin/sh", "-e", "/run/s6/basedir/scripts/rc.init", "top", "/opt/hermes/docker/main-wrapper.sh", "dashboard"])]
    #[case(&["/opt/hermes/docker/entrypoint-dispatch.sh", "dashboard"])]
    fn dashboard_containers(#[case] argv: &[&str]) {
        assert!(is_dashboard(&v(argv)));
    }

    #[rstest]
    #[case(&[])]
    #[case(&["gateway", "run"])]
    #[case(&["chat"])]
    #[case(&["gateway", "run", "-p", "dashboard"])]
    #[case(&["/init", "/opt/hermes/docker/main-wrapper.sh"])]
    #[case(&["sleep", "infinity"])]
    fn not_dashboard_containers(#[case] argv: &[&str]) {
        assert!(!is_dashboard(&v(argv)));
    }

    #[rstest]
    #[case(&["gateway", "run"], true)]
    #[case(&["/init", "/opt/hermes/docker/main-wrapper.sh", "gateway", "run"], true)]
    #[case(&["gateway", "run", "--no-supervise"], false)]
    #[case(&["/init", "/opt/hermes/docker/main-wrapper.sh", "gateway", "run", "--no-supervise"], false)]
    #[case(&["gateway", "start"], false)]
    #[case(&[], false)]
    fn legacy_gateway_run(#[case] argv: &[&str], #[case] want: bool) {
        assert_eq!(is_legacy_gateway_run(&v(argv)), want);
    }

    #[rstest]
    #[case(Some("1"), true)]
    #[case(Some("TRUE"), true)]
    #[case(Some("Yes"), true)]
    #[case(Some("0"), false)]
    #[case(Some("on"), false)]
    #[case(Some(" 1"), false)]
    #[case(Some("yes "), false)]
    #[case(Some("off"), false)]
    #[case(Some("garbage"), false)]
    #[case(Some(""), false)]
    #[case(None, false)]
    fn no_supervise_tokens(#[case] value: Option<&str>, #[case] want: bool) {
        assert_eq!(no_supervise_env(value), want);
    }

    fn fake_proc(p: &Path, pid: &str, argv: &[u8], uid: Option<u32>) {
        std::fs::create_dir_all(p.join(pid)).unwrap();
        std::fs::write(p.join(pid).join("cmdline"), argv).unwrap();
        if let Some(uid) = uid {
            nix::unistd::chown(&p.join(pid), Some(nix::unistd::Uid::from_raw(uid)), None).unwrap();
        }
    }

    #[test]
    #[ignore = "needs root (only root-owned /proc entries are trusted)"]
    fn reads_the_root_owned_wrapper_process_and_ignores_the_users() {
        assert!(nix::unistd::geteuid().is_root(), "this test needs root: it chowns fake /proc entries");
        let tmp = tempfile::tempdir().unwrap();
        let p = tmp.path();
        fake_proc(p, "1", b"s6-svscan\0/run/service\0", None);
        fake_proc(p, "40", b"/x/main-wrapper.sh\0gateway\0run\0", Some(10000));
        fake_proc(p, "57", b"/bin/sh\0-e\0rc.init\0top\0/opt/hermes/docker/main-wrapper.sh\0dashboard\0", None);
        std::fs::create_dir_all(p.join("self")).unwrap();
        let argv = read(&RealFs, p);
        assert!(is_dashboard(&argv), "the root-owned pid 57 wins over the user's pid 40: {argv:?}");

        // With the kernel's children lists, only PID 1's descendants are looked at.
        fake_proc(p, "30", b"/x/main-wrapper.sh\0gateway\0run\0", None);
        for (pid, kids) in [("1", "57 "), ("57", "")] {
            std::fs::create_dir_all(p.join(pid).join("task").join(pid)).unwrap();
            std::fs::write(p.join(pid).join("task").join(pid).join("children"), kids).unwrap();
        }
        assert!(is_dashboard(&read(&RealFs, p)), "pid 57, a child of PID 1");
        std::fs::write(p.join("1/task/1/children"), "").unwrap();
        assert!(read(&RealFs, p).is_empty(), "pid 30 is not below PID 1: not the container's command");
    }

    #[test]
    fn a_tree_without_root_owned_processes_says_nothing() {
        let tmp = tempfile::tempdir().unwrap();
        let owner = if nix::unistd::geteuid().is_root() { Some(10000) } else { None };
        fake_proc(tmp.path(), "99", b"/x/main-wrapper.sh\0dashboard\0", owner);
        assert!(read(&RealFs, tmp.path()).is_empty());
    }
}

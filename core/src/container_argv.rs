//! The container's command line, as the boot pass needs it: a dashboard-only container gets
//! no gateways, and a legacy `gateway run` command seeds the root profile's state once.
//!
//! Read from `/proc`: PID 1 first, then any process whose argv names the main wrapper (under
//! s6-overlay v3 PID 1 is s6-svscan and the command runs under rc.init). Only root-owned
//! processes are considered, so the unprivileged user cannot fake the container's command.

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

pub const WRAPPER: &str = "main-wrapper.sh";

fn cmdline(proc_root: &Path, pid: &str) -> Option<Vec<String>> {
    let dir = proc_root.join(pid);
    if fs::metadata(&dir).ok()?.uid() != 0 {
        return None;
    }
    let raw = fs::read(dir.join("cmdline")).ok()?;
    Some(
        raw.split(|&b| b == 0)
            .filter(|s| !s.is_empty())
            .map(|s| String::from_utf8_lossy(s).into_owned())
            .collect(),
    )
}

fn names_wrapper(argv: &[String]) -> bool {
    argv.iter().any(|t| t.contains(WRAPPER))
}

/// The container argv, or empty when no process carries the wrapper.
pub fn read(proc_root: &Path) -> Vec<String> {
    if let Some(argv) = cmdline(proc_root, "1") {
        if names_wrapper(&argv) {
            return argv;
        }
    }
    let Ok(entries) = fs::read_dir(proc_root) else { return Vec::new() };
    let mut pids: Vec<u64> = entries
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
        .collect();
    pids.sort_unstable();
    for pid in pids {
        if let Some(argv) = cmdline(proc_root, &pid.to_string()) {
            if names_wrapper(&argv) {
                return argv;
            }
        }
    }
    Vec::new()
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

/// `HERMES_GATEWAY_NO_SUPERVISE` opts out when it is `1`, `true` or `yes` (any case).
pub fn no_supervise_env(value: Option<&str>) -> bool {
    value.is_some_and(|v| matches!(v.to_ascii_lowercase().as_str(), "1" | "true" | "yes"))
}

#[cfg(test)]
mod tests {
    use super::*;
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
    #[case(Some("off"), false)]
    #[case(Some("garbage"), false)]
    #[case(Some(""), false)]
    #[case(None, false)]
    fn no_supervise_tokens(#[case] value: Option<&str>, #[case] want: bool) {
        assert_eq!(no_supervise_env(value), want);
    }

    #[test]
    fn reads_root_owned_wrapper_process_from_a_proc_tree() {
        let tmp = tempfile::tempdir().unwrap();
        let p = tmp.path();
        std::fs::create_dir_all(p.join("1")).unwrap();
        std::fs::write(p.join("1/cmdline"), b"s6-svscan\0/run/service\0").unwrap();
        std::fs::create_dir_all(p.join("57")).unwrap();
        std::fs::write(p.join("57/cmdline"), b"/bin/sh\0-e\0rc.init\0top\0/opt/hermes/docker/main-wrapper.sh\0dashboard\0").unwrap();
        std::fs::create_dir_all(p.join("self")).unwrap();
        let argv = read(p);
        // Only root-owned entries count; the test tree is owned by whoever runs the test.
        if nix::unistd::geteuid().is_root() {
            assert!(is_dashboard(&argv), "{argv:?}");
        } else {
            assert!(argv.is_empty());
        }
    }

    #[test]
    fn ignores_processes_not_owned_by_root() {
        if !nix::unistd::geteuid().is_root() {
            return; // needs chown; covered by CI, which runs as root
        }
        let tmp = tempfile::tempdir().unwrap();
        let p = tmp.path();
        std::fs::create_dir_all(p.join("99")).unwrap();
        std::fs::write(p.join("99/cmdline"), b"/x/main-wrapper.sh\0dashboard\0").unwrap();
        nix::unistd::chown(&p.join("99"), Some(nix::unistd::Uid::from_raw(10000)), None).unwrap();
        assert!(read(p).is_empty());
    }
}

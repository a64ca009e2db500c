//! Shared fixtures: a temporary home and scandir, profiles in given states, and helpers to
//! run the boot pass through the library with the real file system.
#![allow(dead_code)]

pub mod svscan;
pub mod world;

use hermes_core::boot::{self, Options, Report};
use hermes_core::config::Config;
use hermes_core::plan::{Action, Container};
use hermes_core::safe_fs::RealFs;
use std::fs;
use std::path::{Path, PathBuf};

pub struct Fixture {
    pub tmp: tempfile::TempDir,
    pub home: PathBuf,
    pub scandir: PathBuf,
    pub cfg: Config,
}

impl Fixture {
    pub fn new() -> Self {
        let tmp = tempfile::tempdir().unwrap();
        let home = tmp.path().join("home");
        let scandir = tmp.path().join("service");
        fs::create_dir(&home).unwrap();
        fs::create_dir(&scandir).unwrap();
        let cfg = Config { home: home.clone(), scandir: scandir.clone(), ..Config::default() };
        Fixture { tmp, home, scandir, cfg }
    }

    pub fn profile_dir(&self, name: &str) -> PathBuf {
        if name == "default" {
            self.home.clone()
        } else {
            self.home.join("profiles").join(name)
        }
    }

    /// A named profile (`SOUL.md`) with optional runtime and desired state.
    pub fn profile(&self, name: &str, state: Option<&str>, desired: Option<&str>) -> PathBuf {
        let dir = self.profile_dir(name);
        fs::create_dir_all(&dir).unwrap();
        fs::write(dir.join("SOUL.md"), "You are a test persona.\n").unwrap();
        self.state(name, state, desired);
        dir
    }

    pub fn state(&self, name: &str, state: Option<&str>, desired: Option<&str>) {
        let dir = self.profile_dir(name);
        let mut doc = serde_json::Map::new();
        doc.insert("timestamp".into(), 1234567890.into());
        if let Some(s) = state {
            doc.insert("gateway_state".into(), s.into());
        }
        if let Some(d) = desired {
            doc.insert("desired_state".into(), d.into());
        }
        if state.is_some() || desired.is_some() {
            fs::write(dir.join("gateway_state.json"), serde_json::Value::Object(doc).to_string()).unwrap();
        }
    }

    pub fn stale_runtime_files(&self, name: &str) {
        let dir = self.profile_dir(name);
        fs::write(dir.join("gateway.pid"), r#"{"pid":99999,"host":"old-container"}"#).unwrap();
        fs::write(dir.join("processes.json"), "[]").unwrap();
    }

    pub fn run_with(&self, container: &Container, opts: &Options) -> Report {
        boot::run(&RealFs, &self.cfg, container, opts).expect("pass runs")
    }

    pub fn run(&self) -> Report {
        self.run_with(&Container::default(), &Options::default())
    }

    pub fn slot(&self, name: &str) -> PathBuf {
        self.scandir.join(format!("gateway-{name}"))
    }

    pub fn boot_log(&self) -> String {
        fs::read_to_string(self.home.join("logs/container-boot.log")).unwrap_or_default()
    }

    /// Every entry name in the scandir, sorted.
    pub fn scandir_names(&self) -> Vec<String> {
        let mut v: Vec<String> =
            fs::read_dir(&self.scandir).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
        v.sort();
        v
    }
}

pub fn actions(r: &Report) -> Vec<(String, Option<String>, Action)> {
    r.entries.iter().map(|e| (e.profile.clone(), e.prior_state.clone(), e.action)).collect()
}

pub fn named(r: &Report) -> Vec<(String, Option<String>, Action)> {
    actions(r).into_iter().filter(|a| a.0 != "default").collect()
}

pub fn is_root() -> bool {
    nix::unistd::geteuid().is_root()
}

pub fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true" || v == "1")
}

/// For tests that need root or an installed tool: fail in CI, skip loudly elsewhere.
/// Returns true when the test should go on.
pub fn require(ok: bool, what: &str) -> bool {
    if ok {
        return true;
    }
    if in_ci() {
        panic!("CI=true but {what}: this test must run in CI (see .ci/run)");
    }
    eprintln!("\n*** SKIPPED: {what} (set CI=true to make this a failure) ***\n");
    false
}

pub fn have_program(name: &str) -> bool {
    std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).any(|d| d.join(name).is_file()))
        .unwrap_or(false)
}

pub fn mode(p: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    fs::symlink_metadata(p).unwrap().permissions().mode() & 0o7777
}

//! Shared test fixtures: a temporary home and scandir, profiles in given states, and helpers to
//! run the boot pass through the library with the real file system.

pub mod docs;
pub mod svscan;
pub mod upstream;
pub mod world;

use hermes_core::boot::plan::{Action, Container};
use hermes_core::boot::{self, Options, PassReport as Report};
use hermes_core::clock::SystemClock;
use hermes_core::config::Config;
use hermes_core::ctx::Ctx;
use hermes_core::fs::RealFs;
use std::fs;
use std::path::{Path, PathBuf};

pub struct Fixture {
    pub tmp: tempfile::TempDir,
    pub home: PathBuf,
    pub scandir: PathBuf,
    pub cfg: Config,
}

impl Default for Fixture {
    fn default() -> Self {
        Self::new()
    }
}

impl Fixture {
    pub fn new() -> Self {
        let tmp = tempfile::tempdir().unwrap();
        let home = tmp.path().join("home");
        let scandir = tmp.path().join("service");
        fs::create_dir(&home).unwrap();
        fs::create_dir(&scandir).unwrap();
        // As the binaries resolve it on this machine, so in-process passes render what they do.
        let execline_cd =
            hermes_core::trusted::find("cd", Some(hermes_core::config::EXECLINE_DIRS)).map(|p| p.to_string_lossy().into_owned());
        let cfg = Config { home: home.clone(), scandir: scandir.clone(), execline_cd, ..Config::default() };
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

    /// The real file system and clock over this fixture's configuration.
    pub fn ctx(&self) -> Ctx<'_> {
        Ctx::new(&RealFs, &SystemClock, &self.cfg)
    }

    /// The home belongs to the unprivileged user, as the volume does in the container: when
    /// the tests run as root, everything they made under it is handed over before a pass
    /// (links themselves, never what they point to).
    pub fn hand_over(&self) {
        if is_root() {
            give(&self.home, self.cfg.uid, self.cfg.gid);
        }
    }

    pub fn run_with(&self, container: &Container, opts: &Options) -> Report {
        self.hand_over();
        boot::run(&self.ctx(), container, opts).expect("pass runs")
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

/// `chown -R -h uid:gid path`: never follows a link.
pub fn give(path: &Path, uid: u32, gid: u32) {
    let Ok(m) = fs::symlink_metadata(path) else { return };
    let _ = std::os::unix::fs::lchown(path, Some(uid), Some(gid));
    if m.is_dir() {
        for e in fs::read_dir(path).into_iter().flatten().flatten() {
            give(&e.path(), uid, gid);
        }
    }
}

pub fn is_root() -> bool {
    nix::unistd::geteuid().is_root()
}

/// For a test marked `#[ignore = "needs …"]`: when run anyway (`--include-ignored`, as
/// `scripts/test` and CI do) without what it needs, fail with a message saying what is missing.
pub fn need(ok: bool, what: &str) {
    assert!(ok, "this test {what}; run it where that holds (scripts/test installs s6 and the hermes user when run as root)");
}

pub fn have_program(name: &str) -> bool {
    std::env::var_os("PATH").map(|p| std::env::split_paths(&p).any(|d| d.join(name).is_file())).unwrap_or(false)
}

pub fn mode(p: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    fs::symlink_metadata(p).unwrap().permissions().mode() & 0o7777
}

//! Fault injection: a boot pass over a home of 30 profiles is interrupted at every
//! file-system step in turn, once by an injected error (the pass goes on) and once by a
//! "kill" (nothing after that step reaches the disk), then a clean pass runs. Every run must
//! converge to exactly the scandir of an uninterrupted pass, and at no step may a scanner
//! looking at the scandir see a half-built slot or a staging directory under a scanned name.

use hermes_core::boot::plan::Container;
use hermes_core::boot::{self, Options};
use hermes_core::config::Config;
use hermes_core::fs::faulty::{Fault, FaultyFs};
use hermes_core::fs::RealFs;
use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::path::{Path, PathBuf};

const PROFILES: usize = 30;

struct Tree {
    _tmp: tempfile::TempDir,
    root: PathBuf,
    cfg: Config,
}

fn scratch() -> tempfile::TempDir {
    // tmpfs when there is one: this test runs thousands of passes.
    match tempfile::tempdir_in("/dev/shm") {
        Ok(t) => t,
        Err(_) => tempfile::tempdir().unwrap(),
    }
}

impl Tree {
    fn new() -> Tree {
        let tmp = scratch();
        let root = tmp.path().to_path_buf();
        let cfg = Config { home: root.join("home"), scandir: root.join("service"), ..Config::default() };
        let t = Tree { _tmp: tmp, root, cfg };
        t.new_home();
        t.reset();
        t
    }

    fn new_home(&self) {
        fs::create_dir_all(self.cfg.home.join("profiles")).unwrap();
        fs::create_dir_all(self.cfg.scandir.join(".gateway-left.tmp/supervise")).unwrap();
        fs::write(self.cfg.home.join("gateway_state.json"), r#"{"gateway_state":"running"}"#).unwrap();
        for i in 0..PROFILES {
            let d = self.cfg.home.join("profiles").join(format!("p{i:02}"));
            fs::create_dir(&d).unwrap();
            fs::write(d.join("SOUL.md"), "x").unwrap();
            let state = ["running", "stopped", "startup_failed"][i % 3];
            fs::write(d.join("gateway_state.json"), format!(r#"{{"gateway_state":"{state}"}}"#)).unwrap();
        }
    }

    /// Undo what a pass changes: the scandir, the swept runtime files, the boot log.
    fn reset(&self) {
        let _ = fs::remove_dir_all(&self.cfg.scandir);
        fs::create_dir_all(self.cfg.scandir.join(".gateway-left.tmp/supervise")).unwrap();
        let _ = fs::remove_dir_all(self.cfg.home.join("logs"));
        for i in (0..PROFILES).step_by(5) {
            let d = self.cfg.home.join("profiles").join(format!("p{i:02}"));
            fs::write(d.join("gateway.pid"), "1").unwrap();
            fs::write(d.join("processes.json"), "[]").unwrap();
        }
    }

    fn pass(&self, fs_: &dyn hermes_core::fs::Fs) {
        if hermes_testkit::is_root() {
            hermes_testkit::give(&self.cfg.home, self.cfg.uid, self.cfg.gid);
        }
        let _ = boot::run(
            &hermes_core::ctx::Ctx::new(fs_, &hermes_core::clock::SystemClock, &self.cfg),
            &Container::default(),
            &Options::default(),
        );
    }
}

/// Every entry below `dir`: relative path → kind, mode and content.
fn fingerprint(dir: &Path) -> BTreeMap<String, String> {
    fn walk(base: &Path, dir: &Path, out: &mut BTreeMap<String, String>) {
        for e in fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            let rel = p.strip_prefix(base).unwrap().display().to_string();
            let m = fs::symlink_metadata(&p).unwrap();
            let mode = m.permissions().mode() & 0o7777;
            let ft = m.file_type();
            let v = if ft.is_dir() {
                walk(base, &p, out);
                format!("dir {mode:o}")
            } else if ft.is_fifo() {
                format!("fifo {mode:o}")
            } else if ft.is_symlink() {
                format!("link {}", fs::read_link(&p).unwrap().display())
            } else {
                format!("file {mode:o} {}", String::from_utf8_lossy(&fs::read(&p).unwrap()))
            };
            out.insert(rel, v);
        }
    }
    let mut out = BTreeMap::new();
    walk(dir, dir, &mut out);
    out
}

/// What s6-svscan would supervise right now must be complete slots only.
fn scanner_view_is_sound(scandir: &Path) -> Result<(), String> {
    let Ok(rd) = fs::read_dir(scandir) else { return Ok(()) };
    for e in rd.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if name.starts_with('.') {
            continue;
        }
        let p = e.path();
        for need in ["type", "run", "finish", "timeout-kill", "log/run", "supervise/control", "log/supervise/control"] {
            if fs::symlink_metadata(p.join(need)).is_err() {
                return Err(format!("scanned entry {name} lacks {need}"));
            }
        }
    }
    Ok(())
}

fn runtime_files_left(home: &Path) -> usize {
    (0..PROFILES)
        .filter(|i| {
            let d = home.join("profiles").join(format!("p{i:02}"));
            d.join("gateway.pid").exists() || d.join("processes.json").exists()
        })
        .count()
}

#[test]
fn interrupted_at_every_step_then_rerun_converges() {
    let t = Tree::new();
    let probe = FaultyFs::new(&RealFs, None);
    t.pass(&probe);
    let steps = probe.steps();
    let reference = fingerprint(&t.cfg.scandir);
    assert_eq!(reference.keys().filter(|k| !k.contains('/')).count(), PROFILES + 1);
    assert!(steps > 20 * PROFILES, "a pass over {PROFILES} profiles has {steps} steps");

    let mut points = 0;
    for k in 1..=steps {
        for fault in [Fault::ErrorAt(k), Fault::KillAt(k)] {
            t.reset();
            let bad = std::cell::RefCell::new(None::<String>);
            let faulty = FaultyFs::new(&RealFs, Some(fault)).with_observer(|n, op, p| {
                // Only a step directly in the scandir can change what a scan sees.
                if p.parent() != Some(t.cfg.scandir.as_path()) {
                    return;
                }
                if let Err(e) = scanner_view_is_sound(&t.cfg.scandir) {
                    bad.borrow_mut().get_or_insert(format!("before step {n} ({op} {}): {e}", p.display()));
                }
            });
            t.pass(&faulty);
            if let Some(e) = bad.borrow().as_ref() {
                panic!("{fault:?}: a scanner could have supervised a half-built slot {e}");
            }
            scanner_view_is_sound(&t.cfg.scandir).unwrap_or_else(|e| panic!("{fault:?}: after the interrupted pass: {e}"));
            t.pass(&RealFs);
            let got = fingerprint(&t.cfg.scandir);
            if got != reference {
                let diff: Vec<_> = reference
                    .iter()
                    .filter(|(k, v)| got.get(*k) != Some(v))
                    .map(|(k, _)| k.clone())
                    .chain(got.keys().filter(|k| !reference.contains_key(*k)).cloned())
                    .take(5)
                    .collect();
                panic!("{fault:?}: the rerun did not converge; differing entries: {diff:?}");
            }
            assert_eq!(runtime_files_left(&t.cfg.home), 0, "{fault:?}: stale runtime files left");
            points += 1;
        }
    }
    eprintln!("convergence: {steps} file-system steps per pass, {points} interruption points covered (error and kill at each)");
    let _ = &t.root;
}

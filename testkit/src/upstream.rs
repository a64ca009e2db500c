//! hermes-agent's own boot reconciler, for the differential suite: a virtual environment made
//! from the pinned wheels (`docker/hermes-agent.lock`, downloaded by `scripts/wheelhouse` into
//! `target/wheelhouse`) with Debian's `python3 -m venv`, cached under `target/upstream-venv`,
//! and the driver that runs `hermes_cli.container_boot`'s `main()` once per case.

use std::path::{Path, PathBuf};
use std::process::Command;

/// The driver (see its header): forks one child per case, drops to the hermes user, runs `main()`.
pub const DRIVER: &str = include_str!("upstream_driver.py");

/// The workspace's root (this crate's parent directory).
pub fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("testkit sits in the workspace").to_path_buf()
}

/// Where cargo builds: `CARGO_TARGET_DIR`, else the workspace's `target/`.
pub fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR").map(PathBuf::from).unwrap_or_else(|| workspace().join("target"))
}

pub fn wheelhouse() -> PathBuf {
    target_dir().join("wheelhouse")
}

fn has_wheels(dir: &Path) -> bool {
    std::fs::read_dir(dir).map(|r| r.flatten().any(|e| e.path().extension().is_some_and(|x| x == "whl"))).unwrap_or(false)
}

/// The venv's python, made once (offline, hashes checked) and then reused. `Err` says what is
/// missing and how to get it.
pub fn python() -> Result<PathBuf, String> {
    let venv = target_dir().join("upstream-venv");
    let python = venv.join("bin/python");
    let stamp = venv.join(".hermes-agent.lock");
    let lock = workspace().join("docker/hermes-agent.lock");
    let pinned = std::fs::read(&lock).map_err(|e| format!("{}: {e}", lock.display()))?;
    if python.is_file() && std::fs::read(&stamp).ok().as_deref() == Some(&pinned[..]) {
        return Ok(python);
    }
    let wheels = wheelhouse();
    if !has_wheels(&wheels) {
        return Err(format!("no wheels in {} (run scripts/wheelhouse)", wheels.display()));
    }
    // Built aside and renamed into place: a run interrupted half-way leaves no venv that looks
    // made. (Only `python -m` is used from it, so the rename does not matter to its scripts.)
    let building = target_dir().join(format!("upstream-venv.building-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&building);
    let run = |c: &mut Command, what: &str| -> Result<(), String> {
        let o = c.output().map_err(|e| format!("{what}: {e}"))?;
        if o.status.success() {
            Ok(())
        } else {
            Err(format!("{what} failed: {}", String::from_utf8_lossy(&o.stderr)))
        }
    };
    run(
        Command::new("/usr/bin/python3").args(["-m", "venv"]).arg(&building),
        "/usr/bin/python3 -m venv (needs python3-venv: scripts/install-deps)",
    )?;
    run(
        Command::new(building.join("bin/python"))
            .args(["-m", "pip", "install", "--quiet", "--disable-pip-version-check", "--no-index", "--require-hashes", "--find-links"])
            .arg(&wheels)
            .arg("-r")
            .arg(&lock),
        "pip install of docker/hermes-agent.lock from the wheelhouse",
    )?;
    std::fs::write(building.join(".hermes-agent.lock"), &pinned).map_err(|e| e.to_string())?;
    let _ = std::fs::remove_dir_all(&venv);
    std::fs::rename(&building, &venv).map_err(|e| format!("rename {} into place: {e}", building.display()))?;
    Ok(python)
}

//! A real Debian `s6-svscan` on a temporary scandir, torn down however the test ends.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct Svscan {
    pub scandir: PathBuf,
    child: Option<Child>,
}

impl Svscan {
    /// Start `s6-svscan scandir` with `env` added, and wait until its control FIFO listens.
    pub fn start(scandir: &Path, env: &[(&str, &std::ffi::OsStr)]) -> Svscan {
        // HERMES_TEST_SVSCAN swaps in another implementation (the simulator's hermes-svscan):
        // the same tests then check the core against both.
        let program = std::env::var("HERMES_TEST_SVSCAN").unwrap_or_else(|_| "s6-svscan".into());
        let mut cmd = Command::new(program);
        let log = std::fs::File::create(scandir.with_extension("svscan.log")).unwrap();
        cmd.arg(scandir).stdin(Stdio::null()).stdout(log.try_clone().unwrap()).stderr(log);
        for (k, v) in env {
            cmd.env(k, v);
        }
        // Everything this scanner starts inherits the tag, so what outlives it can be found.
        cmd.env(TAG, scandir);
        use std::os::unix::process::CommandExt;
        cmd.process_group(0);
        let child = cmd.spawn().expect("spawn s6-svscan");
        let me = Svscan { scandir: scandir.to_path_buf(), child: Some(child) };
        let ok = wait_for(Duration::from_secs(5), || {
            Command::new("s6-svscanctl").arg("-z").arg(scandir).stderr(Stdio::null()).status().map(|s| s.success()).unwrap_or(false)
        });
        assert!(ok, "s6-svscan did not start listening on {}", scandir.display());
        me
    }

    /// Stop the whole tree as a container stop would, and wait for it.
    pub fn stop(&mut self) {
        let Some(mut child) = self.child.take() else { return };
        let _ = Command::new("s6-svscanctl").arg("-t").arg(&self.scandir).status();
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = child.try_wait() {
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        if child.try_wait().ok().flatten().is_none() {
            eprintln!(
                "s6-svscan did not exit after -t; its log:\n{}",
                std::fs::read_to_string(self.scandir.with_extension("svscan.log")).unwrap_or_default()
            );
            let _ =
                Command::new("sh").arg("-c").arg("ps -eo pid,ppid,user,stat,args | grep -E 'fake|sleep 3600|s6-' | grep -v grep").status();
        }
        // Anything left in the group (a stuck service) goes now.
        let pgid = nix::unistd::Pid::from_raw(child.id() as i32);
        let _ = nix::sys::signal::killpg(pgid, nix::sys::signal::Signal::SIGKILL);
        let _ = child.wait();
        // And whatever escaped it: loggers and services run in their own sessions, and a
        // stand-in gateway killed outright leaves its child (which holds the log pipe open).
        for pid in tagged(&self.scandir) {
            let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGKILL);
        }
    }
}

const TAG: &str = "HERMES_TEST_SCANDIR";

/// Processes whose environment carries this scanner's tag.
fn tagged(scandir: &Path) -> Vec<nix::unistd::Pid> {
    let mut want = format!("{TAG}=").into_bytes();
    want.extend_from_slice(scandir.as_os_str().as_encoded_bytes());
    let Ok(dir) = std::fs::read_dir("/proc") else { return Vec::new() };
    dir.filter_map(|e| e.ok()?.file_name().to_str()?.parse::<i32>().ok())
        .filter(|pid| std::fs::read(format!("/proc/{pid}/environ")).is_ok_and(|env| env.split(|b| *b == 0).any(|kv| kv == want.as_slice())))
        .map(nix::unistd::Pid::from_raw)
        .collect()
}

impl Drop for Svscan {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Poll until `f` holds or `limit` passes (the library's own helper, on the real clock).
pub fn wait_for(limit: Duration, f: impl FnMut() -> bool) -> bool {
    hermes_core::clock::wait_until(&hermes_core::clock::SystemClock, limit, Duration::from_millis(20), f)
}

/// `s6-svstat -o up <slot>`: Some(true/false) when supervised, None otherwise.
pub fn is_up(slot: &Path) -> Option<bool> {
    let o = Command::new("s6-svstat").args(["-o", "up"]).arg(slot).output().ok()?;
    if !o.status.success() {
        return None;
    }
    Some(String::from_utf8_lossy(&o.stdout).trim() == "true")
}

/// `s6-svstat -o up,ready <slot>`: up and ready (the gateway said so through the slot's
/// readiness bridge), when supervised.
pub fn is_ready(slot: &Path) -> bool {
    Command::new("s6-svstat")
        .args(["-o", "up,ready"])
        .arg(slot)
        .output()
        .is_ok_and(|o| o.status.success() && String::from_utf8_lossy(&o.stdout).trim() == "true true")
}

/// Run a command as the unprivileged user (uid/gid 10000 via s6-setuidgid).
pub fn as_hermes(args: &[&str]) -> std::process::Output {
    Command::new("s6-setuidgid").arg("hermes").args(args).output().expect("run as hermes")
}

//! The virtual-clock world: the same scanner and supervisors as the daemon, but time is a
//! number the test advances and services are scripted behaviours instead of processes, so a
//! scenario of hours runs in milliseconds and deterministically. The file system is real: the
//! core writes slots and talks to the control FIFOs exactly as it does with real s6.

use super::scan::{Scanner, Terminate};
use super::supervise::{Host, SpawnSpec};
use nix::sys::signal::Signal;
use std::collections::BTreeMap;
use std::io;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

/// What a spawned `run` does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Behaviour {
    /// Stays up until signalled; dies of any signal but SIGCONT/SIGSTOP.
    RunsForever,
    /// Exits with `code` after `after`.
    ExitAfter { code: i32, after: Duration },
    /// The reference gateway contract on the volume: writes `running` to its state file when
    /// started; on SIGTERM exits 0 with `stopped` if a planned-stop marker names it, else
    /// exits 1 leaving `running`.
    Gateway { profile_dir: PathBuf },
}

/// Decides a behaviour from (service directory, service name).
pub type Script = Box<dyn Fn(&Path, &str) -> Behaviour>;

struct Proc {
    finish: bool,
    behaviour: Behaviour,
    /// When and how it ends by itself.
    exit_at: Option<(Instant, i32)>,
}

pub struct VirtualHost {
    base: Instant,
    wall_base: SystemTime,
    offset: Duration,
    procs: BTreeMap<i32, Proc>,
    next_pid: i32,
    script: Script,
    /// Deaths to deliver: (pid, raw wait status).
    dead: Vec<(i32, i32)>,
    /// Every spawn, for assertions: (service name, is_finish).
    pub spawns: Vec<(String, bool)>,
}

/// Fake pids start above Linux's largest pid_max, so no /proc entry can ever match one.
pub const FIRST_PID: i32 = 5_000_000;

impl Host for VirtualHost {
    fn now(&self) -> Instant {
        self.base + self.offset
    }
    fn wall(&self) -> SystemTime {
        self.wall_base + self.offset
    }
    fn spawn(&mut self, sv: &SpawnSpec) -> io::Result<i32> {
        let prog = sv.dir.join(if sv.is_finish { "finish" } else { "run" });
        let meta = std::fs::metadata(&prog)?;
        if std::os::unix::fs::PermissionsExt::mode(&meta.permissions()) & 0o111 == 0 {
            return Err(io::Error::from(io::ErrorKind::PermissionDenied));
        }
        let pid = self.next_pid;
        self.next_pid += 1;
        self.spawns.push((sv.name.clone(), sv.is_finish));
        let now = self.now();
        let (behaviour, exit_at) = if sv.is_finish {
            // The rendered finish contract: a clean exit (0) or EX_CONFIG (78) parks the slot.
            let code: i32 = sv.argv.get(1).and_then(|c| c.parse().ok()).unwrap_or(0);
            let fcode = if code == 0 || code == 78 { 125 } else { 0 };
            (Behaviour::ExitAfter { code: fcode, after: Duration::ZERO }, Some((now, fcode << 8)))
        } else {
            let b = (self.script)(&sv.dir, &sv.name);
            let exit_at = match &b {
                Behaviour::ExitAfter { code, after } => Some((now + *after, (code & 0xff) << 8)),
                Behaviour::Gateway { profile_dir } => {
                    gateway_state(profile_dir, "running", pid);
                    None
                }
                Behaviour::RunsForever => None,
            };
            (b, exit_at)
        };
        self.procs.insert(pid, Proc { finish: sv.is_finish, behaviour, exit_at });
        Ok(pid)
    }
    fn kill(&mut self, pid: i32, sig: Signal) {
        let pid = pid.abs();
        if matches!(sig, Signal::SIGCONT | Signal::SIGSTOP) {
            return;
        }
        let Some(p) = self.procs.get(&pid) else { return };
        let wstat = match (&p.behaviour, sig) {
            (Behaviour::Gateway { profile_dir }, Signal::SIGTERM) if !p.finish => {
                if take_marker(profile_dir, pid) {
                    gateway_state(profile_dir, "stopped", pid);
                    0
                } else {
                    1 << 8
                }
            }
            _ => sig as i32,
        };
        self.procs.remove(&pid);
        self.dead.push((pid, wstat));
    }
}

fn gateway_state(dir: &Path, state: &str, pid: i32) {
    let path = dir.join("gateway_state.json");
    let mut map = std::fs::read(&path)
        .ok()
        .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
        .and_then(|v| v.as_object().cloned())
        .unwrap_or_default();
    map.insert("gateway_state".into(), state.into());
    map.insert("pid".into(), pid.into());
    let _ = std::fs::write(&path, serde_json::Value::Object(map).to_string());
}

fn take_marker(dir: &Path, pid: i32) -> bool {
    let path = dir.join(hermes_core::lifecycle::marker::MARKER_FILE);
    let ok = std::fs::read(&path)
        .ok()
        .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
        .is_some_and(|v| v["target_pid"].as_i64() == Some(pid as i64));
    if ok {
        let _ = std::fs::remove_file(path);
    }
    ok
}

pub struct VirtualWorld {
    pub host: VirtualHost,
    pub scanner: Scanner,
}

impl VirtualWorld {
    /// Start a virtual s6-svscan on `scandir` (created if missing).
    pub fn boot(scandir: &Path, max: usize, script: Script) -> VirtualWorld {
        std::fs::create_dir_all(scandir).expect("scandir");
        let host = VirtualHost {
            base: Instant::now(),
            wall_base: SystemTime::now(),
            offset: Duration::ZERO,
            procs: BTreeMap::new(),
            next_pid: FIRST_PID,
            script,
            dead: Vec::new(),
            spawns: Vec::new(),
        };
        let scanner = Scanner::start(scandir, max, host.now()).unwrap_or_else(|(c, m)| panic!("virtual scanner: {m} ({c})"));
        let mut w = VirtualWorld { host, scanner };
        w.settle();
        w
    }

    pub fn elapsed(&self) -> Duration {
        self.host.offset
    }

    /// Deliver what is pending now: control bytes written by clients, deaths, due timers.
    fn settle(&mut self) {
        for _ in 0..10_000 {
            let mut progressed = false;
            let bytes = read_all(self.scanner.control.as_raw_fd());
            if !bytes.is_empty() {
                self.scanner.on_control(&bytes, &mut self.host);
                progressed = true;
            }
            for e in self.scanner.entries.iter_mut() {
                if let Some(s) = e.sup.as_mut().filter(|s| !s.exited) {
                    let b = read_all(s.control.as_raw_fd());
                    if !b.is_empty() {
                        s.on_control(&b, &mut self.host);
                        progressed = true;
                    }
                }
            }
            let now = self.host.now();
            let due: Vec<i32> = self.host.procs.iter().filter(|(_, p)| p.exit_at.is_some_and(|(t, _)| t <= now)).map(|(pid, _)| *pid).collect();
            for pid in due {
                let p = self.host.procs.remove(&pid).unwrap();
                self.host.dead.push((pid, p.exit_at.unwrap().1));
            }
            for (pid, wstat) in std::mem::take(&mut self.host.dead) {
                if let Some(s) = self.scanner.owner_of(pid) {
                    s.on_child_exit(pid, wstat, &mut self.host);
                }
                progressed = true;
            }
            if self.scanner.deadline().is_some_and(|d| d <= now) {
                self.scanner.tick(&mut self.host);
                progressed = true;
            }
            self.scanner.reap_exited(&mut self.host);
            self.scanner.warnings.clear();
            if !progressed {
                return;
            }
        }
        panic!("virtual world did not settle (a zero-time loop)");
    }

    /// Let `d` of virtual time pass, handling every event at its moment.
    pub fn advance(&mut self, d: Duration) {
        let target = self.host.offset + d;
        loop {
            self.settle();
            let now = self.host.now();
            let next_exit = self.host.procs.values().filter_map(|p| p.exit_at.map(|(t, _)| t)).min();
            let next = [self.scanner.deadline(), next_exit].into_iter().flatten().filter(|t| *t > now).min();
            match next {
                Some(t) if t <= self.host.base + target => self.host.offset = t - self.host.base,
                _ => {
                    self.host.offset = target;
                    self.settle();
                    return;
                }
            }
        }
    }

    /// The container stops: every supervisor is told to take its service down and exit.
    pub fn shutdown(mut self) {
        self.scanner.terminate(Terminate::Gentle, &mut self.host);
        for _ in 0..100 {
            if self.scanner.finished() {
                return;
            }
            self.advance(Duration::from_millis(100));
        }
    }

    /// Is the service in `dir` (relative to the scandir) up, per its status file?
    pub fn up(&self, rel: &str) -> Option<bool> {
        let fs_ = hermes_core::safe_fs::RealFs;
        let root = hermes_core::safe_fs::Fs::open_root(&fs_, &self.scanner.scandir.join(rel)).ok()?;
        hermes_core::s6::status::read(&fs_, &root).ok().flatten().map(|s| s.is_up())
    }
}

fn read_all(fd: i32) -> Vec<u8> {
    let mut out = Vec::new();
    let mut buf = [0u8; 256];
    while let Ok(n) = nix::unistd::read(fd, &mut buf) {
        if n == 0 {
            break;
        }
        out.extend_from_slice(&buf[..n]);
    }
    out
}

/// A container restart as the image does it: the tree stops, the scandir is wiped (a fresh
/// tmpfs), the volume stays, a new scanner starts. The caller then runs the boot pass.
pub fn container_restart(world: VirtualWorld, script: Script) -> VirtualWorld {
    let scandir = world.scanner.scandir.clone();
    let max = world.scanner.max;
    world.shutdown();
    let _ = std::fs::remove_dir_all(&scandir);
    VirtualWorld::boot(&scandir, max, script)
}

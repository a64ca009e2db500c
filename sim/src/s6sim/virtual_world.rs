//! The virtual-clock world: the same scanner and supervisors as the daemon, but time is a
//! number the test advances and services are scripted behaviours instead of processes, so a
//! scenario of hours runs in milliseconds and deterministically. The file system is real: the
//! core writes slots and talks to the control FIFOs exactly as it does with real s6.
//!
//! Nothing is executed: `run` follows a [`Script`], `finish` exits with what a [`FinishHook`]
//! decides. Both belong to whoever uses the world (the product's exit policy is not s6's).

use super::scan::{Scanner, Settings, Terminate};
use super::supervise::{Host, SpawnSpec};
use super::version::S6Version;
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

/// Decides `finish`'s exit code from (service directory, service name, run's exit code or
/// 256 when a signal killed it, that signal or 0). s6 gives meaning to one answer only: 125
/// leaves the service down; anything else lets it restart.
pub type FinishHook = Box<dyn FnMut(&Path, &str, i32, i32) -> i32>;

/// A finish that does nothing special: it exits 0 and the service is restarted.
pub fn finish_restarts() -> FinishHook {
    Box::new(|_, _, _, _| 0)
}

struct Proc {
    finish: bool,
    behaviour: Behaviour,
    /// When and how it ends by itself.
    exit_at: Option<(Instant, i32)>,
}

/// The virtual clock, shared: whoever holds a handle (a finish hook, a test's registrar) reads
/// the same time the world is at, and a container restart carries it on.
#[derive(Debug, Clone)]
pub struct VirtualTime {
    pub base: Instant,
    pub wall_base: SystemTime,
    offset: std::rc::Rc<std::cell::Cell<Duration>>,
}

impl VirtualTime {
    /// A clock at the real present, at offset zero.
    pub fn start() -> VirtualTime {
        VirtualTime { base: Instant::now(), wall_base: SystemTime::now(), offset: Default::default() }
    }
    /// Virtual time elapsed since the first boot.
    pub fn offset(&self) -> Duration {
        self.offset.get()
    }
    pub fn instant(&self) -> Instant {
        self.base + self.offset.get()
    }
    pub fn wall(&self) -> SystemTime {
        self.wall_base + self.offset.get()
    }
    fn set(&self, offset: Duration) {
        self.offset.set(offset);
    }
}

pub struct VirtualHost {
    time: VirtualTime,
    procs: BTreeMap<i32, Proc>,
    next_pid: i32,
    script: Script,
    finish: FinishHook,
    /// Deaths to deliver: (pid, raw wait status).
    dead: Vec<(i32, i32)>,
    /// Every spawn, for assertions: (service name, is_finish).
    pub spawns: Vec<(String, bool)>,
    /// When each run (not finish) was spawned: (service name, virtual time since first boot).
    pub runs: Vec<(String, Duration)>,
}

/// Fake pids start above Linux's largest pid_max, so no /proc entry can ever match one.
pub const FIRST_PID: i32 = 5_000_000;

impl Host for VirtualHost {
    fn now(&self) -> Instant {
        self.time.instant()
    }
    fn wall(&self) -> SystemTime {
        self.time.wall()
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
        if !sv.is_finish {
            self.runs.push((sv.name.clone(), self.time.offset()));
        }
        let now = self.now();
        let (behaviour, exit_at) = if sv.is_finish {
            let arg = |i: usize| sv.argv.get(i).and_then(|c| c.parse().ok()).unwrap_or(0);
            let fcode = (self.finish)(&sv.dir, &sv.name, arg(1), arg(2));
            (Behaviour::ExitAfter { code: fcode, after: Duration::ZERO }, Some((now, (fcode & 0xff) << 8)))
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
            // A virtual process that stays up is ready at once: what a slot's bridge tells s6
            // (through `notification-fd`) of a gateway that says it runs as it starts.
            if let (None, Some((_, w))) = (exit_at, sv.notify) {
                // SAFETY: the supervisor keeps the write end open until this spawn returns.
                let _ = nix::unistd::write(unsafe { std::os::fd::BorrowedFd::borrow_raw(w) }, b"\n");
            }
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

/// The gateway's planned-stop marker (upstream's `gateway/status.py` contract).
pub const PLANNED_STOP_MARKER: &str = ".gateway-planned-stop.json";

fn take_marker(dir: &Path, pid: i32) -> bool {
    let path = dir.join(PLANNED_STOP_MARKER);
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
    /// Every warning the scanner and the supervisors printed, in order.
    pub log: Vec<String>,
}

impl VirtualWorld {
    /// Start a virtual s6-svscan (Debian's 2.11) on `scandir` (created if missing) with a
    /// service limit of `max`.
    pub fn boot(scandir: &Path, max: usize, script: Script, finish: FinishHook) -> VirtualWorld {
        let settings = Settings { max, ..Settings::of(S6Version::V2_11) };
        VirtualWorld::boot_with(scandir, settings, script, finish)
    }

    /// Start a virtual s6-svscan of any version and settings.
    pub fn boot_with(scandir: &Path, settings: Settings, script: Script, finish: FinishHook) -> VirtualWorld {
        VirtualWorld::boot_at(VirtualTime::start(), scandir, settings, script, finish)
    }

    /// Boot on a clock the caller made first (so a finish hook can hold it).
    pub fn boot_at(time: VirtualTime, scandir: &Path, settings: Settings, script: Script, finish: FinishHook) -> VirtualWorld {
        std::fs::create_dir_all(scandir).expect("scandir");
        let host = VirtualHost {
            time,
            procs: BTreeMap::new(),
            next_pid: FIRST_PID,
            script,
            finish,
            dead: Vec::new(),
            spawns: Vec::new(),
            runs: Vec::new(),
        };
        let scanner = Scanner::start(scandir, settings, host.now()).unwrap_or_else(|(c, m)| panic!("virtual scanner: {m} ({c})"));
        let mut w = VirtualWorld { host, scanner, log: Vec::new() };
        w.settle();
        w
    }

    pub fn elapsed(&self) -> Duration {
        self.host.time.offset()
    }

    /// A handle on this world's clock (and its successors' across container restarts).
    pub fn time(&self) -> VirtualTime {
        self.host.time.clone()
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
                    let ready = s.notify_r.as_ref().map(|n| read_all(n.as_raw_fd())).unwrap_or_default();
                    if !ready.is_empty() {
                        s.on_notify(&ready, false, &mut self.host);
                        progressed = true;
                    }
                }
            }
            let now = self.host.now();
            let due: Vec<i32> =
                self.host.procs.iter().filter(|(_, p)| p.exit_at.is_some_and(|(t, _)| t <= now)).map(|(pid, _)| *pid).collect();
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
            self.log.append(&mut self.scanner.warnings);
            if !progressed {
                return;
            }
        }
        panic!("virtual world did not settle (a zero-time loop)");
    }

    /// Let `d` of virtual time pass, handling every event at its moment.
    pub fn advance(&mut self, d: Duration) {
        let target = self.host.time.offset() + d;
        loop {
            self.settle();
            let now = self.host.now();
            let next_exit = self.host.procs.values().filter_map(|p| p.exit_at.map(|(t, _)| t)).min();
            let next = [self.scanner.deadline(), next_exit].into_iter().flatten().filter(|t| *t > now).min();
            match next {
                Some(t) if t <= self.host.time.base + target => self.host.time.set(t - self.host.time.base),
                _ => {
                    self.host.time.set(target);
                    self.settle();
                    return;
                }
            }
        }
    }

    /// Let time pass up to the next event and handle it, or by `max` when nothing happens
    /// sooner: so a caller can react to each event (a death, a restart) at its moment.
    pub fn step(&mut self, max: Duration) {
        self.settle();
        let now = self.host.now();
        let next_exit = self.host.procs.values().filter_map(|p| p.exit_at.map(|(t, _)| t)).min();
        let next = [self.scanner.deadline(), next_exit].into_iter().flatten().filter(|t| *t > now).min();
        let to = next.filter(|t| *t <= now + max).unwrap_or(now + max);
        self.host.time.set(to - self.host.time.base);
        self.settle();
    }

    /// The container stops: every supervisor is told to take its service down and exit.
    pub fn shutdown(self) {
        self.stop();
    }

    /// [`Self::shutdown`], handing back the host (and with it the finish hook).
    fn stop(mut self) -> VirtualHost {
        self.scanner.terminate(Terminate::Gentle, &mut self.host);
        for _ in 0..100 {
            if self.scanner.finished() {
                break;
            }
            self.advance(Duration::from_millis(100));
        }
        self.host
    }

    /// Is the service in `dir` (relative to the scandir) up, per its status file?
    pub fn up(&self, rel: &str) -> Option<bool> {
        let b = std::fs::read(self.scanner.scandir.join(rel).join("supervise/status")).ok()?;
        super::wire::StatusRecord::decode(&b).map(|s| s.is_up())
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
/// tmpfs), the volume stays, a new scanner starts with the same settings and the same finish
/// policy (it is part of the image), and time goes on from where it was. The caller then runs
/// the boot pass.
pub fn container_restart(world: VirtualWorld, script: Script) -> VirtualWorld {
    let scandir = world.scanner.scandir.clone();
    let settings = world.scanner.settings;
    let host = world.stop();
    let _ = std::fs::remove_dir_all(&scandir);
    let mut w = VirtualWorld::boot_at(host.time, &scandir, settings, script, host.finish);
    w.host.runs = host.runs;
    w
}

//! One simulated `s6-supervise`: the state machine s6-supervise runs (skarnet.org s6-supervise.c) and the status file it
//! announces, as Debian's s6 2.11.3.2 or s6 2.15.1.0 behaves ([`S6Version`]). The other files
//! of the service directory (skeleton, lock, control FIFO, `event/`, `death_tally`) are
//! handled in [`super::svdir`].
//!
//! The state machine is driven by a [`Host`]: the real-time daemon spawns real processes; the
//! virtual-clock world plays scripted behaviours. Files are real in both.

use super::fsutil::write_status;
use super::svdir;
pub use super::svdir::Fatal;
use super::version::S6Version;
use super::wire::{self, StatusRecord};
use nix::sys::signal::Signal;
use std::fs;
use std::io;
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

/// Automatic respawn throttle.
pub const RESPAWN_THROTTLE: Duration = Duration::from_secs(1);
pub const FINISH_TIMEOUT_DEFAULT_MS: u64 = 5000;
pub const REKILL: Duration = Duration::from_secs(5);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    Down,
    Up,
    Finish,
    LastUp,
    LastFinish,
}

/// What a host does for a supervisor.
pub trait Host {
    fn now(&self) -> Instant;
    fn wall(&self) -> SystemTime;
    /// Spawn `./run <name>` (or `./finish code sig name`) in `dir`; `Err` when it cannot run.
    fn spawn(&mut self, sv: &SpawnSpec) -> io::Result<i32>;
    fn kill(&mut self, pid: i32, sig: Signal);
}

#[derive(Debug, Clone)]
pub struct SpawnSpec {
    pub dir: PathBuf,
    pub name: String,
    /// `["./run", name]`, or `["./finish", code, sig, name]` plus the dead run's pgid in 2.15.
    pub argv: Vec<String>,
    pub stdin: Option<i32>,
    pub stdout: Option<i32>,
    /// (fd number in the child, write end) for readiness notification.
    pub notify: Option<(i32, i32)>,
    pub is_finish: bool,
}

pub struct Supervisor {
    pub name: String,
    pub dir: PathBuf,
    pub version: S6Version,
    pub phase: Phase,
    want_up: bool,
    ready: bool,
    paused: bool,
    pid: i32,
    wstat: u16,
    stamp: SystemTime,
    readystamp: SystemTime,
    nextstart: Option<Instant>,
    deadline: Option<Instant>,
    dying: bool,
    /// The supervisor has exited (its lock is released).
    pub exited: bool,
    _lock: Option<OwnedFd>,
    pub control: OwnedFd,
    _control_w: OwnedFd,
    pub notify_r: Option<OwnedFd>,
    pub stdin: Option<i32>,
    pub stdout: Option<i32>,
    pub warnings: Vec<String>,
}

impl Supervisor {
    /// s6-supervise start-up (`control_init` and the first status write).
    pub fn start(
        dir: &Path,
        name: &str,
        version: S6Version,
        host: &mut dyn Host,
        stdin: Option<i32>,
        stdout: Option<i32>,
    ) -> Result<Supervisor, Fatal> {
        let (lock, control, control_w) = svdir::control_init(dir)?;
        svdir::clean_listeners(dir);
        // death_tally is emptied (an existing file keeps its inode, owner and mode).
        let _ = fs::OpenOptions::new().write(true).create(true).truncate(true).open(dir.join("supervise/death_tally"));
        let want_up = match fs::symlink_metadata(dir.join("down")) {
            Ok(_) => false,
            Err(e) if e.kind() == io::ErrorKind::NotFound => true,
            Err(e) => return Err(Fatal { code: 111, message: format!("unable to access ./down: {e}") }),
        };
        let now = host.wall();
        let mut sv = Supervisor {
            name: name.to_string(),
            dir: dir.to_path_buf(),
            version,
            phase: Phase::Down,
            want_up,
            // A fresh supervisor is "down and ready" in both versions.
            ready: true,
            // 2.15 sets `paused` for the first write only: pid 0 + paused is how its
            // s6-svstat recognises "not started yet" (flags 0x09 with a `down` file, where
            // 2.11 writes 0x08 and its s6-svstat prints `down (exitcode 0)`).
            paused: version == S6Version::V2_15,
            pid: 0,
            wstat: 0,
            stamp: now,
            readystamp: now,
            nextstart: None,
            deadline: None,
            dying: false,
            exited: false,
            _lock: Some(lock),
            control,
            _control_w: control_w,
            notify_r: None,
            stdin,
            stdout,
            warnings: Vec::new(),
        };
        sv.announce();
        sv.paused = false;
        sv.event(b"s");
        if sv.want_up {
            sv.trystart(host);
        }
        Ok(sv)
    }

    pub fn status(&self) -> StatusRecord {
        let finishing = matches!(self.phase, Phase::Finish | Phase::LastFinish);
        let flag = |on: bool, f: u8| if on { f } else { 0 };
        StatusRecord {
            stamp: self.stamp,
            readystamp: self.readystamp,
            pid: self.pid.max(0) as u64,
            wstat: self.wstat,
            flags: flag(self.paused, wire::FLAG_PAUSED)
                | flag(finishing, wire::FLAG_FINISHING)
                | flag(self.want_up, wire::FLAG_WANTUP)
                | flag(self.ready, wire::FLAG_READY),
        }
    }

    fn announce(&mut self) {
        if self.exited {
            return;
        }
        if let Err(e) = write_status(&self.dir, &self.status()) {
            self.warnings.push(format!("unable to write status file: {e}"));
        }
    }

    fn event(&self, letters: &[u8]) {
        svdir::notify(&self.dir, letters);
    }

    pub fn deadline(&self) -> Option<Instant> {
        if self.exited {
            None
        } else {
            self.deadline
        }
    }

    /// The run (or finish) pid this supervisor waits for.
    pub fn child(&self) -> Option<i32> {
        (self.pid > 0).then_some(self.pid)
    }

    fn trystart(&mut self, host: &mut dyn Host) {
        let mut notify = None;
        let nfd = svdir::read_number(&self.dir, "notification-fd");
        if let Some(n) = nfd {
            if let Ok((r, w)) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC) {
                // The read end must never block the supervisor; the write end is placed at
                // fd `n` in the child (dup2 drops close-on-exec there).
                let _ = nix::fcntl::fcntl(r.as_raw_fd(), nix::fcntl::FcntlArg::F_SETFL(nix::fcntl::OFlag::O_NONBLOCK));
                notify = Some((n as i32, w.as_raw_fd()));
                self.notify_r = Some(r);
                std::mem::forget(w); // closed after the spawn below
            }
        }
        let spec = SpawnSpec {
            dir: self.dir.clone(),
            name: self.name.clone(),
            argv: vec!["./run".into(), self.name.clone()],
            stdin: self.stdin,
            stdout: self.stdout,
            notify,
            is_finish: false,
        };
        let r = host.spawn(&spec);
        if let Some((_, w)) = notify {
            unsafe { nix::libc::close(w) };
        }
        match r {
            Err(e) => {
                self.notify_r = None;
                let retry = self.version.spawn_retry();
                self.warnings.push(match self.version {
                    S6Version::V2_11 => format!("unable to exec run: {e}; unable to spawn ./run - waiting {} seconds", retry.as_secs()),
                    S6Version::V2_15 => format!("unable to spawn ./run (waiting {} seconds): {e}", retry.as_secs()),
                });
                self.deadline = Some(host.now() + retry);
            }
            Ok(pid) => {
                self.phase = Phase::Up;
                self.pid = pid;
                self.ready = false;
                self.stamp = host.wall();
                self.nextstart = None;
                self.deadline = None;
                self.announce();
                self.event(b"u");
            }
        }
    }

    fn set_down_and_ready(&mut self, host: &mut dyn Host, events: &[u8]) {
        let last = matches!(self.phase, Phase::LastUp | Phase::LastFinish);
        self.pid = 0;
        self.phase = Phase::Down;
        self.ready = true;
        self.readystamp = host.wall();
        self.announce();
        self.event(events);
        if last {
            self.exit();
            return;
        }
        let now = host.now();
        self.deadline = Some(match self.nextstart {
            Some(t) => t.max(now),
            None => now + RESPAWN_THROTTLE,
        });
    }

    fn exit(&mut self) {
        self.event(b"x");
        self.exited = true;
        self._lock = None; // releases the lock: s6-svok now fails
        self.deadline = None;
    }

    fn death_tally(&self, wstat: i32) {
        svdir::append_death(&self.dir, self.stamp, wstat);
    }

    /// A child of this supervisor was reaped with raw wait status `wstat`.
    pub fn on_child_exit(&mut self, pid: i32, wstat: i32, host: &mut dyn Host) {
        if pid != self.pid || self.exited {
            return;
        }
        match self.phase {
            Phase::Up | Phase::LastUp => {
                self.paused = false;
                self.ready = false;
                self.dying = false;
                self.notify_r = None;
                self.stamp = host.wall();
                self.wstat = wstat as u16;
                self.death_tally(wstat);
                let (code, sig) =
                    if nix::libc::WIFSIGNALED(wstat) { (256, nix::libc::WTERMSIG(wstat)) } else { (nix::libc::WEXITSTATUS(wstat), 0) };
                let mut argv = vec!["./finish".into(), code.to_string(), sig.to_string(), self.name.clone()];
                if self.version == S6Version::V2_15 {
                    // The run was a session leader, so its pid is the process group to clean up.
                    argv.push(self.pid.to_string());
                }
                let spec = SpawnSpec {
                    dir: self.dir.clone(),
                    name: self.name.clone(),
                    argv,
                    stdin: self.stdin,
                    stdout: self.stdout,
                    notify: None,
                    is_finish: true,
                };
                let last = self.phase == Phase::LastUp;
                let finish_exists = fs::symlink_metadata(self.dir.join("finish")).is_ok();
                match if finish_exists { host.spawn(&spec) } else { Err(io::Error::from(io::ErrorKind::NotFound)) } {
                    Ok(fpid) => {
                        self.pid = fpid;
                        self.phase = if last { Phase::LastFinish } else { Phase::Finish };
                        let ms = svdir::read_number(&self.dir, "timeout-finish").unwrap_or(FINISH_TIMEOUT_DEFAULT_MS);
                        self.deadline = (ms > 0).then(|| host.now() + Duration::from_millis(ms));
                        self.announce();
                        self.event(b"d");
                    }
                    Err(_) => self.set_down_and_ready(host, b"dD"),
                }
            }
            Phase::Finish | Phase::LastFinish => {
                let permanent = nix::libc::WIFEXITED(wstat) && nix::libc::WEXITSTATUS(wstat) == 125;
                if permanent {
                    self.want_up = false;
                    self.set_down_and_ready(host, b"OD");
                } else {
                    self.set_down_and_ready(host, b"D");
                }
            }
            Phase::Down => {}
        }
    }

    pub fn on_timeout(&mut self, host: &mut dyn Host) {
        let now = host.now();
        if self.exited || self.deadline.is_none_or(|d| d > now) {
            return;
        }
        self.deadline = None;
        match self.phase {
            Phase::Down => {
                if self.want_up {
                    self.trystart(host);
                }
            }
            Phase::Up | Phase::LastUp => {
                if self.dying {
                    match self.version {
                        // 2.11 knows neither `flag-timeout-killpg` nor the SIGCONT chaser.
                        S6Version::V2_11 => host.kill(self.pid, Signal::SIGKILL),
                        S6Version::V2_15 => {
                            let kill_pg = fs::symlink_metadata(self.dir.join("flag-timeout-killpg")).is_ok();
                            let target = if kill_pg { -self.pid } else { self.pid };
                            host.kill(target, Signal::SIGKILL);
                            host.kill(target, Signal::SIGCONT);
                        }
                    }
                    self.deadline = Some(now + REKILL);
                }
            }
            Phase::Finish | Phase::LastFinish => {
                self.warnings.push("finish script lifetime reached maximum value - sending it a SIGKILL".into());
                host.kill(self.pid, Signal::SIGCONT);
                host.kill(self.pid, Signal::SIGKILL);
                self.deadline = Some(now + REKILL);
            }
        }
    }

    fn is_up(&self) -> bool {
        matches!(self.phase, Phase::Up | Phase::LastUp)
    }

    /// The `d` action: want down, down-signal + SIGCONT, arm timeout-kill.
    fn up_d(&mut self, host: &mut dyn Host) {
        self.want_up = false;
        let sig = svdir::read_signal(&self.dir, "down-signal", Signal::SIGTERM);
        host.kill(self.pid, sig);
        host.kill(self.pid, Signal::SIGCONT);
        self.paused = false;
        if let Some(ms) = svdir::read_number(&self.dir, "timeout-kill").filter(|&m| m > 0) {
            self.dying = true;
            self.deadline = Some(host.now() + Duration::from_millis(ms));
        }
        self.announce();
    }

    /// `u`/`o`: set the wanted state and, if the service is down, start it now.
    fn want_and_start(&mut self, want_up: bool, host: &mut dyn Host) {
        self.want_up = want_up;
        self.announce();
        if self.phase == Phase::Down {
            self.trystart(host);
        }
    }

    /// `d`: the `d` action when up, otherwise just want down.
    fn take_down(&mut self, up: bool, host: &mut dyn Host) {
        if up {
            self.up_d(host);
        } else {
            self.want_up = false;
            self.announce();
        }
    }

    fn create_down(&mut self) {
        if let Err(e) = fs::OpenOptions::new().write(true).create(true).truncate(false).open(self.dir.join("down")) {
            self.warnings.push(format!("unable to touch ./down: {e}"));
        }
    }

    /// The control bytes this version's s6-supervise acts on. 2.15 added `l P C K` to the
    /// table but left the dispatch bound at 24 entries, so `Q`, now the 25th, is dropped.
    fn understands(&self, b: u8) -> bool {
        let table: &[u8] = match self.version {
            S6Version::V2_11 => b"abqhkti12pcyroduDUxOQ",
            S6Version::V2_15 => b"abqhkti12pcyrlPCKoduDUxO",
        };
        table.contains(&b)
    }

    /// The signal a control byte sends to the service (when it is up), and to whom: the run's
    /// pid, or its process group (negative) for `P C K`.
    fn signal_for(&self, b: u8) -> Option<(i32, Signal)> {
        let pid = self.pid;
        Some(match b {
            b'a' => (pid, Signal::SIGALRM),
            b'b' => (pid, Signal::SIGABRT),
            b'q' => (pid, Signal::SIGQUIT),
            b'h' => (pid, Signal::SIGHUP),
            b'k' => (pid, Signal::SIGKILL),
            b't' => (pid, Signal::SIGTERM),
            b'i' => (pid, Signal::SIGINT),
            b'1' => (pid, Signal::SIGUSR1),
            b'2' => (pid, Signal::SIGUSR2),
            b'y' => (pid, Signal::SIGWINCH),
            b'p' => (pid, Signal::SIGSTOP),
            b'c' => (pid, Signal::SIGCONT),
            b'r' => (pid, svdir::read_signal(&self.dir, "down-signal", Signal::SIGTERM)),
            b'l' => (pid, svdir::read_signal(&self.dir, "reload-signal", Signal::SIGHUP)),
            b'P' => (-pid, Signal::SIGSTOP),
            b'C' => (-pid, Signal::SIGCONT),
            b'K' => (-pid, Signal::SIGKILL),
            _ => return None,
        })
    }

    /// Process control bytes in order; unknown ones are ignored, as s6-supervise does.
    pub fn on_control(&mut self, bytes: &[u8], host: &mut dyn Host) {
        for &b in bytes {
            if self.exited {
                return;
            }
            if !self.understands(b) {
                continue;
            }
            if let Some((target, sig)) = self.signal_for(b) {
                if self.is_up() {
                    host.kill(target, sig);
                    if matches!(b, b'p' | b'c' | b'P' | b'C') {
                        self.paused = matches!(b, b'p' | b'P');
                        self.announce();
                    }
                }
                continue;
            }
            match b {
                b'o' => self.want_and_start(false, host),
                b'u' => self.want_and_start(true, host),
                b'U' => {
                    let _ = fs::remove_file(self.dir.join("down"));
                    self.want_and_start(true, host);
                }
                b'd' => self.take_down(self.is_up(), host),
                b'D' => {
                    self.create_down();
                    self.take_down(self.is_up(), host);
                }
                b'O' => {
                    self.want_up = false;
                    self.announce();
                }
                b'Q' => {
                    self.create_down();
                    self.want_up = false;
                    self.announce();
                }
                b'x' => self.on_exit_request(),
                _ => {}
            }
        }
    }

    /// `x` (or SIGHUP from the scanner): exit once the service is down, without killing it.
    fn on_exit_request(&mut self) {
        match self.phase {
            Phase::Down => self.exit(),
            Phase::Up => self.phase = Phase::LastUp,
            Phase::Finish => self.phase = Phase::LastFinish,
            _ => {}
        }
    }

    /// A signal the scanner sends to this supervisor: TERM = exit after taking the service
    /// down; HUP = exit when the service ends by itself.
    pub fn on_signal(&mut self, sig: Signal, host: &mut dyn Host) {
        if self.exited {
            return;
        }
        match sig {
            Signal::SIGTERM => match self.phase {
                Phase::Down => self.exit(),
                Phase::Up => {
                    self.phase = Phase::LastUp;
                    self.up_d(host);
                }
                Phase::LastUp => self.up_d(host),
                Phase::Finish => self.phase = Phase::LastFinish,
                Phase::LastFinish => {}
            },
            Signal::SIGHUP => self.on_exit_request(),
            _ => {}
        }
    }

    /// Data on the readiness pipe: the first newline makes the service ready.
    pub fn on_notify(&mut self, data: &[u8], eof: bool, host: &mut dyn Host) {
        if data.contains(&b'\n') && self.is_up() {
            self.nextstart = Some(host.now() + RESPAWN_THROTTLE);
            self.readystamp = host.wall();
            self.ready = true;
            self.announce();
            self.event(b"U");
            self.notify_r = None;
        } else if eof {
            self.notify_r = None;
        }
    }
}

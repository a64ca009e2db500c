//! One simulated `s6-supervise`: the on-disk control surface (skeleton, lock, control FIFO,
//! status file, death tally, event fifodir) and the state machine of s6-semantics §3, as
//! Debian's s6 2.11.3.2 behaves (see the crate README for where that differs from 2.15).
//!
//! The state machine is driven by a [`Host`]: the real-time daemon spawns real processes; the
//! virtual-clock world plays scripted behaviours. Files are real in both.

use super::fsutil::{ofd_trylock, write_status};
use hermes_core::s6::status::Status;
use nix::errno::Errno;
use nix::sys::signal::Signal;
use nix::sys::stat::Mode;
use std::ffi::CString;
use std::fs;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

/// Automatic respawn throttle.
pub const RESPAWN_THROTTLE: Duration = Duration::from_secs(1);
/// Retry after `./run` could not be spawned.
pub const SPAWN_RETRY: Duration = Duration::from_secs(60);
pub const FINISH_TIMEOUT_DEFAULT_MS: u64 = 5000;
pub const REKILL: Duration = Duration::from_secs(5);
pub const MAX_DEATH_TALLY_DEFAULT: usize = 100;

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
    /// `["./run", name]` or `["./finish", code, sig, name]`.
    pub argv: Vec<String>,
    pub stdin: Option<i32>,
    pub stdout: Option<i32>,
    /// (fd number in the child, write end) for readiness notification.
    pub notify: Option<(i32, i32)>,
    pub is_finish: bool,
}

/// Why a supervisor could not start (what real s6-supervise prints, and its exit code).
#[derive(Debug, Clone)]
pub struct Fatal {
    pub code: i32,
    pub message: String,
}

pub struct Supervisor {
    pub name: String,
    pub dir: PathBuf,
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

fn fatal(code: i32, message: String) -> Fatal {
    Fatal { code, message }
}

/// `trymkdir`: created (true), existed (false), or fatal.
fn trymkdir(dir: &Path, name: &str) -> Result<bool, Fatal> {
    let p = dir.join(name);
    match nix::unistd::mkdir(&p, Mode::from_bits_truncate(0o700)) {
        Ok(()) => Ok(true),
        Err(Errno::EEXIST) => {
            let lm = fs::symlink_metadata(&p).map_err(|e| fatal(111, format!("unable to stat {name}: {e}")))?;
            if lm.file_type().is_symlink() {
                // A (dangling) link: create its target, one level.
                let target = fs::read_link(&p).map_err(|e| fatal(111, format!("unable to readlink {name}: {e}")))?;
                let target = if target.is_absolute() { target } else { dir.join(target) };
                return match nix::unistd::mkdir(&target, Mode::from_bits_truncate(0o700)) {
                    Ok(()) => Ok(true),
                    Err(e) => Err(fatal(111, format!("unable to mkdir {}: {}", target.display(), e.desc()))),
                };
            }
            match fs::metadata(&p) {
                Ok(m) if m.is_dir() => Ok(false),
                _ => Err(fatal(100, format!("{name} exists and is not a directory"))),
            }
        }
        Err(e) => Err(fatal(111, format!("unable to mkdir {name}: {}", e.desc()))),
    }
}

fn read_number(dir: &Path, file: &str) -> Option<u64> {
    let s = fs::read(dir.join(file)).ok()?;
    let s = &s[..s.len().min(10)];
    let line = s.split(|&b| b == b'\n').next()?;
    std::str::from_utf8(line).ok()?.parse().ok()
}

fn read_signal(dir: &Path, file: &str, default: Signal) -> Signal {
    let Ok(s) = fs::read_to_string(dir.join(file)) else { return default };
    let s = s.lines().next().unwrap_or("").trim();
    let s = s.strip_prefix("SIG").unwrap_or(s);
    if let Ok(n) = s.parse::<i32>() {
        return Signal::try_from(n).unwrap_or(default);
    }
    format!("SIG{s}").parse::<Signal>().unwrap_or(default)
}

impl Supervisor {
    /// s6-supervise start-up (`control_init` and the first status write).
    pub fn start(dir: &Path, name: &str, host: &mut dyn Host, stdin: Option<i32>, stdout: Option<i32>) -> Result<Supervisor, Fatal> {
        let old = nix::sys::stat::umask(Mode::empty());
        let r = Self::control_init(dir);
        nix::sys::stat::umask(old);
        let (lock, control, control_w) = r?;
        // Stale listener FIFOs in event/ (their reader is gone) are cleaned.
        if let Ok(rd) = fs::read_dir(dir.join("event")) {
            for e in rd.flatten() {
                let n = e.file_name();
                if n.as_bytes().starts_with(b"ftrig1") {
                    let c = CString::new(e.path().as_os_str().as_bytes()).unwrap();
                    let fd = unsafe { nix::libc::open(c.as_ptr(), nix::libc::O_WRONLY | nix::libc::O_NONBLOCK) };
                    if fd < 0 && Errno::last() == Errno::ENXIO {
                        let _ = fs::remove_file(e.path());
                    } else if fd >= 0 {
                        unsafe { nix::libc::close(fd) };
                    }
                }
            }
        }
        // death_tally is emptied (an existing file keeps its inode, owner and mode).
        let _ = fs::OpenOptions::new().write(true).create(true).truncate(true).open(dir.join("supervise/death_tally"));
        let want_up = match fs::symlink_metadata(dir.join("down")) {
            Ok(_) => false,
            Err(e) if e.kind() == io::ErrorKind::NotFound => true,
            Err(e) => return Err(fatal(111, format!("unable to access ./down: {e}"))),
        };
        let now = host.wall();
        let mut sv = Supervisor {
            name: name.to_string(),
            dir: dir.to_path_buf(),
            phase: Phase::Down,
            want_up,
            // 2.11 marks a fresh supervisor "down and ready" (2.15 writes a "not started yet"
            // paused marker instead).
            ready: true,
            paused: false,
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
        sv.event(b"s");
        if sv.want_up {
            sv.trystart(host);
        }
        Ok(sv)
    }

    fn control_init(dir: &Path) -> Result<(OwnedFd, OwnedFd, OwnedFd), Fatal> {
        if trymkdir(dir, "event")? {
            let p = dir.join("event");
            let _ = nix::unistd::chown(&p, None, Some(nix::unistd::getegid()));
            let _ = fs::set_permissions(&p, fs::Permissions::from_mode(0o3730));
        }
        trymkdir(dir, "supervise")?;
        let lockp = dir.join("supervise/lock");
        let fd = nix::fcntl::open(
            &lockp,
            nix::fcntl::OFlag::O_WRONLY | nix::fcntl::OFlag::O_NONBLOCK | nix::fcntl::OFlag::O_CREAT | nix::fcntl::OFlag::O_CLOEXEC,
            Mode::from_bits_truncate(0o644),
        )
        .map_err(|e| fatal(111, format!("unable to open supervise/lock: {}", e.desc())))?;
        let lock = unsafe { OwnedFd::from_raw_fd(fd) };
        if !ofd_trylock(lock.as_raw_fd()) {
            return Err(fatal(100, "another instance of s6-supervise is already running".into()));
        }
        let ctl = dir.join("supervise/control");
        match nix::unistd::mkfifo(&ctl, Mode::from_bits_truncate(0o600)) {
            Ok(()) | Err(Errno::EEXIST) => {}
            Err(e) => return Err(fatal(111, format!("unable to mkfifo supervise/control: {}", e.desc()))),
        }
        let m = fs::metadata(&ctl).map_err(|e| fatal(111, format!("unable to stat supervise/control: {e}")))?;
        if !std::os::unix::fs::FileTypeExt::is_fifo(&m.file_type()) {
            return Err(fatal(100, "supervise/control is not a FIFO".into()));
        }
        let open = |flags| {
            nix::fcntl::open(&ctl, flags | nix::fcntl::OFlag::O_NONBLOCK | nix::fcntl::OFlag::O_CLOEXEC, Mode::empty())
                .map(|fd| unsafe { OwnedFd::from_raw_fd(fd) })
        };
        let r = open(nix::fcntl::OFlag::O_RDONLY).map_err(|e| fatal(111, format!("unable to open supervise/control for reading: {}", e.desc())))?;
        let w = open(nix::fcntl::OFlag::O_WRONLY).map_err(|e| fatal(111, format!("unable to open supervise/control for writing: {}", e.desc())))?;
        Ok((lock, r, w))
    }

    pub fn status(&self) -> Status {
        let secs = |t: SystemTime| t.duration_since(SystemTime::UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or(0);
        Status {
            since: secs(self.stamp),
            ready_since: secs(self.readystamp),
            pid: self.pid.max(0) as u64,
            wstat: self.wstat,
            paused: self.paused,
            finishing: matches!(self.phase, Phase::Finish | Phase::LastFinish),
            want_up: self.want_up,
            ready: self.ready,
        }
    }

    fn announce(&mut self) {
        if self.exited {
            return;
        }
        let st = self.status();
        let nanos = |t: SystemTime| t.duration_since(SystemTime::UNIX_EPOCH).map(|d| d.subsec_nanos()).unwrap_or(0);
        if let Err(e) = write_status(&self.dir, &st, nanos(self.stamp), nanos(self.readystamp)) {
            self.warnings.push(format!("unable to write status file: {e}"));
        }
    }

    /// Write the event letters to every listener FIFO in `event/`; listeners that are gone
    /// are unlinked.
    fn event(&self, letters: &[u8]) {
        let Ok(rd) = fs::read_dir(self.dir.join("event")) else { return };
        for e in rd.flatten() {
            let n = e.file_name();
            let b = n.as_bytes();
            if !(b.starts_with(b"ftrig1") && b.len() == 39) {
                continue;
            }
            let c = CString::new(e.path().as_os_str().as_bytes()).unwrap();
            let fd = unsafe { nix::libc::open(c.as_ptr(), nix::libc::O_WRONLY | nix::libc::O_NONBLOCK | nix::libc::O_CLOEXEC) };
            if fd < 0 {
                if matches!(Errno::last(), Errno::ENXIO) {
                    let _ = fs::remove_file(e.path());
                }
                continue;
            }
            let r = unsafe { nix::libc::write(fd, letters.as_ptr().cast(), letters.len()) };
            if r < 0 && Errno::last() == Errno::EPIPE {
                let _ = fs::remove_file(e.path());
            }
            unsafe { nix::libc::close(fd) };
        }
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
        let nfd = read_number(&self.dir, "notification-fd");
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
                self.warnings.push(format!("unable to spawn ./run (waiting 60 seconds): {e}"));
                self.deadline = Some(host.now() + SPAWN_RETRY);
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
        let max = read_number(&self.dir, "max-death-tally").map(|n| (n as usize).min(4096)).unwrap_or(MAX_DEATH_TALLY_DEFAULT);
        if max == 0 {
            return;
        }
        let path = self.dir.join("supervise/death_tally");
        let mut data = fs::read(&path).unwrap_or_default();
        if !data.len().is_multiple_of(14) {
            data.clear();
        }
        let (code, sig) = if nix::libc::WIFSIGNALED(wstat) {
            let s = nix::libc::WTERMSIG(wstat);
            (128 + s, s)
        } else {
            (nix::libc::WEXITSTATUS(wstat), 0)
        };
        let now = SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).unwrap_or_default();
        let mut rec = Vec::with_capacity(14);
        rec.extend_from_slice(&((1u64 << 62) + 37 + now.as_secs()).to_be_bytes());
        rec.extend_from_slice(&now.subsec_nanos().to_be_bytes());
        rec.push(code as u8);
        rec.push(sig as u8);
        data.extend_from_slice(&rec);
        let keep = max * 14;
        if data.len() > keep {
            data.drain(..data.len() - keep);
        }
        let tmp = self.dir.join("supervise/death_tally.new");
        if fs::write(&tmp, &data).is_ok() {
            let _ = fs::rename(&tmp, &path);
        }
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
                let (code, sig) = if nix::libc::WIFSIGNALED(wstat) { (256, nix::libc::WTERMSIG(wstat)) } else { (nix::libc::WEXITSTATUS(wstat), 0) };
                let spec = SpawnSpec {
                    dir: self.dir.clone(),
                    name: self.name.clone(),
                    argv: vec!["./finish".into(), code.to_string(), sig.to_string(), self.name.clone()],
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
                        let ms = read_number(&self.dir, "timeout-finish").unwrap_or(FINISH_TIMEOUT_DEFAULT_MS);
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
                    let kill_pg = fs::symlink_metadata(self.dir.join("flag-timeout-killpg")).is_ok();
                    let target = if kill_pg { -self.pid } else { self.pid };
                    host.kill(target, Signal::SIGKILL);
                    host.kill(target, Signal::SIGCONT);
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
        let sig = read_signal(&self.dir, "down-signal", Signal::SIGTERM);
        host.kill(self.pid, sig);
        host.kill(self.pid, Signal::SIGCONT);
        self.paused = false;
        if let Some(ms) = read_number(&self.dir, "timeout-kill").filter(|&m| m > 0) {
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

    /// Process control bytes in order.
    pub fn on_control(&mut self, bytes: &[u8], host: &mut dyn Host) {
        for &b in bytes {
            if self.exited {
                return;
            }
            let up = self.is_up();
            let sig_of = |c: u8| match c {
                b'a' => Some(Signal::SIGALRM),
                b'b' => Some(Signal::SIGABRT),
                b'q' => Some(Signal::SIGQUIT),
                b'h' => Some(Signal::SIGHUP),
                b'k' => Some(Signal::SIGKILL),
                b't' => Some(Signal::SIGTERM),
                b'i' => Some(Signal::SIGINT),
                b'1' => Some(Signal::SIGUSR1),
                b'2' => Some(Signal::SIGUSR2),
                b'y' => Some(Signal::SIGWINCH),
                _ => None,
            };
            match b {
                c if sig_of(c).is_some()
                    && up => {
                        host.kill(self.pid, sig_of(c).unwrap());
                    }
                b'p' | b'c' | b'P' | b'C' | b'K'
                    if up => {
                        let (target, sig) = match b {
                            b'p' => (self.pid, Signal::SIGSTOP),
                            b'c' => (self.pid, Signal::SIGCONT),
                            b'P' => (-self.pid, Signal::SIGSTOP),
                            b'C' => (-self.pid, Signal::SIGCONT),
                            _ => (-self.pid, Signal::SIGKILL),
                        };
                        host.kill(target, sig);
                        if b != b'K' {
                            self.paused = matches!(b, b'p' | b'P');
                            self.announce();
                        }
                    }
                b'r'
                    if up => {
                        let sig = read_signal(&self.dir, "down-signal", Signal::SIGTERM);
                        host.kill(self.pid, sig);
                    }
                b'l'
                    if up => {
                        let sig = read_signal(&self.dir, "reload-signal", Signal::SIGHUP);
                        host.kill(self.pid, sig);
                    }
                b'o' => self.want_and_start(false, host),
                b'u' => self.want_and_start(true, host),
                b'U' => {
                    let _ = fs::remove_file(self.dir.join("down"));
                    self.want_and_start(true, host);
                }
                b'd' => self.take_down(up, host),
                b'D' => {
                    self.create_down();
                    self.take_down(up, host);
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

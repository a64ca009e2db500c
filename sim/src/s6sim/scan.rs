//! The simulated `s6-svscan`: `.s6-svscan/` control surface, scanning rules (dot-names
//! skipped, devino identity, `log/` pairing with a pipe the scanner keeps open), what a stat
//! failure or a full table does to a scan, the 2.15 initial cleanup, supervisor respawn,
//! prune and terminate.

use super::fsutil::ofd_trylock;
use super::supervise::{Host, Supervisor};
use super::version::S6Version;
use nix::errno::Errno;
use nix::sys::signal::Signal;
use nix::sys::stat::Mode;
use std::fs;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// 2.15's default longest service name (`-L`); 2.11 has no limit of its own.
pub const NAME_MAX: usize = 251;
const SUPERVISOR_RESPAWN: Duration = Duration::from_secs(1);

/// What s6-svscan is told on its command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Settings {
    pub version: S6Version,
    /// The service limit (`-c` in 2.11, `-C` in 2.15).
    pub max: usize,
    /// The longest service name (2.15's `-L`).
    pub name_max: usize,
    /// Periodic rescan (`-t`), if any.
    pub period: Option<Duration>,
}

impl Settings {
    /// That version's defaults.
    pub fn of(version: S6Version) -> Settings {
        Settings { version, max: version.default_max(), name_max: NAME_MAX, period: None }
    }
}

pub struct Entry {
    pub devino: (u64, u64),
    pub name: String,
    pub active: bool,
    pub logger: bool,
    /// The producer's devino, for a logger.
    parent: Option<(u64, u64)>,
    pub sup: Option<Supervisor>,
    last_spawn: Option<Instant>,
    respawn_at: Option<Instant>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Terminate {
    /// `t`/`i`: non-loggers TERM, loggers HUP.
    Gentle,
    /// `q`: everyone TERM.
    Hard,
    /// `b`: stop now, signal nobody.
    Abort,
}

pub struct Scanner {
    pub scandir: PathBuf,
    pub settings: Settings,
    pub entries: Vec<Entry>,
    /// Log pipes, by producer devino: (read end for the logger, write end for the producer).
    pipes: Vec<((u64, u64), OwnedFd, OwnedFd)>,
    _lock: OwnedFd,
    pub control: OwnedFd,
    _control_w: OwnedFd,
    scan_at: Option<Instant>,
    prune_after_scan: bool,
    pub terminating: Option<Terminate>,
    pub warnings: Vec<String>,
}

/// A directory one pass of the scan found.
struct Seen {
    devino: (u64, u64),
    name: String,
    logger: bool,
    parent: Option<(u64, u64)>,
}

/// Why a pass of the scan ended early.
enum Abort {
    /// Nothing of this pass is committed; the next pass comes after this long.
    Retry(Duration),
}

impl Scanner {
    /// Start-up: `.s6-svscan/` with its lock and control FIFO, then (2.15) the initial
    /// cleanup. Errors are (exit code, message) as s6-svscan reports them.
    pub fn start(scandir: &Path, settings: Settings, now: Instant) -> Result<Scanner, (i32, String)> {
        // Modes 0700/0600, which no umask narrows: unlike s6-svscan, no process-wide umask 0
        // (the simulator shares its process with tests).
        let (lock, r, w) = Self::control_init(scandir)?;
        if settings.version == S6Version::V2_15 {
            initial_cleanup(scandir)?;
        }
        Ok(Scanner {
            scandir: scandir.to_path_buf(),
            settings,
            entries: Vec::new(),
            pipes: Vec::new(),
            _lock: lock,
            control: r,
            _control_w: w,
            scan_at: Some(now),
            prune_after_scan: false,
            terminating: None,
            warnings: Vec::new(),
        })
    }

    fn control_init(scandir: &Path) -> Result<(OwnedFd, OwnedFd, OwnedFd), (i32, String)> {
        let d = scandir.join(".s6-svscan");
        match nix::unistd::mkdir(&d, Mode::from_bits_truncate(0o700)) {
            Ok(()) | Err(Errno::EEXIST) => {}
            Err(e) => return Err((111, format!("unable to mkdir .s6-svscan: {}", e.desc()))),
        }
        if !fs::metadata(&d).is_ok_and(|m| m.is_dir()) {
            return Err((100, ".s6-svscan exists and is not a directory".into()));
        }
        let open = |p: &Path, flags: nix::fcntl::OFlag, mode: u32| {
            nix::fcntl::open(p, flags | nix::fcntl::OFlag::O_CLOEXEC | nix::fcntl::OFlag::O_NONBLOCK, Mode::from_bits_truncate(mode))
                .map(|fd| unsafe { OwnedFd::from_raw_fd(fd) })
        };
        let lock = open(&d.join("lock"), nix::fcntl::OFlag::O_WRONLY | nix::fcntl::OFlag::O_CREAT, 0o600)
            .map_err(|e| (111, format!("unable to open .s6-svscan/lock: {}", e.desc())))?;
        if !ofd_trylock(lock.as_raw_fd()) {
            return Err((100, "another instance of s6-svscan is already running on the same directory".into()));
        }
        let ctl = d.join("control");
        match nix::unistd::mkfifo(&ctl, Mode::from_bits_truncate(0o600)) {
            Ok(()) | Err(Errno::EEXIST) => {}
            Err(e) => return Err((111, format!("unable to mkfifo .s6-svscan/control: {}", e.desc()))),
        }
        let r =
            open(&ctl, nix::fcntl::OFlag::O_RDONLY, 0).map_err(|e| (111, format!("unable to open .s6-svscan/control: {}", e.desc())))?;
        let w =
            open(&ctl, nix::fcntl::OFlag::O_WRONLY, 0).map_err(|e| (111, format!("unable to open .s6-svscan/control: {}", e.desc())))?;
        Ok((lock, r, w))
    }

    pub fn deadline(&self) -> Option<Instant> {
        let mut d = self.scan_at;
        for e in &self.entries {
            for t in [e.respawn_at, e.sup.as_ref().and_then(|s| s.deadline())].into_iter().flatten() {
                d = Some(d.map_or(t, |x| x.min(t)));
            }
        }
        d
    }

    /// Control bytes from `.s6-svscan/control`.
    pub fn on_control(&mut self, bytes: &[u8], host: &mut dyn Host) {
        for &b in bytes {
            match b {
                b'a' => self.scan_at = Some(host.now()),
                b'h' => {
                    self.scan_at = Some(host.now());
                    self.prune_after_scan = true;
                }
                b'n' | b'N' => {
                    if self.scan_at.is_some() {
                        self.prune_after_scan = true;
                    } else {
                        self.prune(b == b'N', host);
                    }
                }
                b'z' => {}
                b't' | b'i' => self.terminate(Terminate::Gentle, host),
                b'q' => self.terminate(Terminate::Hard, host),
                b'b' => self.terminate(Terminate::Abort, host),
                other => self.warnings.push(format!("received unknown control command: {}", other as char)),
            }
        }
    }

    pub fn terminate(&mut self, how: Terminate, host: &mut dyn Host) {
        self.terminating = Some(how);
        self.scan_at = None;
        self.pipes.clear(); // the scanner's pipe ends close: loggers will see EOF
        if how == Terminate::Abort {
            return;
        }
        for e in &mut self.entries {
            e.respawn_at = None;
            if let Some(s) = e.sup.as_mut() {
                let sig = if e.logger && how == Terminate::Gentle { Signal::SIGHUP } else { Signal::SIGTERM };
                s.on_signal(sig, host);
            }
        }
    }

    /// Every supervisor has exited (or, for an abort, immediately).
    pub fn finished(&self) -> bool {
        match self.terminating {
            Some(Terminate::Abort) => true,
            Some(_) => self.entries.iter().all(|e| e.sup.as_ref().is_none_or(|s| s.exited)),
            None => false,
        }
    }

    fn prune(&mut self, loggers_term: bool, host: &mut dyn Host) {
        for e in self.entries.iter_mut().filter(|e| !e.active) {
            if let Some(s) = e.sup.as_mut() {
                let sig = if e.logger && !loggers_term { Signal::SIGHUP } else { Signal::SIGTERM };
                s.on_signal(sig, host);
            }
        }
    }

    fn pipe_for(&mut self, producer: (u64, u64)) -> (i32, i32) {
        if let Some((_, r, w)) = self.pipes.iter().find(|(d, _, _)| *d == producer) {
            return (r.as_raw_fd(), w.as_raw_fd());
        }
        let (r, w) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).expect("pipe");
        let fds = (r.as_raw_fd(), w.as_raw_fd());
        self.pipes.push((producer, r, w));
        fds
    }

    fn spawn_supervisor(&mut self, idx: usize, host: &mut dyn Host) {
        let (name, logger, devino, parent) = {
            let e = &self.entries[idx];
            (e.name.clone(), e.logger, e.devino, e.parent)
        };
        let dir = self.scandir.join(&name);
        let has_log = !logger && fs::metadata(dir.join("log")).is_ok_and(|m| m.is_dir());
        let (stdin, stdout) = if logger {
            let (r, _) = self.pipe_for(parent.unwrap());
            (Some(r), None)
        } else if has_log || self.pipes.iter().any(|(d, _, _)| *d == devino) {
            let (_, w) = self.pipe_for(devino);
            (None, Some(w))
        } else {
            (None, None)
        };
        let now = host.now();
        let e = &mut self.entries[idx];
        e.last_spawn = Some(now);
        e.respawn_at = None;
        match Supervisor::start(&dir, &name, self.settings.version, host, stdin, stdout) {
            Ok(s) => e.sup = Some(s),
            Err(f) => {
                self.warnings.push(format!("s6-supervise {name}: fatal: {}", f.message));
                e.sup = None;
                if e.active {
                    e.respawn_at = Some(now + SUPERVISOR_RESPAWN);
                }
            }
        }
    }

    /// How many table slots are taken. 2.11 keeps a service and its logger in one slot, so
    /// its limit counts service directories; 2.15 gives each logger a slot of its own.
    fn taken(&self) -> usize {
        let counts = |e: &Entry| self.settings.version == S6Version::V2_15 || !e.logger;
        self.entries.iter().filter(|e| counts(e) && (e.sup.as_ref().is_some_and(|s| !s.exited) || e.respawn_at.is_some())).count()
    }

    /// One scan of the directory: read it, admit new services within the limit, commit.
    fn scan(&mut self, host: &mut dyn Host) {
        let now = host.now();
        let period = self.settings.period.map(|p| now + p);
        let (seen, retry) = match self.read_scandir().and_then(|(seen, retry)| Ok((self.admit(seen)?, retry))) {
            Ok(r) => r,
            Err(Abort::Retry(after)) => {
                self.scan_at = Some(now + after);
                return;
            }
        };
        self.commit(seen, host);
        self.scan_at = [retry.map(|r| now + r), period].into_iter().flatten().min();
        if std::mem::take(&mut self.prune_after_scan) {
            self.prune(false, host);
        }
    }

    /// The service directories (and their `log/`) in the scandir. A name that cannot be
    /// stat'ed (a dangling symlink, an entry removed under the scan) makes 2.11 warn, skip it
    /// and scan again in 3 s; it makes 2.15 drop the whole pass and retry in 4 s.
    fn read_scandir(&mut self) -> Result<(Vec<Seen>, Option<Duration>), Abort> {
        let v = self.settings.version;
        let Ok(rd) = fs::read_dir(&self.scandir) else {
            self.warnings.push("unable to opendir .".into());
            return Err(Abort::Retry(Duration::from_secs(if v == S6Version::V2_11 { 3 } else { 5 })));
        };
        let stat_failed = |warnings: &mut Vec<String>, what: &str, err: std::io::Error| {
            warnings.push(format!("unable to stat {what}: {}", Errno::from_raw(err.raw_os_error().unwrap_or(0)).desc()));
            match v {
                S6Version::V2_11 => Ok(Some(Duration::from_secs(3))),
                S6Version::V2_15 => Err(Abort::Retry(Duration::from_secs(4))),
            }
        };
        let mut seen = Vec::new();
        let mut retry = None;
        for e in rd.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if name.starts_with('.') {
                continue;
            }
            if v == S6Version::V2_15 && name.len() > self.settings.name_max {
                self.warnings.push(format!("name too long - not spawning service: {name}"));
                continue;
            }
            let m = match fs::metadata(e.path()) {
                Ok(m) => m,
                Err(err) => {
                    retry = stat_failed(&mut self.warnings, &name, err)?;
                    continue;
                }
            };
            if !m.is_dir() {
                continue;
            }
            let devino = (m.dev(), m.ino());
            let log = match fs::metadata(e.path().join("log")) {
                Ok(lm) => lm.is_dir().then(|| (lm.dev(), lm.ino())),
                Err(err) if err.kind() == std::io::ErrorKind::NotFound => None,
                Err(err) => {
                    retry = stat_failed(&mut self.warnings, &format!("{name}/log"), err)?;
                    continue;
                }
            };
            seen.push(Seen { devino, name: name.clone(), logger: false, parent: None });
            if let Some(ld) = log {
                seen.push(Seen { devino: ld, name: format!("{name}/log"), logger: true, parent: Some(devino) });
            }
        }
        Ok((seen, retry))
    }

    /// Keep the services the table takes. A full table makes 2.11 warn and skip the service
    /// (its logger with it); it makes 2.15 drop the whole pass and retry in 60 s.
    fn admit(&mut self, seen: Vec<Seen>) -> Result<Vec<Seen>, Abort> {
        let mut taken = self.taken();
        let mut kept = Vec::with_capacity(seen.len());
        let mut refused: Option<(u64, u64)> = None;
        for s in seen {
            if self.entries.iter().any(|e| e.devino == s.devino) {
                kept.push(s);
                continue;
            }
            if s.logger && s.parent == refused {
                continue;
            }
            // 2.11 looks for `log/` only when it first meets a service: a logger added to a
            // service it already supervises is never started.
            if s.logger && self.settings.version == S6Version::V2_11 && self.entries.iter().any(|e| Some(e.devino) == s.parent) {
                continue;
            }
            let counts = self.settings.version == S6Version::V2_15 || !s.logger;
            if counts && taken >= self.settings.max {
                self.warnings.push(format!("unable to start supervisor for {}: too many services", s.name));
                match self.settings.version {
                    S6Version::V2_11 => {
                        refused = Some(s.devino);
                        continue;
                    }
                    S6Version::V2_15 => return Err(Abort::Retry(Duration::from_secs(60))),
                }
            }
            taken += usize::from(counts);
            kept.push(s);
        }
        Ok(kept)
    }

    /// The pass succeeded: what it saw is the active set, new services get a supervisor, and
    /// inactive entries without a running supervisor are forgotten.
    fn commit(&mut self, seen: Vec<Seen>, host: &mut dyn Host) {
        for e in &mut self.entries {
            e.active = false;
        }
        for Seen { devino, name, logger, parent } in seen {
            if let Some(i) = self.entries.iter().position(|e| e.devino == devino) {
                let e = &mut self.entries[i];
                e.active = true;
                if e.sup.as_ref().is_none_or(|s| s.exited) && e.respawn_at.is_none() {
                    // Known but without a supervisor (it exited while inactive): start again.
                    e.name = name;
                    self.spawn_supervisor(i, host);
                }
                continue;
            }
            self.entries.push(Entry { devino, name, active: true, logger, parent, sup: None, last_spawn: None, respawn_at: None });
            let i = self.entries.len() - 1;
            self.spawn_supervisor(i, host);
        }
        self.entries.retain(|e| e.active || e.sup.as_ref().is_some_and(|s| !s.exited));
    }

    /// Run timers: the pending scan, supervisor respawns, supervisors' own deadlines, and the
    /// bookkeeping of supervisors that exited.
    pub fn tick(&mut self, host: &mut dyn Host) {
        let now = host.now();
        if self.terminating.is_none() && self.scan_at.is_some_and(|t| t <= now) {
            self.scan_at = None;
            self.scan(host);
        }
        for i in 0..self.entries.len() {
            if let Some(s) = self.entries[i].sup.as_mut() {
                s.on_timeout(host);
                self.warnings.append(&mut s.warnings);
            }
            let e = &self.entries[i];
            if self.terminating.is_none() && e.respawn_at.is_some_and(|t| t <= now) && e.active {
                self.spawn_supervisor(i, host);
            }
        }
        self.reap_exited(host);
    }

    /// Supervisors that exited: inactive entries are dropped; active ones respawn no sooner
    /// than 1 s after their previous spawn.
    pub fn reap_exited(&mut self, host: &mut dyn Host) {
        let now = host.now();
        let terminating = self.terminating.is_some();
        for e in &mut self.entries {
            if e.sup.as_ref().is_some_and(|s| s.exited) && e.respawn_at.is_none() && e.active && !terminating {
                let at = e.last_spawn.map_or(now, |t| t + SUPERVISOR_RESPAWN).max(now);
                e.respawn_at = Some(at);
            }
        }
        if !terminating {
            let before = self.entries.len();
            self.entries.retain(|e| e.active || e.sup.as_ref().is_some_and(|s| !s.exited));
            if self.entries.len() != before {
                // Pipes of producers that are gone entirely are released.
                let live: Vec<(u64, u64)> = self.entries.iter().map(|e| e.devino).collect();
                self.pipes.retain(|(d, _, _)| live.contains(d));
            }
        }
    }

    /// The supervisor waiting for `pid`, if any.
    pub fn owner_of(&mut self, pid: i32) -> Option<&mut Supervisor> {
        self.entries.iter_mut().filter_map(|e| e.sup.as_mut()).find(|s| !s.exited && s.child() == Some(pid))
    }
}

/// 2.15's start-up pass: every non-dot entry that `access(X_OK)` reports missing (a dangling
/// symlink) is unlinked before the first scan.
fn initial_cleanup(scandir: &Path) -> Result<(), (i32, String)> {
    let rd = fs::read_dir(scandir).map_err(|e| (111, format!("unable to opendir .: {e}")))?;
    for e in rd.flatten() {
        if e.file_name().to_string_lossy().starts_with('.') {
            continue;
        }
        if nix::unistd::access(&e.path(), nix::unistd::AccessFlags::X_OK) == Err(Errno::ENOENT) {
            let _ = fs::remove_file(e.path());
        }
    }
    Ok(())
}

//! The bridge a slot's `run` execs (as the gateway's user, after the privilege drop): it
//! prepares what the gateway needs to speak, forks the watcher, and execs the gateway in its
//! own place, so the gateway keeps the pid s6-supervise runs (the sdnotify-wrapper shape).
//!
//! - sd_notify, when the profile's config enables it ([`super::watchdog`]): a datagram socket
//!   in the abstract namespace, named for the profile, this run and a random part, given to the
//!   gateway as `NOTIFY_SOCKET` with `WATCHDOG_USEC`. Every process of the container may find
//!   an abstract name (and all gateways share one uid, so a path would not keep them out
//!   either), so what decides is who sent: the socket takes `SO_PASSCRED`, and only datagrams
//!   the kernel stamps with the gateway's own pid count (systemd's `NotifyAccess=main`);
//!   another profile's gateway cannot forge that.
//! - The watcher is a grandchild (the middle child exits at once and is reaped before the
//!   exec), so the gateway has no child of ours to reap, and it stays in the gateway's process
//!   group (s6's kill of the group takes it too). It holds the notification pipe and the
//!   socket, and writes its verdict into the profile's `state/` as the user; the gateway gets none of them. It follows the gateway with a pidfd
//!   and exits when it does.
//! - The watcher re-execs this program as `hermes-reconcile --bridge-watcher <state>`: a fork
//!   would keep the bridge's command line, which ends in the gateway's own (`… gateway run
//!   --replace`), and hermes-agent's process scans (`find_gateway_pids`, the kill of stray
//!   gateways) take any such command line for a gateway of that profile.

use super::signs::{self, Identity};
use super::watch::{Act, Protocol, Sign, Watch};
use super::{watchdog, Killed, Knobs, Verdict, HEARTBEAT_FILE};
use crate::fs::{Dir, Fs, RealFs};
use crate::volume::state::STATE_FILE;
use nix::sys::signal::{kill, killpg, Signal};
use nix::sys::socket::{
    bind, recvmsg, setsockopt, socket, sockopt, AddressFamily, ControlMessageOwned, MsgFlags, SockFlag, SockType, UnixAddr, UnixCredentials,
};
use nix::sys::stat::{fstat, SFlag};
use nix::unistd::{fork, ForkResult, Pid};
use std::ffi::{CString, OsString};
use std::io::{self, Write};
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// What the bridge is given.
#[derive(Debug, Clone)]
pub struct Options {
    /// The root home; the profile's directory is found from it.
    pub home: PathBuf,
    pub profile: String,
    /// s6's notification pipe (the slot's `notification-fd`), when the run was given one.
    pub notify_fd: Option<RawFd>,
    pub knobs: Knobs,
    /// The gateway's command line.
    pub program: Vec<OsString>,
}

fn say(profile: &str, line: &str) {
    let _ = writeln!(io::stderr().lock(), "hermes-s6 bridge[{profile}]: {line}");
}

/// The descriptor `fd` when it is open and of kind `kind`, taken over.
fn take_fd(fd: Option<RawFd>, kind: SFlag) -> Option<OwnedFd> {
    let fd = fd?;
    let st = fstat(fd).ok()?;
    // SAFETY: the descriptor is open (fstat succeeded) and nothing else in this process owns it:
    // it was inherited from the run script for this program alone.
    (SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT == kind).then(|| unsafe { OwnedFd::from_raw_fd(fd) })
}

/// A pidfd for `pid` (Linux 5.3+): readable once the process has exited.
fn pidfd_open(pid: Pid) -> Option<OwnedFd> {
    // SAFETY: plain system call; on success it returns a new descriptor we own.
    let r = unsafe { nix::libc::syscall(nix::libc::SYS_pidfd_open, pid.as_raw(), 0) };
    (r >= 0).then(|| unsafe { OwnedFd::from_raw_fd(r as RawFd) })
}

/// A socket for the gateway's sd_notify datagrams and its name as `NOTIFY_SOCKET` (`@…`).
fn notify_socket(profile: &str, pid: Pid) -> io::Result<(OwnedFd, String)> {
    let fd = socket(AddressFamily::Unix, SockType::Datagram, SockFlag::SOCK_CLOEXEC | SockFlag::SOCK_NONBLOCK, None)?;
    let nonce = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0) ^ ((pid.as_raw() as u128) << 64);
    let name = format!("hermes-s6/notify/{profile}/{}/{nonce:x}", pid.as_raw());
    bind(fd.as_raw_fd(), &UnixAddr::new_abstract(name.as_bytes())?)?;
    setsockopt(&fd, sockopt::PassCred, &true)?;
    Ok((fd, format!("@{name}")))
}

/// Prepare, fork the watcher, exec the gateway. Returns only when the gateway could not be
/// exec'd.
pub fn run(o: Options) -> io::Error {
    let Some(program) = o.program.first().cloned() else { return io::Error::new(io::ErrorKind::InvalidInput, "no gateway command given") };
    let pid = nix::unistd::getpid();
    let t0 = Instant::now();
    let id = Identity {
        pid: pid.as_raw() as u64,
        start_time: crate::volume::marker::process_start_time(&RealFs, std::path::Path::new("/proc"), pid.as_raw() as u64),
    };
    let dir_path = crate::volume::profile_path(&o.home, &o.profile);
    let dir = RealFs.open_root(&dir_path).ok();
    let notify = take_fd(o.notify_fd, SFlag::S_IFIFO);
    let interval = dir.as_ref().and_then(|d| watchdog::interval(&RealFs, d));
    let mut socket = None;
    for var in ["NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID"] {
        std::env::remove_var(var);
    }
    if let Some(every) = interval {
        match notify_socket(&o.profile, pid) {
            Ok((fd, name)) => {
                std::env::set_var("NOTIFY_SOCKET", name);
                std::env::set_var("WATCHDOG_USEC", every.as_micros().to_string());
                std::env::set_var("WATCHDOG_PID", pid.as_raw().to_string());
                socket = Some(fd);
            }
            Err(e) => say(&o.profile, &format!("cannot make the sd_notify socket ({e}): readiness from the state file instead")),
        }
    }
    let protocol = match (interval, &socket) {
        (Some(interval), Some(_)) => Protocol::Notify { interval },
        _ => Protocol::StateFile,
    };
    // A state file that already names this process was left by an earlier run that had the
    // same pid and start time (a container restart can repeat both): it must change first.
    let stale = dir.as_ref().and_then(|d| signs::read(&RealFs, d, &[STATE_FILE])).filter(|b| signs::naming(b, id).is_some());
    let pidfd = pidfd_open(pid);
    let watcher = Watcher {
        profile: o.profile.clone(),
        home: o.home.clone(),
        id,
        dir,
        notify,
        socket,
        pidfd,
        watch: Watch::new(o.knobs, protocol),
        knobs: o.knobs,
        t0,
        stale: stale.as_deref().map(fingerprint),
        heartbeat: None,
    };
    // SAFETY: this process is single-threaded here (nothing has spawned a thread), so the
    // children may run anything.
    let watched = match unsafe { fork() } {
        Ok(ForkResult::Child) => {
            match unsafe { fork() } {
                Ok(ForkResult::Child) => {
                    let e = watcher.reexec();
                    say(&o.profile, &format!("cannot re-exec the watcher ({e}): it watches under the bridge's command line"));
                    watcher.run();
                }
                // SAFETY: leave at once, running no destructors or atexit handlers twice.
                Ok(ForkResult::Parent { .. }) => unsafe { nix::libc::_exit(0) },
                Err(_) => unsafe { nix::libc::_exit(NO_WATCHER) },
            }
        }
        Ok(ForkResult::Parent { child }) => matches!(nix::sys::wait::waitpid(child, None), Ok(nix::sys::wait::WaitStatus::Exited(_, 0))),
        Err(_) => false,
    };
    if !watched {
        // No task left for a watcher (a container at its task limit): rather than a gateway
        // that is never ready (every `start` waiting out its timeout, the boot pace stalled),
        // it is ready as soon as it runs, as a slot without readiness would be, and unwatched.
        say(&o.profile, "cannot fork the watcher (a task limit?): the gateway is marked ready now and not watched for hangs this run");
        if let Some(fd) = &watcher.notify {
            let _ = nix::unistd::write(fd, b"\n");
        }
    }
    drop(watcher);
    let args: Vec<CString> = o.program.iter().filter_map(|a| CString::new(a.as_bytes()).ok()).collect();
    let Ok(file) = CString::new(program.as_bytes()) else {
        return io::Error::new(io::ErrorKind::InvalidInput, "a NUL in the gateway's program");
    };
    match nix::unistd::execvp(&file, &args) {
        Err(e) => io::Error::from(e),
        Ok(never) => match never {},
    }
}

/// The middle child's exit code when it could not fork the watcher.
const NO_WATCHER: i32 = 3;

/// Which bytes a file held, to tell whether it changed (FNV-1a).
fn fingerprint(b: &[u8]) -> u64 {
    b.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, x| (h ^ u64::from(*x)).wrapping_mul(0x100_0000_01b3))
}

/// What the re-exec'd watcher is handed on its command line: numbers and the profile's name
/// (no word of it is `gateway`, so no process scan mistakes it for one).
#[derive(serde::Serialize, serde::Deserialize)]
struct Handed {
    profile: String,
    home: PathBuf,
    pid: u64,
    start_time: Option<u64>,
    /// The sd_notify watchdog interval, when the gateway speaks it.
    watchdog_ms: Option<u64>,
    start_timeout_ms: u64,
    heartbeat_timeout_ms: u64,
    /// How long ago the bridge started.
    elapsed_ms: u64,
    stale: Option<u64>,
    notify_fd: Option<RawFd>,
    socket_fd: Option<RawFd>,
    pidfd: Option<RawFd>,
}

/// The watcher's world: what it reads, what it holds, what it decided so far.
struct Watcher {
    profile: String,
    home: PathBuf,
    knobs: Knobs,
    id: Identity,
    dir: Option<Dir>,
    notify: Option<OwnedFd>,
    socket: Option<OwnedFd>,
    pidfd: Option<OwnedFd>,
    watch: Watch,
    t0: Instant,
    /// The fingerprint of a state file that named the gateway before it ran.
    stale: Option<u64>,
    /// The last heartbeat seen that named the gateway.
    heartbeat: Option<u64>,
}

/// The watcher, re-exec'd: `hermes-reconcile --bridge-watcher <state>`. Never returns.
pub fn watcher_main(handed: &str) -> ! {
    let Ok(h) = serde_json::from_str::<Handed>(handed) else {
        let _ = writeln!(io::stderr().lock(), "hermes-s6 bridge: --bridge-watcher: unreadable state");
        std::process::exit(111)
    };
    // SAFETY: the descriptors were handed over by the bridge for this process alone.
    let own = |fd: Option<RawFd>| fd.filter(|fd| fstat(*fd).is_ok()).map(|fd| unsafe { OwnedFd::from_raw_fd(fd) });
    let knobs = Knobs {
        start_timeout: Duration::from_millis(h.start_timeout_ms),
        heartbeat_timeout: Duration::from_millis(h.heartbeat_timeout_ms),
    };
    let protocol = match h.watchdog_ms {
        Some(ms) => Protocol::Notify { interval: Duration::from_millis(ms) },
        None => Protocol::StateFile,
    };
    let now = Instant::now();
    let w = Watcher {
        dir: RealFs.open_root(&crate::volume::profile_path(&h.home, &h.profile)).ok(),
        profile: h.profile,
        home: h.home,
        knobs,
        id: Identity { pid: h.pid, start_time: h.start_time },
        notify: own(h.notify_fd),
        socket: own(h.socket_fd),
        pidfd: own(h.pidfd),
        watch: Watch::new(knobs, protocol),
        t0: now.checked_sub(Duration::from_millis(h.elapsed_ms)).unwrap_or(now),
        stale: h.stale,
        heartbeat: None,
    };
    w.run()
}

impl Watcher {
    /// Exec this program again as the watcher, its descriptors kept open across; returns only
    /// when that failed.
    fn reexec(&self) -> io::Error {
        use nix::fcntl::{fcntl, FcntlArg, FdFlag};
        let keep = |fd: &Option<OwnedFd>| {
            fd.as_ref().map(|f| {
                let _ = fcntl(f.as_raw_fd(), FcntlArg::F_SETFD(FdFlag::empty()));
                f.as_raw_fd()
            })
        };
        let h = Handed {
            profile: self.profile.clone(),
            home: self.home.clone(),
            pid: self.id.pid,
            start_time: self.id.start_time,
            watchdog_ms: match self.watch.protocol() {
                Protocol::Notify { interval } => Some(interval.as_millis() as u64),
                Protocol::StateFile => None,
            },
            start_timeout_ms: self.knobs.start_timeout.as_millis() as u64,
            heartbeat_timeout_ms: self.knobs.heartbeat_timeout.as_millis() as u64,
            elapsed_ms: self.t0.elapsed().as_millis() as u64,
            stale: self.stale,
            notify_fd: keep(&self.notify),
            socket_fd: keep(&self.socket),
            pidfd: keep(&self.pidfd),
        };
        let Ok(state) = CString::new(serde_json::to_string(&h).unwrap_or_default()) else {
            return io::Error::from(io::ErrorKind::InvalidInput);
        };
        let exe = c"/proc/self/exe";
        let args = [c"hermes-reconcile".to_owned(), c"--bridge-watcher".to_owned(), state];
        match nix::unistd::execv(exe, &args) {
            Err(e) => io::Error::from(e),
            Ok(never) => match never {},
        }
    }

    fn run(mut self) -> ! {
        // The logger's pipe stays (stderr) for this watcher's lines; stdin is not ours.
        let _ = nix::unistd::close(0);
        loop {
            let now = self.t0.elapsed();
            let mut acts = Vec::new();
            for sign in self.look() {
                acts.extend(self.watch.sign(sign, now));
            }
            acts.extend(self.watch.tick(now));
            for act in acts {
                self.act(act);
            }
            let sleep = self.watch.sleep(self.t0.elapsed());
            match self.wait(sleep) {
                Woke::Exited => std::process::exit(0),
                Woke::Datagrams => self.read_datagrams(),
                Woke::Timeout => {}
            }
        }
    }

    /// What the gateway's files say now.
    fn look(&mut self) -> Vec<Sign> {
        let Some(dir) = &self.dir else { return Vec::new() };
        let mut signs = Vec::new();
        if self.watch.wants_state() {
            let bytes = signs::read(&RealFs, dir, &[STATE_FILE]);
            if bytes.is_some() && bytes.as_deref().map(fingerprint) != self.stale {
                self.stale = None;
                match bytes.and_then(|b| signs::state_of(&b, self.id)).as_deref() {
                    Some("running") => signs.push(Sign::StateRunning),
                    Some("draining") => signs.push(Sign::StateDraining),
                    _ => {}
                }
            }
        }
        if self.watch.wants_heartbeat() {
            let beat = signs::read(&RealFs, dir, &HEARTBEAT_FILE).filter(|b| signs::naming(b, self.id).is_some()).map(|b| fingerprint(&b));
            if beat.is_some() && beat != self.heartbeat {
                self.heartbeat = beat;
                signs.push(Sign::Heartbeat);
            }
        }
        signs
    }

    fn act(&mut self, act: Act) {
        match act {
            Act::Ready(how) => {
                if let Some(fd) = self.notify.take() {
                    let _ = nix::unistd::write(&fd, b"\n");
                }
                say(&self.profile, &format!("ready after {:.1} s: {how}", self.t0.elapsed().as_secs_f64()));
            }
            Act::Kill(killed, why) => {
                // A drain stops the heartbeat: a gateway draining is alive.
                if killed == Killed::Hung && self.watch.protocol() == Protocol::StateFile && self.draining() {
                    self.watch.sign(Sign::StateDraining, self.t0.elapsed());
                    return;
                }
                self.kill(killed, &why);
            }
        }
    }

    fn draining(&self) -> bool {
        let Some(dir) = &self.dir else { return false };
        signs::read(&RealFs, dir, &[STATE_FILE]).and_then(|b| signs::state_of(&b, self.id)).is_some_and(|s| s == "draining")
    }

    /// Write `v` to the profile's `state/` (as this process: the user), not following a link
    /// there; best effort (a verdict that cannot be written makes the death a plain crash).
    fn leave(&self, v: &Verdict) {
        use std::io::Write;
        use std::os::unix::fs::OpenOptionsExt;
        let state = crate::volume::profile_path(&self.home, &self.profile).join(super::VERDICT_DIR);
        let _ = std::fs::create_dir(&state);
        let opened = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o644)
            .custom_flags(nix::libc::O_NOFOLLOW)
            .open(state.join(super::VERDICT_FILE));
        if let Ok(mut f) = opened {
            let _ = writeln!(f, "{}", serde_json::to_string(v).unwrap_or_default());
        }
    }

    /// Leave the verdict for the slot's finish, then SIGKILL the gateway (a stalled event loop
    /// cannot act on SIGTERM) and its process group, this watcher included.
    fn kill(&mut self, killed: Killed, why: &str) -> ! {
        let pid = Pid::from_raw(self.id.pid as i32);
        let at = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs_f64()).unwrap_or(0.0);
        let v = Verdict { killed, pid: self.id.pid, at, why: why.to_string() };
        self.leave(&v);
        say(&self.profile, &format!("killing the gateway (pid {pid}) as {}: {why}", killed.as_str()));
        match &self.pidfd {
            // SAFETY: plain system call on a descriptor we own: signals exactly that process.
            Some(fd) => unsafe {
                nix::libc::syscall(nix::libc::SYS_pidfd_send_signal, fd.as_raw_fd(), nix::libc::SIGKILL, std::ptr::null::<u8>(), 0);
            },
            None => {
                let _ = kill(pid, Signal::SIGKILL);
            }
        }
        // s6 made the gateway a session (and group) leader; the group cannot be anyone else's
        // while this watcher is in it.
        if nix::unistd::getpgrp() == pid && pid.as_raw() > 1 {
            let _ = killpg(pid, Signal::SIGKILL);
        }
        std::process::exit(0)
    }

    fn wait(&self, sleep: Option<Duration>) -> Woke {
        use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
        // Without a pidfd the gateway's end is noticed by looking every second.
        let sleep = if self.pidfd.is_none() { Some(sleep.unwrap_or(Duration::from_secs(1)).min(Duration::from_secs(1))) } else { sleep };
        let timeout = match sleep {
            Some(d) => PollTimeout::try_from(d.as_millis().min(i32::MAX as u128) as i32).unwrap_or(PollTimeout::MAX),
            None => PollTimeout::NONE,
        };
        let mut fds: Vec<PollFd> = Vec::new();
        if let Some(p) = &self.pidfd {
            fds.push(PollFd::new(p.as_fd(), PollFlags::POLLIN));
        }
        if let Some(s) = &self.socket {
            fds.push(PollFd::new(s.as_fd(), PollFlags::POLLIN));
        }
        match poll(&mut fds, timeout) {
            Ok(0) | Err(_) => {}
            Ok(_) => {
                let ready = |f: &PollFd| f.revents().is_some_and(|r| !r.is_empty());
                if self.pidfd.is_some() && ready(&fds[0]) {
                    return Woke::Exited;
                }
                if fds.last().is_some_and(ready) && self.socket.is_some() {
                    return Woke::Datagrams;
                }
            }
        }
        if self.pidfd.is_none() && kill(Pid::from_raw(self.id.pid as i32), None).is_err() {
            return Woke::Exited;
        }
        Woke::Timeout
    }

    /// Every datagram waiting; only those the kernel stamped with the gateway's pid count.
    fn read_datagrams(&mut self) {
        let Some(sock) = self.socket.as_ref().map(|s| s.as_raw_fd()) else { return };
        let mut buf = [0u8; 4096];
        // Bounded: a flood cannot keep the watcher from its deadlines.
        for _ in 0..64 {
            let mut iov = [io::IoSliceMut::new(&mut buf)];
            let mut space = nix::cmsg_space!(UnixCredentials);
            let (n, sender) = match recvmsg::<()>(sock, &mut iov, Some(&mut space), MsgFlags::MSG_DONTWAIT | MsgFlags::MSG_CMSG_CLOEXEC) {
                Ok(m) => {
                    let sender = m.cmsgs().ok().and_then(|mut c| {
                        c.find_map(|c| match c {
                            ControlMessageOwned::ScmCredentials(cr) => Some(cr.pid()),
                            _ => None,
                        })
                    });
                    (m.bytes, sender)
                }
                Err(_) => return,
            };
            if sender != Some(self.id.pid as i32) {
                continue;
            }
            let now = self.t0.elapsed();
            let mut acts = Vec::new();
            for line in buf[..n].split(|b| *b == b'\n') {
                let sign = match line {
                    b"READY=1" => Sign::NotifyReady,
                    b"WATCHDOG=1" => Sign::WatchdogPing,
                    b"WATCHDOG=trigger" => Sign::WatchdogTrigger,
                    b"STOPPING=1" => Sign::Stopping,
                    _ => continue,
                };
                acts.extend(self.watch.sign(sign, now));
            }
            for act in acts {
                self.act(act);
            }
        }
    }
}

enum Woke {
    Exited,
    Datagrams,
    Timeout,
}

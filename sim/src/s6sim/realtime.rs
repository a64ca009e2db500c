//! The real-time daemon: a drop-in for `s6-svscan` (2.11's or 2.15's, see [`super::options`])
//! that runs the scanner and every supervisor in one process, executes the real
//! `run`/`finish`/`log/run`, and speaks the on-disk protocol, so the real s6 client tools work
//! against it unchanged.

use super::scan::{Scanner, Settings, Terminate};
use super::supervise::{Host, SpawnSpec};
use nix::sys::signal::{self, SigHandler, Signal};
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicI32, Ordering};
use std::time::{Instant, SystemTime};

pub struct RealHost;

impl Host for RealHost {
    fn now(&self) -> Instant {
        Instant::now()
    }
    fn wall(&self) -> SystemTime {
        SystemTime::now()
    }
    fn spawn(&mut self, sv: &SpawnSpec) -> io::Result<i32> {
        // Executed as `./run` from inside the service directory, like s6-supervise: an
        // interpreted script sees `./run` (or `./finish`) as its $0.
        let mut cmd = Command::new(&sv.argv[0]);
        cmd.args(&sv.argv[1..]).current_dir(&sv.dir);
        let dup = |fd: i32| -> io::Result<Stdio> {
            let d = nix::unistd::dup(fd).map_err(io::Error::from)?;
            Ok(Stdio::from(unsafe { OwnedFd::from_raw_fd(d) }))
        };
        if let Some(fd) = sv.stdin {
            cmd.stdin(dup(fd)?);
        }
        if let Some(fd) = sv.stdout {
            cmd.stdout(dup(fd)?);
        }
        let notify = sv.notify;
        unsafe {
            cmd.pre_exec(move || {
                nix::unistd::setsid().map_err(io::Error::from)?;
                if let Some((n, w)) = notify {
                    if w == n {
                        nix::libc::fcntl(n, nix::libc::F_SETFD, 0);
                    } else if nix::libc::dup2(w, n) < 0 {
                        return Err(io::Error::last_os_error());
                    }
                }
                Ok(())
            });
        }
        let child = cmd.spawn()?;
        Ok(child.id() as i32)
    }
    fn kill(&mut self, pid: i32, sig: Signal) {
        if pid != 0 {
            let _ = signal::kill(nix::unistd::Pid::from_raw(pid), sig);
        }
    }
}

static SELF_PIPE: AtomicI32 = AtomicI32::new(-1);

extern "C" fn on_signal(sig: nix::libc::c_int) {
    let fd = SELF_PIPE.load(Ordering::Relaxed);
    if fd >= 0 {
        let b = sig as u8;
        unsafe { nix::libc::write(fd, (&b as *const u8).cast(), 1) };
    }
}

fn drain(fd: BorrowedFd<'_>) -> (Vec<u8>, bool) {
    let mut out = Vec::new();
    let mut buf = [0u8; 256];
    loop {
        match nix::unistd::read(fd.as_raw_fd(), &mut buf) {
            Ok(0) => return (out, true),
            Ok(n) => out.extend_from_slice(&buf[..n]),
            Err(_) => return (out, false),
        }
    }
}

/// Run until terminated; returns the process exit code (or execs `.s6-svscan/finish`).
pub fn run(scandir: &Path, settings: Settings) -> i32 {
    if let Err(e) = std::env::set_current_dir(scandir) {
        eprintln!("s6-svscan: fatal: unable to chdir to {}: {e}", scandir.display());
        return 111;
    }
    let scandir = std::env::current_dir().unwrap_or_else(|_| scandir.to_path_buf());
    let mut host = RealHost;
    let mut sc = match Scanner::start(&scandir, settings, host.now()) {
        Ok(s) => s,
        Err((code, msg)) => {
            eprintln!("s6-svscan: fatal: {msg}");
            return code;
        }
    };
    let (pr, pw) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC | nix::fcntl::OFlag::O_NONBLOCK).expect("self-pipe");
    SELF_PIPE.store(pw.as_raw_fd(), Ordering::Relaxed);
    std::mem::forget(pw);
    for s in [
        Signal::SIGCHLD,
        Signal::SIGTERM,
        Signal::SIGHUP,
        Signal::SIGINT,
        Signal::SIGQUIT,
        Signal::SIGALRM,
        Signal::SIGUSR1,
        Signal::SIGUSR2,
        Signal::SIGWINCH,
    ] {
        unsafe {
            let _ = signal::signal(s, SigHandler::Handler(on_signal));
        }
    }
    loop {
        sc.tick(&mut host);
        for w in sc.warnings.drain(..) {
            eprintln!("s6-svscan: warning: {w}");
        }
        if sc.finished() {
            break;
        }
        let now = Instant::now();
        let timeout = sc.deadline().map(|d| d.saturating_duration_since(now));
        let ms: i32 = timeout.map_or(-1, |d| d.as_millis().min(60_000) as i32 + 1);
        // Poll: self-pipe, scanner control, each supervisor's control and readiness pipe.
        let mut fds: Vec<(u8, usize, BorrowedFd<'_>)> = vec![(0, 0, pr.as_fd()), (1, 0, sc.control.as_fd())];
        for (i, e) in sc.entries.iter().enumerate() {
            if let Some(s) = e.sup.as_ref().filter(|s| !s.exited) {
                fds.push((2, i, s.control.as_fd()));
                if let Some(n) = &s.notify_r {
                    fds.push((3, i, n.as_fd()));
                }
            }
        }
        let mut pfds: Vec<nix::poll::PollFd> =
            fds.iter().map(|(_, _, fd)| nix::poll::PollFd::new(*fd, nix::poll::PollFlags::POLLIN)).collect();
        let timeout =
            if ms < 0 { nix::poll::PollTimeout::NONE } else { nix::poll::PollTimeout::try_from(ms).unwrap_or(nix::poll::PollTimeout::MAX) };
        let _ = nix::poll::poll(&mut pfds, timeout);
        let ready: Vec<(u8, usize, bool)> = pfds
            .iter()
            .zip(fds.iter())
            .filter_map(|(p, (kind, i, _))| {
                let ev = p.revents().unwrap_or(nix::poll::PollFlags::empty());
                (!ev.is_empty()).then_some((*kind, *i, ev.contains(nix::poll::PollFlags::POLLHUP)))
            })
            .collect();
        drop(pfds);
        drop(fds);
        for (kind, i, _) in ready {
            match kind {
                0 => {
                    let (sigs, _) = drain(pr.as_fd());
                    for s in sigs {
                        handle_signal(&mut sc, &mut host, s as i32);
                    }
                }
                1 => {
                    let (bytes, _) = drain(sc.control.as_fd());
                    sc.on_control(&bytes, &mut host);
                }
                2 => {
                    if let Some(s) = sc.entries.get_mut(i).and_then(|e| e.sup.as_mut()) {
                        let (bytes, _) = drain(s.control.as_fd());
                        s.on_control(&bytes, &mut host);
                    }
                }
                _ => {
                    if let Some(s) = sc.entries.get_mut(i).and_then(|e| e.sup.as_mut()) {
                        if let Some(n) = s.notify_r.as_ref() {
                            let (data, eof) = drain(n.as_fd());
                            s.on_notify(&data, eof, &mut host);
                        }
                    }
                }
            }
        }
        sc.reap_exited(&mut host);
    }
    finish(&scandir)
}

fn handle_signal(sc: &mut Scanner, host: &mut RealHost, sig: i32) {
    let Ok(sig) = Signal::try_from(sig) else { return };
    if sig == Signal::SIGCHLD {
        loop {
            match nix::sys::wait::waitpid(None, Some(nix::sys::wait::WaitPidFlag::WNOHANG)) {
                Ok(nix::sys::wait::WaitStatus::StillAlive) | Err(_) => break,
                Ok(ws) => {
                    let Some(pid) = ws.pid() else { break };
                    let raw = match ws {
                        nix::sys::wait::WaitStatus::Exited(_, c) => (c & 0xff) << 8,
                        nix::sys::wait::WaitStatus::Signaled(_, s, core) => s as i32 | if core { 0x80 } else { 0 },
                        _ => continue,
                    };
                    if let Some(s) = sc.owner_of(pid.as_raw()) {
                        s.on_child_exit(pid.as_raw(), raw, host);
                    }
                }
            }
        }
        return;
    }
    // A `.s6-svscan/SIG<NAME>` script replaces the builtin.
    let script = sc.scandir.join(".s6-svscan").join(sig.as_str());
    if std::fs::metadata(&script).is_ok_and(|m| std::os::unix::fs::PermissionsExt::mode(&m.permissions()) & 0o111 != 0) {
        let _ = Command::new(&script).current_dir(&sc.scandir).spawn();
        return;
    }
    match sig {
        Signal::SIGTERM | Signal::SIGINT => sc.terminate(Terminate::Gentle, host),
        Signal::SIGQUIT => sc.terminate(Terminate::Hard, host),
        Signal::SIGHUP => sc.on_control(b"h", host),
        Signal::SIGALRM => sc.on_control(b"a", host),
        _ => {}
    }
}

/// Exec `.s6-svscan/finish` in this process, as s6-svscan does; exit 0 without one.
fn finish(scandir: &Path) -> i32 {
    let f = scandir.join(".s6-svscan/finish");
    if f.exists() {
        let err = Command::new(&f).current_dir(scandir).exec();
        eprintln!("s6-svscan: warning: unable to exec finish: {err}");
        return 111;
    }
    0
}

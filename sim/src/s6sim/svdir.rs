//! The files of a service directory as s6-supervise handles them: the skeleton it creates or
//! reuses (`event/`, `supervise/`, the lock, the control FIFO), the numbers and signal names
//! it reads from configuration files, the `event/` fifodir it notifies, and `death_tally`.

use super::fsutil::ofd_trylock;
use super::wire;
use nix::errno::Errno;
use nix::sys::signal::Signal;
use nix::sys::stat::Mode;
use std::ffi::CString;
use std::fs;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::SystemTime;

pub const MAX_DEATH_TALLY_DEFAULT: usize = 100;

/// Why a supervisor could not start (what real s6-supervise prints, and its exit code).
#[derive(Debug, Clone)]
pub struct Fatal {
    pub code: i32,
    pub message: String,
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

/// `control_init`: `event/`, `supervise/`, the lock and the control FIFO, returning (lock,
/// control read end, control write end). s6-supervise runs under umask 0 so its modes are
/// exact; the simulator shares a process (and its umask) with tests, so it sets the one mode a
/// umask could change (the lock's 0644) explicitly instead.
pub fn control_init(dir: &Path) -> Result<(OwnedFd, OwnedFd, OwnedFd), Fatal> {
    control_init_in(dir)
}

fn control_init_in(dir: &Path) -> Result<(OwnedFd, OwnedFd, OwnedFd), Fatal> {
    if trymkdir(dir, "event")? {
        let p = dir.join("event");
        let _ = nix::unistd::chown(&p, None, Some(nix::unistd::getegid()));
        let _ = fs::set_permissions(&p, fs::Permissions::from_mode(0o3730));
    }
    trymkdir(dir, "supervise")?;
    let lockp = dir.join("supervise/lock");
    use nix::fcntl::OFlag;
    let base = OFlag::O_WRONLY | OFlag::O_NONBLOCK | OFlag::O_CLOEXEC;
    // Created here: exactly 0644 whatever the umask; an existing lock keeps its mode, as in s6.
    let fd = match nix::fcntl::open(&lockp, base | OFlag::O_CREAT | OFlag::O_EXCL, Mode::from_bits_truncate(0o644)) {
        Ok(fd) => {
            let _ = nix::sys::stat::fchmod(fd, Mode::from_bits_truncate(0o644));
            Ok(fd)
        }
        Err(Errno::EEXIST) => nix::fcntl::open(&lockp, base, Mode::empty()),
        Err(e) => Err(e),
    }
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
    let r =
        open(nix::fcntl::OFlag::O_RDONLY).map_err(|e| fatal(111, format!("unable to open supervise/control for reading: {}", e.desc())))?;
    let w =
        open(nix::fcntl::OFlag::O_WRONLY).map_err(|e| fatal(111, format!("unable to open supervise/control for writing: {}", e.desc())))?;
    Ok((lock, r, w))
}

/// A numeric file (`notification-fd`, `timeout-kill`, …) as s6 reads it: at most 10 bytes,
/// cut at the first newline; anything unparsable counts as absent.
pub fn read_number(dir: &Path, file: &str) -> Option<u64> {
    let s = fs::read(dir.join(file)).ok()?;
    let s = &s[..s.len().min(10)];
    let line = s.split(|&b| b == b'\n').next()?;
    std::str::from_utf8(line).ok()?.parse().ok()
}

/// A signal file (`down-signal`, `reload-signal`): a name with or without `SIG`, or a
/// number; anything else gives `default`.
pub fn read_signal(dir: &Path, file: &str, default: Signal) -> Signal {
    let Ok(s) = fs::read_to_string(dir.join(file)) else { return default };
    let s = s.lines().next().unwrap_or("").trim();
    let s = s.strip_prefix("SIG").unwrap_or(s);
    if let Ok(n) = s.parse::<i32>() {
        return Signal::try_from(n).unwrap_or(default);
    }
    format!("SIG{s}").parse::<Signal>().unwrap_or(default)
}

/// Stale listener FIFOs in `event/` (their reader is gone) are unlinked at start-up.
pub fn clean_listeners(dir: &Path) {
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
}

/// Write the event letters to every listener FIFO in `event/`; listeners that are gone
/// are unlinked.
pub fn notify(dir: &Path, letters: &[u8]) {
    let Ok(rd) = fs::read_dir(dir.join("event")) else { return };
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

/// Append a death with raw wait status `wstat` to `supervise/death_tally`, stamped `stamp`
/// (s6 uses the death's own status stamp), keeping the last `max-death-tally` records.
pub fn append_death(dir: &Path, stamp: SystemTime, wstat: i32) {
    let max = read_number(dir, "max-death-tally").map(|n| (n as usize).min(4096)).unwrap_or(MAX_DEATH_TALLY_DEFAULT);
    if max == 0 {
        return;
    }
    let path = dir.join("supervise/death_tally");
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
    let rec = wire::tally_record(stamp, code as u8, sig as u8);
    data.extend_from_slice(&rec);
    let keep = max * 14;
    if data.len() > keep {
        data.drain(..data.len() - keep);
    }
    let tmp = dir.join("supervise/death_tally.new");
    if fs::write(&tmp, &data).is_ok() {
        let _ = fs::rename(&tmp, &path);
    }
}

//! The registrar: a root daemon (`hermes-reconcile watch`, an s6 service in the image) that
//! keeps the scandir's slots converged with the profiles on the volume, from any source (the
//! CLI, the host, an import). New profiles get a slot (down); slots whose profile is gone are
//! unregistered. Live slots are never replaced. The unprivileged user cannot write the
//! scandir; it rings the registrar's FIFO and waits for the slot, so root renders every file
//! from a validated name and the user never authors anything root runs.

use super::{capacity, open_scandir, registered, unregister, wait_until, Error};
use crate::config::Config;
use crate::discovery::{self, Candidate};
use crate::profile_name::{slot_name, DEFAULT_PROFILE};
use crate::s6::svscan;
use crate::safe_fs::Fs;
use crate::slot;
use std::collections::BTreeSet;
use std::ffi::OsStr;
use std::io;
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// The periodic resync: a profile created without ringing (from the host, an import) gets its
/// slot within this interval.
pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(2);
/// How long the CLI waits for the registrar after ringing.
pub const CLIENT_WAIT: Duration = Duration::from_secs(10);

#[derive(Debug, Default, Clone, serde::Serialize)]
pub struct Converged {
    pub added: Vec<String>,
    pub removed: Vec<String>,
    pub errors: Vec<String>,
}

/// One convergence step.
pub fn converge(fs: &dyn Fs, cfg: &Config) -> Result<Converged, Error> {
    let scandir = open_scandir(fs, cfg)?;
    let Ok(home) = fs.open_root(&cfg.home) else {
        // No volume (not mounted yet?): never tear slots down over it.
        return Ok(Converged::default());
    };
    let snap = discovery::scan_home(fs, Some(&home), None, false);
    let mut wanted: BTreeSet<String> = BTreeSet::from([DEFAULT_PROFILE.to_string()]);
    for c in &snap.named {
        if let Candidate::Profile { name, .. } = c {
            wanted.insert(name.clone());
        }
    }
    let present: BTreeSet<String> =
        registered(fs, &scandir).map_err(|e| Error::io(&cfg.scandir, "list", e))?.into_iter().collect();
    let mut out = Converged::default();
    for p in wanted.difference(&present) {
        let usage = capacity::usage(fs, &scandir, cfg.max_services).map_err(|e| Error::io(&cfg.scandir, "list", e))?;
        if !usage.fits(capacity::PER_PROFILE) {
            out.errors.push(Error::Capacity { used: usage.used, needed: capacity::PER_PROFILE, max: usage.max }.to_string());
            break;
        }
        match slot::publish(fs, cfg, &scandir, p, false) {
            Ok(_) => out.added.push(p.clone()),
            Err(e) => out.errors.push(format!("could not publish {}: {e}", scandir.child(OsStr::new(&slot_name(p))).display())),
        }
    }
    // A profiles/ that cannot be read (an I/O error, or a link planted in its place) says
    // nothing about which profiles exist: never tear slots down over it.
    let removable: Vec<&String> = if snap.profiles_unreadable { Vec::new() } else { present.difference(&wanted).collect() };
    out.errors.extend(snap.profiles_unreadable.then(|| snap.warnings.join("; ")));
    for p in removable {
        match unregister::unregister(fs, cfg, p) {
            Ok(_) => out.removed.push(p.clone()),
            Err(e) => out.errors.push(e.to_string()),
        }
    }
    if !out.added.is_empty() {
        if let Err(e) = svscan::rescan(fs, &scandir, false) {
            out.errors.push(format!("could not ask s6-svscan to rescan {}: {e}", cfg.scandir.display()));
        }
    }
    Ok(out)
}

static STOP: AtomicBool = AtomicBool::new(false);

extern "C" fn on_term(_: nix::libc::c_int) {
    STOP.store(true, Ordering::SeqCst);
}

/// Create the doorbell FIFO: root-owned, writable by the user's group only.
fn make_fifo(cfg: &Config) -> Result<OwnedFd, Error> {
    use nix::fcntl::OFlag;
    use nix::sys::stat::Mode;
    let path = &cfg.registrar_fifo;
    let dir = path.parent().unwrap_or(std::path::Path::new("/"));
    {
        use std::os::unix::fs::DirBuilderExt;
        std::fs::DirBuilder::new().recursive(true).mode(0o755).create(dir).map_err(|e| Error::io(dir, "create", e))?;
    }
    match std::fs::symlink_metadata(path) {
        Ok(m) if std::os::unix::fs::FileTypeExt::is_fifo(&m.file_type()) => {}
        Ok(_) => std::fs::remove_file(path).map_err(|e| Error::io(path, "replace", e))?,
        Err(_) => {}
    }
    if std::fs::symlink_metadata(path).is_err() {
        nix::unistd::mkfifo(path, Mode::from_bits_truncate(0o600)).map_err(|e| Error::io(path, "mkfifo", io::Error::from(e)))?;
    }
    let _ = nix::unistd::chown(path, Some(nix::unistd::Uid::from_raw(0)), Some(nix::unistd::Gid::from_raw(cfg.gid)));
    nix::sys::stat::fchmodat(None, path, Mode::from_bits_truncate(0o620), nix::sys::stat::FchmodatFlags::FollowSymlink)
        .map_err(|e| Error::io(path, "chmod", io::Error::from(e)))?;
    // Read end, plus a write end kept open so the reader never sees end-of-file.
    let rd = nix::fcntl::open(path, OFlag::O_RDONLY | OFlag::O_NONBLOCK | OFlag::O_CLOEXEC | OFlag::O_NOFOLLOW, Mode::empty())
        .map_err(|e| Error::io(path, "open", io::Error::from(e)))?;
    let wr = nix::fcntl::open(path, OFlag::O_WRONLY | OFlag::O_NONBLOCK | OFlag::O_CLOEXEC | OFlag::O_NOFOLLOW, Mode::empty())
        .map_err(|e| Error::io(path, "open", io::Error::from(e)))?;
    std::mem::forget(unsafe { OwnedFd::from_raw_fd(wr) });
    Ok(unsafe { OwnedFd::from_raw_fd(rd) })
}

/// Run until SIGTERM/SIGINT: converge now, then on every ring and every `interval`.
/// `report` receives each step's outcome (for logging).
pub fn run(fs: &dyn Fs, cfg: &Config, interval: Duration, mut report: impl FnMut(&Converged)) -> Result<(), Error> {
    use nix::sys::signal::{signal, SigHandler, Signal};
    unsafe {
        let _ = signal(Signal::SIGTERM, SigHandler::Handler(on_term));
        let _ = signal(Signal::SIGINT, SigHandler::Handler(on_term));
    }
    let fifo = make_fifo(cfg)?;
    let ms: u16 = interval.as_millis().clamp(10, u16::MAX as u128) as u16;
    while !STOP.load(Ordering::SeqCst) {
        match converge(fs, cfg) {
            Ok(c) => report(&c),
            Err(e) => report(&Converged { errors: vec![e.to_string()], ..Default::default() }),
        }
        let mut fds = [nix::poll::PollFd::new(fifo.as_fd(), nix::poll::PollFlags::POLLIN)];
        match nix::poll::poll(&mut fds, ms) {
            Ok(n) if n > 0 => {
                let mut buf = [0u8; 512];
                while matches!(nix::unistd::read(fifo.as_raw_fd(), &mut buf), Ok(n) if n > 0) {}
            }
            _ => {}
        }
    }
    Ok(())
}

/// Client side: ring the registrar. Fails with a message naming the fix when none listens.
pub fn ring(cfg: &Config) -> Result<(), Error> {
    use nix::fcntl::OFlag;
    let path = &cfg.registrar_fifo;
    let no_registrar = || Error::Io {
        path: path.display().to_string(),
        error: io::Error::new(
            io::ErrorKind::NotConnected,
            "no registrar is listening (the `hermes-reconcile watch` service is not running); start it, or run `hermes-reconcile register <profile>` as root",
        ),
    };
    let fd = match nix::fcntl::open(path, OFlag::O_WRONLY | OFlag::O_NONBLOCK | OFlag::O_CLOEXEC | OFlag::O_NOFOLLOW, nix::sys::stat::Mode::empty()) {
        Ok(fd) => unsafe { OwnedFd::from_raw_fd(fd) },
        Err(nix::errno::Errno::ENOENT) | Err(nix::errno::Errno::ENXIO) => return Err(no_registrar()),
        Err(e) => return Err(Error::io(path, "write", io::Error::from(e))),
    };
    match nix::unistd::write(&fd, b"r") {
        Ok(_) | Err(nix::errno::Errno::EAGAIN) => Ok(()), // EAGAIN: already rung, pending
        Err(e) => Err(Error::io(path, "write", io::Error::from(e))),
    }
}

/// Client side: wait until `profile`'s slot exists (`present`) or is gone.
pub fn wait_for_slot(cfg: &Config, profile: &str, present: bool, limit: Duration) -> Result<(), Error> {
    let slot = cfg.scandir.join(slot_name(profile));
    if wait_until(limit, || slot.is_dir() == present) {
        Ok(())
    } else {
        Err(Error::Timeout {
            what: format!(
                "the registrar to {} {} (is the `hermes-reconcile watch` service up? see its log)",
                if present { "create" } else { "remove" },
                slot.display()
            ),
        })
    }
}

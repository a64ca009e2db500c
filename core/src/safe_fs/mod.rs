//! The one door to the file system for everything that touches the volume or the scandir.
//!
//! The reconciler runs as root over `$HERMES_HOME`, a tree the unprivileged `hermes` user
//! controls. Path strings are therefore never resolved by the kernel on our behalf below a
//! trusted root: every operation is relative to an open directory descriptor and refuses to
//! follow a symbolic link in the last component (`O_NOFOLLOW`, `AT_SYMLINK_NOFOLLOW`). Walking
//! down is done one component at a time with [`Fs::open_dir`], so no intermediate link is
//! followed either.
//!
//! Every call goes through the [`Fs`] trait so tests can interpose: the fault-injecting
//! implementation in [`faulty`] fails or "kills" the pass at the N-th step, which is how the
//! convergence tests prove that an interrupted pass is repaired by the next one.

mod linux;
pub mod faulty;

use std::ffi::{OsStr, OsString};
use std::fmt;
use std::io;
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};

pub use linux::{LinuxFs, RealFs};

/// An open directory plus the path it was reached by (for messages only; never re-resolved).
pub struct Dir {
    pub(crate) fd: OwnedFd,
    path: PathBuf,
}

impl Dir {
    pub fn path(&self) -> &Path {
        &self.path
    }
    /// The display path of a child, for error messages.
    pub fn child(&self, name: &OsStr) -> PathBuf {
        self.path.join(name)
    }
}

impl fmt::Debug for Dir {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Dir({})", self.path.display())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    File,
    Dir,
    Symlink,
    Fifo,
    Other,
}

impl Kind {
    pub fn describe(self) -> &'static str {
        match self {
            Kind::File => "regular file",
            Kind::Dir => "directory",
            Kind::Symlink => "symbolic link",
            Kind::Fifo => "FIFO",
            Kind::Other => "special file",
        }
    }
}

/// What `lstat` tells us about an entry (never about a link's target).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Meta {
    pub kind: Kind,
    pub size: u64,
    pub uid: u32,
    pub gid: u32,
    /// Permission bits including setuid/setgid/sticky (`mode & 0o7777`).
    pub mode: u32,
}

/// How a rename treats an existing destination.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RenameMode {
    /// Fail with `EEXIST` if the destination exists.
    NoReplace,
    /// Atomically swap source and destination (both must exist).
    Exchange,
    /// Plain `rename(2)`: replace a file or an empty directory.
    Replace,
}

/// Result of reading a small file from an untrusted tree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Capped {
    Data(Vec<u8>),
    /// The entry is not a regular file (symlink, FIFO, device, directory).
    NotRegular(Kind),
    /// The file is larger than the cap; nothing was read beyond it.
    TooLarge(u64),
}

/// Every file-system operation the core performs. Implementations: [`RealFs`] and
/// [`faulty::FaultyFs`].
pub trait Fs {
    /// Open a trusted root given by the operator (`HERMES_HOME`, the scandir). Symbolic links
    /// in this path are the operator's own choice and are followed.
    fn open_root(&self, path: &Path) -> io::Result<Dir>;
    /// Open a subdirectory without following a link.
    fn open_dir(&self, parent: &Dir, name: &OsStr) -> io::Result<Dir>;
    /// Names and kinds (from `lstat`) of every entry except `.` and `..`, unsorted.
    fn list(&self, dir: &Dir) -> io::Result<Vec<(OsString, Kind)>>;
    fn lstat(&self, dir: &Dir, name: &OsStr) -> io::Result<Meta>;
    /// Read a regular file of at most `cap` bytes; never blocks on a FIFO, never follows.
    fn read_capped(&self, dir: &Dir, name: &OsStr, cap: u64) -> io::Result<Capped>;
    /// Create a new file (exclusive, no follow) with exactly `mode`.
    fn create_file(&self, dir: &Dir, name: &OsStr, data: &[u8], mode: u32) -> io::Result<()>;
    /// Append to a regular file, creating it with `mode` (and `owner`, if given) when absent.
    /// Refuses links and non-regular files.
    fn append_file(
        &self,
        dir: &Dir,
        name: &OsStr,
        data: &[u8],
        mode: u32,
        owner: Option<(u32, u32)>,
    ) -> io::Result<()>;
    /// `mkdir`, then `chmod` to exactly `mode` (mkdir drops setgid and applies the umask).
    fn mkdir(&self, dir: &Dir, name: &OsStr, mode: u32) -> io::Result<()>;
    /// `mkfifo` with exactly `mode`.
    fn mkfifo(&self, dir: &Dir, name: &OsStr, mode: u32) -> io::Result<()>;
    fn chown(&self, dir: &Dir, name: &OsStr, uid: u32, gid: u32) -> io::Result<()>;
    fn chmod(&self, dir: &Dir, name: &OsStr, mode: u32) -> io::Result<()>;
    fn rename(
        &self,
        from_dir: &Dir,
        from: &OsStr,
        to_dir: &Dir,
        to: &OsStr,
        how: RenameMode,
    ) -> io::Result<()>;
    /// Remove a non-directory entry (a symlink is removed, never its target).
    fn unlink(&self, dir: &Dir, name: &OsStr) -> io::Result<()>;
    fn rmdir(&self, dir: &Dir, name: &OsStr) -> io::Result<()>;
    /// Write one byte string to a FIFO without blocking (`ENXIO` when nobody reads).
    fn write_fifo(&self, dir: &Dir, name: &OsStr, data: &[u8]) -> io::Result<()>;
}

/// Remove `name` and everything below it, never following a link: a symlink is unlinked,
/// a directory is emptied through its own descriptor. Missing is success.
pub fn remove_tree(fs: &dyn Fs, dir: &Dir, name: &OsStr) -> io::Result<()> {
    let meta = match fs.lstat(dir, name) {
        Ok(m) => m,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e),
    };
    if meta.kind != Kind::Dir {
        return ignore_missing(fs.unlink(dir, name));
    }
    let sub = match fs.open_dir(dir, name) {
        Ok(d) => d,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e),
    };
    for (child, kind) in fs.list(&sub)? {
        if kind == Kind::Dir {
            remove_tree(fs, &sub, &child)?;
        } else {
            ignore_missing(fs.unlink(&sub, &child))?;
        }
    }
    drop(sub);
    ignore_missing(fs.rmdir(dir, name))
}

/// Replace `name` in `dir` atomically with `data`: a fresh temporary is created exclusively
/// (a planted link at that name is removed first, never followed), given `mode` and `owner`,
/// then renamed over the target. A link at the target is replaced, not followed.
pub fn write_atomic(
    fs: &dyn Fs,
    dir: &Dir,
    name: &OsStr,
    data: &[u8],
    mode: u32,
    owner: Option<(u32, u32)>,
) -> io::Result<()> {
    let mut tmp = OsString::from(".");
    tmp.push(name);
    tmp.push(format!(".{}.tmp", std::process::id()));
    match fs.create_file(dir, &tmp, data, mode) {
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
            fs.unlink(dir, &tmp)?;
            fs.create_file(dir, &tmp, data, mode)?;
        }
        other => other?,
    }
    let finish = (|| {
        if let Some((uid, gid)) = owner {
            chown_best_effort(fs, dir, &tmp, uid, gid)?;
            fs.chmod(dir, &tmp, mode)?;
        }
        fs.rename(dir, &tmp, dir, name, RenameMode::Replace)
    })();
    if finish.is_err() {
        let _ = fs.unlink(dir, &tmp);
    }
    finish
}

/// `chown` that tolerates `EPERM` when we are not root: an unprivileged caller (tests, a
/// plain-host demo) already owns what it creates, which is what the chown is for.
pub fn chown_best_effort(fs: &dyn Fs, dir: &Dir, name: &OsStr, uid: u32, gid: u32) -> io::Result<()> {
    match fs.chown(dir, name, uid, gid) {
        Err(e) if e.raw_os_error() == Some(nix::libc::EPERM) && !nix::unistd::geteuid().is_root() => {
            Ok(())
        }
        other => other,
    }
}

pub fn ignore_missing(r: io::Result<()>) -> io::Result<()> {
    match r {
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        other => other,
    }
}

/// An `io::Error` that names the path it concerns, so messages reach the user with context.
pub fn at(path: impl AsRef<Path>, e: io::Error) -> io::Error {
    io::Error::new(e.kind(), format!("{}: {}", path.as_ref().display(), e))
}

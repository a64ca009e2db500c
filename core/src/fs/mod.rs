//! The one door to the system for everything that touches the volume, the scandir or `/proc`.
//!
//! The reconciler runs as root over `$HERMES_HOME`, a tree the unprivileged `hermes` user
//! controls. Path strings are therefore never resolved by the kernel on our behalf below a
//! trusted root: every operation is relative to an open directory descriptor and refuses to
//! follow a symbolic link in the last component (`O_NOFOLLOW`, `AT_SYMLINK_NOFOLLOW`). Walking
//! down is done one component at a time with [`Fs::open_dir`], so no intermediate link is
//! followed either.
//!
//! A directory opened with [`Fs::open_volume`] carries the volume owner's identity: every
//! operation below it that reads a file's content or changes the tree runs with that uid/gid
//! as the file-system identity (`setfsuid`), so root acting in the user's tree can do exactly
//! what the user could, and no more, whatever the kernel's `protected_hardlinks`/
//! `protected_symlinks` settings say. (Entering a directory, listing names and `lstat` reveal
//! no content and change nothing; they run as the process.)
//!
//! Every call goes through the [`Fs`] trait so tests can interpose: the fault-injecting
//! implementation in `faulty` (tests only) fails or "kills" a pass at the N-th step, which is how the
//! convergence tests prove that an interrupted pass is repaired by the next one.

/// The fault-injecting double: for tests only (the `test-doubles` feature, which the test
/// fixtures turn on), never in a release binary.
#[cfg(any(test, feature = "test-doubles"))]
pub mod faulty;
mod identity;
mod linux;

use std::ffi::{OsStr, OsString};
use std::fmt;
use std::io;
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};

pub use linux::{LinuxFs, RealFs};

/// A metadata-only operation below a directory of identity `ident`: as the process, and if
/// that is refused (a root without CAP_DAC_READ_SEARCH, as Kubernetes' root mode runs, in a
/// directory the owner made private: hermes-agent's gateway makes its profile 0700), once
/// more as the directory's owner, who can do exactly what the user could.
pub fn lookup<T>(ident: Option<Ident>, op: impl Fn() -> io::Result<T>) -> io::Result<T> {
    let first = {
        let _id = identity::AsUser::enter_lookup(ident)?;
        op()
    };
    match first {
        Err(e) if e.kind() == io::ErrorKind::PermissionDenied && ident.is_some() => {
            let _id = identity::AsUser::enter(ident)?;
            op()
        }
        other => other,
    }
}

/// Whose file-system identity operations below a directory run with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ident {
    pub uid: u32,
    pub gid: u32,
}

/// An open directory plus the path it was reached by (for messages only; never re-resolved).
pub struct Dir {
    fd: OwnedFd,
    path: PathBuf,
    ident: Option<Ident>,
}

impl Dir {
    pub fn path(&self) -> &Path {
        &self.path
    }
    /// The display path of a child, for error messages.
    pub fn child(&self, name: &OsStr) -> PathBuf {
        self.path.join(name)
    }
    /// The identity operations below this directory run with (`None`: the process's own).
    pub fn ident(&self) -> Option<Ident> {
        self.ident
    }
    /// `/proc/self/fd/<n>`: a path naming exactly this directory, whatever was renamed or
    /// linked since it was opened (for path-only interfaces such as inotify).
    pub fn proc_path(&self) -> PathBuf {
        use std::os::fd::AsRawFd;
        PathBuf::from(format!("/proc/self/fd/{}", self.fd.as_raw_fd()))
    }
}

/// One entry opened without following a link (`O_PATH|O_NOFOLLOW`: a link is the link, a
/// FIFO is not waited on) with what `fstat` said of that very inode. Acting on it (entering
/// it, re-owning it) acts on what was examined, whatever has been renamed or linked at its
/// name since: the way a root walk over the user's tree closes the gap between looking and
/// acting.
pub struct Node {
    fd: OwnedFd,
    path: PathBuf,
    ident: Option<Ident>,
    /// What `fstat` of the open descriptor said.
    pub meta: Meta,
}

impl Node {
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl fmt::Debug for Node {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Node({})", self.path.display())
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

/// What `lstat` tells us about an entry (never about a link's target, except from
/// [`Fs::stat`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Meta {
    pub kind: Kind,
    pub size: u64,
    pub uid: u32,
    pub gid: u32,
    /// Permission bits including setuid/setgid/sticky (`mode & 0o7777`).
    pub mode: u32,
    /// The inode number: tells a replaced file from the same one grown.
    pub ino: u64,
    /// Hard links to the inode: a file linked from elsewhere is not only this directory's.
    pub nlink: u64,
    /// The file system it lives on.
    pub dev: u64,
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

/// The read end of a FIFO, opened without blocking; a write end is held with it so the
/// reader never sees end-of-file when the last client closes.
pub struct FifoReader {
    pub read: OwnedFd,
    _write: OwnedFd,
}

impl FifoReader {
    pub fn new(read: OwnedFd, write: OwnedFd) -> FifoReader {
        FifoReader { read, _write: write }
    }

    /// Everything written so far, at most `max` bytes, without blocking.
    pub fn drain(&self, max: usize) -> io::Result<Vec<u8>> {
        let mut out = Vec::new();
        let mut buf = [0u8; 4096];
        while out.len() < max {
            match nix::unistd::read(std::os::fd::AsRawFd::as_raw_fd(&self.read), &mut buf) {
                Ok(0) => break,
                Ok(n) => out.extend_from_slice(&buf[..n]),
                Err(nix::errno::Errno::EAGAIN) => break,
                Err(nix::errno::Errno::EINTR) => continue,
                Err(e) => return Err(io::Error::from(e)),
            }
        }
        Ok(out)
    }
}

/// A held `flock`; dropping it releases the lock.
#[derive(Debug)]
pub struct FileLock {
    _fd: OwnedFd,
}

impl FileLock {
    pub fn new(fd: OwnedFd) -> FileLock {
        FileLock { _fd: fd }
    }
}

/// Every system effect the core performs. Implementations: [`LinuxFs`] and, for tests,
/// `faulty::FaultyFs`.
pub trait Fs {
    /// Open a trusted root given by the operator (the scandir, `/proc`). Symbolic links in
    /// this path are the operator's own choice and are followed.
    fn open_root(&self, path: &Path) -> io::Result<Dir>;
    /// Open the user's volume (a trusted path, like [`Fs::open_root`]); every operation below
    /// the returned directory that reads content or changes the tree runs with `owner` as the
    /// file-system identity when this process is root.
    fn open_volume(&self, path: &Path, owner: Ident) -> io::Result<Dir>;
    /// Open a subdirectory without following a link; it keeps its parent's identity.
    fn open_dir(&self, parent: &Dir, name: &OsStr) -> io::Result<Dir>;
    /// Names and kinds (from `lstat`) of every entry except `.` and `..`, unsorted.
    fn list(&self, dir: &Dir) -> io::Result<Vec<(OsString, Kind)>>;
    fn lstat(&self, dir: &Dir, name: &OsStr) -> io::Result<Meta>;
    /// `stat`, following a final symbolic link (what s6-svscan sees of a scandir entry), with
    /// the directory's identity (the volume owner's below the volume).
    fn stat(&self, dir: &Dir, name: &OsStr) -> io::Result<Meta>;
    /// Read a regular file of at most `cap` bytes; never blocks on a FIFO, never follows.
    fn read_capped(&self, dir: &Dir, name: &OsStr, cap: u64) -> io::Result<Capped>;
    /// Read at most `len` bytes of a regular file from byte `offset` (for following a log);
    /// never blocks, never follows. `NotRegular` as for [`Fs::read_capped`].
    fn read_from(&self, dir: &Dir, name: &OsStr, offset: u64, len: u64) -> io::Result<Capped>;
    /// Create a new file (exclusive, no follow) with exactly `mode`.
    fn create_file(&self, dir: &Dir, name: &OsStr, data: &[u8], mode: u32) -> io::Result<()>;
    /// Append to a regular file, creating it with `mode` when absent. Refuses links and
    /// non-regular files.
    fn append_file(&self, dir: &Dir, name: &OsStr, data: &[u8], mode: u32) -> io::Result<()>;
    /// Flush a file's data to stable storage (before a rename makes it the current version).
    fn sync_file(&self, dir: &Dir, name: &OsStr) -> io::Result<()>;
    /// `mkdir`, then `chmod` to exactly `mode` (mkdir drops setgid and applies the umask).
    fn mkdir(&self, dir: &Dir, name: &OsStr, mode: u32) -> io::Result<()>;
    /// `mkfifo` with exactly `mode`.
    fn mkfifo(&self, dir: &Dir, name: &OsStr, mode: u32) -> io::Result<()>;
    fn chown(&self, dir: &Dir, name: &OsStr, uid: u32, gid: u32) -> io::Result<()>;
    /// Open `name` (`.` for `dir` itself) as a [`Node`] without following a link or blocking,
    /// and `fstat` what was opened.
    fn open_node(&self, dir: &Dir, name: &OsStr) -> io::Result<Node>;
    /// The directory `node` is, entered through its own descriptor (`ENOTDIR` for anything
    /// else); it keeps the node's identity.
    fn enter_node(&self, node: &Node) -> io::Result<Dir>;
    /// Change the owner of exactly the inode `node` holds (a link itself, never its target):
    /// `fchownat(fd, "", AT_EMPTY_PATH)`, no name resolved.
    fn chown_node(&self, node: &Node, uid: u32, gid: u32) -> io::Result<()>;
    fn chmod(&self, dir: &Dir, name: &OsStr, mode: u32) -> io::Result<()>;
    fn rename(&self, from_dir: &Dir, from: &OsStr, to_dir: &Dir, to: &OsStr, how: RenameMode) -> io::Result<()>;
    /// A hard link `to_dir/to` of the file `from_dir/from`, never following a link at either
    /// end (`linkat` without `AT_SYMLINK_FOLLOW`); both opened with the same identity.
    fn link(&self, from_dir: &Dir, from: &OsStr, to_dir: &Dir, to: &OsStr) -> io::Result<()>;
    /// Remove a non-directory entry (a symlink is removed, never its target).
    fn unlink(&self, dir: &Dir, name: &OsStr) -> io::Result<()>;
    fn rmdir(&self, dir: &Dir, name: &OsStr) -> io::Result<()>;
    /// Write one byte string to a FIFO without blocking (`ENXIO` when nobody reads).
    fn write_fifo(&self, dir: &Dir, name: &OsStr, data: &[u8]) -> io::Result<()>;
    /// Open an existing FIFO for reading without blocking (see [`FifoReader`]).
    fn open_fifo(&self, dir: &Dir, name: &OsStr) -> io::Result<FifoReader>;
    /// Take an exclusive `flock` on an existing file or directory, without waiting: `Ok(None)` when another
    /// holds it. Released when the returned lock is dropped. Opened read-only, so a file the
    /// caller may only read (a root-owned lock file of the hermes group) can be locked.
    fn try_lock(&self, dir: &Dir, name: &OsStr) -> io::Result<Option<FileLock>>;
    /// This file system as one that threads may share (`--all` runs profiles side by side),
    /// when it is one; `None` (the default) keeps the caller on one thread.
    fn shareable(&self) -> Option<&(dyn Fs + Sync)> {
        None
    }
    /// Whether some process holds a write lock on the file (`fcntl F_GETLK`, what s6-svok and
    /// s6-svstat ask of `supervise/lock`). A missing file is `Ok(false)`.
    fn lock_held(&self, dir: &Dir, name: &OsStr) -> io::Result<bool>;
    /// The effective uid of this process.
    fn euid(&self) -> u32;
    /// Keep this thread in `dir`'s identity while the returned hold lives, so a run of
    /// operations below it switches identity once instead of once each (operations below
    /// other directories still get their own identity). Only an optimization: without it
    /// every operation is still done with the right identity.
    fn hold_identity(&self, dir: &Dir) -> io::Result<IdentityHold> {
        let _ = dir;
        Ok(IdentityHold(None))
    }
}

/// See [`Fs::hold_identity`].
pub struct IdentityHold(#[allow(dead_code)] Option<identity::AsUser>);

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

/// Replace `name` in `dir` atomically and durably with `data`: a fresh temporary is created
/// exclusively (a planted link at that name is removed first, never followed), flushed to
/// disk, then renamed over the target. A link at the target is replaced, not followed. On
/// any failure the temporary is removed, so nothing is left behind.
pub fn write_atomic(fs: &dyn Fs, dir: &Dir, name: &OsStr, data: &[u8], mode: u32) -> io::Result<()> {
    let mut tmp = OsString::from(".");
    tmp.push(name);
    tmp.push(format!(".{}.tmp", std::process::id()));
    let created = match fs.create_file(dir, &tmp, data, mode) {
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
            fs.unlink(dir, &tmp)?;
            fs.create_file(dir, &tmp, data, mode)
        }
        other => other,
    };
    let done = created.and_then(|()| fs.sync_file(dir, &tmp)).and_then(|()| fs.rename(dir, &tmp, dir, name, RenameMode::Replace));
    if done.is_err() {
        let _ = fs.unlink(dir, &tmp);
    }
    done
}

pub fn ignore_missing(r: io::Result<()>) -> io::Result<()> {
    match r {
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        other => other,
    }
}

//! A recording, fault-injecting [`Fs`] for tests: it forwards to an inner implementation,
//! records every mutating step with the path it touched, and can make step N fail (one
//! injected error, the pass goes on) or "kill" the pass at step N (that step and every later
//! one fail, as if the process had died there: no further effect reaches the disk).

use super::{Capped, Dir, FifoReader, FileLock, Fs, Ident, Kind, Meta, Node, RenameMode};
use std::cell::{Cell, RefCell};
use std::ffi::{OsStr, OsString};
use std::io;
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// Step N returns `EIO`; later steps run normally.
    ErrorAt(usize),
    /// Step N and all later mutating steps fail: the process "died" at N.
    KillAt(usize),
}

/// Called before every mutating step with (step number, operation, path).
pub type Observer<'a> = Box<dyn Fn(usize, &str, &Path) + 'a>;

pub struct FaultyFs<'a> {
    inner: &'a dyn Fs,
    fault: Option<Fault>,
    /// Paths every operation on (or below) fails with this errno, reads included: what an
    /// unreadable directory looks like to a process that cannot get in.
    denied: Vec<(PathBuf, i32)>,
    steps: Cell<usize>,
    log: RefCell<Vec<(String, PathBuf)>>,
    observer: Option<Observer<'a>>,
}

impl<'a> FaultyFs<'a> {
    pub fn new(inner: &'a dyn Fs, fault: Option<Fault>) -> Self {
        FaultyFs { inner, fault, denied: Vec::new(), steps: Cell::new(0), log: RefCell::new(Vec::new()), observer: None }
    }
    /// Watch the tree between steps (e.g. what a concurrent scanner would see).
    pub fn with_observer(mut self, f: impl Fn(usize, &str, &Path) + 'a) -> Self {
        self.observer = Some(Box::new(f));
        self
    }
    /// Make every operation on `path` or below it fail with `errno` (e.g. `EACCES`).
    pub fn deny(mut self, path: impl Into<PathBuf>, errno: i32) -> Self {
        self.denied.push((path.into(), errno));
        self
    }
    /// Number of mutating steps attempted so far.
    pub fn steps(&self) -> usize {
        self.steps.get()
    }
    /// Every mutating step attempted, in order: (operation, path).
    pub fn log(&self) -> Vec<(String, PathBuf)> {
        self.log.borrow().clone()
    }

    fn step(&self, op: &str, path: PathBuf) -> io::Result<()> {
        let n = self.steps.get() + 1;
        self.steps.set(n);
        if let Some(obs) = &self.observer {
            obs(n, op, &path);
        }
        let denied = self.check_denied(&path);
        self.log.borrow_mut().push((op.to_string(), path));
        denied?;
        let injected = match self.fault {
            Some(Fault::ErrorAt(k)) => n == k,
            Some(Fault::KillAt(k)) => n >= k,
            None => false,
        };
        if injected {
            Err(io::Error::other(format!("injected fault at step {n} ({op})")))
        } else {
            Ok(())
        }
    }
    fn killed(&self) -> bool {
        matches!(self.fault, Some(Fault::KillAt(k)) if self.steps.get() >= k)
    }
    fn read_guard(&self, path: &Path) -> io::Result<()> {
        if self.killed() {
            return Err(io::Error::other("process killed"));
        }
        self.check_denied(path)
    }
    fn check_denied(&self, path: &Path) -> io::Result<()> {
        match self.denied.iter().find(|(p, _)| path.starts_with(p)) {
            Some((_, errno)) => Err(io::Error::from_raw_os_error(*errno)),
            None => Ok(()),
        }
    }
}

impl Fs for FaultyFs<'_> {
    fn open_root(&self, path: &Path) -> io::Result<Dir> {
        self.read_guard(path)?;
        self.inner.open_root(path)
    }
    fn open_volume(&self, path: &Path, owner: Ident) -> io::Result<Dir> {
        self.read_guard(path)?;
        self.inner.open_volume(path, owner)
    }
    fn open_dir(&self, parent: &Dir, name: &OsStr) -> io::Result<Dir> {
        self.read_guard(&parent.child(name))?;
        self.inner.open_dir(parent, name)
    }
    fn list(&self, dir: &Dir) -> io::Result<Vec<(OsString, Kind)>> {
        self.read_guard(dir.path())?;
        self.inner.list(dir)
    }
    fn lstat(&self, dir: &Dir, name: &OsStr) -> io::Result<Meta> {
        self.read_guard(&dir.child(name))?;
        self.inner.lstat(dir, name)
    }
    fn open_node(&self, dir: &Dir, name: &OsStr) -> io::Result<Node> {
        self.read_guard(&dir.child(name))?;
        self.inner.open_node(dir, name)
    }
    fn enter_node(&self, node: &Node) -> io::Result<Dir> {
        self.read_guard(node.path())?;
        self.inner.enter_node(node)
    }
    fn stat(&self, dir: &Dir, name: &OsStr) -> io::Result<Meta> {
        self.read_guard(&dir.child(name))?;
        self.inner.stat(dir, name)
    }
    fn read_capped(&self, dir: &Dir, name: &OsStr, cap: u64) -> io::Result<Capped> {
        self.read_guard(&dir.child(name))?;
        self.inner.read_capped(dir, name, cap)
    }
    fn read_from(&self, dir: &Dir, name: &OsStr, offset: u64, len: u64) -> io::Result<Capped> {
        self.read_guard(&dir.child(name))?;
        self.inner.read_from(dir, name, offset, len)
    }
    fn try_lock(&self, dir: &Dir, name: &OsStr) -> io::Result<Option<FileLock>> {
        self.read_guard(&dir.child(name))?;
        self.inner.try_lock(dir, name)
    }
    fn lock_held(&self, dir: &Dir, name: &OsStr) -> io::Result<bool> {
        self.read_guard(&dir.child(name))?;
        self.inner.lock_held(dir, name)
    }
    fn euid(&self) -> u32 {
        self.inner.euid()
    }
    fn hold_identity(&self, dir: &Dir) -> io::Result<super::IdentityHold> {
        self.inner.hold_identity(dir)
    }
    fn create_file(&self, dir: &Dir, name: &OsStr, data: &[u8], mode: u32) -> io::Result<()> {
        self.step("create", dir.child(name))?;
        self.inner.create_file(dir, name, data, mode)
    }
    fn append_file(&self, dir: &Dir, name: &OsStr, data: &[u8], mode: u32) -> io::Result<()> {
        self.step("append", dir.child(name))?;
        self.inner.append_file(dir, name, data, mode)
    }
    fn sync_file(&self, dir: &Dir, name: &OsStr) -> io::Result<()> {
        self.step("sync", dir.child(name))?;
        self.inner.sync_file(dir, name)
    }
    fn mkdir(&self, dir: &Dir, name: &OsStr, mode: u32) -> io::Result<()> {
        self.step("mkdir", dir.child(name))?;
        self.inner.mkdir(dir, name, mode)
    }
    fn mkfifo(&self, dir: &Dir, name: &OsStr, mode: u32) -> io::Result<()> {
        self.step("mkfifo", dir.child(name))?;
        self.inner.mkfifo(dir, name, mode)
    }
    fn chown(&self, dir: &Dir, name: &OsStr, uid: u32, gid: u32) -> io::Result<()> {
        self.step("chown", dir.child(name))?;
        self.inner.chown(dir, name, uid, gid)
    }
    fn chown_node(&self, node: &Node, uid: u32, gid: u32) -> io::Result<()> {
        self.step("chown", node.path().to_path_buf())?;
        self.inner.chown_node(node, uid, gid)
    }
    fn chmod(&self, dir: &Dir, name: &OsStr, mode: u32) -> io::Result<()> {
        self.step("chmod", dir.child(name))?;
        self.inner.chmod(dir, name, mode)
    }
    fn rename(&self, from_dir: &Dir, from: &OsStr, to_dir: &Dir, to: &OsStr, how: RenameMode) -> io::Result<()> {
        self.step("rename", to_dir.child(to))?;
        self.inner.rename(from_dir, from, to_dir, to, how)
    }
    fn link(&self, from_dir: &Dir, from: &OsStr, to_dir: &Dir, to: &OsStr) -> io::Result<()> {
        self.step("link", to_dir.child(to))?;
        self.inner.link(from_dir, from, to_dir, to)
    }
    fn unlink(&self, dir: &Dir, name: &OsStr) -> io::Result<()> {
        self.step("unlink", dir.child(name))?;
        self.inner.unlink(dir, name)
    }
    fn rmdir(&self, dir: &Dir, name: &OsStr) -> io::Result<()> {
        self.step("rmdir", dir.child(name))?;
        self.inner.rmdir(dir, name)
    }
    fn write_fifo(&self, dir: &Dir, name: &OsStr, data: &[u8]) -> io::Result<()> {
        self.step("write_fifo", dir.child(name))?;
        self.inner.write_fifo(dir, name, data)
    }
    fn open_fifo(&self, dir: &Dir, name: &OsStr) -> io::Result<FifoReader> {
        self.step("open_fifo", dir.child(name))?;
        self.inner.open_fifo(dir, name)
    }
}

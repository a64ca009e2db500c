//! The real [`Fs`]: `*at` system calls on directory descriptors via `nix`.

use super::identity::AsUser;
use super::lookup;
use super::{Capped, Dir, FifoReader, FileLock, Fs, Ident, Kind, Meta, Node, RenameMode};
use nix::dir::Dir as NixDir;
use nix::errno::Errno;
use nix::fcntl::{openat, renameat2, OFlag, RenameFlags};
use nix::sys::stat::{fchmod, fchmodat, fstat, fstatat, mkdirat, FchmodatFlags, FileStat, Mode, SFlag};
use nix::unistd::{fchownat, mkfifoat, unlinkat, Gid, Uid, UnlinkatFlags};
use std::ffi::{OsStr, OsString};
use std::io::{self, Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

/// The real file system through `*at` calls.
///
/// `umask_is_zero` is a promise by the caller (the binaries, which set `umask(0)` first thing)
/// that lets `mkdir`/`mkfifo`/file creation skip the `chmod` that otherwise makes modes
/// exact: with a zero umask the kernel already applies the requested permission bits.
#[derive(Debug, Default, Clone, Copy)]
pub struct LinuxFs {
    umask_is_zero: bool,
}

impl LinuxFs {
    /// For a process that has set `umask(0)`.
    pub const fn with_zero_umask() -> LinuxFs {
        LinuxFs { umask_is_zero: true }
    }

    /// A chmod is needed after creating with `mode` unless the umask is known to be zero
    /// and the mode has no setuid/setgid bits (mkdir drops setgid; the umask may drop more).
    fn needs_chmod(&self, mode: u32) -> bool {
        !self.umask_is_zero || mode & 0o6000 != 0
    }
}

/// The real file system, making no assumption about the umask (every created entry is
/// chmodded to its exact mode).
#[allow(non_upper_case_globals)]
pub const RealFs: LinuxFs = LinuxFs { umask_is_zero: false };

/// `fchmodat2(2)` (Linux 6.6+) refuses links with AT_SYMLINK_NOFOLLOW in one system call;
/// glibc's emulation of that flag costs four (O_PATH open, fstat, chmod via /proc, close).
fn fchmodat_nofollow(dirfd: i32, name: &OsStr, mode: u32) -> io::Result<()> {
    static NO_FCHMODAT2: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);
    let c = std::ffi::CString::new(name.as_bytes()).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
    if !NO_FCHMODAT2.load(std::sync::atomic::Ordering::Relaxed) {
        const SYS_FCHMODAT2: nix::libc::c_long = 452;
        let r = unsafe { nix::libc::syscall(SYS_FCHMODAT2, dirfd, c.as_ptr(), mode, nix::libc::AT_SYMLINK_NOFOLLOW) };
        if r == 0 {
            return Ok(());
        }
        let e = io::Error::last_os_error();
        if e.raw_os_error() != Some(nix::libc::ENOSYS) {
            return Err(e);
        }
        NO_FCHMODAT2.store(true, std::sync::atomic::Ordering::Relaxed);
    }
    fchmodat(Some(dirfd), name, Mode::from_bits_truncate(mode), FchmodatFlags::NoFollowSymlink).map_err(io_err)
}

fn io_err(e: Errno) -> io::Error {
    io::Error::from_raw_os_error(e as i32)
}

fn owned(fd: i32) -> OwnedFd {
    // SAFETY: `fd` was just returned by a successful open and is owned by nobody else.
    unsafe { OwnedFd::from_raw_fd(fd) }
}

fn kind_of(st: &FileStat) -> Kind {
    match SFlag::from_bits_truncate(st.st_mode & SFlag::S_IFMT.bits()) {
        SFlag::S_IFREG => Kind::File,
        SFlag::S_IFDIR => Kind::Dir,
        SFlag::S_IFLNK => Kind::Symlink,
        SFlag::S_IFIFO => Kind::Fifo,
        _ => Kind::Other,
    }
}

fn meta_of(st: &FileStat) -> Meta {
    Meta {
        kind: kind_of(st),
        size: st.st_size as u64,
        uid: st.st_uid,
        gid: st.st_gid,
        mode: st.st_mode & 0o7777,
        ino: st.st_ino,
        nlink: st.st_nlink,
        dev: st.st_dev,
    }
}

fn mode(bits: u32) -> Mode {
    Mode::from_bits_truncate(bits)
}

/// A directory handle is an `O_PATH` descriptor: it needs only search permission on the way
/// (s6's `supervise/` is 0710 for the group), exactly as a path would; listing reopens it
/// for reading. With `O_DIRECTORY`, a symbolic link is refused (`ENOTDIR`), never followed.
const NOFOLLOW_DIR: OFlag = OFlag::O_PATH.union(OFlag::O_DIRECTORY).union(OFlag::O_NOFOLLOW).union(OFlag::O_CLOEXEC);
const LISTING: OFlag = OFlag::O_RDONLY.union(OFlag::O_DIRECTORY).union(OFlag::O_NOFOLLOW).union(OFlag::O_CLOEXEC);

/// Open `name` for reading if it is a regular file: never through a link, never waiting on a
/// FIFO (O_NONBLOCK); anything else is the `Capped::NotRegular` to answer with.
fn open_regular(dir: &Dir, name: &OsStr) -> io::Result<Result<(OwnedFd, FileStat), Capped>> {
    let flags = OFlag::O_RDONLY | OFlag::O_NOFOLLOW | OFlag::O_NONBLOCK | OFlag::O_CLOEXEC | OFlag::O_NOCTTY;
    let fd = match openat(Some(dir.fd.as_raw_fd()), name, flags, Mode::empty()) {
        Ok(fd) => owned(fd),
        Err(Errno::ELOOP) => return Ok(Err(Capped::NotRegular(Kind::Symlink))),
        Err(e) => return Err(io_err(e)),
    };
    let st = fstat(fd.as_raw_fd()).map_err(io_err)?;
    match kind_of(&st) {
        Kind::File => Ok(Ok((fd, st))),
        kind => Ok(Err(Capped::NotRegular(kind))),
    }
}

impl Fs for LinuxFs {
    fn open_root(&self, path: &Path) -> io::Result<Dir> {
        let _id = AsUser::enter_lookup(None)?;
        let fd = nix::fcntl::open(path, OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC, Mode::empty()).map_err(io_err)?;
        Ok(Dir { fd: owned(fd), path: path.to_path_buf(), ident: None })
    }

    // Metadata-only operations (entering a directory by O_PATH, listing names, lstat) run as
    // this process: they reveal no content and change nothing (unless a held identity is in
    // effect: then they too run with their directory's). Everything that opens a file's
    // content or changes the tree runs with the directory's identity.
    fn open_volume(&self, path: &Path, owner: Ident) -> io::Result<Dir> {
        // Resolved as the owner: a path only root could traverse is not the user's volume.
        let _id = AsUser::enter(Some(owner))?;
        let fd = nix::fcntl::open(path, OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC, Mode::empty()).map_err(io_err)?;
        Ok(Dir { fd: owned(fd), path: path.to_path_buf(), ident: Some(owner) })
    }

    fn open_dir(&self, parent: &Dir, name: &OsStr) -> io::Result<Dir> {
        // O_NOFOLLOW on a link yields ELOOP, O_DIRECTORY on a non-dir ENOTDIR; both are "this
        // is not a directory we will enter".
        let fd = lookup(parent.ident, || openat(Some(parent.fd.as_raw_fd()), name, NOFOLLOW_DIR, Mode::empty()).map_err(io_err))?;
        Ok(Dir { fd: owned(fd), path: parent.child(name), ident: parent.ident })
    }

    fn list(&self, dir: &Dir) -> io::Result<Vec<(OsString, Kind)>> {
        // fdopendir takes ownership of its descriptor, so give it a fresh one of the same dir.
        let fd = lookup(dir.ident, || openat(Some(dir.fd.as_raw_fd()), ".", LISTING, Mode::empty()).map_err(io_err))?;
        let mut nd = NixDir::from_fd(fd).map_err(io_err)?;
        let mut out = Vec::new();
        for entry in nd.iter() {
            let entry = entry.map_err(io_err)?;
            let name = entry.file_name().to_bytes();
            if name == b"." || name == b".." {
                continue;
            }
            let name = OsStr::from_bytes(name).to_os_string();
            use nix::dir::Type;
            let kind = match entry.file_type() {
                Some(Type::File) => Kind::File,
                Some(Type::Directory) => Kind::Dir,
                Some(Type::Symlink) => Kind::Symlink,
                Some(Type::Fifo) => Kind::Fifo,
                Some(_) => Kind::Other,
                None => match self.lstat(dir, &name) {
                    Ok(m) => m.kind,
                    Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                    Err(e) => return Err(e),
                },
            };
            out.push((name, kind));
        }
        Ok(out)
    }

    fn lstat(&self, dir: &Dir, name: &OsStr) -> io::Result<Meta> {
        if name == "." {
            // The directory itself: its descriptor says, with no permission to look inside.
            return fstat(dir.fd.as_raw_fd()).map(|st| meta_of(&st)).map_err(io_err);
        }
        let st = lookup(dir.ident, || fstatat(Some(dir.fd.as_raw_fd()), name, nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW).map_err(io_err))?;
        Ok(meta_of(&st))
    }

    fn read_capped(&self, dir: &Dir, name: &OsStr, cap: u64) -> io::Result<Capped> {
        let _id = AsUser::enter(dir.ident)?;
        let (fd, st) = match open_regular(dir, name)? {
            Ok(opened) => opened,
            Err(not_regular) => return Ok(not_regular),
        };
        if st.st_size as u64 > cap {
            return Ok(Capped::TooLarge(st.st_size as u64));
        }
        // One read of size + 1 bytes usually returns the whole file (a short read means end of
        // file, so no second read is needed); a file that grew is read on, never past cap + 1.
        let want = (st.st_size as u64 + 1).min(cap + 1) as usize;
        let mut buf = vec![0u8; want];
        let n = nix::unistd::read(fd.as_raw_fd(), &mut buf).map_err(io_err)?;
        buf.truncate(n);
        if n == want {
            let mut file = std::fs::File::from(fd);
            (&mut file).take(cap + 1 - n as u64).read_to_end(&mut buf)?;
        }
        if buf.len() as u64 > cap {
            return Ok(Capped::TooLarge(buf.len() as u64));
        }
        Ok(Capped::Data(buf))
    }

    fn read_from(&self, dir: &Dir, name: &OsStr, offset: u64, len: u64) -> io::Result<Capped> {
        let _id = AsUser::enter(dir.ident)?;
        let fd = match open_regular(dir, name)? {
            Ok((fd, _)) => fd,
            Err(not_regular) => return Ok(not_regular),
        };
        let mut file = std::fs::File::from(fd);
        std::io::Seek::seek(&mut file, std::io::SeekFrom::Start(offset))?;
        let mut buf = Vec::new();
        file.take(len).read_to_end(&mut buf)?;
        Ok(Capped::Data(buf))
    }

    fn create_file(&self, dir: &Dir, name: &OsStr, data: &[u8], m: u32) -> io::Result<()> {
        let _id = AsUser::enter(dir.ident)?;
        let exact = !self.needs_chmod(m);
        if data.is_empty() && exact {
            // An empty regular file in one call; mknod never follows a link (EEXIST).
            return nix::sys::stat::mknodat(Some(dir.fd.as_raw_fd()), name, SFlag::S_IFREG, mode(m), 0).map_err(io_err);
        }
        let flags = OFlag::O_WRONLY | OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
        let fd = owned(openat(Some(dir.fd.as_raw_fd()), name, flags, mode(if exact { m } else { 0o600 })).map_err(io_err)?);
        if !exact {
            fchmod(fd.as_raw_fd(), mode(m)).map_err(io_err)?;
        }
        let mut file = std::fs::File::from(fd);
        file.write_all(data)
    }

    fn append_file(&self, dir: &Dir, name: &OsStr, data: &[u8], m: u32) -> io::Result<()> {
        let _id = AsUser::enter(dir.ident)?;
        let base = OFlag::O_WRONLY | OFlag::O_APPEND | OFlag::O_NOFOLLOW | OFlag::O_NONBLOCK | OFlag::O_CLOEXEC | OFlag::O_NOCTTY;
        let dfd = Some(dir.fd.as_raw_fd());
        let (fd, created) = match openat(dfd, name, base | OFlag::O_CREAT | OFlag::O_EXCL, mode(0o600)) {
            Ok(fd) => (owned(fd), true),
            Err(Errno::EEXIST) => (owned(openat(dfd, name, base, Mode::empty()).map_err(io_err)?), false),
            Err(e) => return Err(io_err(e)),
        };
        let st = fstat(fd.as_raw_fd()).map_err(io_err)?;
        let kind = kind_of(&st);
        if kind != Kind::File {
            return Err(io::Error::new(io::ErrorKind::InvalidInput, format!("is a {}, not a regular file", kind.describe())));
        }
        if created {
            fchmod(fd.as_raw_fd(), mode(m)).map_err(io_err)?;
        }
        let mut file = std::fs::File::from(fd);
        file.write_all(data)
    }

    fn sync_file(&self, dir: &Dir, name: &OsStr) -> io::Result<()> {
        let _id = AsUser::enter(dir.ident)?;
        let flags = OFlag::O_RDONLY | OFlag::O_NOFOLLOW | OFlag::O_NONBLOCK | OFlag::O_CLOEXEC | OFlag::O_NOCTTY;
        let fd = owned(openat(Some(dir.fd.as_raw_fd()), name, flags, Mode::empty()).map_err(io_err)?);
        nix::unistd::fsync(fd.as_raw_fd()).map_err(io_err)
    }

    fn mkdir(&self, dir: &Dir, name: &OsStr, m: u32) -> io::Result<()> {
        let _id = AsUser::enter(dir.ident)?;
        if !self.needs_chmod(m) {
            return mkdirat(Some(dir.fd.as_raw_fd()), name, mode(m)).map_err(io_err);
        }
        mkdirat(Some(dir.fd.as_raw_fd()), name, mode(0o700)).map_err(io_err)?;
        self.chmod(dir, name, m)
    }

    fn mkfifo(&self, dir: &Dir, name: &OsStr, m: u32) -> io::Result<()> {
        let _id = AsUser::enter(dir.ident)?;
        if !self.needs_chmod(m) {
            return mkfifoat(Some(dir.fd.as_raw_fd()), name, mode(m)).map_err(io_err);
        }
        mkfifoat(Some(dir.fd.as_raw_fd()), name, mode(0o600)).map_err(io_err)?;
        self.chmod(dir, name, m)
    }

    fn chown(&self, dir: &Dir, name: &OsStr, uid: u32, gid: u32) -> io::Result<()> {
        let _id = AsUser::enter(dir.ident)?;
        fchownat(
            Some(dir.fd.as_raw_fd()),
            name,
            Some(Uid::from_raw(uid)),
            Some(Gid::from_raw(gid)),
            nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW,
        )
        .map_err(io_err)
    }

    fn open_node(&self, dir: &Dir, name: &OsStr) -> io::Result<Node> {
        let flags = OFlag::O_PATH | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
        let fd = if name == "." {
            // The directory itself: its own descriptor, with no permission to look inside.
            dir.fd.try_clone()?
        } else {
            owned(lookup(dir.ident, || openat(Some(dir.fd.as_raw_fd()), name, flags, Mode::empty()).map_err(io_err))?)
        };
        let st = fstat(fd.as_raw_fd()).map_err(io_err)?;
        let path = if name == "." { dir.path.clone() } else { dir.child(name) };
        Ok(Node { fd, path, ident: dir.ident, meta: meta_of(&st) })
    }

    fn enter_node(&self, node: &Node) -> io::Result<Dir> {
        // Relative to the node's own descriptor: the same inode, or ENOTDIR.
        let fd = lookup(node.ident, || openat(Some(node.fd.as_raw_fd()), ".", NOFOLLOW_DIR, Mode::empty()).map_err(io_err))?;
        Ok(Dir { fd: owned(fd), path: node.path.clone(), ident: node.ident })
    }

    fn chown_node(&self, node: &Node, uid: u32, gid: u32) -> io::Result<()> {
        let _id = AsUser::enter(node.ident)?;
        fchownat(
            Some(node.fd.as_raw_fd()),
            "",
            Some(Uid::from_raw(uid)),
            Some(Gid::from_raw(gid)),
            nix::fcntl::AtFlags::AT_EMPTY_PATH | nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW,
        )
        .map_err(io_err)
    }

    fn chmod(&self, dir: &Dir, name: &OsStr, m: u32) -> io::Result<()> {
        let _id = AsUser::enter(dir.ident)?;
        fchmodat_nofollow(dir.fd.as_raw_fd(), name, m)
    }

    fn rename(&self, from_dir: &Dir, from: &OsStr, to_dir: &Dir, to: &OsStr, how: RenameMode) -> io::Result<()> {
        if from_dir.ident != to_dir.ident {
            return Err(io::Error::new(io::ErrorKind::InvalidInput, "rename between directories opened with different identities"));
        }
        let _id = AsUser::enter(from_dir.ident)?;
        let flags = match how {
            RenameMode::NoReplace => RenameFlags::RENAME_NOREPLACE,
            RenameMode::Exchange => RenameFlags::RENAME_EXCHANGE,
            RenameMode::Replace => RenameFlags::empty(),
        };
        renameat2(Some(from_dir.fd.as_raw_fd()), from, Some(to_dir.fd.as_raw_fd()), to, flags).map_err(io_err)
    }

    fn link(&self, from_dir: &Dir, from: &OsStr, to_dir: &Dir, to: &OsStr) -> io::Result<()> {
        if from_dir.ident != to_dir.ident {
            return Err(io::Error::new(io::ErrorKind::InvalidInput, "link between directories opened with different identities"));
        }
        let _id = AsUser::enter(from_dir.ident)?;
        nix::unistd::linkat(Some(from_dir.fd.as_raw_fd()), from, Some(to_dir.fd.as_raw_fd()), to, nix::fcntl::AtFlags::empty())
            .map_err(io_err)
    }

    fn unlink(&self, dir: &Dir, name: &OsStr) -> io::Result<()> {
        let _id = AsUser::enter(dir.ident)?;
        unlinkat(Some(dir.fd.as_raw_fd()), name, UnlinkatFlags::NoRemoveDir).map_err(io_err)
    }

    fn rmdir(&self, dir: &Dir, name: &OsStr) -> io::Result<()> {
        let _id = AsUser::enter(dir.ident)?;
        unlinkat(Some(dir.fd.as_raw_fd()), name, UnlinkatFlags::RemoveDir).map_err(io_err)
    }

    fn write_fifo(&self, dir: &Dir, name: &OsStr, data: &[u8]) -> io::Result<()> {
        let _id = AsUser::enter(dir.ident)?;
        let flags = OFlag::O_WRONLY | OFlag::O_NONBLOCK | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC | OFlag::O_NOCTTY;
        let fd = owned(openat(Some(dir.fd.as_raw_fd()), name, flags, Mode::empty()).map_err(io_err)?);
        let st = fstat(fd.as_raw_fd()).map_err(io_err)?;
        if kind_of(&st) != Kind::Fifo {
            return Err(io::Error::new(io::ErrorKind::InvalidInput, "not a FIFO"));
        }
        let mut file = std::fs::File::from(fd);
        file.write_all(data)
    }

    fn stat(&self, dir: &Dir, name: &OsStr) -> io::Result<Meta> {
        // Following a link is done as the directory's owner (the user, in the volume): it
        // reaches only what that user can, and enters the user's 0700 directories where root
        // without CAP_DAC_READ_SEARCH cannot (Kubernetes' root mode).
        let _id = AsUser::enter(dir.ident)?;
        let st = fstatat(Some(dir.fd.as_raw_fd()), name, nix::fcntl::AtFlags::empty()).map_err(io_err)?;
        Ok(meta_of(&st))
    }

    fn open_fifo(&self, dir: &Dir, name: &OsStr) -> io::Result<FifoReader> {
        let _id = AsUser::enter(dir.ident)?;
        let base = OFlag::O_NONBLOCK | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC | OFlag::O_NOCTTY;
        let rd = owned(openat(Some(dir.fd.as_raw_fd()), name, base | OFlag::O_RDONLY, Mode::empty()).map_err(io_err)?);
        if kind_of(&fstat(rd.as_raw_fd()).map_err(io_err)?) != Kind::Fifo {
            return Err(io::Error::new(io::ErrorKind::InvalidInput, "not a FIFO"));
        }
        let wr = owned(openat(Some(dir.fd.as_raw_fd()), name, base | OFlag::O_WRONLY, Mode::empty()).map_err(io_err)?);
        Ok(FifoReader::new(rd, wr))
    }

    fn shareable(&self) -> Option<&(dyn Fs + Sync)> {
        Some(self)
    }

    fn try_lock(&self, dir: &Dir, name: &OsStr) -> io::Result<Option<FileLock>> {
        let _id = AsUser::enter(dir.ident)?;
        let flags = OFlag::O_RDONLY | OFlag::O_NOFOLLOW | OFlag::O_NONBLOCK | OFlag::O_CLOEXEC | OFlag::O_NOCTTY;
        let fd = owned(openat(Some(dir.fd.as_raw_fd()), name, flags, Mode::empty()).map_err(io_err)?);
        if !matches!(kind_of(&fstat(fd.as_raw_fd()).map_err(io_err)?), Kind::File | Kind::Dir) {
            return Err(io::Error::new(io::ErrorKind::InvalidInput, "not a regular file or a directory"));
        }
        // SAFETY: plain system call on a descriptor we own.
        let r = unsafe { nix::libc::flock(fd.as_raw_fd(), nix::libc::LOCK_EX | nix::libc::LOCK_NB) };
        if r == 0 {
            return Ok(Some(FileLock::new(fd)));
        }
        match Errno::last() {
            Errno::EWOULDBLOCK => Ok(None),
            e => Err(io_err(e)),
        }
    }

    fn lock_held(&self, dir: &Dir, name: &OsStr) -> io::Result<bool> {
        let _id = AsUser::enter(dir.ident)?;
        let flags = OFlag::O_RDONLY | OFlag::O_NOFOLLOW | OFlag::O_NONBLOCK | OFlag::O_CLOEXEC | OFlag::O_NOCTTY;
        let fd = match openat(Some(dir.fd.as_raw_fd()), name, flags, Mode::empty()) {
            Ok(fd) => owned(fd),
            Err(Errno::ENOENT) => return Ok(false),
            Err(e) => return Err(io_err(e)),
        };
        // SAFETY: flock is plain old data; zeroed is a valid initial value.
        let mut fl: nix::libc::flock = unsafe { std::mem::zeroed() };
        fl.l_type = nix::libc::F_WRLCK as _;
        fl.l_whence = nix::libc::SEEK_SET as _;
        nix::fcntl::fcntl(fd.as_raw_fd(), nix::fcntl::FcntlArg::F_GETLK(&mut fl)).map_err(io_err)?;
        Ok(i32::from(fl.l_type) != nix::libc::F_UNLCK)
    }

    fn euid(&self) -> u32 {
        nix::unistd::geteuid().as_raw()
    }

    fn hold_identity(&self, dir: &Dir) -> io::Result<super::IdentityHold> {
        AsUser::enter(dir.ident).map(|g| super::IdentityHold(Some(g)))
    }
}

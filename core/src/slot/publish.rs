//! Building and publishing one gateway slot in the scandir.
//!
//! A slot is built completely under a dot-name (which s6-svscan never scans), then published
//! by a single rename. A scanner that looks at any moment sees either no slot, the old slot,
//! or the complete new one.
//!
//! Nothing in a slot belongs to, or is writable by, the hermes user (s6-supervise, as root,
//! creates and renames files in `supervise/` without `O_NOFOLLOW`: a user who could write
//! there could make root overwrite any file). The user controls its gateways through exactly
//! what s6's own `s6-svperms -G` grants: `supervise/` root-owned, searchable by the group, and
//! the `control` FIFO writable by the group; `status` and `lock` are world-readable files
//! s6-supervise writes itself. `event/` is not delegated (a group that may create entries
//! there can plant a link too): s6-supervise creates it, root-only.

use crate::config::Config;
use crate::fs::{remove_tree, Dir, Fs, Kind, RenameMode};
use crate::name::{slot_name, staging_name};
use crate::slot::render::{self, Privilege};
use std::ffi::{OsStr, OsString};
use std::io;

pub use super::layout::*;

fn os(s: &str) -> &OsStr {
    OsStr::new(s)
}

/// Who may control a service: the owner (root, or the unprivileged renderer) and, when root
/// renders, the hermes group.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Access {
    pub group: Option<u32>,
}

impl Access {
    pub fn for_renderer(euid: u32, cfg: &Config) -> Access {
        Access { group: (euid == 0).then_some(cfg.gid) }
    }
    fn lock_mode(self) -> u32 {
        if self.group.is_some() {
            0o640
        } else {
            0o600
        }
    }
    fn modes(self) -> (u32, u32) {
        match self.group {
            Some(_) => (SUPERVISE_MODE, CONTROL_MODE),
            None => (PRIVATE_SUPERVISE_MODE, PRIVATE_CONTROL_MODE),
        }
    }
}

/// What publishing did to the name in the scandir.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Published {
    /// No slot existed.
    New,
    /// A slot directory existed and was swapped out atomically (its supervisor, if any, keeps
    /// the old inode until a prune).
    Replaced,
    /// A non-directory (e.g. a planted symlink) stood at the name; it was unlinked, not followed.
    ReplacedNonDir,
}

/// Whether `made` (creating `name`) created it; an entry already there is accepted only if it
/// is of `kind` (never followed: `lstat`).
fn made_or_found(fs: &dyn Fs, svc: &Dir, name: &str, kind: Kind, made: io::Result<()>) -> io::Result<bool> {
    match made {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => match fs.lstat(svc, os(name))?.kind {
            k if k == kind => Ok(false),
            _ => Err(io::Error::new(io::ErrorKind::AlreadyExists, format!("{name} exists and is not a {}", kind.describe()))),
        },
        Err(e) => Err(e),
    }
}

/// Make `<base>supervise/` and `<base>supervise/control` (relative to `svc`) exist with the
/// owner and modes of `access`, creating what is missing and correcting what is there (an
/// already supervised static service). `base` is `""` or `"log/"`; `svc` and `log/` are
/// root's, so those paths cannot lead through a link the user planted.
fn grant(fs: &dyn Fs, svc: &Dir, base: &str, access: Access) -> io::Result<()> {
    let (sup_mode, ctl_mode) = access.modes();
    let sup = format!("{base}supervise");
    let created = made_or_found(fs, svc, &sup, Kind::Dir, fs.mkdir(svc, os(&sup), sup_mode))?;
    let ctl = format!("{sup}/control");
    let ctl_created = made_or_found(fs, svc, &ctl, Kind::Fifo, fs.mkfifo(svc, os(&ctl), ctl_mode))?;
    if let Some(gid) = access.group {
        fs.chown(svc, os(&ctl), 0, gid)?;
        fs.chown(svc, os(&sup), 0, gid)?;
    }
    // A fresh entry already has its mode (the binaries run with umask 0); an existing one
    // (made by s6-supervise, 0700/0600) is corrected.
    if !ctl_created {
        fs.chmod(svc, os(&ctl), ctl_mode)?;
    }
    if !created {
        fs.chmod(svc, os(&sup), sup_mode)?;
    }
    Ok(())
}

/// Give the group control of `svc` (and of `svc/log` when it is a directory), as
/// `s6-svperms -G` would: used for slots and for the static services.
pub fn grant_control(fs: &dyn Fs, svc: &Dir, access: Access) -> io::Result<()> {
    grant(fs, svc, "", access)?;
    match fs.lstat(svc, os("log")) {
        Ok(m) if m.kind == Kind::Dir => grant(fs, svc, "log/", access),
        Ok(_) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
    }
}

/// Where [`Common`] keeps its copies: a dot-name, so s6-svscan never takes it for a service.
pub const COMMON_DIR: &str = ".hermes-s6-common";

/// One copy of the files every slot has the same ([`render::SHARED`], and an empty `down`),
/// made by the boot pass in the root-owned scandir, which links them into each slot it builds:
/// a link is a directory entry, not a new inode with its data, and on a disk-backed scandir
/// (a plain `docker run` keeps `/run` on the container's disk) those were most of the pass's
/// cost. Root-owned, read-only to others, written by this process: what it links is what
/// [`render::files`] renders (an unchanged slot stays unchanged). Each link falls back to a
/// fresh file (a file system without links, a link count at its limit).
pub struct Common {
    dir: Dir,
}

impl Common {
    /// Make a fresh copy (whatever an earlier pass left there goes first).
    pub fn prepare(fs: &dyn Fs, cfg: &Config, scandir: &Dir) -> io::Result<Common> {
        let _ = remove_tree(fs, scandir, os(COMMON_DIR));
        fs.mkdir(scandir, os(COMMON_DIR), 0o700)?;
        let dir = fs.open_dir(scandir, os(COMMON_DIR))?;
        let built = (|| {
            for f in render::files(cfg, crate::name::DEFAULT_PROFILE, Privilege::for_renderer(fs.euid(), cfg), None)
                .into_iter()
                .filter(|f| render::SHARED.contains(&f.path))
            {
                fs.create_file(&dir, os(f.path), &f.data, f.mode)?;
            }
            fs.create_file(&dir, os("down"), b"", DATA_MODE)
        })();
        match built {
            Ok(()) => Ok(Common { dir }),
            Err(e) => {
                Common::remove(fs, scandir);
                Err(e)
            }
        }
    }

    /// Remove the copy (the slots keep their links).
    pub fn remove(fs: &dyn Fs, scandir: &Dir) {
        let _ = remove_tree(fs, scandir, os(COMMON_DIR));
    }

    /// `scandir/to` as a link of the copy's `name`, else a fresh file with `data` and `mode`.
    fn place(&self, fs: &dyn Fs, scandir: &Dir, name: &str, to: &str, data: &[u8], mode: u32) -> io::Result<()> {
        match fs.link(&self.dir, os(name), scandir, os(to)) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Err(e),
            Err(_) => fs.create_file(scandir, os(to), data, mode),
        }
    }
}

/// Write the slot's files into its empty staging directory (a root-owned dot-name in
/// the root-owned scandir), by paths relative to the scandir; the shared ones linked from
/// `common` when given.
fn fill(
    fs: &dyn Fs,
    cfg: &Config,
    scandir: &Dir,
    profile: &str,
    start: bool,
    port: Option<u16>,
    common: Option<&Common>,
) -> io::Result<()> {
    let euid = fs.euid();
    let stage = &staging_name(profile);
    let p = |rel: &str| format!("{stage}/{rel}");
    if !start {
        match common {
            Some(c) => c.place(fs, scandir, "down", &p("down"), b"", DATA_MODE)?,
            None => fs.create_file(scandir, os(&p("down")), b"", DATA_MODE)?,
        }
    }
    fs.mkdir(scandir, os(&p("log")), SLOT_DIR_MODE)?;
    for f in render::files(cfg, profile, Privilege::for_renderer(euid, cfg), port) {
        match common.filter(|_| render::SHARED.contains(&f.path)) {
            Some(c) => c.place(fs, scandir, f.path, &p(f.path), &f.data, f.mode)?,
            None => fs.create_file(scandir, os(&p(f.path)), &f.data, f.mode)?,
        }
    }
    let access = Access::for_renderer(euid, cfg);
    // data/ is the one name s6 promises never to interpret: the per-profile lock lives there.
    fs.mkdir(scandir, os(&p(DATA_DIR)), SLOT_DIR_MODE)?;
    fs.create_file(scandir, os(&p(LOCK_FILE)), b"", access.lock_mode())?;
    if let Some(gid) = access.group {
        fs.chown(scandir, os(&p(LOCK_FILE)), 0, gid)?;
    }
    let stage_dir = fs.open_dir(scandir, os(stage))?;
    grant_control(fs, &stage_dir, access)
}

/// What stands at a profile's slot name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Live {
    Absent,
    /// Something that is not a directory (a planted link): replaced, never followed.
    NotDir,
    /// A directory no supervisor holds (a leftover): safe to replace.
    Unsupervised,
    /// A supervised slot: whether its files are what would be rendered now, and whether its
    /// gateway is up.
    Supervised {
        unchanged: bool,
        up: bool,
    },
    /// A directory that is not ours (see [`super::trust`]): someone else published it, or it
    /// was tampered with. Never kept, live or not; `supervised` says whether a supervisor
    /// holds it (it must be disarmed and torn down first).
    Foreign {
        why: String,
        supervised: bool,
    },
}

/// Look at `gateway-<profile>` as it stands; `port` is what it would be rendered with now.
pub fn inspect(fs: &dyn Fs, cfg: &Config, scandir: &Dir, profile: &str, port: Option<u16>) -> io::Result<Live> {
    let name = slot_name(profile);
    match fs.lstat(scandir, os(&name)) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Live::Absent),
        Err(e) => return Err(e),
        Ok(m) if m.kind != Kind::Dir => return Ok(Live::NotDir),
        Ok(_) => {}
    }
    let slot = fs.open_dir(scandir, os(&name))?;
    let supervised = crate::s6::svstat::supervisor_alive(fs, &slot).unwrap_or(false);
    if let Some(why) = super::trust::foreign(fs, cfg, scandir, os(&name), fs.euid())? {
        return Ok(Live::Foreign { why, supervised });
    }
    if !supervised {
        return Ok(Live::Unsupervised);
    }
    let up = matches!(crate::s6::svstat::read(fs, &slot), Ok(Some(st)) if st.is_up());
    Ok(Live::Supervised { unchanged: unchanged(fs, cfg, &slot, profile, port), up })
}

/// Whether a slot's files, owners and modes are exactly what would be rendered now.
fn unchanged(fs: &dyn Fs, cfg: &Config, slot: &Dir, profile: &str, port: Option<u16>) -> bool {
    let euid = fs.euid();
    let same_file = |f: &render::RenderedFile| {
        fs.lstat(slot, os(f.path)).is_ok_and(|m| m.kind == Kind::File && m.mode == f.mode && m.uid == euid)
            && matches!(fs.read_capped(slot, os(f.path), 64 * 1024), Ok(crate::fs::Capped::Data(d)) if d == f.data)
    };
    let access = Access::for_renderer(euid, cfg);
    let (sup_mode, ctl_mode) = access.modes();
    let gid = access.group;
    let same_control = |base: &str| {
        let sup = fs.lstat(slot, os(&format!("{base}supervise")));
        let ctl = fs.lstat(slot, os(&format!("{base}supervise/control")));
        sup.is_ok_and(|m| m.kind == Kind::Dir && m.mode == sup_mode && gid.is_none_or(|g| m.gid == g && m.uid == 0))
            && ctl.is_ok_and(|m| m.kind == Kind::Fifo && m.mode == ctl_mode && gid.is_none_or(|g| m.gid == g && m.uid == 0))
    };
    let same_lock = fs
        .lstat(slot, os(LOCK_FILE))
        .is_ok_and(|m| m.kind == Kind::File && m.mode == access.lock_mode() && gid.is_none_or(|g| m.gid == g && m.uid == 0));
    render::files(cfg, profile, Privilege::for_renderer(euid, cfg), port).iter().all(same_file)
        && same_control("")
        && same_control("log/")
        && same_lock
}

/// Make a live slot's `down` file say what a fresh one would (it is read when its supervisor
/// next starts); the running gateway is left as it is.
pub fn set_down(fs: &dyn Fs, scandir: &Dir, profile: &str, start: bool) -> io::Result<()> {
    let slot = fs.open_dir(scandir, os(&slot_name(profile)))?;
    match (start, fs.lstat(&slot, os("down"))) {
        (true, Ok(_)) => fs.unlink(&slot, os("down")),
        (false, Err(e)) if e.kind() == io::ErrorKind::NotFound => fs.create_file(&slot, os("down"), b"", DATA_MODE),
        _ => Ok(()),
    }
}

/// Make an empty staging directory, clearing any leftover. A leftover that cannot be removed
/// is moved aside under another dot-name (still invisible to the scanner).
fn reset_staging(fs: &dyn Fs, scandir: &Dir, staging: &OsStr) -> io::Result<()> {
    match fs.mkdir(scandir, staging, SLOT_DIR_MODE) {
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
        other => return other,
    }
    let _ = remove_tree(fs, scandir, staging);
    match fs.mkdir(scandir, staging, SLOT_DIR_MODE) {
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
            let mut aside = staging.to_os_string();
            aside.push(format!(".stale-{}", stamp_ns()));
            fs.rename(scandir, staging, scandir, &aside, RenameMode::NoReplace)?;
            fs.mkdir(scandir, staging, SLOT_DIR_MODE)
        }
        other => other,
    }
}

/// A name no earlier leftover can have: pid and a per-process counter.
fn stamp_ns() -> String {
    static N: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    format!("{}-{}", std::process::id(), N.fetch_add(1, std::sync::atomic::Ordering::Relaxed))
}

/// Build `gateway-<profile>` (with `down` unless `start`; `port` its assigned
/// `API_SERVER_PORT`) and publish it with one rename.
/// On failure the staging directory is removed and the previous slot, if any, is untouched.
pub fn publish(fs: &dyn Fs, cfg: &Config, scandir: &Dir, profile: &str, start: bool, port: Option<u16>) -> io::Result<Published> {
    publish_with(fs, cfg, scandir, profile, start, port, None)
}

/// [`publish`], linking the shared files from `common` (the boot pass's many slots).
pub fn publish_with(
    fs: &dyn Fs,
    cfg: &Config,
    scandir: &Dir,
    profile: &str,
    start: bool,
    port: Option<u16>,
    common: Option<&Common>,
) -> io::Result<Published> {
    let staging = OsString::from(staging_name(profile));
    let target = OsString::from(slot_name(profile));
    reset_staging(fs, scandir, &staging)?;
    let built = (|| {
        fill(fs, cfg, scandir, profile, start, port, common)?;
        swap_into_place(fs, scandir, &staging, &target)
    })();
    match built {
        Ok(Published::New) => Ok(Published::New),
        Ok(p) => {
            // After an exchange the staging name holds the old slot: it goes now.
            let _ = remove_tree(fs, scandir, &staging);
            Ok(p)
        }
        Err(e) => {
            let _ = remove_tree(fs, scandir, &staging);
            Err(e)
        }
    }
}

fn swap_into_place(fs: &dyn Fs, scandir: &Dir, staging: &OsStr, target: &OsStr) -> io::Result<Published> {
    match fs.rename(scandir, staging, scandir, target, RenameMode::NoReplace) {
        Ok(()) => return Ok(Published::New),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(e),
    }
    match fs.lstat(scandir, target) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            fs.rename(scandir, staging, scandir, target, RenameMode::NoReplace)?;
            Ok(Published::New)
        }
        Err(e) => Err(e),
        Ok(m) if m.kind == Kind::Dir => {
            fs.rename(scandir, staging, scandir, target, RenameMode::Exchange)?;
            Ok(Published::Replaced)
        }
        Ok(_) => {
            // A symlink (perhaps to a directory outside the scandir), file or FIFO: remove the
            // entry itself, never what it points to.
            fs.unlink(scandir, target)?;
            fs.rename(scandir, staging, scandir, target, RenameMode::NoReplace)?;
            Ok(Published::ReplacedNonDir)
        }
    }
}

/// Whether a scandir entry is a staging leftover: `.gateway-*.tmp*` (current and `.stale-`
/// copies) or the pre-dot-name `gateway-*.tmp` that older releases left behind.
pub fn is_staging_leftover(name: &OsStr) -> bool {
    let Some(name) = name.to_str() else { return false };
    let dotted = name.strip_prefix(".gateway-").is_some_and(|rest| rest.contains(".tmp"));
    let legacy = name.starts_with("gateway-") && name.ends_with(".tmp");
    dotted || legacy
}

/// What a staging sweep did.
#[derive(Debug, Default)]
pub struct Swept {
    pub removed: Vec<OsString>,
    pub failed: Vec<(OsString, io::Error)>,
}

/// Whether an s6-supervise still runs in `scandir/<name>` or its `log/`.
fn supervised(fs: &dyn Fs, scandir: &Dir, name: &OsStr) -> bool {
    let Ok(d) = fs.open_dir(scandir, name) else { return false };
    let log = fs.open_dir(&d, OsStr::new("log"));
    crate::s6::svstat::supervisor_alive(fs, &d).unwrap_or(true)
        || log.is_ok_and(|l| crate::s6::svstat::supervisor_alive(fs, &l).unwrap_or(true))
}

/// Remove every staging leftover, including root-owned ones from an interrupted pass. A
/// teardown's directory is the teardown's (a live one, or one the registrar resumes), and a
/// directory a supervisor still runs in is never removed under it (the supervisor would
/// live on in a deleted directory, its gateway with it).
pub fn sweep_staging(fs: &dyn Fs, scandir: &Dir) -> io::Result<Swept> {
    let mut removed = Vec::new();
    let mut failed = Vec::new();
    let mut names: Vec<OsString> =
        fs.list(scandir)?.into_iter().map(|(n, _)| n).filter(|n| is_staging_leftover(n) && !super::teardown::is_aside(n)).collect();
    names.sort();
    for name in names {
        if supervised(fs, scandir, &name) {
            failed.push((name, io::Error::other("an s6-supervise still runs in it; left in place")));
            continue;
        }
        match remove_tree(fs, scandir, &name) {
            Ok(()) => removed.push(name),
            Err(e) => failed.push((name, e)),
        }
    }
    Ok(Swept { removed, failed })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn leftover_patterns() {
        for yes in [".gateway-a.tmp", ".gateway-a.tmp.stale-123", "gateway-coder.tmp"] {
            assert!(is_staging_leftover(OsStr::new(yes)), "{yes}");
        }
        for no in ["gateway-a", ".s6-svscan", "gateway-tmp", ".gateway-a", "other.tmp"] {
            assert!(!is_staging_leftover(OsStr::new(no)), "{no}");
        }
    }
}

//! Building and publishing one gateway slot in the scandir.
//!
//! A slot is built completely under a dot-name (which s6-svscan never scans), then published
//! by a single rename. Everything in the staging directory is root's except the seeded
//! `supervise/` skeleton, which is handed to the user only after its contents exist. A scanner that looks at any moment sees either no slot, the old slot,
//! or the complete new one.

use crate::config::Config;
use crate::profile_name::{slot_name, staging_name};
use crate::render;
use crate::safe_fs::{chown_best_effort, remove_tree, Dir, Fs, Kind, RenameMode};
use std::ffi::{OsStr, OsString};
use std::io;

/// s6-supervise's own modes for these entries; pre-creating them owned by the hermes user is
/// what lets that user run `s6-svc`/`s6-svstat`/`s6-svwait` on a root-run supervisor (s6 reuses
/// an existing skeleton untouched).
pub const EVENT_MODE: u32 = 0o3730;
pub const SUPERVISE_MODE: u32 = 0o755;
pub const CONTROL_MODE: u32 = 0o660;
pub const SCRIPT_MODE: u32 = 0o755;
pub const DATA_MODE: u32 = 0o644;
pub const SLOT_DIR_MODE: u32 = 0o755;

fn os(s: &str) -> &OsStr {
    OsStr::new(s)
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

/// Create one entry of the supervise skeleton unless it exists, give it to `owner`, and set
/// its final mode when creation could not (mkdir drops setgid). chown comes before chmod
/// because chown may clear set-id bits. Returns whether it was created.
fn seed_entry(fs: &dyn Fs, dir: &Dir, path: &str, kind: Entry, owner: (u32, u32)) -> io::Result<bool> {
    let made = match kind {
        Entry::EventDir => fs.mkdir(dir, os(path), EVENT_MODE & !0o6000),
        Entry::SuperviseDir => fs.mkdir(dir, os(path), SUPERVISE_MODE),
        Entry::Control => fs.mkfifo(dir, os(path), CONTROL_MODE),
    };
    match made {
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => return Ok(false),
        other => other?,
    }
    if kind == Entry::SuperviseDir {
        return Ok(true); // chowned by the caller once its contents exist
    }
    chown_best_effort(fs, dir, os(path), owner.0, owner.1)?;
    if kind == Entry::EventDir {
        fs.chmod(dir, os(path), EVENT_MODE)?;
    }
    Ok(true)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Entry {
    EventDir,
    SuperviseDir,
    Control,
}

/// Seed `event/`, `supervise/`, `supervise/event/`, `supervise/control` in `svc` and, when
/// `svc/log/` is a directory, the same there. Idempotent: existing entries are not touched.
///
/// Paths below `svc` are used directly (no descriptor per level): `svc` and `log/` are
/// root's, and `supervise/` is handed to the user only after its contents are made, so no
/// component of those paths can be a link the user planted while this runs.
pub fn seed_supervise_skeleton(fs: &dyn Fs, svc: &Dir, owner: (u32, u32)) -> io::Result<()> {
    seed_one(fs, svc, "", owner)?;
    match fs.lstat(svc, os("log")) {
        Ok(m) if m.kind == Kind::Dir => seed_one(fs, svc, "log/", owner),
        Ok(_) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
    }
}

fn seed_one(fs: &dyn Fs, svc: &Dir, base: &str, owner: (u32, u32)) -> io::Result<()> {
    let sup = format!("{base}supervise");
    let made_sup = seed_entry(fs, svc, &sup, Entry::SuperviseDir, owner)?;
    if !made_sup && fs.lstat(svc, os(&sup))?.kind != Kind::Dir {
        return Err(io::Error::new(io::ErrorKind::AlreadyExists, format!("{sup} exists and is not a directory")));
    }
    seed_entry(fs, svc, &format!("{base}event"), Entry::EventDir, owner)?;
    if made_sup {
        seed_entry(fs, svc, &format!("{sup}/event"), Entry::EventDir, owner)?;
        seed_entry(fs, svc, &format!("{sup}/control"), Entry::Control, owner)?;
        chown_best_effort(fs, svc, os(&sup), owner.0, owner.1)
    } else {
        // An existing supervise/ may be the user's: go through it one level at a time.
        let d = fs.open_dir(svc, os(&sup))?;
        seed_entry(fs, &d, "event", Entry::EventDir, owner)?;
        seed_entry(fs, &d, "control", Entry::Control, owner).map(|_| ())
    }
}

/// Write the slot's files into the empty staging directory `stage` (a root-owned dot-name in
/// the root-owned scandir), by paths relative to the scandir.
fn fill(fs: &dyn Fs, cfg: &Config, scandir: &Dir, stage: &str, profile: &str, start: bool) -> io::Result<()> {
    let p = |rel: &str| format!("{stage}/{rel}");
    fs.create_file(scandir, os(&p("type")), render::TYPE.as_bytes(), DATA_MODE)?;
    fs.create_file(scandir, os(&p("run")), render::run_script(cfg, profile).as_bytes(), SCRIPT_MODE)?;
    fs.create_file(scandir, os(&p("finish")), render::finish_script(cfg).as_bytes(), SCRIPT_MODE)?;
    if !start {
        fs.create_file(scandir, os(&p("down")), b"", DATA_MODE)?;
    }
    fs.mkdir(scandir, os(&p("log")), SLOT_DIR_MODE)?;
    fs.create_file(scandir, os(&p("log/run")), render::log_run_script(cfg, profile).as_bytes(), SCRIPT_MODE)?;
    let owner = (cfg.uid, cfg.gid);
    for base in ["", "log/"] {
        seed_one_at(fs, scandir, stage, base, owner)?;
    }
    Ok(())
}

/// The skeleton of a fresh slot, by paths relative to the scandir (see `seed_one`).
fn seed_one_at(fs: &dyn Fs, scandir: &Dir, stage: &str, base: &str, owner: (u32, u32)) -> io::Result<()> {
    let sup = format!("{stage}/{base}supervise");
    seed_entry(fs, scandir, &sup, Entry::SuperviseDir, owner)?;
    seed_entry(fs, scandir, &format!("{stage}/{base}event"), Entry::EventDir, owner)?;
    seed_entry(fs, scandir, &format!("{sup}/event"), Entry::EventDir, owner)?;
    seed_entry(fs, scandir, &format!("{sup}/control"), Entry::Control, owner)?;
    chown_best_effort(fs, scandir, os(&sup), owner.0, owner.1)
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

fn stamp_ns() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0)
}

/// Build `gateway-<profile>` (with `down` unless `start`) and publish it with one rename.
/// On failure the staging directory is removed and the previous slot, if any, is untouched.
pub fn publish(fs: &dyn Fs, cfg: &Config, scandir: &Dir, profile: &str, start: bool) -> io::Result<Published> {
    let staging = OsString::from(staging_name(profile));
    let target = OsString::from(slot_name(profile));
    reset_staging(fs, scandir, &staging)?;
    let built = (|| {
        fill(fs, cfg, scandir, &staging_name(profile), profile, start)?;
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

/// Remove every staging leftover, including root-owned ones from an interrupted pass.
pub fn sweep_staging(fs: &dyn Fs, scandir: &Dir) -> io::Result<Swept> {
    let mut removed = Vec::new();
    let mut failed = Vec::new();
    let mut names: Vec<OsString> = fs.list(scandir)?.into_iter().map(|(n, _)| n).filter(|n| is_staging_leftover(n)).collect();
    names.sort();
    for name in names {
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

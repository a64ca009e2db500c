//! Whether a `gateway-*` entry in the scandir is ours: published by this project's root side,
//! not by someone else (upstream's own service manager, a hand-made directory) and not
//! tampered with since.
//!
//! "Changed" (see [`super::publish::inspect`]) means a slot of ours whose files differ from
//! what would be rendered now (an older release, another configuration): a live one is left
//! alone. "Foreign" is stronger: root's `s6-supervise` runs on a tree the user could write, or
//! runs code we did not render, so it is never kept. Upstream seeds `supervise/` as the hermes
//! user's (0755): as uid 10000, `ln -s /etc/shadow <slot>/supervise/status.new` then
//! `s6-svc -u` makes root overwrite `/etc/shadow`; its run script decides privilege with
//! `id -u`, which fails open.
//!
//! A slot is ours when, walked without following anything:
//! - the slot and every entry in it belong to the renderer (root), none is a link, a device
//!   or a socket;
//! - nothing in it is writable by anyone else, except what our publish grants: the control
//!   FIFOs `supervise/control` and `log/supervise/control` (`root:hermes 0620`);
//!   directories s6-supervise makes for root's group (`event/`, `root:root 03730`) are
//!   writable by root's group only;
//! - its `run` is one we render (the `HERMES_S6_SUPERVISED_CHILD` export) and, rendered by
//!   root, `run` and `log/run` drop privilege unconditionally, never asking `id`.

use crate::config::Config;
use crate::fs::{remove_tree, Capped, Dir, Fs, Kind, Meta};
use std::ffi::OsStr;
use std::io;

/// More entries than any slot of ours has: a slot holding more is not ours (and the walk is
/// bounded whatever was planted).
const MAX_ENTRIES: usize = 256;
const MAX_DEPTH: usize = 4;
/// The start of the line every run script we render exports the supervised markers with
/// ([`super::render::SUPERVISED_ENV`]); upstream's own ends the line after the first marker.
pub const RUN_MARK: &str = "\nexport HERMES_S6_SUPERVISED_CHILD=1 HERMES_SUPERVISED_CHILD=1 ";

fn os(s: &str) -> &OsStr {
    OsStr::new(s)
}

/// Why the entry at `name` in the scandir is not ours; `None` when it is. `owner` is the uid
/// that renders slots (root in the container). A name that is not a directory is reported
/// too: it is never followed.
pub fn foreign(fs: &dyn Fs, cfg: &Config, scandir: &Dir, name: &OsStr, owner: u32) -> io::Result<Option<String>> {
    let m = fs.lstat(scandir, name)?;
    if m.kind != Kind::Dir {
        return Ok(Some(format!("it is a {}", m.kind.describe())));
    }
    if let Some(why) = entry_problem("the slot", &m, owner, false) {
        return Ok(Some(why));
    }
    let slot = fs.open_dir(scandir, name)?;
    let mut seen = 0;
    if let Some(why) = walk(fs, &slot, "", owner, 0, &mut seen)? {
        return Ok(Some(why));
    }
    Ok(content_problem(fs, cfg, &slot, owner))
}

/// What is wrong with one entry, `rel` being its path in the slot.
fn entry_problem(rel: &str, m: &Meta, owner: u32, control: bool) -> Option<String> {
    match m.kind {
        Kind::Symlink | Kind::Other => return Some(format!("{rel} is a {}", m.kind.describe())),
        _ => {}
    }
    if m.uid != owner {
        return Some(format!("{rel} belongs to uid {}", m.uid));
    }
    if m.mode & 0o002 != 0 {
        return Some(format!("{rel} is writable by anyone (mode {:o})", m.mode));
    }
    // Root's own group (s6-supervise's `event/`) is root; the unprivileged renderer's slots
    // have no one else to keep out.
    let group_write = m.mode & 0o020 != 0 && owner == 0 && m.gid != 0;
    if group_write && !(control && m.kind == Kind::Fifo && m.mode == super::publish::CONTROL_MODE) {
        return Some(format!("{rel} is writable by group {} (mode {:o})", m.gid, m.mode));
    }
    None
}

/// Every entry of a directory is looked at before any is entered: a reader who may not list
/// some directory (the hermes user, for `event/`) still sees what is wrong beside it.
fn walk(fs: &dyn Fs, dir: &Dir, prefix: &str, owner: u32, depth: usize, seen: &mut usize) -> io::Result<Option<String>> {
    let mut entries = fs.list(dir)?;
    entries.sort_by(|a, b| a.0.cmp(&b.0));
    let mut dirs = Vec::new();
    for (name, kind) in entries {
        *seen += 1;
        // Names the user may have planted: made safe for a terminal and a log line.
        let rel = format!("{prefix}{}", crate::escape::log_value(name.as_encoded_bytes()));
        if *seen > MAX_ENTRIES || depth > MAX_DEPTH {
            return Ok(Some(format!("it holds more than a slot of ours does (at {rel})")));
        }
        let m = match fs.lstat(dir, &name) {
            Ok(m) => m,
            Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
            Err(e) => return Err(e),
        };
        let control = name == "control" && (prefix == "supervise/" || prefix == "log/supervise/");
        if let Some(why) = entry_problem(&rel, &m, owner, control) {
            return Ok(Some(why));
        }
        if kind == Kind::Dir && m.kind == Kind::Dir {
            dirs.push((name, rel));
        }
    }
    for (name, rel) in dirs {
        let sub = fs.open_dir(dir, &name)?;
        if let Some(why) = walk(fs, &sub, &format!("{rel}/"), owner, depth + 1, seen)? {
            return Ok(Some(why));
        }
    }
    Ok(None)
}

fn script(fs: &dyn Fs, dir: &Dir, name: &str) -> Option<String> {
    match fs.read_capped(dir, os(name), 64 * 1024) {
        Ok(Capped::Data(d)) => String::from_utf8(d).ok(),
        _ => None,
    }
}

/// Whether the scripts are ones we render (see the module's documentation).
fn content_problem(fs: &dyn Fs, cfg: &Config, slot: &Dir, owner: u32) -> Option<String> {
    let Some(run) = script(fs, slot, "run") else { return Some("it has no readable run script".into()) };
    if !run.contains(RUN_MARK) {
        return Some("its run script was not rendered by hermes-s6".into());
    }
    let log_run = fs.open_dir(slot, os("log")).ok().and_then(|log| script(fs, &log, "run"));
    if owner == 0 {
        let drop = format!(" -u {uid} -g {gid} -G {gid} ", uid = cfg.uid, gid = cfg.gid);
        let drops = |s: &str| s.lines().any(|l| l.starts_with("exec /") && l.contains(&drop)) && !s.contains("$(id");
        if !drops(&run) {
            return Some("its run script does not always drop privilege".into());
        }
        if !log_run.as_deref().is_some_and(drops) {
            return Some("its log/run script does not always drop privilege".into());
        }
    }
    None
}

/// Make a foreign slot harmless before its supervisors are told anything (telling them makes
/// s6-supervise write its status files as root): the slot and its `supervise/`, `event/`
/// (and the same under `log/`) become root's alone, whatever the user planted in them goes
/// (links, `*.new`, anything s6-supervise does not keep there), and the scripts root would
/// run at the gateway's death (`finish`) or a restart (`run`) are removed. Every step goes
/// one component at a time, never following a link. What cannot be done is reported; the
/// teardown goes ahead anyway.
pub fn disarm(fs: &dyn Fs, scandir: &Dir, name: &OsStr) -> io::Result<()> {
    let euid = fs.euid();
    let m = fs.lstat(scandir, name)?;
    if m.kind != Kind::Dir {
        return fs.unlink(scandir, name);
    }
    lock_down(fs, scandir, name, euid, 0o755)?;
    let slot = fs.open_dir(scandir, name)?;
    disarm_service(fs, &slot, euid)?;
    match fs.lstat(&slot, os("log")) {
        Ok(m) if m.kind == Kind::Dir => {
            lock_down(fs, &slot, os("log"), euid, 0o755)?;
            let log = fs.open_dir(&slot, os("log"))?;
            disarm_service(fs, &log, euid)
        }
        Ok(_) => fs.unlink(&slot, os("log")),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
    }
}

/// `chown owner:owner-group`, `chmod mode` on a directory entry (never through a link).
fn lock_down(fs: &dyn Fs, dir: &Dir, name: &OsStr, euid: u32, mode: u32) -> io::Result<()> {
    if euid == 0 {
        fs.chown(dir, name, 0, 0)?;
    }
    fs.chmod(dir, name, mode)
}

fn disarm_service(fs: &dyn Fs, svc: &Dir, euid: u32) -> io::Result<()> {
    for script in ["finish", "run"] {
        remove_tree(fs, svc, os(script))?;
    }
    // What s6-supervise keeps in each: the rest (its `.new` temporaries above all) goes.
    for (sub, keep) in [
        ("supervise", &[("control", Kind::Fifo), ("lock", Kind::File), ("status", Kind::File), ("death_tally", Kind::File)][..]),
        ("event", &[][..]),
    ] {
        let m = match fs.lstat(svc, os(sub)) {
            Ok(m) => m,
            Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
            Err(e) => return Err(e),
        };
        if m.kind != Kind::Dir {
            fs.unlink(svc, os(sub))?;
            continue;
        }
        lock_down(fs, svc, os(sub), euid, 0o700)?;
        let d = fs.open_dir(svc, os(sub))?;
        for (n, kind) in fs.list(&d)? {
            let kept = keep.iter().any(|(k, want)| n == *k && kind == *want) || (sub == "event" && kind == Kind::Fifo);
            if !kept {
                remove_tree(fs, &d, &n)?;
            }
        }
    }
    Ok(())
}

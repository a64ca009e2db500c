//! The static-service permission pass (upstream's `015-supervise-perms`): give the hermes
//! user control of services that are not gateway slots (the dashboard, the registrar…) so it
//! can `s6-svc`/`s6-svstat` them too. A service already supervised has its `supervise/` tree
//! handed over (chown, `supervise/` 0710, `control` 0660) and `event/` 03730; one not yet
//! supervised is seeded with the same skeleton as a gateway slot. s6-internal services
//! (`s6rc-*`, `s6-linux-*`) and dot-names are left alone. Nothing is followed through a link.

use super::Error;
use crate::safe_fs::{Dir, Fs, Kind};
use crate::slot::{seed_supervise_skeleton, CONTROL_MODE, EVENT_MODE};
use std::ffi::OsStr;
use std::path::Path;

pub const SUPERVISE_DIR_MODE: u32 = 0o710;

pub fn apply(fs: &dyn Fs, root: &Path, owner: (u32, u32), skip: &[String]) -> Result<Vec<String>, Error> {
    let dir = fs.open_root(root).map_err(|e| Error::io(root, "open", e))?;
    let mut done = Vec::new();
    let mut entries = fs.list(&dir).map_err(|e| Error::io(root, "list", e))?;
    entries.sort_by(|a, b| a.0.cmp(&b.0));
    for (name, kind) in entries {
        let n = name.to_string_lossy();
        if kind != Kind::Dir || n.starts_with('.') || n.starts_with("s6rc-") || n.starts_with("s6-linux-") || skip.iter().any(|s| *s == n) {
            continue;
        }
        let svc = fs.open_dir(&dir, &name).map_err(|e| Error::io(dir.child(&name), "open", e))?;
        hand_over(fs, &svc, owner).map_err(|e| Error::io(svc.path(), "hand over", e))?;
        done.push(n.into_owned());
    }
    Ok(done)
}

fn hand_over(fs: &dyn Fs, svc: &Dir, owner: (u32, u32)) -> std::io::Result<()> {
    if fs.lstat(svc, OsStr::new("supervise")).map(|m| m.kind == Kind::Dir).unwrap_or(false) {
        chown_tree(fs, svc, OsStr::new("supervise"), owner)?;
        fs.chmod(svc, OsStr::new("supervise"), SUPERVISE_DIR_MODE)?;
        let sup = fs.open_dir(svc, OsStr::new("supervise"))?;
        if fs.lstat(&sup, OsStr::new("control")).map(|m| m.kind == Kind::Fifo).unwrap_or(false) {
            fs.chmod(&sup, OsStr::new("control"), CONTROL_MODE)?;
        }
        if fs.lstat(svc, OsStr::new("event")).map(|m| m.kind == Kind::Dir).unwrap_or(false) {
            fs.chown(svc, OsStr::new("event"), owner.0, owner.1)?;
            fs.chmod(svc, OsStr::new("event"), EVENT_MODE)?;
        }
        Ok(())
    } else {
        seed_supervise_skeleton(fs, svc, owner)
    }
}

fn chown_tree(fs: &dyn Fs, parent: &Dir, name: &OsStr, owner: (u32, u32)) -> std::io::Result<()> {
    fs.chown(parent, name, owner.0, owner.1)?;
    if fs.lstat(parent, name)?.kind != Kind::Dir {
        return Ok(());
    }
    let d = fs.open_dir(parent, name)?;
    for (child, _) in fs.list(&d)? {
        chown_tree(fs, &d, &child, owner)?;
    }
    Ok(())
}

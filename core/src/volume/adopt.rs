//! A volume populated under another uid (another image, a copy made by another user, a
//! Kubernetes volume restored elsewhere) is taken over at boot, in root mode, without writing
//! `/etc`: everything the previous owner owned becomes the configured uid/gid's.
//!
//! The walk is root's and the tree is the user's, so it is done like every other root
//! operation on the volume: one component at a time through directory descriptors, never
//! following a link (links themselves are re-owned), never leaving the volume's file system,
//! and never re-owning a regular file with more than one hard link (one of its other names
//! may be outside the volume: a link the user made to a file it does not own).

use crate::ctx::Ctx;
use crate::fs::{Dir, Kind};
use crate::problem::Problem;
use std::ffi::OsStr;
use std::path::PathBuf;

/// What a take-over did.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Adopted {
    /// The uid the volume belonged to.
    pub from: u32,
    /// Entries re-owned (the home included).
    pub changed: usize,
    /// Regular files left as they were because they have other hard links.
    pub hard_linked: Vec<PathBuf>,
    /// Directories not entered because they are on another file system.
    pub other_fs: Vec<PathBuf>,
}

/// How deep a tree is walked; deeper directories are left (and reported by the caller's
/// gateway when it trips on one).
const MAX_DEPTH: usize = 64;

/// Take the home over when its top belongs to a uid other than the configured one; `None`
/// when it already is the configured user's. Root only (it changes owners).
pub fn adopt(ctx: &Ctx) -> Result<Option<Adopted>, Problem> {
    let fs = ctx.fs;
    let home = fs.open_root(&ctx.cfg.home).map_err(|e| ctx.problem(&ctx.cfg.home, "open", e))?;
    let top = fs.lstat(&home, OsStr::new(".")).map_err(|e| ctx.problem(&ctx.cfg.home, "stat", e))?;
    if top.uid == ctx.cfg.uid {
        return Ok(None);
    }
    let mut done = Adopted { from: top.uid, ..Adopted::default() };
    walk(ctx, &home, top.dev, 0, &mut done)?;
    fs.chown(&home, OsStr::new("."), ctx.cfg.uid, ctx.cfg.gid).map_err(|e| ctx.problem(&ctx.cfg.home, "change the owner of", e))?;
    done.changed += 1;
    Ok(Some(done))
}

fn walk(ctx: &Ctx, dir: &Dir, dev: u64, depth: usize, done: &mut Adopted) -> Result<(), Problem> {
    let fs = ctx.fs;
    let (uid, gid) = (ctx.cfg.uid, ctx.cfg.gid);
    let entries = fs.list(dir).map_err(|e| ctx.problem(dir.path(), "list", e))?;
    for (name, _) in entries {
        let Ok(m) = fs.lstat(dir, &name) else { continue }; // gone meanwhile
        if m.kind == Kind::Dir {
            if m.dev != dev {
                done.other_fs.push(dir.child(&name));
                continue;
            }
            if depth < MAX_DEPTH {
                if let Ok(sub) = fs.open_dir(dir, &name) {
                    walk(ctx, &sub, dev, depth + 1, done)?;
                }
            }
        }
        if m.uid != done.from {
            continue;
        }
        if m.kind == Kind::File && m.nlink > 1 {
            done.hard_linked.push(dir.child(&name));
            continue;
        }
        match fs.chown(dir, &name, uid, gid) {
            Ok(()) => done.changed += 1,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(ctx.problem(dir.child(&name), "change the owner of", e)),
        }
    }
    Ok(())
}

//! A volume populated under another uid (another image, a copy made by another user, a
//! Kubernetes volume restored elsewhere) is taken over at boot, in root mode, without writing
//! `/etc`: everything the previous owner owned becomes the configured uid/gid's. The same
//! walk lets the registrar take over what a root command (`docker exec C python …`) left in a
//! profile at run time ([`take_over`], bounded).
//!
//! The walk is root's and the tree is the user's, who may be renaming in it while root walks
//! (in Kubernetes' fsGroup layout everything is `root:<gid>` and group-writable). So every
//! step acts on what it examined: an entry is opened without following a link or blocking
//! ([`Fs::open_node`]), its type, owner, link count and file system are read from that
//! descriptor, a directory is entered through it and an entry re-owned through it
//! ([`Fs::chown_node`]); no name is resolved twice. Links are re-owned themselves, never
//! followed; another file system is not entered; a non-directory with more than one hard link
//! is left alone (one of its other names may be outside the volume: a link the user made to
//! a file it does not own).
//!
//! [`Fs::open_node`]: crate::fs::Fs::open_node
//! [`Fs::chown_node`]: crate::fs::Fs::chown_node

use crate::ctx::Ctx;
use crate::fs::{Dir, Kind, Node};
use crate::problem::Problem;
use std::ffi::OsStr;
use std::path::PathBuf;

/// What a take-over did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Adopted {
    /// The uid whose entries were taken over.
    pub from: u32,
    /// Entries re-owned (the top included).
    pub changed: usize,
    /// Non-directories left as they were because they have other hard links.
    pub hard_linked: Vec<PathBuf>,
    /// Directories not entered because they are on another file system.
    pub other_fs: Vec<PathBuf>,
    /// The walk stopped at its depth or entry bound: something below may be left.
    pub truncated: bool,
}

/// Which entries a walk takes over, and how far it goes.
#[derive(Debug, Clone, Copy)]
pub struct Walk<'a> {
    /// Entries owned by this uid become the configured uid/gid's; others are left.
    pub from: u32,
    /// Directories deeper than this below the top are not entered.
    pub max_depth: usize,
    /// At most this many entries are examined (the top not counted).
    pub max_entries: usize,
    /// Names directly below the top that are neither entered nor re-owned.
    pub skip: &'a [&'a str],
}

/// How deep a tree is walked; deeper directories are left (and reported by the caller's
/// gateway when it trips on one).
pub const MAX_DEPTH: usize = 64;

/// Take the home over when its top belongs to a uid other than the configured one; `None`
/// when it already is the configured user's. Root only (it changes owners).
pub fn adopt(ctx: &Ctx) -> Result<Option<Adopted>, Problem> {
    let fs = ctx.fs;
    let home = fs.open_root(&ctx.cfg.home).map_err(|e| ctx.problem(&ctx.cfg.home, "open", e))?;
    let top = fs.open_node(&home, OsStr::new(".")).map_err(|e| ctx.problem(&ctx.cfg.home, "stat", e))?;
    if top.meta.uid == ctx.cfg.uid {
        return Ok(None);
    }
    let walk = Walk { from: top.meta.uid, max_depth: MAX_DEPTH, max_entries: usize::MAX, skip: &[] };
    take_over(ctx, &top, &walk).map(Some)
}

/// Take over `top` (a node opened by root, see [`Fs::open_node`](crate::fs::Fs::open_node))
/// and, when it is a directory, everything below it on its file system: each entry owned by
/// `walk.from` becomes the configured uid/gid's, within the walk's bounds.
pub fn take_over(ctx: &Ctx, top: &Node, walk: &Walk) -> Result<Adopted, Problem> {
    let mut done = Adopted { from: walk.from, ..Adopted::default() };
    let mut budget = walk.max_entries;
    if top.meta.kind == Kind::Dir {
        if let Ok(dir) = ctx.fs.enter_node(top) {
            descend(ctx, &dir, top.meta.dev, 0, walk, &mut budget, &mut done)?;
        }
    }
    take(ctx, top, walk, &mut done)?;
    Ok(done)
}

fn descend(ctx: &Ctx, dir: &Dir, dev: u64, depth: usize, walk: &Walk, budget: &mut usize, done: &mut Adopted) -> Result<(), Problem> {
    let fs = ctx.fs;
    let entries = fs.list(dir).map_err(|e| ctx.problem(dir.path(), "list", e))?;
    for (name, _) in entries {
        if depth == 0 && walk.skip.iter().any(|s| OsStr::new(s) == name) {
            continue;
        }
        if *budget == 0 {
            done.truncated = true;
            return Ok(());
        }
        *budget -= 1;
        let Ok(node) = fs.open_node(dir, &name) else { continue }; // gone meanwhile
        if node.meta.kind == Kind::Dir {
            if node.meta.dev != dev {
                done.other_fs.push(node.path().to_path_buf());
                continue;
            }
            if depth >= walk.max_depth {
                done.truncated = true;
            } else if let Ok(sub) = fs.enter_node(&node) {
                descend(ctx, &sub, dev, depth + 1, walk, budget, done)?;
            }
        }
        take(ctx, &node, walk, done)?;
    }
    Ok(())
}

/// Re-own one examined entry if the rule says so.
fn take(ctx: &Ctx, node: &Node, walk: &Walk, done: &mut Adopted) -> Result<(), Problem> {
    let m = node.meta;
    if m.uid != walk.from {
        return Ok(());
    }
    // A directory has exactly one name; anything else with several may have one elsewhere.
    if m.kind != Kind::Dir && m.nlink > 1 {
        done.hard_linked.push(node.path().to_path_buf());
        return Ok(());
    }
    ctx.fs.chown_node(node, ctx.cfg.uid, ctx.cfg.gid).map_err(|e| ctx.problem(node.path(), "change the owner of", e))?;
    done.changed += 1;
    Ok(())
}

//! The static-service permission pass (upstream's `015-supervise-perms`, without its hole):
//! give the hermes group control of services that are not gateway slots (the dashboard…) the
//! way `s6-svperms -G` does: `supervise/` stays root's, searchable by the group, and the
//! `control` FIFO is group-writable. Upstream handed the whole `supervise/` tree to the user,
//! which let it plant links where root's s6-supervise writes. Services already supervised get
//! their existing entries corrected; others get them created. s6-internal services (`s6rc-*`,
//! `s6-linux-*`), dot-names and `skip`ped names are left alone. Nothing is followed through a
//! link.

use super::publish::{grant_control, Access};
use crate::ctx::Ctx;
use crate::fs::Kind;
use crate::problem::Problem;
use std::path::Path;

pub fn apply(ctx: &Ctx, root: &Path, skip: &[String]) -> Result<Vec<String>, Problem> {
    let fs = ctx.fs;
    let dir = fs.open_root(root).map_err(|e| ctx.problem(root, "open", e))?;
    if fs.euid() != 0 {
        return Err(Problem::NeedsRoot {
            what: "handing static services to the hermes group".into(),
            path: root.to_path_buf(),
            instead: "it is part of the container's start (cont-init); nothing to do as the hermes user".into(),
        });
    }
    let access = Access { group: Some(ctx.cfg.gid) };
    let mut done = Vec::new();
    let mut entries = fs.list(&dir).map_err(|e| ctx.problem(root, "list", e))?;
    entries.sort_by(|a, b| a.0.cmp(&b.0));
    for (name, kind) in entries {
        let n = name.to_string_lossy();
        if kind != Kind::Dir || n.starts_with('.') || n.starts_with("s6rc-") || n.starts_with("s6-linux-") || skip.iter().any(|s| *s == n) {
            continue;
        }
        let svc = fs.open_dir(&dir, &name).map_err(|e| ctx.problem(dir.child(&name), "open", e))?;
        grant_control(fs, &svc, access).map_err(|e| ctx.problem(svc.path(), "give the group control of", e))?;
        done.push(n.into_owned());
    }
    Ok(done)
}

//! `adopt-volume` (root): take over a volume populated under another uid.

use crate::out::{self, Out};
use hermes_core::problem::{exit, Problem};
use hermes_core::Gateways;

pub fn run(g: &Gateways, out: Out) -> Result<u8, Problem> {
    let ctx = g.ctx();
    ctx.require_root("adopting the volume", &ctx.cfg.home, "in non-root mode the volume must already belong to the uid the container runs as (Kubernetes: securityContext.fsGroup, or an initContainer that chowns it)")?;
    let done = g.adopt_volume()?;
    let (from, changed, linked, other) = match &done {
        Some(d) => (Some(d.from), d.changed, d.hard_linked.len(), d.other_fs.len()),
        None => (None, 0, 0, 0),
    };
    if out.json {
        out::json(
            &serde_json::json!({"ok": true, "from_uid": from, "changed": changed, "hard_linked_left": linked, "other_fs_left": other}),
        );
    } else if let Some(d) = &done {
        println!(
            "adopted {}: {} entries of uid {} now belong to {}:{}",
            ctx.cfg.home.display(),
            d.changed,
            d.from,
            ctx.cfg.uid,
            ctx.cfg.gid
        );
        for p in &d.hard_linked {
            eprintln!("warning: left {} as it was: it has other hard links (one may be outside the volume)", p.display());
        }
        for p in &d.other_fs {
            eprintln!("warning: did not enter {}: another file system", p.display());
        }
    }
    Ok(exit::OK)
}

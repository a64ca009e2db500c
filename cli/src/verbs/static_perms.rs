//! `static-perms DIR` (root): upstream's 015-supervise-perms.

use crate::out::{self, Out};
use clap::Args;
use hermes_core::problem::{exit, Problem};
use hermes_core::Gateways;
use std::path::PathBuf;

#[derive(Args, Debug)]
pub struct StaticPermsArgs {
    /// The directory holding the static service directories
    #[arg(default_value = "/run/s6-rc/servicedirs")]
    pub dir: PathBuf,
    /// Leave this service root-only (repeatable)
    #[arg(long, value_name = "NAME")]
    pub skip: Vec<String>,
}

pub fn run(g: &Gateways, a: &StaticPermsArgs, out: Out) -> Result<u8, Problem> {
    let done = g.static_perms(&a.dir, &a.skip)?;
    if out.json {
        out::json(&serde_json::json!({"ok": true, "services": done}));
    } else {
        for d in &done {
            println!("[supervise-perms] {} controllable by {}", a.dir.join(d).display(), g.config().user);
        }
    }
    Ok(exit::OK)
}

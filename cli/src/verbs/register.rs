//! `register P [--start]` (root).

use crate::args::RenderArgs;
use crate::out::Out;
use clap::Args;
use hermes_core::gateways::Rescan;
use hermes_core::name::Profile;
use hermes_core::problem::Problem;
use hermes_core::Gateways;

#[derive(Args, Debug)]
pub struct RegisterArgs {
    /// The profile (it must exist on the volume)
    pub profile: String,
    /// Publish it without a `down` file: the gateway starts as soon as it is supervised
    #[arg(long)]
    pub start: bool,
    #[command(flatten)]
    pub render: RenderArgs,
}

pub fn run(g: &Gateways, a: &RegisterArgs, out: Out) -> Result<u8, Problem> {
    let p = Profile::new(&a.profile)?;
    let r = g.register(&p, a.start).map(|rescan| match rescan {
        Rescan::NoScanner => {
            vec![format!("no s6-svscan is listening on {}; the slot is picked up when it starts", g.config().scandir.display())]
        }
        _ => Vec::new(),
    });
    out.slot_outcome("register", &p, r)
}

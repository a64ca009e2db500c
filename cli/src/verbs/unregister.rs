//! `unregister P` (root).

use crate::out::Out;
use clap::Args;
use hermes_core::gateways::Unregistered;
use hermes_core::name::Profile;
use hermes_core::problem::Problem;
use hermes_core::Gateways;

#[derive(Args, Debug)]
pub struct UnregisterArgs {
    /// The profile whose slot goes (its directory on the volume is never touched)
    pub profile: String,
    /// Remove the slot even though the profile is still on the volume (the registrar, if it runs, registers it again)
    #[arg(long)]
    pub force: bool,
}

pub fn run(g: &Gateways, a: &UnregisterArgs, out: Out) -> Result<u8, Problem> {
    let p = Profile::new(&a.profile)?;
    let r = g.unregister(&p, a.force).map(|done| {
        let mut notes = Vec::new();
        if done == Unregistered::WasAbsent {
            notes.push(format!("gateway-{p} was not registered: nothing to do"));
        }
        if a.force && g.profile_exists(&p) {
            notes.push(format!("profile '{p}' is still on the volume: a running registrar registers its slot again"));
        }
        notes
    });
    out.slot_outcome("unregister", &p, r)
}

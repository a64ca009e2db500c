//! `finish P CODE SIGNAL …` (root, from a slot's finish script under s6-supervise): the crash
//! policy's verdict on a death, as the exit code s6 reads (0 restart, 125 stay down).

use crate::args::RenderArgs;
use clap::Args;
use hermes_core::problem::Problem;
use hermes_core::Gateways;

#[derive(Args, Debug)]
pub struct FinishArgs {
    /// The profile whose gateway died
    pub profile: String,
    /// The run's exit code, or 256 when a signal killed it (what s6 passes)
    pub code: i32,
    /// The signal that killed it (0 when it exited)
    pub signal: i32,
    /// The rest of what s6 passes: the service name, then the dead run's pgid (its pid)
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub rest: Vec<String>,
    #[command(flatten)]
    pub render: RenderArgs,
}

pub fn run(g: &Gateways, a: &FinishArgs) -> Result<u8, Problem> {
    let pid = a.rest.get(1).and_then(|p| p.parse().ok()).filter(|p| *p > 1);
    let code = g.finish(&a.profile, a.code, a.signal, pid);
    Ok(u8::try_from(code).unwrap_or(0))
}

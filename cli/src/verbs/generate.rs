//! `hermes generate SHELL|man DIR` (hidden; the image build): completions and the man page,
//! from the clap tree itself.

use hermes_core::problem::{exit, Problem};
use std::path::Path;

pub fn run(mut cmd: clap::Command, bin: &str, what: &str, dir: &Path) -> Result<u8, Problem> {
    use clap_complete::Shell;
    let io = |e: std::io::Error| Problem::Io { path: dir.to_path_buf(), action: "write into".into(), error: e };
    if what == "man" {
        clap_mangen::generate_to(cmd, dir).map_err(io)?;
    } else {
        let shell: Shell =
            what.parse().map_err(|_| Problem::usage(format!("unknown shell {what:?}: bash, zsh, fish, elvish, powershell or man")))?;
        clap_complete::generate_to(shell, &mut cmd, bin, dir).map_err(io)?;
    }
    Ok(exit::OK)
}

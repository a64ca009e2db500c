//! `hermes [-p P] gateway logs [P] [-n N] [-f]`: the gateway's log, as its s6-log keeps it.

use crate::out::{self, Out};
use clap::Args;
use hermes_core::name::Profile;
use hermes_core::problem::{exit, Problem};
use hermes_core::Gateways;
use std::time::Duration;

#[derive(Args, Debug)]
pub struct LogsArgs {
    #[command(flatten)]
    pub target: crate::hermes::args::Target,
    /// How many of the last lines to show
    #[arg(short = 'n', long = "lines", default_value_t = 50, value_name = "N")]
    pub lines: usize,
    /// Keep printing lines as they are written (until interrupted)
    #[arg(short = 'f', long)]
    pub follow: bool,
}

pub fn run(g: &Gateways, p: &Profile, a: &LogsArgs, out: Out) -> Result<u8, Problem> {
    // A name that is neither on the volume nor registered is a typo, not an empty log.
    g.status(Some(p))?;
    let (dir, exists) = g.log_dir(p)?;
    let lines = if exists { g.log_tail(p, a.lines)? } else { Vec::new() };
    if out.json && !a.follow {
        out::json(&serde_json::json!({"profile": p, "log_dir": dir.display().to_string(), "lines": lines}));
        return Ok(exit::OK);
    }
    if lines.is_empty() && !a.follow {
        let why = if exists { "it is empty" } else { "the gateway has not run since its slot was registered" };
        eprintln!("no log lines yet for gateway-{p} in {} ({why})", dir.display());
        return Ok(exit::OK);
    }
    for line in lines {
        println!("{line}");
    }
    if !a.follow {
        return Ok(exit::OK);
    }
    let mut at = g.log_end(p)?;
    loop {
        let (bytes, next) = g.log_read_new(p, at)?;
        if !bytes.is_empty() {
            use std::io::Write;
            let mut stdout = std::io::stdout().lock();
            if stdout.write_all(&bytes).and_then(|()| stdout.flush()).is_err() {
                return Ok(exit::OK); // the reader went away (a closed pipe)
            }
        }
        at = next;
        g.ctx().clock.sleep(Duration::from_millis(200));
    }
}

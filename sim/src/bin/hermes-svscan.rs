//! `hermes-svscan`: the simulator as a drop-in for `s6-svscan [-c max] [-t ms] scandir`.

use std::process::ExitCode;
use std::time::Duration;

fn main() -> ExitCode {
    let mut args = std::env::args().skip(1);
    let mut max = hermes_sim::s6sim::scan::DEFAULT_MAX;
    let mut period = None;
    let mut dir = None;
    while let Some(a) = args.next() {
        match a.as_str() {
            "-c" | "-C" => max = args.next().and_then(|v| v.parse().ok()).unwrap_or(max),
            "-t" => period = args.next().and_then(|v| v.parse().ok()).filter(|&ms: &u64| ms > 0).map(Duration::from_millis),
            "--" => dir = args.next(),
            s if s.starts_with("-c") => max = s[2..].parse().unwrap_or(max),
            s if s.starts_with('-') && s.len() > 1 => {
                eprintln!("hermes-svscan: usage: hermes-svscan [ -c max ] [ -t rescan ] dir");
                return ExitCode::from(100);
            }
            s => dir = Some(s.to_string()),
        }
    }
    let dir = dir.unwrap_or_else(|| ".".into());
    ExitCode::from(hermes_sim::s6sim::realtime::run(std::path::Path::new(&dir), max, period) as u8)
}

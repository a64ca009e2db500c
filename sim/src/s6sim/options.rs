//! `hermes-svscan`'s command line: the options of the s6-svscan it plays, and `--s6-version`.
//!
//! 2.11 reads `[ -c maxservices ] [ -t timeout ] [ -d notif ] [ -X consoleholder ] [ dir ]`
//! (dir defaults to the current directory); 2.15 reads `[ -C services_max ] [ -L name_max ]
//! [ -t timeout ] [ -d notif ] [ -X consoleholder ] scandir` and refuses `-c` as an
//! unrecognized option. A script written for one fails against the other exactly as it would
//! with real s6. `-d` and `-X` (readiness and console fds) are not simulated and are refused.

use super::scan::Settings;
use super::version::{self, S6Version};
use std::path::PathBuf;
use std::time::Duration;

/// A command line that parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invocation {
    pub scandir: PathBuf,
    pub settings: Settings,
}

/// The exit code and the line s6-svscan prints when it refuses a command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub code: u8,
    pub message: String,
}

fn refuse(message: impl Into<String>) -> Refusal {
    Refusal { code: 100, message: message.into() }
}

const USAGE_2_11: &str = "s6-svscan: usage: s6-svscan [ -c maxservices ] [ -t timeout ] [ -d notif ] [ -X consoleholder ] [ dir ]";
const USAGE_2_15: &str =
    "s6-svscan: usage: s6-svscan [ -C services_max ] [ -L name_max ] [ -t timeout ] [ -d notif ] [ -X consoleholder ] scandir";

/// Parse `args` (without the program name). `env_version` is the value of
/// `HERMES_SVSCAN_S6_VERSION`, if set; `--s6-version` wins over it.
pub fn parse(args: &[String], env_version: Option<&str>) -> Result<Invocation, Refusal> {
    let (flag_version, rest) = take_version_flag(args)?;
    let version = match (flag_version, env_version) {
        (Some(v), _) => S6Version::parse(&v).map_err(|e| refuse(format!("hermes-svscan: fatal: --s6-version: {e}")))?,
        (None, Some(v)) => S6Version::parse(v).map_err(|e| refuse(format!("hermes-svscan: fatal: {}: {e}", version::ENV)))?,
        (None, None) => S6Version::default(),
    };
    match version {
        S6Version::V2_11 => parse_2_11(&rest),
        S6Version::V2_15 => parse_2_15(&rest),
    }
}

/// `--s6-version V` or `--s6-version=V`, wherever it is before `--`.
fn take_version_flag(args: &[String]) -> Result<(Option<String>, Vec<String>), Refusal> {
    let mut version = None;
    let mut rest = Vec::new();
    let mut it = args.iter();
    while let Some(a) = it.next() {
        if a == "--" {
            rest.push(a.clone());
            rest.extend(it.cloned());
            break;
        }
        if let Some(v) = a.strip_prefix("--s6-version=") {
            version = Some(v.to_string());
        } else if a == "--s6-version" {
            version = Some(it.next().ok_or_else(|| refuse("hermes-svscan: fatal: --s6-version needs a value (2.11 or 2.15)"))?.clone());
        } else {
            rest.push(a.clone());
        }
    }
    Ok((version, rest))
}

/// One option and its argument, getopt style (`-c4` or `-c 4`).
struct Opt {
    letter: char,
    value: String,
}

/// Split the leading options off `args`; `takes` lists the letters that have an argument.
/// Returns the options and the operands, or the first unknown letter.
fn getopt(args: &[String], takes: &str) -> Result<(Vec<Opt>, Vec<String>), Result<char, ()>> {
    let mut opts = Vec::new();
    let mut i = 0;
    while i < args.len() {
        let a = &args[i];
        if a == "--" {
            i += 1;
            break;
        }
        let Some(body) = a.strip_prefix('-').filter(|b| !b.is_empty()) else { break };
        let letter = body.chars().next().unwrap();
        if !takes.contains(letter) {
            return Err(Ok(letter));
        }
        let value = if body.len() > 1 {
            body[1..].to_string()
        } else {
            i += 1;
            args.get(i).cloned().ok_or(Err(()))?
        };
        opts.push(Opt { letter, value });
        i += 1;
    }
    Ok((opts, args[i..].to_vec()))
}

fn not_simulated(letter: char) -> Refusal {
    refuse(format!("hermes-svscan: fatal: -{letter} is not simulated (s6-svscan's readiness and console fds)"))
}

fn parse_2_11(args: &[String]) -> Result<Invocation, Refusal> {
    let (opts, operands) = getopt(args, "ctdX").map_err(|_| refuse(USAGE_2_11))?;
    let mut settings = Settings::of(S6Version::V2_11);
    for Opt { letter, value } in opts {
        // 2.11 falls through from `-c` to `-t` to `-d` on a bad number, ending in its usage.
        let n: u64 = value.parse().map_err(|_| refuse(USAGE_2_11))?;
        match letter {
            'c' => settings.max = usize::try_from(n).unwrap_or(usize::MAX),
            't' => settings.period = (n > 0).then(|| Duration::from_millis(n)),
            other => return Err(not_simulated(other)),
        }
    }
    settings.max = S6Version::V2_11.clamp_max(settings.max);
    let scandir = operands.first().map_or_else(|| PathBuf::from("."), PathBuf::from);
    Ok(Invocation { scandir, settings })
}

fn parse_2_15(args: &[String]) -> Result<Invocation, Refusal> {
    let args = long_to_short(args)?;
    let (opts, operands) = getopt(&args, "CLtdX").map_err(|e| match e {
        Ok(letter) => refuse(format!("s6-svscan: fatal: unrecognized short option: {letter}")),
        Err(()) => refuse(USAGE_2_15),
    })?;
    let mut settings = Settings::of(S6Version::V2_15);
    for Opt { letter, value } in opts {
        let what = match letter {
            'C' => "services_max",
            'L' => "name_max",
            't' => "timeout",
            other => return Err(not_simulated(other)),
        };
        let n: u64 = value.parse().map_err(|_| refuse(format!("s6-svscan: fatal: {what} must be an unsigned integer")))?;
        let n = usize::try_from(n).unwrap_or(usize::MAX);
        match letter {
            'C' => settings.max = S6Version::V2_15.clamp_max(n),
            'L' => settings.name_max = n.clamp(11, 1019),
            _ => settings.period = (n > 0).then(|| Duration::from_millis(n as u64)),
        }
    }
    let scandir = operands.first().map(PathBuf::from).ok_or_else(|| refuse(USAGE_2_15))?;
    Ok(Invocation { scandir, settings })
}

/// 2.15's long options, rewritten to their short forms.
fn long_to_short(args: &[String]) -> Result<Vec<String>, Refusal> {
    const LONG: [(&str, &str); 5] =
        [("services-max", "-C"), ("name-max", "-L"), ("timeout", "-t"), ("notification-fd", "-d"), ("console-holder", "-X")];
    let mut out = Vec::with_capacity(args.len());
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let Some(long) = a.strip_prefix("--").filter(|l| !l.is_empty()) else {
            out.push(a.clone());
            if a == "--" {
                out.extend(it.cloned());
                break;
            }
            continue;
        };
        let (name, inline) = match long.split_once('=') {
            Some((n, v)) => (n, Some(v.to_string())),
            None => (long, None),
        };
        let short = LONG.iter().find(|(l, _)| *l == name).map(|(_, s)| *s);
        let short = short.ok_or_else(|| refuse(format!("s6-svscan: fatal: unrecognized option with argument: {a}")))?;
        out.push(short.to_string());
        match inline {
            Some(v) => out.push(v),
            None => out.push(it.next().cloned().ok_or_else(|| refuse(USAGE_2_15))?),
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(s: &str) -> Vec<String> {
        s.split_whitespace().map(String::from).collect()
    }

    fn ok(s: &str, env: Option<&str>) -> Invocation {
        parse(&args(s), env).unwrap_or_else(|r| panic!("{s:?} refused: {}", r.message))
    }

    fn refused(s: &str, env: Option<&str>) -> Refusal {
        parse(&args(s), env).expect_err(s)
    }

    #[test]
    fn version_2_11_is_the_default_and_reads_dash_c() {
        let i = ok("-c 4 /run/service", None);
        assert_eq!(i.settings.version, S6Version::V2_11);
        assert_eq!((i.settings.max, i.scandir), (4, PathBuf::from("/run/service")));
        assert_eq!(ok("-c600 -t 250 x", None).settings.period, Some(Duration::from_millis(250)));
        assert_eq!(ok("x", None).settings.max, 500);
        assert_eq!(ok("-c 1 x", None).settings.max, 2, "2.11 clamps to 2..90000");
    }

    #[test]
    fn version_2_11_has_an_optional_scandir_and_no_dash_capital_c() {
        assert_eq!(ok("", None).scandir, PathBuf::from("."));
        let r = refused("-C 4 x", None);
        assert_eq!((r.code, r.message.as_str()), (100, USAGE_2_11));
        assert_eq!(refused("-c many x", None).message, USAGE_2_11);
    }

    #[test]
    fn version_2_15_reads_dash_capital_c_and_refuses_dash_c() {
        let i = ok("--s6-version 2.15 -C 4 -L 20 x", None);
        assert_eq!(i.settings.version, S6Version::V2_15);
        assert_eq!((i.settings.max, i.settings.name_max), (4, 20));
        assert_eq!(ok("--s6-version=2.15 x", None).settings.max, 1000);
        assert_eq!(ok("--s6-version=2.15 -C 1 x", None).settings.max, 4, "2.15 clamps to 4..160000");
        assert_eq!(ok("--s6-version=2.15 --services-max=7 x", None).settings.max, 7);
        let r = refused("--s6-version 2.15 -c 4 x", None);
        assert_eq!((r.code, r.message.as_str()), (100, "s6-svscan: fatal: unrecognized short option: c"));
        assert_eq!(refused("--s6-version 2.15 -C lots x", None).message, "s6-svscan: fatal: services_max must be an unsigned integer");
    }

    #[test]
    fn version_2_15_requires_the_scandir() {
        let r = refused("--s6-version 2.15 -C 4", None);
        assert_eq!((r.code, r.message.as_str()), (100, USAGE_2_15));
    }

    #[test]
    fn the_environment_selects_the_version_and_the_flag_wins() {
        assert_eq!(ok("-C 8 x", Some("2.15")).settings.max, 8);
        assert_eq!(ok("--s6-version 2.11 -c 8 x", Some("2.15")).settings.version, S6Version::V2_11);
        assert!(refused("x", Some("3.0")).message.contains(version::ENV));
        assert!(refused("--s6-version", None).message.contains("needs a value"));
    }

    #[test]
    fn readiness_and_console_fds_are_refused_not_ignored() {
        assert!(refused("-d 3 x", None).message.contains("not simulated"));
        assert!(refused("--s6-version 2.15 -X 3 x", None).message.contains("not simulated"));
    }
}

//! How results and problems reach a person (text: results on stdout, problems on stderr) or a
//! program (`--json`: one JSON document on stdout, errors included), for both binaries. The
//! exit codes are `hermes_core::problem::exit`'s, and LSB's for `status` ([`lsb`]).

use hermes_core::gateways::{AllResults, Done, Wait, Written};
use hermes_core::problem::{exit, Problem};
use std::process::ExitCode;
use std::time::Duration;

/// LSB's codes for an init script's `status` action.
pub mod lsb {
    pub const RUNNING: u8 = 0;
    pub const NOT_RUNNING: u8 = 3;
    pub const UNKNOWN: u8 = 4;
}

/// Which binary speaks. They word a verb's one-line outcome differently: `hermes-reconcile`
/// as a tool (`✓ start gateway-coder`), `hermes` in upstream's words (`✓ Started gateway-coder
/// under s6`); scripts read both.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Voice {
    Reconcile,
    Hermes,
}

/// A verb's names: what it is called, and how its success is told.
#[derive(Debug, Clone, Copy)]
pub struct VerbName {
    pub name: &'static str,
    pub past: &'static str,
}

/// Where a command's output goes, and in what form.
#[derive(Debug, Clone, Copy)]
pub struct Out {
    pub json: bool,
    pub voice: Voice,
}

impl Out {
    /// Print a problem (stderr, or JSON on stdout).
    pub fn problem(&self, p: &Problem) {
        self.problem_exiting(p, p.exit_code());
    }

    /// [`Out::problem`] for a command whose exit code for this problem is its own (LSB).
    pub fn problem_exiting(&self, p: &Problem, code: u8) {
        if self.json {
            println!("{}", serde_json::json!({"ok": false, "error": p.to_json_exiting(code)}));
        } else {
            eprintln!("\u{2717} {}", hermes_core::escape::terminal(&p.to_string()));
        }
    }

    /// Print a problem and give the exit code it documents.
    pub fn fail(&self, p: &Problem) -> ExitCode {
        self.problem(p);
        ExitCode::from(p.exit_code())
    }

    /// A line for a person (nothing under `--json`, where the final document says it all).
    pub fn say(&self, line: impl std::fmt::Display) {
        if !self.json {
            println!("{line}");
        }
    }

    /// The outcome of one verb on one profile: its line and what happened (or its JSON), or
    /// the problem.
    pub fn outcome(&self, verb: VerbName, profile: &str, wait: Wait, r: Result<Done, Problem>) -> Result<u8, Problem> {
        if self.json {
            json(&outcome_json(verb.name, profile, &r));
            return Ok(r.map(|_| exit::OK).unwrap_or_else(|e| e.exit_code()));
        }
        let done = r?;
        match (&done.served_by, verb.name, self.voice) {
            (Some(root), "start" | "restart", _) => {
                println!("\u{2713} {profile} is served by gateway-{root} (multiplexing is on: one gateway serves every profile; gateway-{profile} stays down)")
            }
            (_, _, Voice::Reconcile) => println!("\u{2713} {} gateway-{profile}", verb.name),
            (_, _, Voice::Hermes) => println!("\u{2713} {} gateway-{profile} under s6", verb.past),
        }
        if let Some(line) = served_note(&done, verb.name) {
            println!("  {line}");
        }
        for line in details(&done, wait) {
            println!("  {line}");
        }
        Ok(exit::OK)
    }

    /// The outcome of one verb on every registered slot: upstream's summary and one line per
    /// failure (or a JSON array); exit 1 if any failed.
    pub fn outcomes(&self, verb: VerbName, r: &AllResults) -> u8 {
        if self.json {
            json(&serde_json::Value::Array(r.results.iter().map(|(p, res)| outcome_json(verb.name, p, res)).collect()));
        } else {
            if let Some(s) = summary(r, verb.past) {
                println!("{s}");
            }
            for line in failures(r, verb.name) {
                eprintln!("{line}");
            }
        }
        if r.failed() == 0 {
            exit::OK
        } else {
            exit::FAILED
        }
    }

    /// A slot verb's outcome (register, unregister, request): `✓ <verb> gateway-<p>` and its
    /// notes (or its JSON), or the problem.
    pub fn slot_outcome(&self, verb: &str, profile: &str, r: Result<Vec<String>, Problem>) -> Result<u8, Problem> {
        if self.json {
            let v = match &r {
                Ok(notes) => serde_json::json!({"ok": true, "profile": profile, "action": verb, "notes": notes}),
                Err(e) => serde_json::json!({"ok": false, "profile": profile, "action": verb, "error": e.to_json()}),
            };
            json(&v);
            return Ok(r.map(|_| exit::OK).unwrap_or_else(|e| e.exit_code()));
        }
        let notes = r?;
        println!("\u{2713} {verb} gateway-{profile}");
        for n in notes {
            eprintln!("note: {}", hermes_core::escape::terminal(&n));
        }
        Ok(exit::OK)
    }
}

/// A JSON document on stdout.
pub fn json(v: &serde_json::Value) {
    println!("{}", serde_json::to_string_pretty(v).expect("a JSON value serialises"));
}

/// A command-line error: clap's own message (exit 2), or its JSON form under `--json`.
/// `--help` and `--version` are not errors.
pub fn clap_error(e: clap::Error, json: bool) -> ExitCode {
    use clap::error::ErrorKind;
    if matches!(e.kind(), ErrorKind::DisplayHelp | ErrorKind::DisplayVersion) {
        let _ = e.print();
        return ExitCode::from(exit::OK);
    }
    // A missing subcommand shows the help, and is still a usage error (exit 2).
    if json {
        let p = Problem::from_clap_rendering(&e.render().to_string());
        println!("{}", serde_json::json!({"ok": false, "error": p.to_json()}));
        return ExitCode::from(exit::USAGE);
    }
    let _ = e.print();
    ExitCode::from(exit::USAGE)
}

/// One command's outcome as JSON: `{"ok": true, …}` or `{"ok": false, "error": …}`.
pub fn outcome_json(verb: &str, profile: &str, r: &Result<Done, Problem>) -> serde_json::Value {
    match r {
        Ok(d) => {
            let mut v = serde_json::json!({
                "ok": true,
                "profile": d.profile,
                "action": verb,
                "pid": d.pid,
                "ready": d.ready,
                "note": d.note,
                "cleared": d.cleared.map(|c| c.as_str()),
                "wanted_state_recorded": d.written != Written::NoProfileDir,
            });
            // Only when a marker was removed: every other answer keeps its exact shape.
            if let Some(p) = &d.unparked {
                v["unparked"] = serde_json::json!(p.display().to_string());
            }
            if let Some(root) = &d.served_by {
                v["served_by"] = serde_json::json!(root);
                if let Some(line) = served_note(d, verb) {
                    v["note"] = serde_json::json!(line);
                }
            }
            v
        }
        Err(e) => serde_json::json!({"ok": false, "profile": profile, "action": verb, "error": e.to_json()}),
    }
}

/// Under multiplexing, what a verb on a named profile did not do to the gateway that serves it.
fn served_note(d: &Done, verb: &str) -> Option<String> {
    let root = d.served_by.as_ref()?;
    match verb {
        "restart" => Some(format!("gateway-{root} was not restarted: it serves every profile (restart it with `hermes gateway restart`)")),
        "stop" => Some(format!(
            "gateway-{root} still serves {}: under multiplexing it serves every profile on the volume (`hermes gateway stop` stops it, and with it every profile)",
            d.profile
        )),
        _ => None,
    }
}

/// What a verb did, in lines for a person (after the verb's own first line).
pub fn details(d: &Done, wait: Wait) -> Vec<String> {
    let mut v = Vec::new();
    match (d.pid, wait) {
        (Some(pid), Wait::Settle(w)) if d.ready => v.push(format!("up (pid {pid}), ready, and still up after {}", seconds(w))),
        (Some(pid), Wait::Settle(w)) => v.push(format!("up (pid {pid}) and still up after {}", seconds(w))),
        (None, Wait::No) => v.push("not waited for (--no-wait): see `status`".into()),
        _ => {}
    }
    if let Some(n) = &d.note {
        v.push(n.clone());
    }
    if let Some(c) = d.cleared {
        v.push(format!("cleared the crash policy's hold ({}): an operator start always wins", c.as_str()));
    }
    if let Some(p) = &d.unparked {
        v.push(format!("unparked: removed {} (hermes-agent's marker that kept the slot down)", p.display()));
    }
    match &d.written {
        Written::Yes => {}
        Written::NoProfileDir => v.push("no profile directory: the wanted state was not recorded".into()),
        Written::ReplacedUnreadable(why) => v.push(format!("the old gateway_state.json {why}; it was replaced")),
    }
    v
}

fn seconds(d: Duration) -> String {
    let s = d.as_secs_f64();
    if s >= 1.0 && s.fract() == 0.0 {
        format!("{s:.0} s")
    } else {
        format!("{s} s")
    }
}

/// Upstream's summary line for `--all`'s successes (`None` when there were none).
pub fn summary(r: &AllResults, past: &str) -> Option<String> {
    if r.results.is_empty() {
        return Some("\u{2717} No profile gateways registered under s6".into());
    }
    let ok = r.results.len() - r.failed();
    (ok > 0).then(|| format!("\u{2713} {past} {ok} profile gateway(s) under s6"))
}

/// Upstream's line per `--all` failure.
pub fn failures(r: &AllResults, verb: &str) -> Vec<String> {
    r.results
        .iter()
        .filter_map(|(p, r)| {
            r.as_ref().err().map(|e| format!("\u{2717} Could not {verb} gateway-{p}: {}", hermes_core::escape::terminal(&e.to_string())))
        })
        .collect()
}

//! How results and problems reach a person (text: results on stdout, problems on stderr) or a
//! program (`--json`: one JSON document on stdout, errors included).

use hermes_core::problem::{exit, Problem};
use std::process::ExitCode;

/// Print a problem and give the exit code it documents.
pub fn fail(p: &Problem, json: bool) -> ExitCode {
    fail_exiting(p, json, p.exit_code())
}

/// [`fail`] for a command whose exit code for this problem is its own (LSB `status`).
pub fn fail_exiting(p: &Problem, json: bool, code: u8) -> ExitCode {
    if json {
        println!("{}", serde_json::json!({"ok": false, "error": p.to_json_exiting(code)}));
    } else {
        eprintln!("\u{2717} {}", hermes_core::escape::terminal(&p.to_string()));
    }
    ExitCode::from(code)
}

/// A command-line error: clap's own message (exit 2), or its JSON form under `--json`.
/// `--help` and `--version` are not errors.
pub fn clap_error(e: clap::Error, json: bool) -> ExitCode {
    use clap::error::ErrorKind;
    if matches!(e.kind(), ErrorKind::DisplayHelp | ErrorKind::DisplayVersion | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand) {
        let _ = e.print();
        return ExitCode::from(if e.kind() == ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand { exit::USAGE } else { exit::OK });
    }
    if json {
        let p = Problem::from_clap_rendering(&e.render().to_string());
        println!("{}", serde_json::json!({"ok": false, "error": p.to_json()}));
        return ExitCode::from(exit::USAGE);
    }
    let _ = e.print();
    ExitCode::from(exit::USAGE)
}

/// A JSON document on stdout.
pub fn json(v: &serde_json::Value) {
    println!("{}", serde_json::to_string_pretty(v).expect("a JSON value serialises"));
}

//! The commands the README and docs/ show, checked against the binaries' own `--help`: a doc
//! that names a subcommand or a flag that does not exist is a failing test, not a surprise
//! for a new user.

use std::path::{Path, PathBuf};
use std::process::Command;

/// One command a document shows: its subcommand path and the flags it names.
#[derive(Debug, Clone)]
pub struct Shown {
    pub doc: String,
    pub span: String,
    pub path: Vec<String>,
    pub flags: Vec<String>,
}

fn docs_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("the workspace").to_path_buf()
}

/// Every inline code span of README.md and docs/*.md that starts with `bin`, expanded over
/// its alternatives (`start|stop`, `start/stop/restart`).
pub fn shown(bin: &str) -> Vec<Shown> {
    let root = docs_root();
    let mut files = vec![root.join("README.md")];
    if let Ok(dir) = std::fs::read_dir(root.join("docs")) {
        files.extend(dir.filter_map(|e| e.ok()).map(|e| e.path()).filter(|p| p.extension().is_some_and(|x| x == "md")));
    }
    let mut out = Vec::new();
    for file in files {
        let text = std::fs::read_to_string(&file).unwrap_or_default();
        for (i, span) in text.split('`').enumerate() {
            if i % 2 == 1 {
                out.extend(expand(bin, span).into_iter().map(|(path, flags)| Shown {
                    doc: file.file_name().unwrap().to_string_lossy().into_owned(),
                    span: span.to_string(),
                    path,
                    flags,
                }));
            }
        }
    }
    out
}

fn expand(bin: &str, span: &str) -> Vec<(Vec<String>, Vec<String>)> {
    let mut flags = Vec::new();
    // Optional parts: their flags are checked, their words are not a path.
    let mut plain = String::new();
    let mut depth = 0;
    let mut bracket = String::new();
    for c in span.chars() {
        match c {
            '[' => depth += 1,
            ']' if depth > 0 => {
                depth -= 1;
                flags.extend(
                    bracket
                        .split_whitespace()
                        .filter(|w| w.starts_with("--"))
                        .map(|w| w.trim_end_matches(|c: char| !c.is_ascii_alphanumeric()).to_string()),
                );
                bracket.clear();
            }
            _ if depth > 0 => bracket.push(c),
            _ => plain.push(c),
        }
    }
    let mut words = plain.split_whitespace();
    if words.next() != Some(bin) {
        return Vec::new();
    }
    let mut paths: Vec<Vec<String>> = vec![Vec::new()];
    let mut in_path = true;
    let mut skip_value = false;
    for w in words {
        if skip_value {
            skip_value = false;
            continue;
        }
        if w == "-p" || w == "--profile" {
            skip_value = true;
            continue;
        }
        if let Some(f) = w.strip_prefix("--") {
            flags.push(format!("--{}", f.split('=').next().unwrap_or(f).trim_end_matches(|c: char| !c.is_ascii_alphanumeric())));
            continue;
        }
        let word_like = !w.is_empty() && w.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '|' | '/' | '-'));
        if !in_path || !word_like || w.starts_with('-') {
            in_path = false;
            continue;
        }
        let alts: Vec<&str> = w.split(['|', '/']).filter(|a| !a.is_empty()).collect();
        paths = paths.iter().flat_map(|p| alts.iter().map(move |a| [p.clone(), vec![a.to_string()]].concat())).collect();
    }
    paths.into_iter().map(|p| (p, flags.clone())).collect()
}

/// Check every command the docs show for `bin` against `exe --help`; the failures, described.
pub fn check(bin: &str, exe: &Path) -> Vec<String> {
    check_except(bin, exe, |_| false)
}

/// [`check`], leaving out the commands `elsewhere` says another program answers (the `hermes`
/// front passes hermes-agent's own commands to its CLI).
pub fn check_except(bin: &str, exe: &Path, elsewhere: impl Fn(&[String]) -> bool) -> Vec<String> {
    let mut problems = Vec::new();
    let shown: Vec<Shown> = shown(bin).into_iter().filter(|s| !elsewhere(&s.path)).collect();
    assert!(!shown.is_empty(), "no `{bin} …` command found in the docs: is the parser broken?");
    let mut by_span: std::collections::BTreeMap<(String, String), Vec<Shown>> = Default::default();
    for s in shown {
        by_span.entry((s.doc.clone(), s.span.clone())).or_default().push(s);
    }
    for ((doc, span), all) in by_span {
        let mut helps = String::new();
        for s in &all {
            let o = Command::new(exe).args(&s.path).arg("--help").env("HERMES_DOCKER_EXEC_AS_ROOT", "1").output().expect("run the binary");
            if !o.status.success() {
                problems.push(format!(
                    "{doc}: `{span}`: `{bin} {} --help` failed: {}",
                    s.path.join(" "),
                    String::from_utf8_lossy(&o.stderr).trim()
                ));
            }
            helps.push_str(&String::from_utf8_lossy(&o.stdout));
        }
        for f in &all[0].flags {
            if !helps.contains(f.as_str()) {
                problems.push(format!("{doc}: `{span}`: no command it names takes {f}"));
            }
        }
    }
    problems
}

//! `hermes-bench`: each benchmark measures the release binaries as whole processes against a
//! baseline measured in the same invocation (alternating, medians over several runs), prints a
//! table and writes docs/benchmarks.md with the machine, the date, each figure next to its
//! baseline and target. Run it through `scripts/bench` (as root: the pass chowns to the hermes
//! uid and the s6 benchmarks run a real s6-svscan).
//!
//! Benchmarks, one module each: `boot-pass` (the pass against its floor program), `boot-to-up`
//! (a fresh s6-svscan until every wanted gateway is up, against plain s6 directories), `status`,
//! `start`, `registrar`, and behind `--docker` `docker` (a container restart).

mod boot_pass;
mod boot_to_up;
mod docker;
mod pacing;
mod real_gateway;
mod registrar;
mod report;
mod s6;
mod start;
mod status;
mod upstream_pass;
mod util;

use report::{Figure, Section, SUMMARY_HEADER};
use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Every benchmark, in report order.
const ALL: [&str; 9] = [
    boot_pass::NAME,
    upstream_pass::NAME,
    boot_to_up::NAME,
    status::NAME,
    start::NAME,
    registrar::NAME,
    docker::NAME,
    real_gateway::NAME,
    pacing::NAME,
];
/// The benchmarks run unless `--only` says otherwise (`docker` needs `--docker`).
const DEFAULT: [&str; 6] = [boot_pass::NAME, upstream_pass::NAME, boot_to_up::NAME, status::NAME, start::NAME, registrar::NAME];

const USAGE: &str = "usage: hermes-bench [--only NAME,...] [--docker] [--sizes 1,10,100,1000,5000] [--pace-sizes 5,10,20] [--profiles N] [--runs N] [--image TAG] [--out FILE]
  benchmarks: boot-pass, upstream-pass, boot-to-up, status, start, registrar, docker, real-gateway, pacing (the last three run only with --docker or --only)";

struct Opts {
    only: Vec<String>,
    sizes: Vec<usize>,
    /// The gateway counts of the pacing benchmark.
    pace_sizes: Vec<usize>,
    profiles: usize,
    runs: usize,
    image: String,
    out: PathBuf,
}

fn parse() -> Opts {
    let mut o = Opts {
        only: DEFAULT.iter().map(|s| s.to_string()).collect(),
        sizes: vec![1, 10, 100, 1000, 5000],
        pace_sizes: vec![5, 10, 20],
        profiles: 1000,
        runs: 7,
        image: std::env::var("HERMES_S6_IMAGE").unwrap_or_else(|_| "hermes-s6:dev".into()),
        out: PathBuf::from("docs/benchmarks.md"),
    };
    let mut it = std::env::args().skip(1);
    let usage = |why: &str| -> ! {
        eprintln!("hermes-bench: {why}\n{USAGE}");
        std::process::exit(2)
    };
    let num = |v: Option<String>, what: &str| -> usize {
        v.and_then(|v| v.parse().ok()).unwrap_or_else(|| usage(&format!("{what} takes a number")))
    };
    while let Some(a) = it.next() {
        match a.as_str() {
            "--only" => {
                o.only = it.next().unwrap_or_default().split(',').filter(|s| !s.is_empty()).map(str::to_string).collect();
                if let Some(bad) = o.only.iter().find(|n| !ALL.contains(&n.as_str())) {
                    usage(&format!("no benchmark named {bad:?}"));
                }
            }
            "--docker" => {
                for n in [docker::NAME, real_gateway::NAME, pacing::NAME] {
                    if !o.only.iter().any(|x| x == n) {
                        o.only.push(n.into());
                    }
                }
            }
            "--no-lifecycle" => o.only = vec![boot_pass::NAME.into()],
            "--sizes" => {
                o.sizes =
                    it.next().unwrap_or_default().split(',').map(|s| s.parse().unwrap_or_else(|_| usage("--sizes takes numbers"))).collect()
            }
            "--pace-sizes" => {
                o.pace_sizes = it
                    .next()
                    .unwrap_or_default()
                    .split(',')
                    .map(|s| s.parse().unwrap_or_else(|_| usage("--pace-sizes takes numbers")))
                    .collect()
            }
            "--profiles" => o.profiles = num(it.next(), "--profiles"),
            "--runs" => o.runs = num(it.next(), "--runs").max(1),
            "--image" => o.image = it.next().unwrap_or_else(|| usage("--image takes a tag")),
            "--out" => o.out = it.next().unwrap_or_else(|| usage("--out takes a file")).into(),
            "-h" | "--help" => {
                println!("{USAGE}");
                std::process::exit(0)
            }
            other => usage(&format!("unknown argument {other:?}")),
        }
    }
    o
}

fn main() {
    if std::env::args().nth(1).as_deref() == Some("--rss-of") {
        let a: Vec<String> = std::env::args().skip(2).collect();
        let (_, rss) = util::measure(Command::new(&a[0]).args(&a[1..]));
        println!("{rss}");
        return;
    }
    let o = parse();
    if !nix::unistd::geteuid().is_root() {
        eprintln!("hermes-bench: run as root (scripts/bench): the pass acts as the hermes user and the s6 benchmarks run a real s6-svscan");
        std::process::exit(2);
    }
    util::raise_nofile();
    let hermes = hermes_core::config::lookup_user("hermes").unwrap_or((10000, 10000));
    let base = if Path::new("/dev/shm").is_dir() { PathBuf::from("/dev/shm") } else { std::env::temp_dir() }
        .join(format!("hermes-bench-{}", std::process::id()));
    fs::create_dir_all(&base).unwrap();
    // The hermes user runs `request` against files under it.
    let _ = fs::set_permissions(&base, std::os::unix::fs::PermissionsExt::from_mode(0o755));
    {
        // Whatever happens, nothing of a run is left behind (release builds abort on panic).
        let base = base.clone();
        let default = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            default(info);
            s6::kill_under(&base);
            docker::cleanup();
            let _ = fs::remove_dir_all(&base);
        }));
    }
    let env = util::Env { base: base.clone(), runs: o.runs, hermes };
    let selected = |n: &str| o.only.iter().any(|x| x == n);
    let started = chrono::Local::now();
    let mut sections: Vec<Section> = Vec::new();
    if selected(boot_pass::NAME) {
        sections.push(boot_pass::run(&env, &o.sizes));
    }
    if selected(upstream_pass::NAME) {
        sections.push(upstream_pass::run(&env, o.profiles));
    }
    if selected(boot_to_up::NAME) {
        sections.push(boot_to_up::run(&env, o.profiles));
    }
    let fleet_users = [status::NAME, start::NAME, registrar::NAME];
    if fleet_users.iter().any(|n| selected(n)) {
        if s6::installed() {
            println!("\n== setting up {} profiles under a real s6-svscan (status, start, registrar)", o.profiles);
            let fleet = s6::Fleet::up(&env, "fleet", o.profiles);
            if selected(status::NAME) {
                sections.push(status::run(&env, &fleet));
            }
            if selected(start::NAME) {
                sections.push(start::run(&env, &fleet));
            }
            if selected(registrar::NAME) {
                sections.push(registrar::run(&env, &fleet));
            }
            let killed = fleet.down();
            if killed > 0 {
                eprintln!("note: {killed} process(es) of the fleet outlived s6-svscanctl -t and were killed");
            }
        } else {
            for n in fleet_users.iter().filter(|n| selected(n)) {
                sections.push(Section::skipped(n, *n, "s6 is not installed"));
            }
        }
    }
    if selected(docker::NAME) {
        sections.push(docker::run(&env, &o.image));
    }
    if selected(real_gateway::NAME) {
        sections.push(real_gateway::run(&env, &o.image));
    }
    if selected(pacing::NAME) {
        sections.push(pacing::run(&env, &o.image, &o.pace_sizes));
    }
    s6::kill_under(&base);
    let _ = fs::remove_dir_all(&base);

    let figures: Vec<&Figure> = sections.iter().flat_map(|s| s.figures.iter()).collect();
    println!("\n== summary (median; ratio = ours / baseline)");
    for f in &figures {
        println!("{}", f.line());
    }
    let md = document(&o, &sections, &started.format("%Y-%m-%d %H:%M %Z").to_string());
    if let Some(dir) = o.out.parent() {
        let _ = fs::create_dir_all(dir);
    }
    fs::write(&o.out, md).unwrap();
    println!("\nwrote {}", o.out.display());
}

const SECTION_MARK: &str = "<!-- section:";

/// The sections of an earlier document, by benchmark name, and its summary rows.
fn earlier(text: &str) -> (Vec<(String, String)>, Vec<String>) {
    let mut sections = Vec::new();
    let mut rest = text;
    while let Some(i) = rest.find(SECTION_MARK) {
        let after = &rest[i + SECTION_MARK.len()..];
        let name = after.split(" -->").next().unwrap_or("").trim().to_string();
        let end = after.find(SECTION_MARK).unwrap_or(after.len());
        let body = &rest[i..i + SECTION_MARK.len() + end];
        sections.push((name, body.trim_end().to_string()));
        rest = &after[end..];
    }
    // Only the summary's own rows: each section repeats its benchmark's rows below.
    let summary = &text[..text.find(SECTION_MARK).unwrap_or(text.len())];
    let rows = summary
        .lines()
        .filter(|l| l.starts_with("| ") && ALL.iter().any(|n| l.starts_with(&format!("| {n} |"))))
        .map(str::to_string)
        .collect();
    (sections, rows)
}

/// docs/benchmarks.md: the summary of every benchmark (the ones not run this time kept from
/// the previous document, each dated in its section), then one section per benchmark.
fn document(o: &Opts, run: &[Section], date: &str) -> String {
    let old = fs::read_to_string(&o.out).unwrap_or_default();
    let (old_sections, old_rows) = earlier(&old);
    let machine = util::machine();
    let mut md = String::new();
    let _ = writeln!(md, "# Benchmarks\n");
    let _ = writeln!(md, "Written by `scripts/bench` (last run {date}: {}) on {machine}.\n", o.only.join(", "));
    let _ = writeln!(
        md,
        "Every figure is a whole process (or a whole system: a scanner and its services) measured against a \
         baseline run in the same invocation, alternating with it, as the median of several runs (min-max \
         and count in brackets). The machine has 2 cores shared with other builds, so compare ratios, not \
         absolute times. `scripts/bench --only NAME,...` reruns some benchmarks; the others keep their \
         previous figures here, dated in their sections. `scripts/bench --docker` adds the container \
         restart.\n"
    );
    let _ = writeln!(md, "## Summary\n\n{SUMMARY_HEADER}");
    for name in ALL {
        match run.iter().find(|s| s.name == name) {
            Some(s) => {
                for f in &s.figures {
                    let _ = writeln!(md, "{}", f.row());
                }
            }
            None => {
                for r in old_rows.iter().filter(|r| r.starts_with(&format!("| {name} |"))) {
                    let _ = writeln!(md, "{r}");
                }
            }
        }
    }
    let _ = writeln!(md);
    for name in ALL {
        match run.iter().find(|s| s.name == name) {
            Some(s) => {
                let _ = writeln!(md, "{SECTION_MARK}{name} -->\n## {}\n", s.title);
                let _ = writeln!(md, "_Measured {date} on {machine}; load average when it started: {}._\n", s.load);
                if !s.figures.is_empty() {
                    let _ = writeln!(md, "{SUMMARY_HEADER}");
                    for f in &s.figures {
                        let _ = writeln!(md, "{}", f.row());
                    }
                    let _ = writeln!(md);
                }
                md.push_str(s.markdown.trim_end());
                md.push_str("\n\n");
            }
            None => {
                if let Some((_, body)) = old_sections.iter().find(|(n, _)| n == name) {
                    md.push_str(body);
                    md.push_str("\n\n");
                }
            }
        }
    }
    md.truncate(md.trim_end().len());
    md.push('\n');
    md
}

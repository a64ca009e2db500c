//! The boot pass against hermes-agent 0.19.0's own reconciler (`python -m
//! hermes_cli.container_boot`, from the wheels the image ships): the same generated home twice,
//! owned by the hermes user, one pass each, as each image runs it (upstream's as the hermes
//! user over a scandir it owns, ours as root), compared on exit codes, stdout lines, slots and
//! their `down` files, what is left in the home (swept runtime files, seeded state) and the
//! boot log. Every difference must be one of the kinds README.md's table "Where we differ from
//! upstream, and why" lists ([`KNOWN`]); anything else fails with both sides shown.

use hermes_core::escape::log_value;
use hermes_testkit::{give, is_root, need, upstream};
use std::collections::{BTreeMap, BTreeSet};
use std::ffi::OsString;
use std::fs;
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

const UID: u32 = 10000;

/// The documented differences: a kind, and the README table's row that explains it (the row
/// names the kind, so the table and this list cannot drift apart; see
/// `every_known_difference_has_a_readme_row`).
const KNOWN: &[&str] = &[
    "crash:ValueError",
    "crash:TypeError",
    "crash:AttributeError",
    "crash:IsADirectoryError",
    "crash:FileExistsError",
    "crash:UnicodeDecodeError",
    "crash:UnicodeEncodeError",
    "crash:RecursionError",
    "skipped-line",
    "name-rule",
    "symlink-profile",
    "profiles-link",
    "state-link",
    "boot-log-link",
    "multiplex-config",
    "multiplex-fold",
    "ports-record",
    "encoded-value",
    "compound-value",
    "prior-exit",
];

// ---------------------------------------------------------------------------------------------
// Homes

#[derive(Clone, Debug)]
enum Op {
    Dir(Vec<u8>),
    File(Vec<u8>, Vec<u8>),
    /// A link at the path to the target; a target starting with `@/` is under the case root.
    Link(Vec<u8>, Vec<u8>),
}

#[derive(Clone, Debug, Default)]
struct Case {
    name: String,
    ops: Vec<Op>,
    env: Vec<(String, Vec<u8>)>,
    /// Fake processes: (pid, NUL-separated argv).
    procs: Vec<(u32, Vec<u8>)>,
    /// Facts the classifier may use to explain a difference.
    mx_config: bool,
    profiles_link: bool,
    state_links: BTreeSet<Vec<u8>>,
    log_link: bool,
}

impl Case {
    fn new(name: &str) -> Case {
        Case { name: name.to_string(), ..Case::default() }
    }
    fn dir(&mut self, p: impl AsRef<[u8]>) -> &mut Self {
        self.ops.push(Op::Dir(p.as_ref().to_vec()));
        self
    }
    fn file(&mut self, p: impl AsRef<[u8]>, body: impl AsRef<[u8]>) -> &mut Self {
        self.ops.push(Op::File(p.as_ref().to_vec(), body.as_ref().to_vec()));
        self
    }
    fn link(&mut self, p: impl AsRef<[u8]>, target: impl AsRef<[u8]>) -> &mut Self {
        self.ops.push(Op::Link(p.as_ref().to_vec(), target.as_ref().to_vec()));
        self
    }
    fn env(&mut self, k: &str, v: impl AsRef<[u8]>) -> &mut Self {
        self.env.push((k.to_string(), v.as_ref().to_vec()));
        self
    }
    /// A named profile with a `SOUL.md` and, when given, a state file.
    fn profile(&mut self, name: impl AsRef<[u8]>, state: Option<&[u8]>) -> &mut Self {
        let d = [b"home/profiles/", name.as_ref()].concat();
        self.dir(&d).file([&d[..], b"/SOUL.md"].concat(), "persona\n");
        if let Some(s) = state {
            self.file([&d[..], b"/gateway_state.json"].concat(), s);
        }
        self
    }
    fn command(&mut self, pid: u32, argv: &[&str]) -> &mut Self {
        let mut raw = Vec::new();
        for a in argv {
            raw.extend_from_slice(a.as_bytes());
            raw.push(0);
        }
        self.procs.push((pid, raw));
        self
    }

    /// Make the tree under `root` (`home/` is always made, with `profiles/` unless a link is
    /// planted there), the hermes user's like a volume; `proc/` stays root's.
    fn materialise(&self, root: &Path) {
        let p = |rel: &[u8]| root.join(std::ffi::OsStr::from_bytes(rel));
        fs::create_dir_all(root.join("home")).unwrap();
        fs::create_dir_all(root.join("elsewhere")).unwrap();
        for op in &self.ops {
            match op {
                Op::Dir(d) => fs::create_dir_all(p(d)).unwrap(),
                Op::File(f, body) => {
                    fs::create_dir_all(p(f).parent().unwrap()).unwrap();
                    fs::write(p(f), body).unwrap();
                }
                Op::Link(l, t) => {
                    fs::create_dir_all(p(l).parent().unwrap()).unwrap();
                    let target = match t.strip_prefix(b"@/") {
                        Some(rest) => p(rest),
                        None => PathBuf::from(OsString::from_vec(t.clone())),
                    };
                    std::os::unix::fs::symlink(target, p(l)).unwrap();
                }
            }
        }
        give(&root.join("home"), UID, UID);
        give(&root.join("elsewhere"), UID, UID);
        for (pid, raw) in &self.procs {
            let d = root.join("proc").join(pid.to_string());
            fs::create_dir_all(&d).unwrap();
            fs::write(d.join("cmdline"), raw).unwrap();
        }
        fs::create_dir_all(root.join("proc")).unwrap();
        fs::create_dir_all(root.join("service")).unwrap();
        fs::create_dir_all(root.join("out")).unwrap();
    }
}

/// A small deterministic generator (xorshift64*): the same seed, the same homes.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    fn chance(&mut self, percent: u64) -> bool {
        self.next() % 100 < percent
    }
    fn pick<'a, T>(&mut self, xs: &'a [T]) -> &'a T {
        &xs[self.below(xs.len())]
    }
}

const STATES: &[&str] = &["running", "stopped", "starting", "startup_failed", "draining", "degraded", "Running", "running ", "not running"];

/// A state file's bytes: mostly well-formed, sometimes one of JSON's edges.
fn state_doc(r: &mut Rng) -> Vec<u8> {
    let q = |s: &&str| format!("\"{s}\"");
    let edge = r.below(100);
    let doc = match edge {
        0..=54 => {
            let mut keys = vec!["\"timestamp\": 1700000000".to_string()];
            if r.chance(70) {
                keys.push(format!("\"gateway_state\": {}", q(r.pick(STATES))));
            }
            if r.chance(50) {
                let v = if r.chance(15) { "null".to_string() } else { q(r.pick(STATES)) };
                keys.push(format!("\"desired_state\": {v}"));
            }
            format!("{{{}}}", keys.join(", "))
        }
        55..=57 => "\u{feff}{\"desired_state\": \"running\"}".to_string(),
        58..=60 => format!("{{\"desired_state\": \"running\", \"x\": {}}}", r.pick(&["NaN", "Infinity", "-Infinity"])),
        61 => format!("{{\"desired_state\": {}}}", r.pick(&["NaN", "Infinity", "-Infinity", "1e400", "-1e400"])),
        62..=63 => {
            format!("{{\"gateway_state\": \"running\", \"n\": {}}}", r.pick(&["123456789012345678901234567890", "1e400", "-0", "1E5"]))
        }
        64..=66 => {
            let depth = 100 + r.below(800);
            format!("{{\"desired_state\": \"running\", \"x\": {}1{}}}", "[".repeat(depth), "]".repeat(depth))
        }
        67..=68 => {
            let depth = 20 + r.below(300);
            format!("{{\"x\": {}\"y\": 1{}, \"gateway_state\": \"draining\"}}", "{\"a\": ".repeat(depth), "}".repeat(depth))
        }
        69..=70 => format!("{{\"desired_state\": \"running\", \"x\": \"{}\"}}", r.pick(&["\\ud800", "\\udc00x", "\\ud83d\\ude00"])),
        71..=74 => format!(
            "{{\"desired_state\": {}}}",
            r.pick(&["true", "false", "10", "-0", "1.5", "1e20", "1E-7", "123456789012345678901234567890", "0.1", "-2.50"])
        ),
        75..=77 => r.pick(&["{\"desired_state\": \"runn", "", "   ", "{} x", "{\"a\" 1}", "nul"]).to_string(),
        78..=79 => "{\"desired_state\": \"stopped\", \"desired_state\": \"\\u0072unning\"}".to_string(),
        80..=81 => format!("{{\"desired_state\": \"{}\"}}", "r".repeat(90 + r.below(40))),
        82 => "{\"desired_state\": \"a\\nb=c d\\u001b[0m\"}".to_string(),
        // What upstream cannot survive (rare: a crash hides the rest of the home).
        83 => r.pick(&["[]", "\"running\"", "null", "3"]).to_string(),
        84 => format!("{{\"desired_state\": {}}}", r.pick(&["[\"running\"]", "{}"])),
        85 => return b"{\"desired_state\": \"caf\xe9\"}".to_vec(),
        86 => "{\"desired_state\": \"\\ud800\"}".to_string(),
        87 => format!("{{\"desired_state\": \"running\", \"x\": {}1{}}}", "[".repeat(1200), "]".repeat(1200)),
        _ => format!("{{\"gateway_state\": {}}}", q(r.pick(STATES))),
    };
    doc.into_bytes()
}

const NAMES: &[&str] = &["a", "bot", "coder", "writer", "x-1", "a_b", "zz9", "0day", "ops-team", "q"];

fn generate(seed: u64) -> Case {
    let mut r = Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
    let mut c = Case::new(&format!("seed-{seed}"));
    c.dir("home/profiles");
    if r.chance(60) {
        c.file("home/gateway_state.json", state_doc(&mut r));
    }
    // The root profile's stale runtime files.
    stale_files(&mut r, &mut c, b"home");
    let n = r.below(6);
    let mut used = BTreeSet::new();
    for _ in 0..n {
        let name: Vec<u8> = match r.below(100) {
            0..=84 => r.pick(NAMES).as_bytes().to_vec(),
            85..=87 => "n".repeat(64).into_bytes(),
            88..=89 => "m".repeat(65 + r.below(100)).into_bytes(),
            90..=91 => b"default".to_vec(),
            92 => b"trail\n".to_vec(),
            93 => b"Upper".to_vec(),
            94 => b"caf\xe9".to_vec(),
            95 => b"with space".to_vec(),
            _ => b".hidden".to_vec(),
        };
        if !used.insert(name.clone()) {
            continue;
        }
        let d = [b"home/profiles/".as_slice(), &name].concat();
        let shape = r.below(100);
        if shape < 6 {
            // A linked profile directory, its target outside the home.
            let t = [b"elsewhere/".as_slice(), &name].concat();
            c.dir(&t).file([&t[..], b"/SOUL.md"].concat(), "x");
            if r.chance(50) {
                c.file([&t[..], b"/gateway_state.json"].concat(), state_doc(&mut r));
            }
            c.link(&d, [b"@/".as_slice(), &t].concat());
            continue;
        }
        if shape < 9 {
            c.file(&d, "not a directory");
            continue;
        }
        c.dir(&d);
        let soul = [&d[..], b"/SOUL.md"].concat();
        match r.below(100) {
            0..=79 => {
                c.file(&soul, "persona\n");
            }
            80..=84 => {
                c.link(&soul, "no-such-file");
            }
            85..=88 => {
                c.file([&d[..], b"/persona.md"].concat(), "x").link(&soul, "persona.md");
            }
            89..=91 => {
                c.dir(&soul);
            }
            _ => {}
        }
        if r.chance(75) {
            let sf = [&d[..], b"/gateway_state.json"].concat();
            if r.chance(4) {
                let t = [b"elsewhere/state-".as_slice(), &name].concat();
                c.file(&t, state_doc(&mut r)).link(&sf, [b"@/".as_slice(), &t].concat());
                c.state_links.insert(name.clone());
            } else {
                c.file(&sf, state_doc(&mut r));
            }
        }
        stale_files(&mut r, &mut c, &d);
    }
    if r.chance(3) {
        c.ops.retain(|o| !matches!(o, Op::Dir(d) if d == b"home/profiles"));
        c.ops.retain(|o| !matches!(o, Op::Dir(d) | Op::File(d, _) | Op::Link(d, _) if d.starts_with(b"home/profiles/")));
        c.profile_link_to_elsewhere(&mut r);
    }
    // The environment.
    match r.below(10) {
        0 => {
            c.env("GATEWAY_MULTIPLEX_PROFILES", *r.pick(&["1", "true", "on", " yes ", "YES", "maybe", "off", "0", "", "2"]));
        }
        1 => {
            c.env("HERMES_GATEWAY_NO_SUPERVISE", *r.pick(&["1", "true", "yes", "YES", "on", " 1", "0", "", "no"]));
        }
        _ => {}
    }
    match r.below(12) {
        0 => {
            c.file("home/config.yaml", "multiplex_profiles: true\n");
            c.mx_config = true;
        }
        1 => {
            c.file("home/config.yaml", "gateway:\n  multiplex_profiles: false\n");
        }
        2 => {
            c.file("home/config.yaml", "gateway: [unclosed\n");
        }
        _ => {}
    }
    // The container's command.
    match r.below(10) {
        0 => {
            c.command(1, &["/init", "/opt/hermes/docker/main-wrapper.sh", "gateway", "run"]);
        }
        1 => {
            c.command(1, &["s6-svscan", "/run/service"]).command(
                57,
                &["/bin/sh", "-e", "/run/s6/basedir/scripts/rc.init", "top", "/opt/hermes/docker/main-wrapper.sh", "gateway", "run"],
            );
        }
        2 => {
            c.command(1, &["/init", "/opt/hermes/docker/main-wrapper.sh", "gateway", "run", "--no-supervise"]);
        }
        3 if r.chance(30) => {
            c.command(1, &["/init", "/opt/hermes/docker/main-wrapper.sh", "dashboard"]);
        }
        4 => {
            c.command(1, &["/init", "/opt/hermes/docker/main-wrapper.sh", "chat"]);
        }
        _ => {}
    }
    // The boot log.
    match r.below(10) {
        0..=1 => {
            c.file("home/logs/container-boot.log", "2026-01-01T00:00:00+0000 profile=default prior_state=None action=registered\n");
        }
        2 => {
            c.file("home/logs/container-boot.log", log_of(256 * 1024 - 10 + r.below(20)));
        }
        3 => {
            c.file("home/logs/container-boot.log", log_of(256 * 1024 + 100)).file("home/logs/container-boot.log.1", "old\n");
        }
        4 if r.chance(50) => {
            c.file("home/logs/container-boot.log", log_of(256 * 1024 + 100)).dir("home/logs/container-boot.log.1");
        }
        _ => {}
    }
    c
}

impl Case {
    fn profile_link_to_elsewhere(&mut self, r: &mut Rng) {
        self.dir("elsewhere/profiles/linked");
        self.file("elsewhere/profiles/linked/SOUL.md", "x");
        if r.chance(50) {
            self.file("elsewhere/profiles/linked/gateway_state.json", "{\"desired_state\": \"running\"}");
        }
        self.link("home/profiles", "@/elsewhere/profiles");
        self.profiles_link = true;
    }
}

fn stale_files(r: &mut Rng, c: &mut Case, dir: &[u8]) {
    for f in [b"gateway.pid".as_slice(), b"processes.json"] {
        let path = [dir, b"/", f].concat();
        match r.below(100) {
            0..=39 => {
                c.file(&path, "{\"pid\": 4242}");
            }
            40..=42 => {
                c.file("elsewhere/victim", "keep me").link(&path, "@/elsewhere/victim");
            }
            43 => {
                c.dir(&path);
            }
            _ => {}
        }
    }
    if r.chance(10) {
        c.file([dir, b"/gateway.lock"].concat(), "lock");
    }
}

/// Whole boot-log lines, `len` bytes or a little over.
fn log_of(len: usize) -> String {
    let line = "2026-01-01T00:00:00+0000 profile=default prior_state=None action=registered\n";
    line.repeat(len / line.len() + 1)
}

/// The issue's cases and the edges the README table names, each by hand.
fn fixed_cases() -> Vec<Case> {
    let mut v = Vec::new();
    let mut c = Case::new("dangling-soul-link");
    c.dir("home/profiles/ghost")
        .link("home/profiles/ghost/SOUL.md", "missing.md")
        .file("home/profiles/ghost/gateway_state.json", "{\"desired_state\": \"running\"}");
    v.push(c);
    let mut c = Case::new("soul-link-to-a-file");
    c.dir("home/profiles/real").file("home/profiles/real/p.md", "x").link("home/profiles/real/SOUL.md", "p.md");
    v.push(c);
    let mut c = Case::new("profiles-default-is-a-link");
    c.dir("elsewhere/d")
        .file("elsewhere/d/SOUL.md", "x")
        .link("home/profiles/default", "@/elsewhere/d")
        .profile("coder", Some(b"{\"desired_state\": \"running\"}"));
    v.push(c);
    let mut c = Case::new("profiles-default-is-a-dir");
    c.profile("default", Some(b"{\"desired_state\": \"running\"}")).profile("coder", None);
    v.push(c);
    for value in ["1", "true", "yes", "YES", "Yes", "on", " 1", "1 ", "0", "", "no", "tRuE"] {
        let mut c = Case::new(&format!("no-supervise={value:?}"));
        c.env("HERMES_GATEWAY_NO_SUPERVISE", value).command(1, &["/init", "/opt/hermes/docker/main-wrapper.sh", "gateway", "run"]);
        v.push(c);
    }
    for (config, mx) in
        [(None, false), (Some("multiplex_profiles: true\n"), true), (Some("multiplex_profiles: false\n"), false), (Some("x: [\n"), false)]
    {
        for value in ["maybe", "", "on", "off", " TRUE "] {
            let mut c = Case::new(&format!("multiplex={value:?} config={config:?}"));
            c.env("GATEWAY_MULTIPLEX_PROFILES", value).profile("coder", Some(b"{\"desired_state\": \"running\"}"));
            c.file("home/gateway_state.json", "{\"desired_state\": \"running\"}");
            if let Some(body) = config {
                c.file("home/config.yaml", body);
                c.mx_config = mx && !["on", "off", " TRUE "].contains(&value);
            }
            v.push(c);
        }
    }
    let mut c = Case::new("rotated-log-is-a-directory");
    c.file("home/logs/container-boot.log", log_of(256 * 1024 + 1)).dir("home/logs/container-boot.log.1");
    v.push(c);
    let mut c = Case::new("log-at-the-threshold");
    c.file("home/logs/container-boot.log", "x".repeat(256 * 1024));
    v.push(c);
    let json_edges: &[&[u8]] = &[
        b"\xef\xbb\xbf{\"desired_state\": \"running\"}",
        b"{\"desired_state\": \"running\", \"x\": NaN}",
        b"{\"desired_state\": \"running\", \"x\": -Infinity}",
        b"{\"desired_state\": NaN}",
        b"{\"desired_state\": \"running\", \"n\": 1000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000}",
        b"{\"desired_state\": \"running\", \"f\": 1e400}",
        b"{\"desired_state\": 123456789012345678901234567890}",
        b"{\"desired_state\": true}",
        b"{\"desired_state\": 1e20}",
        b"{\"desired_state\": \"running\", \"x\": \"\\ud800\"}",
        b"{\"desired_state\": \"running\"}\n\n  ",
        b"{\"desired_state\": \"running\",}",
        b"{'desired_state': 'running'}",
        b"{\"desired_state\": \"running\"\x00}",
        b"{\"desired_state\": \"run\tning\"}",
        b"{\"desired_state\": \"running\", \"x\": 01}",
        b"{\"desired_state\": \"running\", \"x\": -NaN}",
        b"{\"desired_state\": \"running\", \"x\": 1.}",
    ];
    for (i, doc) in json_edges.iter().enumerate() {
        let mut c = Case::new(&format!("json-edge-{i}"));
        c.profile("p", Some(doc));
        v.push(c);
    }
    for depth in [127, 128, 129, 500, 980] {
        let mut c = Case::new(&format!("json-depth-{depth}"));
        let doc = format!("{{\"desired_state\": \"running\", \"x\": {}{}}}", "[".repeat(depth), "]".repeat(depth));
        c.profile("p", Some(doc.as_bytes()));
        v.push(c);
    }
    let mut c = Case::new("hostile-value");
    c.profile("p", Some(b"{\"desired_state\": \"x action=started\\nreconcile: profile=evil\"}"));
    v.push(c);
    let mut c = Case::new("long-value");
    c.profile("p", Some(format!("{{\"desired_state\": \"{}\"}}", "s".repeat(300)).as_bytes()));
    v.push(c);
    let mut c = Case::new("invalid-name");
    c.profile("Bad", None).profile("good", Some(b"{\"desired_state\": \"running\"}"));
    v.push(c);
    let mut c = Case::new("list-desired-state");
    c.profile("p", Some(b"{\"desired_state\": [\"running\"]}"));
    v.push(c);
    let mut c = Case::new("list-desired-state-multiplexed");
    c.env("GATEWAY_MULTIPLEX_PROFILES", "1").profile("p", Some(b"{\"desired_state\": [\"running\"]}"));
    v.push(c);
    let mut c = Case::new("pid-file-is-a-directory");
    c.profile("p", None).dir("home/profiles/p/gateway.pid");
    v.push(c);
    let mut c = Case::new("dangling-profile-link");
    c.link("home/profiles/gone", "@/elsewhere/nothing").profile("here", None);
    v.push(c);
    let mut c = Case::new("logs-is-a-file");
    c.file("home/logs", "not a directory").profile("p", None);
    v.push(c);
    let mut c = Case::new("boot-log-is-a-directory");
    c.dir("home/logs/container-boot.log").profile("p", None);
    v.push(c);
    let mut c = Case::new("boot-log-is-a-link");
    c.file("elsewhere/target.log", "kept\n").link("home/logs/container-boot.log", "@/elsewhere/target.log").profile("p", None);
    c.log_link = true;
    v.push(c);
    let mut c = Case::new("dashboard");
    c.profile("p", Some(b"{\"desired_state\": \"running\"}")).command(1, &["/init", "/opt/hermes/docker/main-wrapper.sh", "dashboard"]);
    v.push(c);
    let mut c = Case::new("legacy-v3");
    c.command(1, &["s6-svscan", "/run/service"])
        .command(57, &["/bin/sh", "-e", "/run/s6/basedir/scripts/rc.init", "top", "/opt/hermes/docker/main-wrapper.sh", "gateway", "run"]);
    v.push(c);
    v
}

// ---------------------------------------------------------------------------------------------
// Running both

#[derive(Debug, Clone, PartialEq, Eq)]
struct Entry {
    profile: Vec<u8>,
    prior: Option<Vec<u8>>,
    action: String,
    reason: Option<String>,
}

impl Entry {
    /// The line upstream writes for it, after `prefix` (its stdout's `reconcile:`, or nothing
    /// where its boot log puts a timestamp).
    fn line(&self, prefix: &[u8]) -> Vec<u8> {
        let prior = self.prior.as_deref().unwrap_or(b"None");
        [prefix, b" profile=", &self.profile, b" prior_state=", prior, b" action=", self.action.as_bytes(), b"\n"].concat()
    }
}

#[derive(Debug, Default)]
struct Obs {
    exit: i32,
    stdout: Vec<u8>,
    stderr: String,
    exception: Option<String>,
    /// Upstream: what its reconciler returned; ours: parsed from stdout.
    entries: Option<Vec<Entry>>,
    /// Scandir entries: name -> whether a `down` file is in it.
    slots: BTreeMap<String, bool>,
    /// Everything under the home but `logs/`: path -> kind, owner, mode, content.
    tree: BTreeMap<String, String>,
    log: Option<Vec<u8>>,
    rotated: Option<String>,
}

fn describe(root: &Path, p: &Path) -> String {
    let m = fs::symlink_metadata(p).unwrap();
    let ft = m.file_type();
    let what = if ft.is_symlink() {
        let t = fs::read_link(p).unwrap();
        format!("link -> {}", t.to_string_lossy().replace(&*root.to_string_lossy(), "@"))
    } else if ft.is_dir() {
        "dir".to_string()
    } else {
        let body = fs::read(p).unwrap();
        let mut text = String::from_utf8_lossy(&body).into_owned();
        if p.file_name().is_some_and(|n| n == "gateway_state.json") {
            // The legacy seed's timestamp is the pass's clock.
            if let Some(i) = text.find("\"timestamp\": ") {
                let end = text[i + 13..].find(|c: char| !c.is_ascii_digit()).map_or(text.len(), |e| i + 13 + e);
                text.replace_range(i + 13..end, "T");
            }
        }
        if text.len() > 200 {
            format!("file {} bytes, hash {:x}", body.len(), fnv(&body))
        } else {
            format!("file {text:?}")
        }
    };
    format!("{what} uid={} mode={:o}", m.uid(), m.mode() & 0o7777)
}

fn fnv(b: &[u8]) -> u64 {
    b.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, &x| (h ^ x as u64).wrapping_mul(0x100_0000_01b3))
}

fn walk(root: &Path, dir: &Path, rel: &str, out: &mut BTreeMap<String, String>) {
    let Ok(rd) = fs::read_dir(dir) else { return };
    for e in rd.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        let r = if rel.is_empty() { name.clone() } else { format!("{rel}/{name}") };
        if r == "logs" {
            continue;
        }
        out.insert(r.clone(), describe(root, &e.path()));
        if e.file_type().unwrap().is_dir() {
            walk(root, &e.path(), &r, out);
        }
    }
}

fn observe(root: &Path) -> Obs {
    let mut o = Obs::default();
    for e in fs::read_dir(root.join("service")).unwrap().flatten() {
        o.slots.insert(e.file_name().to_string_lossy().into_owned(), e.path().join("down").exists());
    }
    walk(root, &root.join("home"), "", &mut o.tree);
    o.log = fs::read(root.join("home/logs/container-boot.log")).ok();
    let r = root.join("home/logs/container-boot.log.1");
    o.rotated = fs::symlink_metadata(&r).ok().map(|_| describe(root, &r));
    o
}

fn unhex(s: &str) -> Vec<u8> {
    (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap()).collect()
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn run_upstream(python: &Path, driver: &Path, cases: &[(Case, PathBuf)]) {
    let list: Vec<serde_json::Value> = cases
        .iter()
        .map(|(c, root)| {
            let mut env = serde_json::Map::new();
            env.insert(hex(b"HERMES_HOME"), hex(root.join("home").as_os_str().as_bytes()).into());
            env.insert(hex(b"S6_PROFILE_GATEWAY_SCANDIR"), hex(root.join("service").as_os_str().as_bytes()).into());
            env.insert(hex(b"TZ"), hex(b"UTC").into());
            env.insert(hex(b"PATH"), hex(b"/usr/bin:/bin").into());
            for (k, v) in &c.env {
                env.insert(hex(k.as_bytes()), hex(v).into());
            }
            serde_json::json!({
                "env": env,
                "proc": root.join("proc"),
                "out": root.join("out"),
                "uid": UID,
                "gid": UID,
            })
        })
        .collect();
    let list_path = driver.with_file_name("cases.json");
    fs::write(&list_path, serde_json::to_vec(&list).unwrap()).unwrap();
    // As cont-init ran it: no locale variables (Python's UTF-8 mode), the hermes user (the
    // driver drops to it per case).
    let o = Command::new(python).env_clear().env("PATH", "/usr/bin:/bin").arg(driver).arg(&list_path).output().unwrap();
    assert!(o.status.success(), "the upstream driver failed: {}", String::from_utf8_lossy(&o.stderr));
}

fn upstream_obs(root: &Path) -> Obs {
    let out = root.join("out");
    let mut o = observe(root);
    o.exit = fs::read_to_string(out.join("exit")).expect("the driver ran the case").trim().parse().unwrap();
    o.stdout = fs::read(out.join("stdout")).unwrap_or_default();
    o.stderr = fs::read_to_string(out.join("stderr")).unwrap_or_default();
    o.exception = fs::read_to_string(out.join("exception")).ok();
    if let Ok(a) = fs::read(out.join("actions.json")) {
        let rows: Vec<(String, Option<String>, String)> = serde_json::from_slice(&a).unwrap();
        o.entries = Some(
            rows.into_iter().map(|(p, s, a)| Entry { profile: unhex(&p), prior: s.map(|s| unhex(&s)), action: a, reason: None }).collect(),
        );
    }
    o
}

fn run_ours(c: &Case, root: &Path) -> Obs {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_hermes-reconcile"));
    cmd.env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("TZ", "UTC")
        .env("HERMES_HOME", root.join("home"))
        .env("S6_PROFILE_GATEWAY_SCANDIR", root.join("service"))
        .arg("--proc-root")
        .arg(root.join("proc"));
    for (k, v) in &c.env {
        cmd.env(k, std::ffi::OsStr::from_bytes(v));
    }
    let out = cmd.output().unwrap();
    let mut o = observe(root);
    o.exit = out.status.code().unwrap_or(-1);
    o.stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    o.stdout = out.stdout;
    o.entries = parse_ours(&o.stdout);
    o
}

/// `reconcile: profile=P prior_state=S action=A[ reason=R]`: our values are log-safe, so a
/// line splits on spaces. `None` for the dashboard line or a line that does not parse.
fn parse_ours(stdout: &[u8]) -> Option<Vec<Entry>> {
    let text = std::str::from_utf8(stdout).ok()?;
    text.lines().map(|l| parse_fields(l.strip_prefix("reconcile: ")?)).collect()
}

fn parse_fields(l: &str) -> Option<Entry> {
    let mut f: BTreeMap<&str, &str> = BTreeMap::new();
    for part in l.split(' ') {
        let (k, v) = part.split_once('=')?;
        f.insert(k, v);
    }
    let prior = f.get("prior_state")?;
    Some(Entry {
        profile: f.get("profile")?.as_bytes().to_vec(),
        prior: (*prior != "None").then(|| prior.as_bytes().to_vec()),
        action: f.get("action")?.to_string(),
        reason: f.get("reason").map(|s| s.to_string()),
    })
}

// ---------------------------------------------------------------------------------------------
// Comparing

#[derive(Default)]
struct Verdict {
    known: BTreeSet<&'static str>,
    unknown: Vec<String>,
}

impl Verdict {
    fn known(&mut self, k: &'static str) {
        assert!(KNOWN.contains(&k), "{k} is not in KNOWN");
        self.known.insert(k);
    }
}

const TS_LEN: usize = "2026-01-01T00:00:00+0000".len();

fn is_timestamp(s: &[u8]) -> bool {
    s.len() == TS_LEN
        && s.iter().enumerate().all(|(i, &b)| match i {
            4 | 7 => b == b'-',
            10 => b == b'T',
            13 | 16 => b == b':',
            19 => b == b'+' || b == b'-',
            _ => b.is_ascii_digit(),
        })
}

fn shown(b: &[u8]) -> String {
    format!("{:?}", String::from_utf8_lossy(b))
}

/// Whether our pass folded a named profile's running intent into `gateway-default`.
fn fold_line(stdout: &[u8]) -> bool {
    String::from_utf8_lossy(stdout)
        .lines()
        .any(|l| l.contains("profile=default ") && l.contains("action=started") && l.ends_with("reason=folded"))
}

fn compare(c: &Case, up: &Obs, ours: &Obs) -> Verdict {
    let mut v = Verdict::default();
    if ours.exit != 0 {
        v.unknown.push(format!("our exit code {} (stderr: {})", ours.exit, ours.stderr.trim()));
    }
    if let Some(exc) = &up.exception {
        let kind = KNOWN.iter().find(|k| k.strip_prefix("crash:") == Some(exc.as_str()));
        match kind {
            Some(k) => v.known(k),
            None => v.unknown.push(format!("upstream raised {exc}, a crash the README does not list:\n{}", up.stderr)),
        }
        // What upstream published before it stopped must be what this pass published.
        for (slot, down) in &up.slots {
            let Some(our_down) = ours.slots.get(slot) else { continue };
            let name = slot.strip_prefix("gateway-").unwrap_or(slot).as_bytes();
            let folded = slot == "gateway-default" && *down && !*our_down && fold_line(&ours.stdout);
            if folded {
                v.known("multiplex-fold");
            } else if our_down != down && !c.mx_config && !c.state_links.contains(name) {
                v.unknown.push(format!("{slot}, published before upstream's crash: down upstream {down}, ours {our_down}"));
            }
        }
        return v;
    }
    if up.exit != 0 {
        v.unknown.push(format!("upstream exit code {} (stderr: {})", up.exit, up.stderr));
    }
    let Some(up_entries) = &up.entries else {
        // The dashboard container: one line, nothing done.
        if up.stdout != ours.stdout || !up.slots.is_empty() || !ours.slots.is_empty() || up.log.is_some() != ours.log.is_some() {
            v.unknown.push(format!(
                "no reconcile upstream: stdout {} vs ours {}; slots {:?} vs {:?}",
                shown(&up.stdout),
                shown(&ours.stdout),
                up.slots,
                ours.slots
            ));
        }
        return v;
    };
    // The driver saw what upstream printed.
    let rendered: Vec<u8> = up_entries.iter().flat_map(|e| e.line(b"reconcile:")).collect();
    if rendered != up.stdout {
        v.unknown.push(format!("upstream stdout {} is not its actions {}", shown(&up.stdout), shown(&rendered)));
    }
    let Some(our_entries) = &ours.entries else {
        v.unknown.push(format!("our stdout does not parse: {}", shown(&ours.stdout)));
        return v;
    };
    let mut u: Vec<Entry> = up_entries.clone();
    let mut o: Vec<Entry> = Vec::new();
    let mut not_ours: Vec<String> = Vec::new();
    let mut up_slots = up.slots.clone();
    let mut our_slots = ours.slots.clone();
    let slot_of_up = |name: &[u8], slots: &mut BTreeMap<String, bool>| {
        slots.remove(&format!("gateway-{}", String::from_utf8_lossy(name)));
    };
    for e in our_entries {
        if e.action != "skipped" || e.profile == b"default" {
            o.push(e.clone());
            continue;
        }
        let same = u.iter().position(|x| log_value(&x.profile).as_bytes() == e.profile.as_slice());
        match (e.reason.as_deref(), same) {
            (Some("symlink"), Some(i)) => {
                slot_of_up(&u.remove(i).profile, &mut up_slots);
                v.known("symlink-profile");
            }
            (Some("invalid-name"), Some(i)) => {
                let name = u.remove(i).profile;
                slot_of_up(&name, &mut up_slots);
                // Upstream swept its runtime files; this pass left the directory alone.
                not_ours.push(format!("profiles/{}/", String::from_utf8_lossy(&name)));
                v.known("name-rule");
            }
            (Some(_), None) => v.known("skipped-line"),
            _ => v.unknown.push(format!("our skipped line {e:?} against upstream's {u:?}")),
        }
    }
    if c.profiles_link && o.len() == 1 && u.len() > 1 {
        for e in u.drain(1..) {
            slot_of_up(&e.profile, &mut up_slots);
        }
        v.known("profiles-link");
    }
    let names = |xs: &[Entry]| xs.iter().map(|e| String::from_utf8_lossy(&e.profile).into_owned()).collect::<Vec<_>>();
    if names(&u) != names(&o) {
        v.unknown.push(format!("profiles: upstream {:?}, ours {:?}", names(&u), names(&o)));
        return v;
    }
    for (a, b) in u.iter().zip(&o) {
        let slot = format!("gateway-{}", String::from_utf8_lossy(&a.profile));
        let expected = a.prior.as_ref().map(|p| log_value(p).into_bytes());
        let mut action_explained = false;
        if b.prior != expected {
            if b.prior.is_none() && c.state_links.contains(&a.profile) {
                v.known("state-link");
                action_explained = true;
            } else if b.prior.is_some() && a.prior.as_ref().is_some_and(|p| p.starts_with(b"[") || p.starts_with(b"{")) {
                // A list or dict state upstream did not crash on (multiplexing spared the
                // comparison): its repr against the JSON as written.
                v.known("compound-value");
            } else {
                v.unknown.push(format!(
                    "profile={}: prior_state upstream {} (shown as {:?} here), ours {:?}",
                    String::from_utf8_lossy(&a.profile),
                    a.prior.as_deref().map_or("None".into(), shown),
                    expected.as_deref().map(String::from_utf8_lossy),
                    b.prior.as_deref().map(String::from_utf8_lossy)
                ));
            }
        } else if a.prior != expected {
            v.known("encoded-value");
        }
        if a.action != b.action && !action_explained {
            if a.profile != b"default" && c.mx_config && a.action == "started" && b.action == "registered" {
                v.known("multiplex-config");
            } else if a.profile == b"default" && a.action == "registered" && b.action == "started" && b.reason.as_deref() == Some("folded")
            {
                v.known("multiplex-fold");
            } else {
                v.unknown.push(format!("profile={}: action upstream {}, ours {}", String::from_utf8_lossy(&a.profile), a.action, b.action));
            }
        }
        if a.action != b.action {
            up_slots.remove(&slot);
            our_slots.remove(&slot);
        }
    }
    if up_slots != our_slots {
        v.unknown.push(format!("slots (name -> down): upstream {up_slots:?}, ours {our_slots:?}"));
    }
    for k in up.tree.keys().chain(ours.tree.keys()).collect::<BTreeSet<_>>() {
        if not_ours.iter().any(|p| k.starts_with(p.as_str())) {
            continue;
        }
        if up.tree.get(k) != ours.tree.get(k) {
            if k == hermes_core::volume::ports::RECORD_FILE
                && !up.tree.contains_key(k)
                && ours.tree.get(k).is_some_and(|d| d.starts_with("file ") && d.ends_with(&format!("uid={UID} mode=644")))
            {
                // The profiles' API server ports, recorded as the user's file (README, "Per-profile ports").
                v.known("ports-record");
                continue;
            }
            v.unknown.push(format!("home/{k}: upstream {:?}, ours {:?}", up.tree.get(k), ours.tree.get(k)));
        }
    }
    if c.log_link && up.log != ours.log && ours.log.as_deref() == Some(b"kept\n".as_slice()) {
        // Upstream appended through the link; this pass wrote nothing there.
        v.known("boot-log-link");
        return v;
    }
    if up.rotated != ours.rotated {
        v.unknown.push(format!("container-boot.log.1: upstream {:?}, ours {:?}", up.rotated, ours.rotated));
    }
    compare_logs(up_entries, our_entries, up, ours, &mut v);
    v
}

/// The boot log: the same history before this pass's lines; upstream's new lines are its
/// actions, ours are our stdout's entries (plus `prior_exit=`), one timestamp per pass.
fn compare_logs(up_entries: &[Entry], our_entries: &[Entry], up: &Obs, ours: &Obs, v: &mut Verdict) {
    let split = |log: &Option<Vec<u8>>, n: usize| -> Option<(Vec<u8>, Vec<Vec<u8>>)> {
        let log = log.as_ref()?;
        let lines: Vec<&[u8]> = log.split_inclusive(|&b| b == b'\n').collect();
        let cut = lines.len().checked_sub(n)?;
        Some((lines[..cut].concat(), lines[cut..].iter().map(|l| l.to_vec()).collect()))
    };
    // Upstream's values may hold newlines: count its new lines by what they render to.
    let up_new: Vec<u8> = up_entries.iter().flat_map(|e| e.line(b"")).collect();
    let up_lines = up_new.iter().filter(|&&b| b == b'\n').count();
    let (Some((up_old, up_tail)), Some((our_old, our_tail))) = (split(&up.log, up_lines), split(&ours.log, our_entries.len())) else {
        v.unknown.push(format!(
            "boot log: upstream {} bytes, ours {} bytes",
            up.log.as_ref().map_or(0, Vec::len),
            ours.log.as_ref().map_or(0, Vec::len)
        ));
        return;
    };
    if up_old != our_old {
        v.unknown.push(format!("boot log history differs: upstream {} bytes, ours {} bytes", up_old.len(), our_old.len()));
    }
    let up_tail = up_tail.concat();
    let mut up_text = Vec::new();
    let mut ts = Vec::new();
    for line in up_tail.split_inclusive(|&b| b == b'\n') {
        if line.len() >= TS_LEN && is_timestamp(&line[..TS_LEN]) && (ts.is_empty() || ts == line[..TS_LEN]) {
            ts = line[..TS_LEN].to_vec();
            up_text.extend_from_slice(&line[TS_LEN..]);
        } else {
            up_text.extend_from_slice(line);
        }
    }
    if up_text != up_new {
        v.unknown.push(format!("upstream's boot log lines {} are not its actions", shown(&up_tail)));
    }
    let mut prior_exit = false;
    for (line, e) in our_tail.iter().zip(our_entries) {
        let ok = line.len() > TS_LEN && is_timestamp(&line[..TS_LEN]) && line[TS_LEN] == b' ';
        let mut fields = std::str::from_utf8(&line[TS_LEN.min(line.len())..]).unwrap_or("").trim().to_string();
        if let Some(i) = fields.find(" prior_exit=") {
            let end = fields[i + 1..].find(' ').map_or(fields.len(), |j| i + 1 + j);
            fields.replace_range(i..end, "");
            prior_exit = true;
        }
        if !ok || parse_fields(&fields).as_ref() != Some(e) {
            v.unknown.push(format!("our boot log line {} is not our stdout's {e:?}", shown(line)));
        }
    }
    if prior_exit {
        v.known("prior-exit");
    }
}

// ---------------------------------------------------------------------------------------------

fn seeds() -> std::ops::Range<u64> {
    let n = std::env::var("HERMES_DIFF_HOMES").ok().and_then(|v| v.parse().ok()).unwrap_or(400);
    let first = std::env::var("HERMES_DIFF_SEED").ok().and_then(|v| v.parse().ok()).unwrap_or(1);
    first..first + n
}

#[test]
#[ignore = "needs root, python3-venv and the wheelhouse (scripts/wheelhouse)"]
fn the_boot_pass_differs_from_upstreams_only_where_the_readme_says() {
    need(is_root(), "needs root: both passes run as their images run them (ours as root, upstream's as uid 10000)");
    let python = upstream::python().unwrap_or_else(|why| {
        need(false, &format!("needs hermes-agent's venv: {why}"));
        unreachable!()
    });
    let started = Instant::now();
    // On tmpfs where there is one (the scandir is tmpfs in a container anyway): a thousand
    // homes made and removed on this VM's busy disk took a minute more.
    let shm = Path::new("/dev/shm");
    let tmp = if shm.is_dir() { tempfile::tempdir_in(shm) } else { tempfile::tempdir() }.unwrap();
    fs::set_permissions(tmp.path(), fs::Permissions::from_mode(0o755)).unwrap();
    let driver = tmp.path().join("driver.py");
    fs::write(&driver, upstream::DRIVER).unwrap();
    let mut cases: Vec<Case> = fixed_cases();
    cases.extend(seeds().map(generate));
    // HERMES_DIFF_ONLY=<case name> runs one home; HERMES_DIFF_KEEP=1 keeps the trees.
    if let Ok(only) = std::env::var("HERMES_DIFF_ONLY") {
        cases.retain(|c| c.name == only);
    }
    let fixed = cases.iter().filter(|c| !c.name.starts_with("seed-")).count();
    let mut up_cases = Vec::new();
    let mut our_roots = Vec::new();
    for (i, c) in cases.iter().enumerate() {
        let up = tmp.path().join(format!("up/{i}"));
        let ours = tmp.path().join(format!("ours/{i}"));
        c.materialise(&up);
        c.materialise(&ours);
        // Upstream's image hands the scandir to the hermes user; ours keeps it root's.
        give(&up.join("service"), UID, UID);
        give(&up.join("out"), UID, UID);
        up_cases.push((c.clone(), up));
        our_roots.push(ours);
    }
    let made = started.elapsed();
    let t = Instant::now();
    let upstream_thread = {
        let (python, driver, up_cases) = (python.clone(), driver.clone(), up_cases.clone());
        std::thread::spawn(move || {
            let t = Instant::now();
            run_upstream(&python, &driver, &up_cases);
            t.elapsed()
        })
    };
    let ours: Vec<Obs> = cases.iter().zip(&our_roots).map(|(c, r)| run_ours(c, r)).collect();
    let ours_took = t.elapsed();
    let up_took = upstream_thread.join().unwrap();
    let mut by_kind: BTreeMap<&str, usize> = BTreeMap::new();
    let mut failures = Vec::new();
    for (i, (c, o)) in cases.iter().zip(&ours).enumerate() {
        let up = upstream_obs(&up_cases[i].1);
        let verdict = compare(c, &up, o);
        for k in &verdict.known {
            *by_kind.entry(k).or_default() += 1;
        }
        if !verdict.unknown.is_empty() {
            *by_kind.entry("UNDOCUMENTED").or_default() += 1;
            failures.push(format!(
                "--- {} ({:?})\n{}\n  ours:     {}\n  upstream: {}",
                c.name,
                c.env,
                verdict.unknown.join("\n"),
                shown(&o.stdout),
                shown(&up.stdout)
            ));
        }
    }
    eprintln!(
        "upstream_diff: {} homes ({fixed} fixed, {} generated); made in {:.1?}, ours ran in {ours_took:.1?}, upstream's in {up_took:.1?}, {:.1?} in all",
        cases.len(),
        cases.len() - fixed,
        made,
        started.elapsed()
    );
    eprintln!("upstream_diff: homes per difference kind: {by_kind:?}");
    if std::env::var_os("HERMES_DIFF_KEEP").is_some() {
        eprintln!("upstream_diff: trees kept in {}", tmp.keep().display());
    } else {
        let t = Instant::now();
        drop(tmp);
        eprintln!("upstream_diff: trees removed in {:.1?}", t.elapsed());
    }
    assert!(
        failures.is_empty(),
        "{} of {} homes differ from upstream in a way README.md does not list:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
}

/// Each known kind is a row of README.md's table, named there.
#[test]
fn every_known_difference_has_a_readme_row() {
    let readme = fs::read_to_string(upstream::workspace().join("README.md")).unwrap();
    let table = readme.split("## Where we differ from upstream, and why").nth(1).expect("README.md has the section");
    let table = table.split("\n## ").next().unwrap();
    for k in KNOWN {
        assert!(table.contains(&format!("`{k}`")), "README.md's table has no row naming `{k}`");
    }
}

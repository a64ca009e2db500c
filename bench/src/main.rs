//! `hermes-bench`: measures the boot pass (whole process, release build, fresh copy of a
//! deterministic home and an empty scandir on tmpfs for every run) against `hermes-floor`,
//! measured in the same invocation, plus lifecycle latency under a real s6-svscan. Prints a
//! table and writes docs/benchmarks.md. Run it through `scripts/bench`.
//!
//! Usage: hermes-bench [--sizes 1,10,100,1000,5000] [--runs N] [--out FILE] [--no-lifecycle]

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

struct Opts {
    sizes: Vec<usize>,
    runs: usize,
    out: PathBuf,
    lifecycle: bool,
}

fn parse() -> Opts {
    let mut o = Opts { sizes: vec![1, 10, 100, 1000, 5000], runs: 7, out: PathBuf::from("docs/benchmarks.md"), lifecycle: true };
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        match a.as_str() {
            "--sizes" => o.sizes = it.next().unwrap().split(',').map(|s| s.parse().unwrap()).collect(),
            "--runs" => o.runs = it.next().unwrap().parse().unwrap(),
            "--out" => o.out = it.next().unwrap().into(),
            "--no-lifecycle" => o.lifecycle = false,
            _ => {
                eprintln!("usage: hermes-bench [--sizes 1,10,100] [--runs N] [--out FILE] [--no-lifecycle]");
                std::process::exit(2);
            }
        }
    }
    o
}

fn bin(name: &str) -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    exe.parent().unwrap().join(name)
}

/// A deterministic home of `n` profiles: states cycle running/stopped/none/draining, every
/// fifth profile has stale runtime files, the root profile is running.
fn make_home(dir: &Path, n: usize) {
    fs::create_dir_all(dir.join("profiles")).unwrap();
    fs::write(dir.join("SOUL.md"), "root persona\n").unwrap();
    fs::write(dir.join("gateway_state.json"), r#"{"gateway_state":"running"}"#).unwrap();
    for i in 0..n {
        let d = dir.join("profiles").join(format!("p{i:05}"));
        fs::create_dir(&d).unwrap();
        fs::write(d.join("SOUL.md"), "persona\n").unwrap();
        match i % 4 {
            0 => fs::write(d.join("gateway_state.json"), r#"{"gateway_state":"running","pid":1}"#).unwrap(),
            1 => fs::write(d.join("gateway_state.json"), r#"{"gateway_state":"running","desired_state":"stopped"}"#).unwrap(),
            2 => {}
            _ => fs::write(d.join("gateway_state.json"), r#"{"gateway_state":"draining"}"#).unwrap(),
        }
        if i % 5 == 0 {
            fs::write(d.join("gateway.pid"), r#"{"pid":4242}"#).unwrap();
            fs::write(d.join("processes.json"), "[]").unwrap();
        }
    }
}

fn copy_tree(from: &Path, to: &Path) {
    fs::create_dir_all(to).unwrap();
    for e in fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let t = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_tree(&e.path(), &t);
        } else {
            fs::copy(e.path(), &t).unwrap();
        }
    }
}

/// Run a command to completion: (wall time, peak RSS in KiB as the kernel's ru_maxrss).
// The child is reaped by wait4 (for its rusage), not by Child::wait.
#[allow(clippy::zombie_processes)]
fn measure(cmd: &mut Command) -> (Duration, u64) {
    cmd.stdout(Stdio::null()).stderr(Stdio::null());
    let t = Instant::now();
    let child = cmd.spawn().expect("spawn");
    let mut status = 0;
    let mut ru: nix::libc::rusage = unsafe { std::mem::zeroed() };
    let r = unsafe { nix::libc::wait4(child.id() as i32, &mut status, 0, &mut ru) };
    let wall = t.elapsed();
    assert!(r > 0 && nix::libc::WIFEXITED(status) && nix::libc::WEXITSTATUS(status) == 0, "{cmd:?} failed (status {status})");
    (wall, ru.ru_maxrss as u64)
}

/// Peak RSS of a command, measured from a fresh, small helper process: ru_maxrss counts the
/// pre-exec copy of whoever forked, and this harness is large by the time it measures.
fn peak_rss(cmd: &Command) -> u64 {
    let mut helper = Command::new(std::env::current_exe().unwrap());
    helper.arg("--rss-of").arg(cmd.get_program()).args(cmd.get_args());
    for (k, v) in cmd.get_envs() {
        if let Some(v) = v {
            helper.env(k, v);
        }
    }
    let out = helper.stderr(Stdio::null()).output().expect("rss helper");
    String::from_utf8_lossy(&out.stdout).trim().parse().unwrap_or(0)
}

/// Total system calls of one run, from `strace -f -c`.
fn syscalls(cmd: &mut Command, scratch: &Path) -> Option<u64> {
    let out = scratch.join("strace.txt");
    let prog = cmd.get_program().to_owned();
    let args: Vec<_> = cmd.get_args().map(|a| a.to_owned()).collect();
    let st = Command::new("strace").arg("-f").arg("-c").arg("-o").arg(&out).arg(prog).args(args).stdout(Stdio::null()).stderr(Stdio::null()).status().ok()?;
    if !st.success() {
        return None;
    }
    let text = fs::read_to_string(&out).ok()?;
    let total = text.lines().find(|l| l.trim_end().ends_with("total"))?;
    // columns: % time, seconds, usecs/call, calls, [errors], "total"
    let cols: Vec<&str> = total.split_whitespace().collect();
    cols.get(3)?.parse().ok()
}

fn fingerprint(dir: &Path) -> BTreeMap<String, String> {
    fn walk(base: &Path, dir: &Path, out: &mut BTreeMap<String, String>) {
        for e in fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            let m = fs::symlink_metadata(&p).unwrap();
            let rel = p.strip_prefix(base).unwrap().display().to_string();
            let content = if m.is_file() { fs::read(&p).unwrap() } else { Vec::new() };
            out.insert(rel, format!("{:o} {}:{} {}", m.mode(), m.uid(), m.gid(), String::from_utf8_lossy(&content)));
            if m.is_dir() {
                walk(base, &p, out);
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(dir, dir, &mut out);
    out
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[v.len() / 2]
}

struct Row {
    n: usize,
    ours_ms: f64,
    ours_min: f64,
    ours_max: f64,
    floor_ms: f64,
    floor_min: f64,
    floor_max: f64,
    ours_rss: u64,
    floor_rss: u64,
    ours_sc: Option<u64>,
    floor_sc: Option<u64>,
    identical: bool,
}

fn bench_size(n: usize, runs: usize, base: &Path, hermes: (u32, u32)) -> Row {
    let tmpl = base.join(format!("template-{n}"));
    let _ = fs::remove_dir_all(&tmpl);
    make_home(&tmpl, n);
    let work = base.join("work");
    let fresh = || {
        let _ = fs::remove_dir_all(&work);
        copy_tree(&tmpl, &work.join("home"));
        fs::create_dir_all(work.join("service")).unwrap();
    };
    let ours = || {
        let mut c = Command::new(bin("hermes-reconcile"));
        c.args(["--home", work.join("home").to_str().unwrap(), "--scandir", work.join("service").to_str().unwrap()]);
        c.env("HERMES_UID", hermes.0.to_string()).env("HERMES_GID", hermes.1.to_string());
        c
    };
    let floor = || {
        let mut c = Command::new(bin("hermes-floor"));
        c.args([work.join("home").to_str().unwrap(), work.join("service").to_str().unwrap(), &hermes.0.to_string(), &hermes.1.to_string()]);
        c
    };
    // The floor must produce the same tree, or it is not a floor for this work.
    fresh();
    measure(&mut ours());
    let a = fingerprint(&work.join("service"));
    fresh();
    measure(&mut floor());
    let b = fingerprint(&work.join("service"));
    let identical = a == b;
    if !identical {
        let diff: Vec<_> = a.iter().filter(|(k, v)| b.get(*k) != Some(v)).map(|(k, v)| format!("{k}: {v:?} vs {:?}", b.get(k))).take(3).collect();
        eprintln!("warning: the floor's scandir differs from hermes-reconcile's at N={n}: {diff:?}");
    }
    let (mut ot, mut ft) = (Vec::new(), Vec::new());
    for _ in 0..runs {
        fresh();
        ot.push(measure(&mut ours()).0.as_secs_f64() * 1000.0);
        fresh();
        ft.push(measure(&mut floor()).0.as_secs_f64() * 1000.0);
    }
    fresh();
    let orss = peak_rss(&ours());
    fresh();
    let frss = peak_rss(&floor());
    fresh();
    let ours_sc = syscalls(&mut ours(), base);
    fresh();
    let floor_sc = syscalls(&mut floor(), base);
    let (omin, omax) = (ot.iter().cloned().fold(f64::MAX, f64::min), ot.iter().cloned().fold(0.0, f64::max));
    let (fmin, fmax) = (ft.iter().cloned().fold(f64::MAX, f64::min), ft.iter().cloned().fold(0.0, f64::max));
    let _ = fs::remove_dir_all(&tmpl);
    Row {
        n,
        ours_ms: median(&mut ot),
        ours_min: omin,
        ours_max: omax,
        floor_ms: median(&mut ft),
        floor_min: fmin,
        floor_max: fmax,
        ours_rss: orss,
        floor_rss: frss,
        ours_sc,
        floor_sc,
        identical,
    }
}

/// Lifecycle latency under a real s6-svscan: `hermes-reconcile start` of a stopped gateway
/// until its status says up, against `s6-svc -u` of the same slot (s6's own spawn time);
/// and `status --json` over 1000 registered profiles.
fn lifecycle(base: &Path, hermes: (u32, u32)) -> Result<String, String> {
    if Command::new("s6-svscan").arg("-h").stderr(Stdio::null()).status().is_err() {
        return Err("s6-svscan not installed".into());
    }
    let work = base.join("life");
    let _ = fs::remove_dir_all(&work);
    make_home(&work.join("home"), 1000);
    fs::create_dir_all(work.join("service")).unwrap();
    let gw = work.join("gw");
    fs::write(&gw, "#!/bin/sh\nexec sleep 3600\n").unwrap();
    fs::set_permissions(&gw, fs::Permissions::from_mode(0o755)).unwrap();
    // Everything registered down, so only the measured gateway runs.
    for i in 0..1000 {
        fs::write(work.join(format!("home/profiles/p{i:05}/gateway_state.json")), r#"{"gateway_state":"stopped"}"#).unwrap();
    }
    fs::write(work.join("home/gateway_state.json"), r#"{"gateway_state":"stopped"}"#).unwrap();
    let mut svscan = Command::new("s6-svscan")
        .args(["-c", "4000"])
        .arg(work.join("service"))
        .env("HERMES_HOME", work.join("home"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| e.to_string())?;
    let env = |c: &mut Command| {
        c.env("HERMES_HOME", work.join("home"))
            .env("S6_PROFILE_GATEWAY_SCANDIR", work.join("service"))
            .env("HERMES_S6_INTERPRETER", "/bin/sh")
            .env("HERMES_S6_GATEWAY_PROGRAM", &gw)
            .env("HERMES_S6_MAX_SERVICES", "4000")
            .env("HERMES_UID", hermes.0.to_string())
            .env("HERMES_GID", hermes.1.to_string());
    };
    std::thread::sleep(Duration::from_millis(300));
    let mut c = Command::new(bin("hermes-reconcile"));
    env(&mut c);
    measure(&mut c);
    // Wait until all 2002 supervisors have written their status.
    let status_of = |p: &str| work.join(format!("service/gateway-{p}/supervise/status"));
    let t = Instant::now();
    while !(0..1000).all(|i| status_of(&format!("p{i:05}")).exists()) && t.elapsed() < Duration::from_secs(60) {
        std::thread::sleep(Duration::from_millis(100));
    }
    let up = |p: &str| fs::read(status_of(p)).ok().and_then(|b| hermes_core::s6::status::Status::parse(&b)).is_some_and(|s| s.is_up());
    let time_to_up = |cmd: &mut Command, p: &str| -> f64 {
        let t = Instant::now();
        cmd.stdout(Stdio::null()).stderr(Stdio::null()).status().unwrap();
        while !up(p) {
            std::hint::spin_loop();
            if t.elapsed() > Duration::from_secs(5) {
                break;
            }
        }
        t.elapsed().as_secs_f64() * 1000.0
    };
    let down = |p: &str| {
        Command::new("s6-svc").args(["-d"]).arg(work.join(format!("service/gateway-{p}"))).status().unwrap();
        let t = Instant::now();
        while up(p) && t.elapsed() < Duration::from_secs(5) {
            std::thread::sleep(Duration::from_millis(5));
        }
        std::thread::sleep(Duration::from_millis(1100)); // past the respawn throttle
    };
    let (mut ours, mut s6) = (Vec::new(), Vec::new());
    for _ in 0..7 {
        let mut c = Command::new(bin("hermes-reconcile"));
        env(&mut c);
        c.args(["start", "p00001"]);
        ours.push(time_to_up(&mut c, "p00001"));
        down("p00001");
        let mut c = Command::new("s6-svc");
        c.arg("-u").arg(work.join("service/gateway-p00001"));
        s6.push(time_to_up(&mut c, "p00001"));
        down("p00001");
    }
    let mut st = Vec::new();
    for _ in 0..7 {
        let mut c = Command::new(bin("hermes-reconcile"));
        env(&mut c);
        c.args(["status", "--json"]);
        st.push(measure(&mut c).0.as_secs_f64() * 1000.0);
    }
    let _ = Command::new("s6-svscanctl").arg("-t").arg(work.join("service")).status();
    let _ = svscan.wait();
    let (o, s, j) = (median(&mut ours), median(&mut s6), median(&mut st));
    let mut md = String::new();
    let _ = writeln!(md, "| measurement | median | baseline in the same run | beyond the baseline |");
    let _ = writeln!(md, "|---|---:|---:|---:|");
    let _ = writeln!(md, "| `start` of a stopped gateway until s6 reports it up | {o:.2} ms | `s6-svc -u`: {s:.2} ms | {:.2} ms |", o - s);
    let _ = writeln!(md, "| `status --json`, 1000 profiles (2002 supervised services) | {j:.2} ms | | |");
    println!("\nlifecycle: start→up {o:.2} ms (s6-svc -u→up {s:.2} ms, +{:.2} ms); status --json of 1000 profiles {j:.2} ms", o - s);
    Ok(md)
}

fn machine() -> String {
    let cpu = fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|c| c.lines().find(|l| l.starts_with("model name")).map(|l| l.split(':').nth(1).unwrap_or("").trim().to_string()))
        .unwrap_or_else(|| "unknown CPU".into());
    let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0);
    let kernel = fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    format!("{cores} cores, {cpu}, Linux {}", kernel.trim())
}

fn main() {
    if std::env::args().nth(1).as_deref() == Some("--rss-of") {
        let a: Vec<String> = std::env::args().skip(2).collect();
        let (_, rss) = measure(Command::new(&a[0]).args(&a[1..]));
        println!("{rss}");
        return;
    }
    let o = parse();
    let hermes = hermes_core::config::lookup_user("hermes").unwrap_or((10000, 10000));
    let base = if Path::new("/dev/shm").is_dir() { PathBuf::from("/dev/shm") } else { std::env::temp_dir() }.join(format!("hermes-bench-{}", std::process::id()));
    fs::create_dir_all(&base).unwrap();
    println!("{:>5} | {:>22} | {:>22} | {:>5} | {:>17} | {:>15}", "N", "hermes-reconcile ms", "floor ms", "ratio", "RSS KiB (floor)", "syscalls/profile");
    let mut rows = Vec::new();
    for &n in &o.sizes {
        let runs = if n >= 5000 { o.runs.min(5) } else { o.runs };
        let r = bench_size(n, runs, &base, hermes);
        let per = |s: Option<u64>| s.map_or("-".to_string(), |s| format!("{:.1}", s as f64 / (n + 1) as f64));
        println!(
            "{:>5} | {:>7.2} ({:.2}-{:.2}) | {:>7.2} ({:.2}-{:.2}) | {:>5.2} | {:>7} ({:>7}) | {:>6} vs {:>6}",
            n, r.ours_ms, r.ours_min, r.ours_max, r.floor_ms, r.floor_min, r.floor_max, r.ours_ms / r.floor_ms, r.ours_rss, r.floor_rss, per(r.ours_sc), per(r.floor_sc)
        );
        rows.push(r);
    }
    let life = if o.lifecycle { lifecycle(&base, hermes) } else { Err("skipped (--no-lifecycle)".into()) };
    let _ = fs::remove_dir_all(&base);

    let mut md = String::new();
    let _ = writeln!(md, "# Benchmarks\n");
    let _ = writeln!(md, "Written by `scripts/bench` on {} ({}).\n", chrono::Local::now().format("%Y-%m-%d %H:%M %Z"), machine());
    let _ = writeln!(md, "Each run is the release `hermes-reconcile` boot pass as a whole process, on a fresh copy of a");
    let _ = writeln!(md, "deterministic home (states cycling running / operator-stopped / none / draining, stale runtime");
    let _ = writeln!(md, "files on every fifth profile) and an empty scandir on tmpfs, as root. The floor (`hermes-floor`)");
    let _ = writeln!(md, "does only the irreducible work and is checked to produce the identical scandir; it is measured in");
    let _ = writeln!(md, "the same invocation, alternating with the real pass. N counts named profiles (plus the root).\n");
    let _ = writeln!(md, "| N | hermes-reconcile median (min-max) | floor median (min-max) | ratio | peak RSS (floor) | syscalls / profile (floor) | floor identical |");
    let _ = writeln!(md, "|---:|---:|---:|---:|---:|---:|:---:|");
    for r in &rows {
        let per = |s: Option<u64>| s.map_or("-".to_string(), |s| format!("{:.1}", s as f64 / (r.n + 1) as f64));
        let _ = writeln!(
            md,
            "| {} | {:.2} ms ({:.2}-{:.2}) | {:.2} ms ({:.2}-{:.2}) | {:.2} | {} KiB ({} KiB) | {} ({}) | {} |",
            r.n, r.ours_ms, r.ours_min, r.ours_max, r.floor_ms, r.floor_min, r.floor_max, r.ours_ms / r.floor_ms, r.ours_rss, r.floor_rss, per(r.ours_sc), per(r.floor_sc), if r.identical { "yes" } else { "NO" }
        );
    }
    let _ = writeln!(md, "\n## Lifecycle\n");
    match life {
        Ok(t) => md.push_str(&t),
        Err(e) => {
            let _ = writeln!(md, "Not measured: {e}.");
        }
    }
    let _ = writeln!(md, "\n## Targets (issue 7)\n");
    let _ = writeln!(md, "1 profile ≤ 3 ms; 1000 and 5000 profiles within 1.2× of the floor and ≤ 45 syscalls per profile;");
    let _ = writeln!(md, "`status --json` of 1000 profiles < 50 ms; `start` to up < 20 ms beyond s6's own spawn time; peak RSS < 8 MiB at 5000.");
    if let Some(dir) = o.out.parent() {
        let _ = fs::create_dir_all(dir);
    }
    fs::write(&o.out, md).unwrap();
    println!("\nwrote {}", o.out.display());
}

//! Benchmark 1, the boot pass against its floor: the release `hermes-reconcile` boot pass as a
//! whole process on a fresh copy of a deterministic home and an empty scandir on tmpfs, against
//! `hermes-floor` (the irreducible work only, checked to produce the identical scandir and
//! log directories), alternating, in the same invocation. No scanner runs, so the pass's rescan
//! finds none and it does not wait.
//!
//! At the smallest size it also times what explains the gap: the pass without the container
//! command look-up (`--proc-root` on an empty directory), and the bare start of the binary
//! (`--version`); and counts system calls by name (`strace -f -c`) for both programs.

use crate::report::{Figure, Section, Target, Unit};
use crate::util::{self, Env, Stats};
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::fs;
use std::path::Path;
use std::process::{Command, Stdio};

pub const NAME: &str = "boot-pass";

struct Row {
    n: usize,
    ours: Stats,
    floor: Stats,
    ours_rss: u64,
    floor_rss: u64,
    ours_sc: Option<BTreeMap<String, u64>>,
    floor_sc: Option<BTreeMap<String, u64>>,
    identical: Result<(), String>,
    /// At the smallest size: (the pass without the /proc look-up, `--version`).
    parts: Option<(Stats, Stats)>,
    /// At the smallest size: page faults of one run of the floor, `--version`, the pass
    /// without the look-up, the pass.
    faults: [u64; 4],
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

/// System calls of one run by name, from `strace -f -c` ("total" included).
pub fn syscalls(cmd: &Command, scratch: &Path) -> Option<BTreeMap<String, u64>> {
    if !util::have("strace") {
        return None;
    }
    let out = scratch.join("strace.txt");
    let mut s = Command::new("strace");
    s.args(["-f", "-c", "-o"]).arg(&out).arg(cmd.get_program()).args(cmd.get_args());
    for (k, v) in cmd.get_envs() {
        if let Some(v) = v {
            s.env(k, v);
        }
    }
    // Its exit code is the program's (`status` says 3 for a stopped gateway): the table is what counts.
    util::quiet(&mut s);
    let table = parse_strace_c(&fs::read_to_string(&out).ok()?);
    let _ = fs::remove_file(&out);
    table
}

/// `strace -c`'s table: calls per system call, and `<name>:errors` for the failed ones.
pub fn parse_strace_c(text: &str) -> Option<BTreeMap<String, u64>> {
    let mut m = BTreeMap::new();
    for l in text.lines() {
        let cols: Vec<&str> = l.split_whitespace().collect();
        // % time, seconds, usecs/call, calls, [errors], name
        if cols.len() < 5 || cols[0].parse::<f64>().is_err() {
            continue;
        }
        let name = cols[cols.len() - 1].to_string();
        if let Ok(calls) = cols[3].parse::<u64>() {
            if cols.len() == 6 {
                m.insert(format!("{name}:errors"), cols[4].parse::<u64>().unwrap_or(0));
            }
            m.insert(name, calls);
        }
    }
    m.contains_key("total").then_some(m)
}

fn bench_size(env: &Env, n: usize, runs: usize, small: bool) -> Row {
    let base = &env.base;
    let hermes = env.hermes;
    let tmpl = base.join(format!("template-{n}"));
    let _ = fs::remove_dir_all(&tmpl);
    util::make_home(&tmpl, n);
    let work = base.join("boot-pass");
    let empty_proc = base.join("empty-proc");
    fs::create_dir_all(&empty_proc).unwrap();
    let fresh = || {
        let _ = fs::remove_dir_all(&work);
        util::copy_tree(&tmpl, &work.join("home"));
        util::give(&work.join("home"), hermes);
        fs::create_dir_all(work.join("service")).unwrap();
    };
    let ours = || {
        let mut c = Command::new(util::bin("hermes-reconcile"));
        c.args(["--home", work.join("home").to_str().unwrap(), "--scandir", work.join("service").to_str().unwrap()]);
        c.env("HERMES_UID", hermes.0.to_string()).env("HERMES_GID", hermes.1.to_string());
        // Room for every profile: the capacity check is not what is measured here.
        c.env("HERMES_S6_MAX_SERVICES", "100000");
        // The floor writes the image's path into every finish script; so must we, whether or
        // not this machine has a root-only copy there.
        c.env("HERMES_S6_RECONCILE", hermes_core::config::DEFAULT_RECONCILE);
        c
    };
    let floor = || {
        let mut c = Command::new(util::bin("hermes-floor"));
        c.args([work.join("home").to_str().unwrap(), work.join("service").to_str().unwrap(), &hermes.0.to_string(), &hermes.1.to_string()]);
        c
    };
    // The floor must produce the same tree, or it is not a floor for this work.
    let tree = || (util::fingerprint(&work.join("service"), &[]), util::fingerprint(&work.join("home"), &["logs/container-boot.log"]));
    fresh();
    util::measure(&mut ours());
    let a = tree();
    fresh();
    util::measure(&mut floor());
    let b = tree();
    let mut diffs = util::differences(&a.0, &b.0);
    diffs.extend(util::differences(&a.1, &b.1));
    let identical = if diffs.is_empty() { Ok(()) } else { Err(diffs.join("; ")) };
    if let Err(d) = &identical {
        eprintln!("warning: the floor's tree differs from hermes-reconcile's at N={n}: {d}");
    }
    let (mut ot, mut ft, mut np, mut ver) = (Stats::default(), Stats::default(), Stats::default(), Stats::default());
    for i in 0..runs {
        // Alternate which goes first.
        let order: [u8; 2] = if i % 2 == 0 { [0, 1] } else { [1, 0] };
        for which in order {
            fresh();
            match which {
                0 => ot.push(util::ms(&mut ours())),
                _ => ft.push(util::ms(&mut floor())),
            }
        }
        if small {
            fresh();
            np.push(util::ms(ours().arg("--proc-root").arg(&empty_proc)));
            ver.push(util::ms(ours().arg("--version")));
        }
    }
    let mut faults = [0; 4];
    if small {
        fresh();
        faults[0] = util::page_faults(&mut floor());
        faults[1] = util::page_faults(ours().arg("--version"));
        fresh();
        faults[2] = util::page_faults(ours().arg("--proc-root").arg(&empty_proc));
        fresh();
        faults[3] = util::page_faults(&mut ours());
    }
    fresh();
    let ours_rss = peak_rss(&ours());
    fresh();
    let floor_rss = peak_rss(&floor());
    fresh();
    let ours_sc = syscalls(&ours(), base);
    fresh();
    let floor_sc = syscalls(&floor(), base);
    let _ = fs::remove_dir_all(&tmpl);
    let _ = fs::remove_dir_all(&work);
    Row { n, ours: ot, floor: ft, ours_rss, floor_rss, ours_sc, floor_sc, identical, parts: small.then_some((np, ver)), faults }
}

pub fn run(env: &Env, sizes: &[usize]) -> Section {
    let mut sec = Section::new(NAME, "Boot pass against its floor");
    sec.para(
        "Each run is the release `hermes-reconcile` boot pass as a whole process, on a fresh copy of a \
         deterministic home (states cycling running / operator-stopped / none / draining, stale runtime \
         files on every fifth profile) and an empty scandir on tmpfs, as root, with no scanner running. \
         The floor (`hermes-floor`) does only the irreducible work (read the states, make the log \
         directories, build and rename each slot, write the boot log) and is checked to produce the \
         identical scandir and log directories; it is measured in the same invocation, alternating with \
         the real pass. N counts named profiles (plus the root).",
    );
    println!("\n== {NAME}: the boot pass against hermes-floor");
    println!(
        "{:>5} | {:>22} | {:>22} | {:>5} | {:>17} | {:>16}",
        "N", "hermes-reconcile ms", "floor ms", "ratio", "RSS KiB (floor)", "syscalls/profile"
    );
    let mut rows = Vec::new();
    for &n in sizes {
        let runs = if n >= 5000 {
            env.runs.min(5)
        } else if n <= 10 {
            env.runs.max(31)
        } else {
            env.runs
        };
        let r = bench_size(env, n, runs, Some(&n) == sizes.iter().min());
        let per = |s: &Option<BTreeMap<String, u64>>| {
            s.as_ref().map_or("-".to_string(), |s| format!("{:.1}", s["total"] as f64 / (n + 1) as f64))
        };
        println!(
            "{:>5} | {:>7.2} ({:.2}-{:.2}) | {:>7.2} ({:.2}-{:.2}) | {:>5.2} | {:>7} ({:>7}) | {:>6} vs {:>6}{}",
            n,
            r.ours.median(),
            r.ours.min(),
            r.ours.max(),
            r.floor.median(),
            r.floor.min(),
            r.floor.max(),
            r.ours.median() / r.floor.median(),
            r.ours_rss,
            r.floor_rss,
            per(&r.ours_sc),
            per(&r.floor_sc),
            if r.identical.is_ok() { "" } else { "  FLOOR DIFFERS" }
        );
        rows.push(r);
    }
    let md = &mut sec.markdown;
    let _ = writeln!(md, "| N | hermes-reconcile median (min-max, runs) | floor median (min-max) | ratio | peak RSS (floor) | syscalls / profile (floor) | floor identical |");
    let _ = writeln!(md, "|---:|---:|---:|---:|---:|---:|:---:|");
    for r in &rows {
        let per = |s: &Option<BTreeMap<String, u64>>| {
            s.as_ref().map_or("-".to_string(), |s| format!("{:.1}", s["total"] as f64 / (r.n + 1) as f64))
        };
        let _ = writeln!(
            md,
            "| {} | {:.2} ms ({:.2}-{:.2}, {}) | {:.2} ms ({:.2}-{:.2}) | {:.2} | {} KiB ({} KiB) | {} ({}) | {} |",
            r.n,
            r.ours.median(),
            r.ours.min(),
            r.ours.max(),
            r.ours.len(),
            r.floor.median(),
            r.floor.min(),
            r.floor.max(),
            r.ours.median() / r.floor.median(),
            r.ours_rss,
            r.floor_rss,
            per(&r.ours_sc),
            per(&r.floor_sc),
            if r.identical.is_ok() { "yes" } else { "NO" }
        );
    }
    for r in &rows {
        if let Err(d) = &r.identical {
            let _ = writeln!(md, "\nAt N={} the floor's tree differs: {d}", r.n);
        }
    }
    for r in &rows {
        let target = match r.n {
            1 => Target::Ratio(1.3),
            n if n >= 1000 => Target::Ratio(1.2),
            _ => Target::None,
        };
        sec.figures.push(
            Figure::new(NAME, format!("boot pass, N={}", r.n), Unit::Ms, r.ours.clone())
                .against("hermes-floor", r.floor.clone())
                .target(target),
        );
    }
    if let Some(r) = rows.iter().find(|r| r.parts.is_some()) {
        breakdown(&mut sec, r);
    }
    if let Some(r) = rows.iter().filter(|r| r.n <= 1000 && r.n >= 100).max_by_key(|r| r.n) {
        per_profile(&mut sec, r, env.hermes);
    }
    sec
}

/// Nanoseconds of one file-system identity switch as core's `AsUser` makes it (geteuid, set gid
/// then uid, read both back, then geteuid/getegid and restore both: 9 system calls), and of one
/// trivial system call, on this machine, in this process.
fn identity_switch_ns(ids: (u32, u32)) -> (f64, f64) {
    use nix::libc::{syscall, SYS_getppid, SYS_setfsgid, SYS_setfsuid};
    const N: u32 = 20000;
    let t = std::time::Instant::now();
    for _ in 0..N {
        // SAFETY: this thread's own file-system ids, restored at once.
        unsafe {
            nix::libc::geteuid();
            syscall(SYS_setfsgid, ids.1 as i64);
            syscall(SYS_setfsuid, ids.0 as i64);
            syscall(SYS_setfsuid, -1i64);
            syscall(SYS_setfsgid, -1i64);
            syscall(SYS_setfsuid, nix::libc::geteuid() as i64);
            syscall(SYS_setfsgid, nix::libc::getegid() as i64);
        }
    }
    let switch = t.elapsed().as_nanos() as f64 / N as f64;
    let t = std::time::Instant::now();
    for _ in 0..N * 9 {
        // SAFETY: no arguments, no effect.
        unsafe { syscall(SYS_getppid) };
    }
    (switch, t.elapsed().as_nanos() as f64 / (N * 9) as f64)
}

/// Per profile at a larger size: which system calls the pass makes beyond the floor, and
/// what its file-system identity switches cost.
fn per_profile(sec: &mut Section, r: &Row, ids: (u32, u32)) {
    let (Some(o), Some(fl)) = (&r.ours_sc, &r.floor_sc) else { return };
    let per = |m: &BTreeMap<String, u64>, k: &str| m.get(k).copied().unwrap_or(0) as f64 / (r.n + 1) as f64;
    let md = &mut sec.markdown;
    let _ = writeln!(md, "\n### Per profile at N={}\n", r.n);
    let _ = writeln!(md, "System calls per profile (`strace -f -c` of one run each), the largest differences first:\n");
    let _ = writeln!(md, "| system call | hermes-reconcile | hermes-floor | of which failed (ours) |");
    let _ = writeln!(md, "|---|---:|---:|---:|");
    let mut names: Vec<&String> = o.keys().chain(fl.keys()).filter(|k| !k.ends_with(":errors") && *k != "total").collect();
    names.sort();
    names.dedup();
    names.sort_by(|a, b| (per(o, b) - per(fl, b)).partial_cmp(&(per(o, a) - per(fl, a))).unwrap());
    for k in names.into_iter().take(10).chain([&"total".to_string()]) {
        let _ = writeln!(md, "| {k} | {:.1} | {:.1} | {:.1} |", per(o, k), per(fl, k), per(o, &format!("{k}:errors")));
    }
    let (switch, plain) = identity_switch_ns(ids);
    let switches = per(o, "setfsuid") / 3.0;
    let gap_us = (r.ours.median() - r.floor.median()) * 1000.0 / (r.n + 1) as f64;
    let _ = writeln!(
        md,
        "\nEach volume operation runs under a file-system identity switch (`AsUser`: `geteuid`, `setfsuid`/`setfsgid` \
         to set, read back and restore: 9 system calls, each `setfs*` allocating new credentials; a run of operations in one profile directory shares one switch). Measured here in \
         this process: {:.2} µs per switch against {:.2} µs for a trivial system call. The pass makes {switches:.1} \
         switches per profile, so about {:.1} µs of its {gap_us:.1} µs per profile beyond the floor.\n",
        switch / 1000.0,
        plain / 1000.0,
        switches * switch / 1000.0
    );
    println!(
        "  N={}: {switches:.1} identity switches per profile at {:.2} µs each = {:.1} µs of {gap_us:.1} µs/profile beyond the floor",
        r.n,
        switch / 1000.0,
        switches * switch / 1000.0
    );
}

/// Where the time goes at the smallest size.
fn breakdown(sec: &mut Section, r: &Row) {
    let (np, ver) = r.parts.as_ref().unwrap();
    let md = &mut sec.markdown;
    let _ = writeln!(md, "\n### What the pass spends at N={} beyond the floor\n", r.n);
    let _ = writeln!(md, "| variant (same invocation, interleaved) | median | beyond the floor | page faults (one run) |");
    let _ = writeln!(md, "|---|---:|---:|---:|");
    let f = r.floor.median();
    for (i, (what, s)) in [
        ("hermes-floor", &r.floor),
        ("`hermes-reconcile --version` (start of the binary, nothing else)", ver),
        ("the pass with `--proc-root` on an empty directory (no container command look-up)", np),
        ("the pass", &r.ours),
    ]
    .into_iter()
    .enumerate()
    {
        let _ = writeln!(md, "| {what} | {:.3} ms | {:+.3} ms | {} |", s.median(), s.median() - f, r.faults[i]);
    }
    println!(
        "  N={}: floor {:.3} ms; hermes-reconcile --version {:.3} ms; pass without /proc look-up {:.3} ms; pass {:.3} ms",
        r.n,
        f,
        ver.median(),
        np.median(),
        r.ours.median()
    );
    if let (Some(o), Some(fl)) = (&r.ours_sc, &r.floor_sc) {
        let _ = writeln!(md, "\nSystem calls of one run (`strace -f -c`), the largest differences first:\n");
        let _ = writeln!(md, "| system call | hermes-reconcile | hermes-floor |");
        let _ = writeln!(md, "|---|---:|---:|");
        let mut names: Vec<&String> = o.keys().chain(fl.keys()).filter(|k| !k.ends_with(":errors")).collect();
        names.sort();
        names.dedup();
        names.sort_by_key(|k| std::cmp::Reverse(o.get(*k).copied().unwrap_or(0) as i64 - fl.get(*k).copied().unwrap_or(0) as i64));
        let total = names.iter().position(|k| *k == "total").unwrap();
        let total = names.remove(total);
        for k in names.into_iter().take(12).chain([total]) {
            let _ = writeln!(md, "| {k} | {} | {} |", o.get(k).copied().unwrap_or(0), fl.get(k).copied().unwrap_or(0));
        }
    }
}

//! Benchmark 2, boot to up under a real s6-svscan: 1000 profiles (plus the root), half wanted
//! running, gateways that `exec sleep 3600`. Timed from starting a fresh s6-svscan on an empty
//! scandir (tmpfs), through the boot pass, until s6 says every wanted gateway is up (its
//! `supervise/status` read directly, only the ones not yet up re-read every 5 ms).
//!
//! Baseline, in the same invocation, alternating: the same number of plain service directories
//! (`run` = `#!/bin/sh` + `exec sleep 3600`; `log/run` = `#!/bin/sh` + `exec s6-log 1 n10
//! s1000000 T <dir>`, the log directories made beforehand; `down` in the same half), published
//! into the scanner's directory by one `sh -c` (one `mkdir -p`, `printf` per file, one `chmod`)
//! and then `s6-svscanctl -a`.
//!
//! Between runs everything goes: `s6-svscanctl -t`, then any process whose working directory
//! is under the run's directory is killed, and the directory removed. Afterwards one run of each
//! under `strace -f` counts the forks and execs of the whole supervision tree until all
//! wanted gateways are up.

use crate::report::{Figure, Section, Target, Unit};
use crate::s6::{self, Scanner};
use crate::util::{self, Env, Stats};
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

pub const NAME: &str = "boot-to-up";
const LIMIT: Duration = Duration::from_secs(180);

/// The scanner's `PATH`: the image's (docker/Dockerfile), so the scripts' `PATH` searches are
/// the container's, not this machine's.
const IMAGE_PATH: &str = "/command:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// Once every wanted gateway is up, everything goes (a strace wrapper first, so it writes
/// what it saw until now and no shutdown). How many stragglers had to be killed.
fn settle(mut scanner: Scanner, wrapper: &[&str]) -> usize {
    if !wrapper.is_empty() {
        scanner.end_wrapper();
    }
    scanner.stop()
}

/// One timed run: (total, the publishing step's share: pass or shell + svscanctl).
struct Run {
    total: f64,
    publish: f64,
    stragglers: usize,
    /// When every wanted gateway was up (Unix seconds).
    up_at: Option<f64>,
    /// CPU time of the publishing step's own process (ms).
    publish_cpu: f64,
    /// Pre-rendered only: CPU time of the pass that rendered the slots, with no scanner (ms).
    render_cpu: f64,
}

fn unix_now() -> f64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0.0, |d| d.as_secs_f64())
}

/// The names of the services of a run: the root profile then `p00000..`, and which are wanted up.
fn services(n: usize) -> Vec<(String, bool)> {
    std::iter::once(("default".to_string(), true)).chain((0..n).map(|i| (util::profile_name(i), util::wanted(i)))).collect()
}

fn ours(env: &Env, tmpl: &Path, n: usize, i: usize, wrapper: &[&str]) -> Run {
    let root = env.fresh_dir(&format!("up-ours-{i}"));
    let (home, scandir) = (root.join("home"), root.join("service"));
    util::copy_tree(tmpl, &home);
    util::give(&home, env.hermes);
    fs::create_dir_all(&scandir).unwrap();
    let gw = s6::sleeper(&root);
    let vars = s6::reconcile_env(env, &home, &scandir, &gw, &root.join("run/hermes-s6/registrar"));
    let wanted: Vec<PathBuf> = services(n).into_iter().filter(|(_, w)| *w).map(|(p, _)| scandir.join(format!("gateway-{p}"))).collect();
    let mut pass = Command::new(util::bin("hermes-reconcile"));
    pass.envs(vars.iter().map(|(k, v)| (*k, v.as_str())));

    let t = Instant::now();
    let scanner =
        Scanner::spawn_under(wrapper, &scandir, &root, &[("HERMES_HOME", home.display().to_string()), ("PATH", IMAGE_PATH.into())]);
    util::wait_for(Duration::from_secs(10), Duration::from_micros(200), || scanner.listening()).expect("s6-svscan listens");
    let publish_cpu = util::measure_cpu(&mut pass).1;
    let publish = t.elapsed();
    let done = s6::wait_all(&wanted, s6::up, Duration::from_millis(5), LIMIT);
    let total = t.elapsed();
    let up_at = Some(unix_now());
    let stragglers = settle(scanner, wrapper);
    let _ = fs::remove_dir_all(&root);
    if let Err(left) = done {
        panic!("boot-to-up (ours): {left} wanted gateways not up after {LIMIT:?}");
    }
    Run { total: total.as_secs_f64() * 1000.0, publish: publish.as_secs_f64() * 1000.0, stragglers, up_at, publish_cpu, render_cpu: 0.0 }
}

/// The shell program that publishes the plain directories: `$1` the scandir, `$2` the logs.
fn publisher(n: usize) -> String {
    let svcs = services(n);
    let mut sh = String::from("set -e\nS=$1\nL=$2\nmkdir -p");
    for (p, _) in &svcs {
        let _ = write!(sh, " \"$S/svc-{p}/log\"");
    }
    sh.push_str("\nfor p in");
    for (p, _) in &svcs {
        let _ = write!(sh, " {p}");
    }
    sh.push_str(
        "; do\n  printf '#!/bin/sh\\nexec sleep 3600\\n' >\"$S/svc-$p/run\"\n  \
         printf '#!/bin/sh\\nexec s6-log 1 n10 s1000000 T %s\\n' \"$L/$p\" >\"$S/svc-$p/log/run\"\ndone\n",
    );
    sh.push_str("for p in");
    for (p, w) in &svcs {
        if !w {
            let _ = write!(sh, " {p}");
        }
    }
    sh.push_str("; do : >\"$S/svc-$p/down\"; done\nchmod 755 \"$S\"/*/run \"$S\"/*/log/run\ns6-svscanctl -a \"$S\"\n");
    sh
}

fn baseline(env: &Env, n: usize, i: usize, wrapper: &[&str]) -> Run {
    let root = env.fresh_dir(&format!("up-plain-{i}"));
    let (logs, scandir) = (root.join("logs"), root.join("service"));
    fs::create_dir_all(&scandir).unwrap();
    // Made beforehand: the log directories.
    for (p, _) in services(n) {
        fs::create_dir_all(logs.join(&p)).unwrap();
    }
    let prog = root.join("publish.sh");
    fs::write(&prog, publisher(n)).unwrap();
    let wanted: Vec<PathBuf> = services(n).into_iter().filter(|(_, w)| *w).map(|(p, _)| scandir.join(format!("svc-{p}"))).collect();
    let mut publish = Command::new("sh");
    publish.arg("-c").arg(fs::read_to_string(&prog).unwrap()).arg("publish").arg(&scandir).arg(&logs);

    let t = Instant::now();
    let scanner = Scanner::spawn_under(wrapper, &scandir, &root, &[("PATH", IMAGE_PATH.into())]);
    util::wait_for(Duration::from_secs(10), Duration::from_micros(200), || scanner.listening()).expect("s6-svscan listens");
    let publish_cpu = util::measure_cpu(&mut publish).1;
    let published = t.elapsed();
    let done = s6::wait_all(&wanted, s6::up, Duration::from_millis(5), LIMIT);
    let total = t.elapsed();
    let up_at = Some(unix_now());
    let stragglers = settle(scanner, wrapper);
    let _ = fs::remove_dir_all(&root);
    if let Err(left) = done {
        panic!("boot-to-up (baseline): {left} wanted services not up after {LIMIT:?}");
    }
    Run { total: total.as_secs_f64() * 1000.0, publish: published.as_secs_f64() * 1000.0, stragglers, up_at, publish_cpu, render_cpu: 0.0 }
}

/// Our slots exactly as the pass renders them (made by a pass into another directory, with
/// the home's log directories, beforehand), moved into the scanner's directory by one `mv` and
/// then `s6-svscanctl -a`: what our slot files cost s6, without the pass.
fn prerendered(env: &Env, tmpl: &Path, n: usize, i: usize, wrapper: &[&str]) -> Run {
    let root = env.fresh_dir(&format!("up-pre-{i}"));
    let (home, scandir, pre) = (root.join("home"), root.join("service"), root.join("pre"));
    util::copy_tree(tmpl, &home);
    util::give(&home, env.hermes);
    fs::create_dir_all(&scandir).unwrap();
    fs::create_dir_all(&pre).unwrap();
    let gw = s6::sleeper(&root);
    let vars = s6::reconcile_env(env, &home, &pre, &gw, &root.join("run/hermes-s6/registrar"));
    let mut pass = Command::new(util::bin("hermes-reconcile"));
    pass.envs(vars.iter().map(|(k, v)| (*k, v.as_str())));
    // No scanner on `pre`: the pass publishes and says none listens.
    let render_cpu = util::measure_cpu(&mut pass).1;
    let wanted: Vec<PathBuf> = services(n).into_iter().filter(|(_, w)| *w).map(|(p, _)| scandir.join(format!("gateway-{p}"))).collect();
    let mut publish = Command::new("sh");
    publish.arg("-c").arg("mv \"$1\"/gateway-* \"$2\"/ && s6-svscanctl -a \"$2\"").arg("publish").arg(&pre).arg(&scandir);

    let t = Instant::now();
    let scanner =
        Scanner::spawn_under(wrapper, &scandir, &root, &[("HERMES_HOME", home.display().to_string()), ("PATH", IMAGE_PATH.into())]);
    util::wait_for(Duration::from_secs(10), Duration::from_micros(200), || scanner.listening()).expect("s6-svscan listens");
    let publish_cpu = util::measure_cpu(&mut publish).1;
    let published = t.elapsed();
    let done = s6::wait_all(&wanted, s6::up, Duration::from_millis(5), LIMIT);
    let total = t.elapsed();
    let up_at = Some(unix_now());
    let stragglers = settle(scanner, wrapper);
    let _ = fs::remove_dir_all(&root);
    if let Err(left) = done {
        panic!("boot-to-up (pre-rendered): {left} wanted gateways not up after {LIMIT:?}");
    }
    Run { total: total.as_secs_f64() * 1000.0, publish: published.as_secs_f64() * 1000.0, stragglers, up_at, publish_cpu, render_cpu }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Variant {
    Ours,
    Plain,
    Prerendered,
}

impl Variant {
    fn label(self) -> &'static str {
        match self {
            Variant::Ours => "ours",
            Variant::Plain => "plain",
            Variant::Prerendered => "pre-rendered",
        }
    }
    fn run(self, env: &Env, tmpl: &Path, n: usize, i: usize, wrapper: &[&str]) -> Run {
        match self {
            Variant::Ours => ours(env, tmpl, n, i, wrapper),
            Variant::Plain => baseline(env, n, i, wrapper),
            Variant::Prerendered => prerendered(env, tmpl, n, i, wrapper),
        }
    }
}

/// Forks and execs of one run's supervision tree until every wanted gateway was up: the run
/// again with s6-svscan under `strace -f -ttt`, counting the calls that completed before then.
/// `name` counts the successful calls, `name:errors` the failed ones.
fn forks_and_execs(env: &Env, tmpl: &Path, n: usize, v: Variant) -> Option<BTreeMap<String, u64>> {
    if !util::have("strace") {
        return None;
    }
    let out = env.base.join(format!("up-strace-{}.txt", v.label()));
    let o = out.display().to_string();
    // -I2: a SIGTERM makes strace detach and finish its output (see `settle`).
    let wrapper = ["strace", "-I2", "-f", "-ttt", "-e", "trace=execve,clone,clone3,fork,vfork", "-o", o.as_str()];
    let r = v.run(env, tmpl, n, 999, &wrapper);
    let cutoff = r.up_at?;
    let text = fs::read_to_string(&out).ok()?;
    if std::env::var_os("HERMES_BENCH_DEBUG").is_some() {
        eprintln!("strace {}: {} lines, cutoff {cutoff}, first {:?}", v.label(), text.lines().count(), text.lines().next());
    }
    let _ = fs::remove_file(&out);
    Some(count_until(&text, cutoff))
}

/// Count `strace -f -ttt` calls completed by `cutoff` (Unix seconds), by name.
fn count_until(text: &str, cutoff: f64) -> BTreeMap<String, u64> {
    let mut m = BTreeMap::new();
    for line in text.lines() {
        // "<pid> <unix time> <call or event>", the pid padded with blanks.
        let Some((_pid, r)) = line.trim_start().split_once(' ') else { continue };
        let Some((ts, rest)) = r.trim_start().split_once(' ') else { continue };
        let Ok(ts) = ts.parse::<f64>() else { continue };
        if ts > cutoff || rest.ends_with("<unfinished ...>") || rest.starts_with("---") || rest.starts_with("+++") {
            continue;
        }
        let name = match rest.strip_prefix("<... ") {
            Some(r) => r.split(' ').next().unwrap_or(""),
            None => rest.split('(').next().unwrap_or(""),
        };
        let Some(result) = rest.rsplit(" = ").next() else { continue };
        let failed = result.trim_start().starts_with('-') || result.trim_start().starts_with('?');
        *m.entry(if failed { format!("{name}:errors") } else { name.to_string() }).or_insert(0) += 1;
    }
    m
}

pub fn run(env: &Env, n: usize) -> Section {
    let mut sec = Section::new(NAME, format!("Boot to up under a real s6-svscan, {n} profiles, half wanted running"));
    if !s6::installed() {
        return Section::skipped(NAME, sec.title, "s6 is not installed");
    }
    println!(
        "\n== {NAME}: {n} profiles (+ root), {} wanted up, under a fresh s6-svscan (load {})",
        services(n).iter().filter(|s| s.1).count(),
        util::loadavg()
    );
    let tmpl = env.base.join("up-template");
    let _ = fs::remove_dir_all(&tmpl);
    util::make_home(&tmpl, n);
    let runs = env.runs.clamp(3, 5);
    let variants = [Variant::Ours, Variant::Plain, Variant::Prerendered];
    let mut total: Vec<Stats> = vec![Stats::default(); 3];
    let mut publish: Vec<Stats> = vec![Stats::default(); 3];
    let mut cpu: Vec<Stats> = vec![Stats::default(); 3];
    let mut render_cpu = Stats::default();
    let mut stragglers = 0;
    for i in 0..runs {
        // Rotate the order every run.
        for k in 0..3 {
            let j = (i + k) % 3;
            let r = variants[j].run(env, &tmpl, n, i, &[]);
            stragglers += r.stragglers;
            println!("  run {i} {:<13} all wanted up in {:>8.1} ms (publishing step {:>6.1} ms)", variants[j].label(), r.total, r.publish);
            total[j].push(r.total);
            publish[j].push(r.publish);
            cpu[j].push(r.publish_cpu);
            if variants[j] == Variant::Prerendered {
                render_cpu.push(r.render_cpu);
            }
        }
    }
    let counts: Vec<Option<BTreeMap<String, u64>>> = variants.iter().map(|v| forks_and_execs(env, &tmpl, n, *v)).collect();
    let _ = fs::remove_dir_all(&tmpl);
    let (o, b) = (total[0].clone(), total[1].clone());

    sec.para(
        "Timed from spawning a fresh `s6-svscan -c 12000` on an empty scandir on tmpfs, waiting until it \
         listens, then the publishing step, until s6 says every wanted gateway is up (`supervise/status` \
         read directly, every 5 ms, only the ones not yet up). Ours: the release boot pass \
         (`--interpreter /bin/sh`, a gateway program that `exec sleep 3600`, the production slot layout \
         otherwise: `run` drops to uid 10000 with `s6-applyuidgid`, `log/run` too). Baseline: the same \
         number of plain service directories (`run` = `#!/bin/sh` + `exec sleep 3600`, `log/run` = \
         `#!/bin/sh` + `exec s6-log 1 n10 s1000000 T <dir>` with its directory made beforehand, `down` in \
         the same half), published by one `sh -c` (one `mkdir -p`, `printf` per file, one `chmod`) then \
         `s6-svscanctl -a`. Alternating, a fresh directory per run; between runs `s6-svscanctl -t` and \
         then every process of the run is killed. The scanner gets the image's `PATH` \
         (`/command:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin`), so the scripts' \
         `PATH` searches are the container's.",
    );
    let _ = writeln!(
        sec.markdown,
        "A third series separates the pass from the slots it writes: *pre-rendered* is our slots exactly as the \
         pass writes them (made beforehand by a pass into another directory, log directories included), \
         moved into the scanner's directory by one `mv`, then `s6-svscanctl -a`.\n"
    );
    let md = &mut sec.markdown;
    let _ = writeln!(md, "| median of {runs} | ours (the pass) | plain s6 dirs | our slots, pre-rendered |");
    let _ = writeln!(md, "|---|---:|---:|---:|");
    let _ = writeln!(
        md,
        "| start of s6-svscan to every wanted gateway up | {:.0} ms | {:.0} ms | {:.0} ms |",
        total[0].median(),
        total[1].median(),
        total[2].median()
    );
    let _ = writeln!(
        md,
        "| ratio to plain | {:.2} | 1 | {:.2} |",
        total[0].median() / total[1].median(),
        total[2].median() / total[1].median()
    );
    let _ = writeln!(
        md,
        "| of which until the publishing step returned (the pass / the shell + `s6-svscanctl -a`) | {:.0} ms | {:.0} ms | {:.0} ms |",
        publish[0].median(),
        publish[1].median(),
        publish[2].median()
    );
    let _ = writeln!(
        md,
        "| CPU time of that step's own process | {:.0} ms (the same pass with no scanner to wait for: {:.0} ms) | {:.0} ms | {:.0} ms |",
        cpu[0].median(),
        render_cpu.median(),
        cpu[1].median(),
        cpu[2].median()
    );
    let get = |m: &BTreeMap<String, u64>, ks: &[&str]| ks.iter().map(|k| m.get(*k).copied().unwrap_or(0)).sum::<u64>();
    let per = |v: u64| format!("{:.2}", v as f64 / (n + 1) as f64);
    let cell =
        |c: &Option<BTreeMap<String, u64>>, f: &dyn Fn(&BTreeMap<String, u64>) -> u64| c.as_ref().map_or("-".to_string(), |m| per(f(m)));
    let forks = |m: &BTreeMap<String, u64>| get(m, &["clone", "clone3", "fork", "vfork"]);
    let execs = |m: &BTreeMap<String, u64>| get(m, &["execve"]);
    let failed = |m: &BTreeMap<String, u64>| get(m, &["execve:errors"]);
    let _ = writeln!(
        md,
        "| forks of the supervision tree per profile, until all up (one more run each, under `strace -f`) | {} | {} | {} |",
        cell(&counts[0], &forks),
        cell(&counts[1], &forks),
        cell(&counts[2], &forks)
    );
    let _ = writeln!(
        md,
        "| successful execs per profile | {} | {} | {} |",
        cell(&counts[0], &execs),
        cell(&counts[1], &execs),
        cell(&counts[2], &execs)
    );
    let _ = writeln!(
        md,
        "| failed execs per profile (`PATH` searches) | {} | {} | {} |",
        cell(&counts[0], &failed),
        cell(&counts[1], &failed),
        cell(&counts[2], &failed)
    );
    println!(
        "  per profile (ours / plain / pre-rendered): forks {} / {} / {}, execs {} / {} / {}, failed execs {} / {} / {}",
        cell(&counts[0], &forks),
        cell(&counts[1], &forks),
        cell(&counts[2], &forks),
        cell(&counts[0], &execs),
        cell(&counts[1], &execs),
        cell(&counts[2], &execs),
        cell(&counts[0], &failed),
        cell(&counts[1], &failed),
        cell(&counts[2], &failed)
    );
    if stragglers > 0 {
        let _ = writeln!(md, "\n{stragglers} process(es) outlived `s6-svscanctl -t` and were killed between runs.");
    }
    let _ = writeln!(md);
    sec.figures.push(
        Figure::new(
            NAME,
            format!("{n} profiles, {} wanted: scanner start to all up", services(n).iter().filter(|s| s.1).count()),
            Unit::Ms,
            o,
        )
        .against("plain s6 dirs", b)
        .target(Target::Ratio(1.3)),
    );
    sec
}

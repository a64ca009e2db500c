//! Benchmark: the boot pass against upstream's own reconciler, `python -m
//! hermes_cli.container_boot` of the hermes-agent release the image ships (a venv made from the
//! wheelhouse, `target/upstream-venv`), on the same deterministic home, whole processes,
//! alternating, with the scandir on tmpfs and on this machine's disk (a plain `docker run`
//! keeps `/run` on the container's disk): where the pass's file creations cost what the disk
//! makes them cost. Also counts, per profile, the calls that create a file-system entry.

use crate::report::{Figure, Section, Target, Unit};
use crate::util::{self, Env, Stats};
use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

pub const NAME: &str = "upstream-pass";
/// The hermes-agent release the image pins (docker/hermes-agent.lock).
const UPSTREAM: &str = "hermes-agent==0.19.0";

/// Where the venv lives and how it is made: the wheelhouse (`scripts/wheelhouse`), a venv of
/// the system's Python, an offline install of the pinned release.
fn upstream_python() -> Result<PathBuf, String> {
    let venv = PathBuf::from(std::env::var("HERMES_BENCH_UPSTREAM_VENV").unwrap_or_else(|_| "target/upstream-venv".into()));
    let py = venv.join("bin/python");
    if py.exists() {
        return Ok(py);
    }
    let wheels = "target/wheelhouse";
    let (v, pip) = (venv.to_string_lossy().into_owned(), venv.join("bin/pip").to_string_lossy().into_owned());
    let steps: [(&str, &[&str]); 3] = [
        ("scripts/wheelhouse", &[wheels]),
        ("/usr/bin/python3", &["-m", "venv", &v]),
        (&pip, &["install", "--quiet", "--no-index", "--find-links", wheels, UPSTREAM]),
    ];
    for (prog, args) in steps {
        println!("  {prog} {}", args.join(" "));
        if !Command::new(prog).args(args).status().is_ok_and(|s| s.success()) {
            return Err(format!(
                "`{prog} {}` failed: upstream's reconciler needs a venv of {UPSTREAM} in {}",
                args.join(" "),
                venv.display()
            ));
        }
    }
    Ok(py)
}

/// Where the home and the scandir are, for one configuration.
struct Place {
    label: &'static str,
    home_on_disk: bool,
    scandir_on_disk: bool,
}

const PLACES: [Place; 3] = [
    Place { label: "home and scandir on tmpfs", home_on_disk: false, scandir_on_disk: false },
    Place { label: "home on tmpfs, scandir on disk", home_on_disk: false, scandir_on_disk: true },
    Place { label: "home and scandir on disk", home_on_disk: true, scandir_on_disk: true },
];

struct Row {
    place: &'static str,
    ours: Stats,
    upstream: Stats,
}

/// Calls that create a directory entry, per profile, counted with strace: (mkdir, mknod, open
/// with O_CREAT, link, rename).
fn creations(cmd: &Command, scratch: &Path, n: usize) -> Option<[f64; 5]> {
    if !util::have("strace") {
        return None;
    }
    let out = scratch.join("creations.txt");
    let mut s = Command::new("strace");
    s.args(["-f", "-qq", "-e", "trace=mkdir,mkdirat,mknod,mknodat,open,openat,link,linkat,rename,renameat,renameat2", "-o"]).arg(&out);
    s.arg(cmd.get_program()).args(cmd.get_args());
    if let Some(d) = cmd.get_current_dir() {
        s.current_dir(d);
    }
    for (k, v) in cmd.get_envs() {
        if let Some(v) = v {
            s.env(k, v);
        }
    }
    util::quiet(&mut s);
    let text = fs::read_to_string(&out).ok()?;
    let _ = fs::remove_file(&out);
    let mut c = [0u64; 5];
    for l in text.lines() {
        let call = l.split_once(' ').map_or(l, |(_, r)| r).trim_start();
        let i = if call.starts_with("mkdir") {
            0
        } else if call.starts_with("mknod") {
            1
        } else if call.starts_with("open") && l.contains("O_CREAT") {
            2
        } else if call.starts_with("link") {
            3
        } else if call.starts_with("rename") {
            4
        } else {
            continue;
        };
        c[i] += 1;
    }
    Some(c.map(|x| x as f64 / (n + 1) as f64))
}

pub fn run(env: &Env, n: usize) -> Section {
    let mut sec = Section::new(NAME, "Boot pass against upstream's reconciler");
    println!("\n== {NAME}: the boot pass against upstream's python -m hermes_cli.container_boot, {n} profiles");
    let py = match upstream_python() {
        Ok(p) => p,
        Err(why) => return Section::skipped(NAME, "Boot pass against upstream's reconciler", &why),
    };
    sec.para(&format!(
        "Each run is a whole process on a fresh copy of the same deterministic home ({n} named profiles plus \
         the root, as in `boot-pass`) and an empty scandir, as root, no scanner running: the release \
         `hermes-reconcile` against upstream's own reconciler (`python -m hermes_cli.container_boot` from a \
         venv of {UPSTREAM}, the release the image ships), alternating, in the same invocation. \"disk\" is \
         this machine's ext4 root file system (a plain `docker run` keeps `/run/service` on the container's \
         disk), \"tmpfs\" is /dev/shm; `sync` runs before each timed run, so one run's writeback does not \
         land in the next. ratio = ours / upstream (below 1: ours is faster)."
    ));
    let disk_base = PathBuf::from("/var/tmp").join(format!("hermes-bench-disk-{}", std::process::id()));
    let tmpl = env.base.join("upstream-template");
    let _ = fs::remove_dir_all(&tmpl);
    util::make_home(&tmpl, n);
    let mut rows = Vec::new();
    let mut counted = None;
    for place in &PLACES {
        let root = |disk: bool| if disk { disk_base.clone() } else { env.base.join("upstream-pass") };
        let home = root(place.home_on_disk).join("home");
        let scandir = root(place.scandir_on_disk).join("service");
        let fresh = || {
            for d in [&home, &scandir] {
                let _ = fs::remove_dir_all(d);
            }
            util::copy_tree(&tmpl, &home);
            util::give(&home, env.hermes);
            fs::create_dir_all(&scandir).unwrap();
            let _ = Command::new("sync").status();
        };
        let ours = || {
            let mut c = Command::new(util::bin("hermes-reconcile"));
            c.args(["--home", home.to_str().unwrap(), "--scandir", scandir.to_str().unwrap()]);
            c.env("HERMES_UID", env.hermes.0.to_string()).env("HERMES_GID", env.hermes.1.to_string());
            c.env("HERMES_S6_MAX_SERVICES", "100000").env("HERMES_S6_RECONCILE", hermes_core::config::DEFAULT_RECONCILE);
            c
        };
        let upstream = || {
            let mut c = Command::new(&py);
            c.args(["-m", "hermes_cli.container_boot"]);
            c.env("HERMES_HOME", &home).env("S6_PROFILE_GATEWAY_SCANDIR", &scandir).env("PYTHONDONTWRITEBYTECODE", "1");
            c
        };
        // Both must build a slot for every profile, or this compares nothing.
        for (who, mut cmd) in [("hermes-reconcile", ours()), ("upstream", upstream())] {
            fresh();
            util::measure(&mut cmd);
            let slots = fs::read_dir(&scandir)
                .unwrap()
                .filter_map(|e| e.ok())
                .filter(|e| e.file_name().to_string_lossy().starts_with("gateway-"))
                .count();
            assert_eq!(slots, n + 1, "{who} published {slots} slots for {} profiles in {}", n + 1, scandir.display());
        }
        if counted.is_none() {
            fresh();
            let o = creations(&ours(), &env.base, n);
            fresh();
            let u = creations(&upstream(), &env.base, n);
            counted = o.zip(u);
        }
        let runs = env.runs.clamp(3, 7);
        let (mut o, mut u) = (Stats::default(), Stats::default());
        for i in 0..runs {
            let order: [u8; 2] = if i % 2 == 0 { [0, 1] } else { [1, 0] };
            for which in order {
                fresh();
                match which {
                    0 => o.push(util::ms(&mut ours())),
                    _ => u.push(util::ms(&mut upstream())),
                }
            }
        }
        println!(
            "{:<32} | ours {:>8.1} ms ({:.1}-{:.1}) | upstream {:>8.1} ms ({:.1}-{:.1}) | ratio {:.2} ({:.2}x faster)",
            place.label,
            o.median(),
            o.min(),
            o.max(),
            u.median(),
            u.min(),
            u.max(),
            o.median() / u.median(),
            u.median() / o.median()
        );
        rows.push(Row { place: place.label, ours: o, upstream: u });
    }
    let _ = fs::remove_dir_all(&disk_base);
    let _ = fs::remove_dir_all(env.base.join("upstream-pass"));
    let _ = fs::remove_dir_all(&tmpl);
    let md = &mut sec.markdown;
    let _ = writeln!(md, "| where | hermes-reconcile median (min-max, runs) | upstream median (min-max) | ratio | speed-up |");
    let _ = writeln!(md, "|---|---:|---:|---:|---:|");
    for r in &rows {
        let _ = writeln!(
            md,
            "| {} | {:.1} ms ({:.1}-{:.1}, {}) | {:.1} ms ({:.1}-{:.1}) | {:.2} | {:.2}x |",
            r.place,
            r.ours.median(),
            r.ours.min(),
            r.ours.max(),
            r.ours.len(),
            r.upstream.median(),
            r.upstream.min(),
            r.upstream.max(),
            r.ours.median() / r.upstream.median(),
            r.upstream.median() / r.ours.median()
        );
    }
    if let Some((o, u)) = counted {
        let _ = writeln!(
            md,
            "\nCalls that create a file-system entry, per profile (`strace -f` of one run on tmpfs; scandir and volume together):\n"
        );
        let _ = writeln!(md, "| | mkdir | mknod | open with O_CREAT | link | rename | all |");
        let _ = writeln!(md, "|---|---:|---:|---:|---:|---:|---:|");
        for (who, c) in [("hermes-reconcile", o), ("upstream", u)] {
            let _ = writeln!(
                md,
                "| {who} | {:.1} | {:.1} | {:.1} | {:.1} | {:.1} | {:.1} |",
                c[0],
                c[1],
                c[2],
                c[3],
                c[4],
                c.iter().sum::<f64>()
            );
        }
        let inodes = |c: [f64; 5]| c[0] + c[1] + c[2];
        let _ = writeln!(
            md,
            "\nNew inodes per profile (mkdir + mknod + open with O_CREAT): hermes-reconcile {:.1}, upstream {:.1}; a link or a rename makes none. \
             On this machine's disk under load, `strace -T` put a new inode at about 1-2 ms and a link at about 0.1 ms: the new \
             inodes are the pass's cost on a disk-backed scandir.",
            inodes(o),
            inodes(u)
        );
        println!(
            "  creating calls per profile: ours {:.1}, upstream {:.1}; new inodes: ours {:.1}, upstream {:.1}",
            o.iter().sum::<f64>(),
            u.iter().sum::<f64>(),
            inodes(o),
            inodes(u)
        );
    }
    for r in rows {
        sec.figures.push(
            Figure::new(NAME, format!("boot pass, N={n}, {}", r.place), Unit::Ms, r.ours)
                .against("upstream container_boot", r.upstream)
                .target(Target::Ratio(1.0)),
        );
    }
    sec
}

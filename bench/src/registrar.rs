//! Benchmark 4, the registrar (`hermes-reconcile watch`) at 1000 profiles on tmpfs under a real
//! s6-svscan:
//! (a) its CPU while idle, over a 30 s window after it settled (scheduler time from
//!     `/proc/<pid>/task/*/schedstat`, and utime+stime ticks), and the CPU of one safety
//!     resync (rung with an empty line), amortised over the resync period;
//! (b) from creating `profiles/x/SOUL.md` as the user (mkdir + write, no ring) until
//!     `gateway-x` and its logger are supervised (their `supervise/lock` held: s6-svok's
//!     F_GETLK probe, polled every 0.2 ms);
//! (c) `hermes-reconcile request P` as the hermes user, a whole process: for a profile whose
//!     slot is already supervised, and for a fresh profile (created just before, so whichever of
//!     inotify and the ring wakes the registrar first).
//!
//! Baseline for (b) and (c), interleaved with them: a pre-built plain service directory (with a
//! logger, `down`) renamed into the scandir, `s6-svscanctl -a`, until it and its logger are
//! supervised.

use crate::report::{Figure, Section, Target, Unit};
use crate::s6::{self, Fleet};
use crate::util::{self, Env, Stats};
use std::fmt::Write as _;
use std::fs;
use std::io::{BufRead, BufReader, Write as _};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

pub const NAME: &str = "registrar";
const IDLE_WINDOW: Duration = Duration::from_secs(30);
const CREATIONS: usize = 20;

fn supervised_with_log(svc: &Path) -> bool {
    s6::supervised(svc) && s6::supervised(&svc.join("log"))
}

/// Time until `check` holds, polled every 0.2 ms, from `t`.
fn until(t: Instant, check: impl Fn() -> bool) -> f64 {
    let ok = util::wait_for(Duration::from_secs(20), Duration::from_micros(200), check);
    assert!(ok.is_some(), "timed out after 20 s");
    t.elapsed().as_secs_f64() * 1000.0
}

/// CPU (ns) a process uses until it has been still for 300 ms, from now.
fn cpu_until_still(pid: u32) -> u64 {
    let start = util::cpu_of(pid).map_or(0, |c| c.0);
    let mut last = start;
    let t = Instant::now();
    let mut still_since = Instant::now();
    while t.elapsed() < Duration::from_secs(10) {
        std::thread::sleep(Duration::from_millis(20));
        let now = util::cpu_of(pid).map_or(0, |c| c.0);
        if now != last {
            last = now;
            still_since = Instant::now();
        } else if still_since.elapsed() > Duration::from_millis(300) {
            break;
        }
    }
    last - start
}

pub fn run(env: &Env, fleet: &Fleet) -> Section {
    let n = fleet.n;
    let mut sec = Section::new(NAME, format!("The registrar at {n} profiles"));
    println!("\n== {NAME}: hermes-reconcile watch over {n} profiles (load {})", util::loadavg());
    let fifo = fleet.root.join("run/hermes-s6/registrar");
    let mut watch = fleet.reconcile(&["watch"]).stdout(Stdio::piped()).stderr(Stdio::null()).spawn().expect("spawn the registrar");
    let pid = watch.id();
    let mut lines = BufReader::new(watch.stdout.take().unwrap()).lines();
    let ready = lines.next().and_then(|l| l.ok()).unwrap_or_default();
    assert!(ready.starts_with("registrar: watching"), "the registrar said {ready:?}");
    // Keep draining what it prints, so it never blocks on a full pipe.
    std::thread::spawn(move || for _ in lines.by_ref() {});
    std::thread::sleep(Duration::from_secs(2));

    // (a) Idle.
    let scanner_pid = fleet.scanner.as_ref().map_or(0, |s| s.pid());
    let (r0, s0) = (util::cpu_of(pid).unwrap(), util::cpu_of(scanner_pid).unwrap_or((0, 0)));
    let t = Instant::now();
    std::thread::sleep(IDLE_WINDOW);
    let (r1, s1) = (util::cpu_of(pid).unwrap(), util::cpu_of(scanner_pid).unwrap_or((0, 0)));
    let secs = t.elapsed().as_secs_f64();
    let pct = |ns: u64| ns as f64 / 1e9 / secs * 100.0;
    let (idle, scanner_idle) = (pct(r1.0 - r0.0), pct(s1.0 - s0.0));
    let idle_ticks = r1.1 - r0.1;
    let mut resync = Stats::default();
    for _ in 0..3 {
        fs::OpenOptions::new().write(true).open(&fifo).and_then(|mut f| f.write_all(b"\n")).expect("ring the registrar");
        resync.push(cpu_until_still(pid) as f64 / 1e6);
    }
    let period = hermes_core::registrar::RESYNC.as_secs_f64();
    let amortised = idle + resync.median() / 1000.0 / period * 100.0;
    println!(
        "  idle: {idle:.4} % of a core over {secs:.0} s ({idle_ticks} ticks; s6-svscan {scanner_idle:.4} %); one resync {:.1} ms CPU, i.e. {:.4} % with one every {period:.0} s",
        resync.median(),
        amortised
    );

    // (b) and (c), interleaved with the baseline.
    let logs = fleet.root.join("plain-logs");
    for k in 0..CREATIONS {
        let d = fleet.scandir.join(format!(".plain-{k:02}"));
        fs::create_dir_all(d.join("log")).unwrap();
        fs::create_dir_all(logs.join(format!("{k:02}"))).unwrap();
        util::script(&d.join("run"), "#!/bin/sh\nexec sleep 3600\n");
        util::script(&d.join("log/run"), &format!("#!/bin/sh\nexec s6-log 1 n10 s1000000 T {}\n", logs.join(format!("{k:02}")).display()));
        fs::write(d.join("down"), "").unwrap();
    }
    let profiles = fleet.home.join("profiles");
    let create = |name: &str| {
        util::as_user(env.hermes, || {
            fs::create_dir(profiles.join(name)).unwrap();
            fs::write(profiles.join(name).join("SOUL.md"), "persona\n").unwrap();
        })
    };
    let request = |p: &str| {
        let mut c = fleet.reconcile(&["request", p]);
        c.uid(env.hermes.0).gid(env.hermes.1);
        c
    };
    let (mut created, mut plain, mut req_fresh, mut req_known, mut svok) =
        (Stats::default(), Stats::default(), Stats::default(), Stats::default(), Stats::default());
    for k in 0..CREATIONS {
        let settle = || std::thread::sleep(Duration::from_millis(150));
        let mut steps: Vec<u8> = vec![0, 1, 2, 3];
        if k % 2 == 1 {
            steps.reverse();
        }
        for step in steps {
            match step {
                0 => {
                    let name = format!("new{k:02}");
                    let slot = fleet.slot(&name);
                    let t = Instant::now();
                    create(&name);
                    created.push(until(t, || supervised_with_log(&slot)));
                }
                1 => {
                    let (from, to) = (fleet.scandir.join(format!(".plain-{k:02}")), fleet.scandir.join(format!("plain-{k:02}")));
                    let t = Instant::now();
                    fs::rename(&from, &to).unwrap();
                    util::quiet(Command::new("s6-svscanctl").arg("-a").arg(&fleet.scandir));
                    plain.push(until(t, || supervised_with_log(&to)));
                }
                2 => {
                    let name = format!("req{k:02}");
                    create(&name);
                    req_fresh.push(util::ms(&mut request(&name)));
                }
                _ => {
                    let p = util::profile_name(2 + k);
                    req_known.push(util::ms(&mut request(&p)));
                    svok.push(util::ms(Command::new("s6-svok").arg(fleet.slot(&p))));
                }
            }
            settle();
        }
    }
    // Where one creation's work goes: the registrar's system calls while it registers one more
    // profile (strace attached, detached by SIGINT once the slot is supervised).
    let one = util::have("strace")
        .then(|| {
            let out = env.base.join("registrar-strace.txt");
            let mut st = Command::new("strace")
                .args(["-f", "-c", "-o"])
                .arg(&out)
                .arg("-p")
                .arg(pid.to_string())
                .stderr(Stdio::null())
                .spawn()
                .ok()?;
            std::thread::sleep(Duration::from_millis(500));
            let slot = fleet.slot("traced");
            create("traced");
            util::wait_for(Duration::from_secs(10), Duration::from_millis(1), || supervised_with_log(&slot));
            std::thread::sleep(Duration::from_millis(200));
            let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(st.id() as i32), nix::sys::signal::Signal::SIGINT);
            let _ = st.wait();
            crate::boot_pass::parse_strace_c(&fs::read_to_string(&out).ok()?)
        })
        .flatten();
    let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid as i32), nix::sys::signal::Signal::SIGTERM);
    let _ = watch.wait();
    println!(
        "  create → supervised {:.1} ms; request (fresh) {:.1} ms; request (supervised) {:.2} ms; plain svscanctl -a → supervised {:.1} ms; s6-svok {:.2} ms",
        created.median(),
        req_fresh.median(),
        req_known.median(),
        plain.median(),
        svok.median()
    );

    sec.para(&format!(
        "`hermes-reconcile watch` over {n} registered profiles (2 × {} supervised services) on tmpfs under \
         a running `s6-svscan`, settled 2 s after it said it was watching.",
        n + 1
    ));
    let md = &mut sec.markdown;
    let _ = writeln!(md, "| | figure |");
    let _ = writeln!(md, "|---|---:|");
    let _ = writeln!(
        md,
        "| registrar CPU over {secs:.0} s idle (scheduler time) | {idle:.4} % of a core ({:.3} ms; {idle_ticks} clock ticks of 1/{} s in utime+stime) |",
        (r1.0 - r0.0) as f64 / 1e6,
        util::ticks_per_sec()
    );
    let _ = writeln!(md, "| s6-svscan CPU over the same window, for scale | {scanner_idle:.4} % of a core |");
    let _ = writeln!(md, "| CPU of one safety resync (a full look at {n} profiles; median of 3) | {:.1} ms |", resync.median());
    let _ = writeln!(md, "| idle plus one resync every {period:.0} s | {amortised:.4} % of a core |");
    let _ = writeln!(md, "| `s6-svok <slot>` as a whole process, for scale (median of {CREATIONS}) | {:.2} ms |", svok.median());
    let _ = writeln!(md);
    let _ = writeln!(
        md,
        "(b) creates `profiles/newNN/` and its `SOUL.md` as the hermes user (file-system identity), no ring, \
         and polls s6-svok's lock probe on `gateway-newNN` and its `log` every 0.2 ms. (c) runs `request` as \
         uid 10000: for `req NN` created just before it (whichever of inotify and the ring wakes the \
         registrar first), and for an already supervised `p000NN`. Steps interleaved, order reversed every \
         other round, 150 ms apart.\n"
    );
    if let Some(m) = &one {
        let _ = writeln!(md, "The registrar's system calls while it registers one profile (`strace -f -c -p`, one creation):\n");
        let _ = writeln!(md, "| system call | calls |");
        let _ = writeln!(md, "|---|---:|");
        let mut names: Vec<&String> = m.keys().filter(|k| !k.ends_with(":errors") && *k != "total").collect();
        names.sort_by_key(|k| std::cmp::Reverse(m[*k]));
        for k in names.into_iter().take(6).chain([&"total".to_string()]) {
            let _ = writeln!(md, "| {k} | {} |", m[k]);
        }
        let _ = writeln!(md);
        println!("  one registration: {} system calls in the registrar", m["total"]);
    }
    let base = "plain dir: rename + `s6-svscanctl -a` → supervised";
    sec.figures.push(
        Figure::new(NAME, format!("(a) idle CPU over {secs:.0} s, % of a core"), Unit::PctCore, Stats { samples: vec![idle] })
            .target(Target::Below(0.05)),
    );
    sec.figures.push(
        Figure::new(NAME, format!("(a) idle CPU with one resync every {period:.0} s"), Unit::PctCore, Stats { samples: vec![amortised] })
            .target(Target::Below(0.05)),
    );
    sec.figures.push(
        Figure::new(NAME, "(b) profile created → slot supervised", Unit::Ms, created)
            .against(base, plain.clone())
            .target(Target::Below(100.0)),
    );
    sec.figures.push(
        Figure::new(NAME, "(c) `request P`, P already supervised", Unit::Ms, req_known)
            .against(base, plain.clone())
            .target(Target::Below(10.0)),
    );
    sec.figures
        .push(Figure::new(NAME, "(c) `request P`, P just created", Unit::Ms, req_fresh).against(base, plain).target(Target::Below(10.0)));
    sec
}

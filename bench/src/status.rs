//! Benchmark 3, `status` with 1000 profiles under a real s6-svscan: `hermes-reconcile status
//! p00001 --json` as a whole process against one `s6-svstat` of the same slot, alternating;
//! and `status --json` of every profile (no baseline: s6 has no such command).

use crate::report::{Figure, Section, Target, Unit};
use crate::s6::Fleet;
use crate::util::{self, Env, Stats};
use std::fmt::Write as _;
use std::process::Command;

pub const NAME: &str = "status";

pub fn run(env: &Env, fleet: &Fleet) -> Section {
    let n = fleet.n;
    let mut sec = Section::new(NAME, format!("`status` with {n} profiles"));
    println!("\n== {NAME}: {n} profiles supervised (load {})", util::loadavg());
    let runs = env.runs.max(15);
    let slot = fleet.slot("p00001");
    let (mut one, mut svstat, mut all) = (Stats::default(), Stats::default(), Stats::default());
    // Warm the page cache and the binary once.
    // (`status P` exits 3, LSB's "not running": every gateway here is down, as wanted.)
    util::measure_allowing(&mut fleet.reconcile(&["status", "p00001", "--json"]), &[3]);
    for i in 0..runs {
        let order: [u8; 2] = if i % 2 == 0 { [0, 1] } else { [1, 0] };
        for w in order {
            match w {
                0 => one.push(util::measure_allowing(&mut fleet.reconcile(&["status", "p00001", "--json"]), &[3]).0.as_secs_f64() * 1000.0),
                _ => svstat.push(util::ms(Command::new("s6-svstat").arg(&slot))),
            }
        }
        // Every gateway is wanted stopped and is down: "as wanted", exit 0.
        all.push(util::ms(&mut fleet.reconcile(&["status", "--json"])));
    }
    println!(
        "  status p00001 --json {:.2} ms vs s6-svstat {:.2} ms ({:.2}x); status --json of all {:.1} ms",
        one.median(),
        svstat.median(),
        one.median() / svstat.median(),
        all.median()
    );
    sec.para(&format!(
        "{n} profiles registered by the boot pass under a running `s6-svscan` (2 × {} supervised services), \
         every gateway down. Each figure is a whole process, median of {runs} runs, alternating with its \
         baseline.",
        n + 1
    ));
    let _ = writeln!(
        sec.markdown,
        "`status P --json` reads P's slot status, wanted state and exit history, and the scanner's capacity \
         (a count of the whole scandir); `s6-svstat` reads one status file.\n"
    );
    // Where the system calls go (one run each, `strace -f -c`).
    let sc_one = crate::boot_pass::syscalls(&fleet.reconcile(&["status", "p00001", "--json"]), &env.base);
    let sc_all = crate::boot_pass::syscalls(&fleet.reconcile(&["status", "--json"]), &env.base);
    let sc_svstat = crate::boot_pass::syscalls(Command::new("s6-svstat").arg(&slot), &env.base);
    if let (Some(a), Some(b), Some(c)) = (&sc_one, &sc_all, &sc_svstat) {
        let md = &mut sec.markdown;
        let _ = writeln!(md, "System calls of one run (`strace -f -c`), the most frequent of `status --json` first:\n");
        let _ = writeln!(md, "| system call | `status p00001 --json` | `status --json` (all) | `s6-svstat` |");
        let _ = writeln!(md, "|---|---:|---:|---:|");
        let mut names: Vec<&String> = b.keys().filter(|k| !k.ends_with(":errors") && *k != "total").collect();
        names.sort_by_key(|k| std::cmp::Reverse(b[*k]));
        let get = |m: &std::collections::BTreeMap<String, u64>, k: &str| m.get(k).copied().unwrap_or(0);
        for k in names.into_iter().take(8).chain([&"total".to_string()]) {
            let _ = writeln!(md, "| {k} | {} | {} | {} |", get(a, k), get(b, k), get(c, k));
        }
        let _ = writeln!(md);
        println!(
            "  system calls: status p00001 --json {}, status --json {}, s6-svstat {}",
            get(a, "total"),
            get(b, "total"),
            get(c, "total")
        );
    }
    sec.figures.push(
        Figure::new(NAME, format!("`status p00001 --json`, {n} profiles"), Unit::Ms, one)
            .against("`s6-svstat <slot>`", svstat)
            .target(Target::Ratio(2.0)),
    );
    sec.figures.push(Figure::new(NAME, format!("`status --json`, all {n} profiles"), Unit::Ms, all).target(Target::Below(50.0)));
    sec
}

//! What a running gateway costs, as `status` shows it next to s6's view (like `pm2 ls`): its
//! resident memory and its CPU, read from `/proc/<pid>` (world-readable `statm` and `stat`,
//! through the file-system seam, capped).

use crate::ctx::Ctx;
use crate::fs::Capped;
use std::ffi::OsStr;

/// A gateway process's resources.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct Usage {
    /// Resident set size, bytes.
    pub rss_bytes: u64,
    /// CPU time used since it started, seconds (user + system).
    pub cpu_seconds: f64,
    /// That CPU time over its lifetime so far, percent of one core.
    pub cpu_percent: f64,
}

/// The kernel's page size and clock tick, as on every Linux this runs on (x86_64, aarch64 with
/// 4 KiB pages); read once from `sysconf` would need libc, and `/proc` says pages and ticks.
const PAGE: u64 = 4096;
const TICKS: f64 = 100.0;

/// `resident` (field 2) of `statm`, in pages.
fn resident_pages(statm: &str) -> Option<u64> {
    statm.split_whitespace().nth(1)?.parse().ok()
}

/// (utime + stime, starttime) in ticks from `stat`: the fields after the command name, which
/// is in parentheses and may hold spaces (the last `)` ends it).
fn cpu_and_start(stat: &str) -> Option<(u64, u64)> {
    let rest = &stat[stat.rfind(')')? + 1..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    // After the name: state is field 3, so utime (14) is f[11], stime (15) f[12], starttime (22) f[19].
    let n = |i: usize| f.get(i)?.parse::<u64>().ok();
    Some((n(11)? + n(12)?, n(19)?))
}

/// The machine's uptime in seconds, from `/proc/uptime`.
fn uptime(text: &str) -> Option<f64> {
    text.split_whitespace().next()?.parse().ok()
}

/// `pid`'s usage, when its `/proc` entries can be read.
pub fn of(ctx: &Ctx, pid: u64) -> Option<Usage> {
    let fs = ctx.fs;
    let proc = fs.open_root(&ctx.cfg.proc_root).ok()?;
    let read = |dir: &crate::fs::Dir, name: &str| match fs.read_capped(dir, OsStr::new(name), 4096) {
        Ok(Capped::Data(d)) => Some(String::from_utf8_lossy(&d).into_owned()),
        _ => None,
    };
    let dir = fs.open_dir(&proc, OsStr::new(&pid.to_string())).ok()?;
    let rss_bytes = resident_pages(&read(&dir, "statm")?)? * PAGE;
    let (cpu, start) = cpu_and_start(&read(&dir, "stat")?)?;
    let cpu_seconds = cpu as f64 / TICKS;
    let alive = read(&proc, "uptime").and_then(|u| uptime(&u)).map(|up| up - start as f64 / TICKS).unwrap_or(0.0);
    let cpu_percent = if alive > 0.0 { (cpu_seconds / alive * 100.0).min(100.0 * 1024.0) } else { 0.0 };
    Some(Usage { rss_bytes, cpu_seconds, cpu_percent })
}

/// Bytes as a person reads them in a table: `82 MB`, `950 KB`.
pub fn human_bytes(b: u64) -> String {
    match b {
        0..=999_999 => format!("{} KB", b.div_ceil(1000)),
        1_000_000..=9_999_999_999 => format!("{} MB", (b + 500_000) / 1_000_000),
        _ => format!("{:.1} GB", b as f64 / 1e9),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proc_fields_are_read_past_a_name_with_spaces_and_parentheses() {
        assert_eq!(resident_pages("50000 20000 3000 1 0 9000 0\n"), Some(20000));
        let stat = "83 (hermes gw) (x)) S 45 83 83 0 -1 4194560 1000 0 0 0 150 30 0 0 20 0 9 0 22686 300000000 20000 18446744073709551615";
        assert_eq!(cpu_and_start(stat), Some((180, 22686)));
        assert_eq!(uptime("1234.56 2000.00\n"), Some(1234.56));
        assert_eq!(human_bytes(82_400_000), "82 MB");
        assert_eq!(human_bytes(950_000), "950 KB");
    }

    #[test]
    fn this_process_has_memory_and_cpu() {
        let cfg = crate::config::Config::default();
        let ctx = Ctx::new(&crate::fs::RealFs, &crate::clock::SystemClock, &cfg);
        let u = of(&ctx, std::process::id() as u64).expect("our own /proc entry");
        assert!(u.rss_bytes > 1_000_000, "{u:?}");
        assert!(u.cpu_percent >= 0.0 && u.cpu_seconds >= 0.0, "{u:?}");
    }
}

//! What every benchmark needs: the binaries, deterministic homes, whole-process timing,
//! medians, and the machine's description.

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// What the benchmarks share: a scratch directory on tmpfs, how many runs, the hermes ids.
pub struct Env {
    pub base: PathBuf,
    pub runs: usize,
    pub hermes: (u32, u32),
}

impl Env {
    /// A fresh directory under the scratch base (removed first if a run left it).
    pub fn fresh_dir(&self, name: &str) -> PathBuf {
        let d = self.base.join(name);
        let _ = fs::remove_dir_all(&d);
        fs::create_dir_all(&d).unwrap();
        d
    }
}

/// A sibling binary of this one (all are built into the same target directory).
pub fn bin(name: &str) -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    exe.parent().unwrap().join(name)
}

/// Whether a program can be run from PATH.
pub fn have(program: &str) -> bool {
    std::env::var_os("PATH").is_some_and(|p| std::env::split_paths(&p).any(|d| d.join(program).is_file()))
}

/// The wanted state profile `i` gets in a deterministic home: states cycle running /
/// operator-stopped / none / draining, so half the profiles are wanted running.
pub fn state_of(i: usize) -> Option<&'static str> {
    match i % 4 {
        0 => Some(r#"{"gateway_state":"running","pid":1}"#),
        1 => Some(r#"{"gateway_state":"running","desired_state":"stopped"}"#),
        2 => None,
        _ => Some(r#"{"gateway_state":"draining"}"#),
    }
}

/// Whether profile `i` of [`make_home`] is wanted running.
pub fn wanted(i: usize) -> bool {
    matches!(i % 4, 0 | 3)
}

pub fn profile_name(i: usize) -> String {
    format!("p{i:05}")
}

/// A deterministic home of `n` profiles (see [`state_of`]); every fifth profile has stale
/// runtime files; the root profile is running.
pub fn make_home(dir: &Path, n: usize) {
    fs::create_dir_all(dir.join("profiles")).unwrap();
    fs::write(dir.join("SOUL.md"), "root persona\n").unwrap();
    fs::write(dir.join("gateway_state.json"), r#"{"gateway_state":"running"}"#).unwrap();
    for i in 0..n {
        let d = dir.join("profiles").join(profile_name(i));
        fs::create_dir(&d).unwrap();
        fs::write(d.join("SOUL.md"), "persona\n").unwrap();
        if let Some(s) = state_of(i) {
            fs::write(d.join("gateway_state.json"), s).unwrap();
        }
        if i % 5 == 0 {
            fs::write(d.join("gateway.pid"), r#"{"pid":4242}"#).unwrap();
            fs::write(d.join("processes.json"), "[]").unwrap();
        }
    }
}

/// Every profile of a home wanted stopped (so only what a benchmark starts runs).
pub fn stop_all(home: &Path, n: usize) {
    fs::write(home.join("gateway_state.json"), r#"{"gateway_state":"stopped"}"#).unwrap();
    for i in 0..n {
        fs::write(home.join("profiles").join(profile_name(i)).join("gateway_state.json"), r#"{"gateway_state":"stopped"}"#).unwrap();
    }
}

/// The home belongs to the unprivileged user, as the volume does in the container.
pub fn give(path: &Path, ids: (u32, u32)) {
    let _ = std::os::unix::fs::lchown(path, Some(ids.0), Some(ids.1));
    if path.is_dir() && !path.is_symlink() {
        for e in fs::read_dir(path).unwrap() {
            give(&e.unwrap().path(), ids);
        }
    }
}

pub fn copy_tree(from: &Path, to: &Path) {
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

/// A small executable script.
pub fn script(path: &Path, text: &str) {
    use std::os::unix::fs::PermissionsExt;
    fs::write(path, text).unwrap();
    fs::set_permissions(path, fs::Permissions::from_mode(0o755)).unwrap();
}

/// Run a command to completion with its output discarded: (wall time, peak RSS in KiB as the
/// kernel's ru_maxrss). Panics if it fails.
// The child is reaped by wait4 (for its rusage), not by Child::wait.
#[allow(clippy::zombie_processes)]
pub fn measure(cmd: &mut Command) -> (Duration, u64) {
    measure_allowing(cmd, &[0])
}

/// [`measure`], accepting these exit codes.
pub fn measure_allowing(cmd: &mut Command, codes: &[i32]) -> (Duration, u64) {
    let (wall, ru) = run_rusage(cmd, codes);
    (wall, ru.ru_maxrss as u64)
}

/// Wall time and CPU time (user + system, ms) of one run.
pub fn measure_cpu(cmd: &mut Command) -> (Duration, f64) {
    let (wall, ru) = run_rusage(cmd, &[0]);
    let ms = |t: nix::libc::timeval| t.tv_sec as f64 * 1000.0 + t.tv_usec as f64 / 1000.0;
    (wall, ms(ru.ru_utime) + ms(ru.ru_stime))
}

/// Page faults (minor + major) of one run.
pub fn page_faults(cmd: &mut Command) -> u64 {
    let (_, ru) = run_rusage(cmd, &[0]);
    (ru.ru_minflt + ru.ru_majflt) as u64
}

#[allow(clippy::zombie_processes)]
fn run_rusage(cmd: &mut Command, codes: &[i32]) -> (Duration, nix::libc::rusage) {
    cmd.stdout(Stdio::null()).stderr(Stdio::null());
    let t = Instant::now();
    let child = cmd.spawn().unwrap_or_else(|e| panic!("spawn {cmd:?}: {e}"));
    let mut status = 0;
    let mut ru: nix::libc::rusage = unsafe { std::mem::zeroed() };
    let r = unsafe { nix::libc::wait4(child.id() as i32, &mut status, 0, &mut ru) };
    let wall = t.elapsed();
    assert!(r > 0 && nix::libc::WIFEXITED(status) && codes.contains(&nix::libc::WEXITSTATUS(status)), "{cmd:?} failed (status {status})");
    (wall, ru)
}

/// Milliseconds of one whole-process run.
pub fn ms(cmd: &mut Command) -> f64 {
    measure(cmd).0.as_secs_f64() * 1000.0
}

/// Run a command, output discarded; whether it succeeded.
pub fn quiet(cmd: &mut Command) -> bool {
    cmd.stdout(Stdio::null()).stderr(Stdio::null()).status().is_ok_and(|s| s.success())
}

/// Poll `done` every `every` until it holds or `limit` passes; the time it took, if it held.
pub fn wait_for(limit: Duration, every: Duration, mut done: impl FnMut() -> bool) -> Option<Duration> {
    let t = Instant::now();
    loop {
        if done() {
            return Some(t.elapsed());
        }
        if t.elapsed() > limit {
            return None;
        }
        if !every.is_zero() {
            std::thread::sleep(every);
        }
    }
}

/// Samples of one measurement.
#[derive(Debug, Clone, Default)]
pub struct Stats {
    pub samples: Vec<f64>,
}

impl Stats {
    pub fn push(&mut self, v: f64) {
        self.samples.push(v);
    }
    pub fn median(&self) -> f64 {
        let mut v = self.samples.clone();
        v.sort_by(|a, b| a.partial_cmp(b).unwrap());
        match v.len() {
            0 => f64::NAN,
            n if n % 2 == 1 => v[n / 2],
            n => (v[n / 2 - 1] + v[n / 2]) / 2.0,
        }
    }
    pub fn min(&self) -> f64 {
        self.samples.iter().cloned().fold(f64::INFINITY, f64::min)
    }
    pub fn max(&self) -> f64 {
        self.samples.iter().cloned().fold(f64::NEG_INFINITY, f64::max)
    }
    pub fn len(&self) -> usize {
        self.samples.len()
    }
}

/// Every entry under `dir`: mode, owner and (for files) content, by relative path. `skip_content`
/// names files whose content is not compared (only their presence, mode and owner).
pub fn fingerprint(dir: &Path, skip_content: &[&str]) -> BTreeMap<String, String> {
    fn walk(base: &Path, dir: &Path, skip: &[&str], out: &mut BTreeMap<String, String>) {
        for e in fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            let m = fs::symlink_metadata(&p).unwrap();
            let rel = p.strip_prefix(base).unwrap().display().to_string();
            let content = if m.is_file() && !skip.contains(&rel.as_str()) { fs::read(&p).unwrap() } else { Vec::new() };
            out.insert(rel, format!("{:o} {}:{} {}", m.mode(), m.uid(), m.gid(), String::from_utf8_lossy(&content)));
            if m.is_dir() {
                walk(base, &p, skip, out);
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(dir, dir, skip_content, &mut out);
    out
}

/// The first few differences between two fingerprints.
pub fn differences(a: &BTreeMap<String, String>, b: &BTreeMap<String, String>) -> Vec<String> {
    let mut keys: Vec<&String> = a.keys().chain(b.keys()).collect();
    keys.sort();
    keys.dedup();
    keys.into_iter().filter(|k| a.get(*k) != b.get(*k)).take(4).map(|k| format!("{k}: {:?} vs {:?}", a.get(k), b.get(k))).collect()
}

pub fn machine() -> String {
    let cpu = fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|c| c.lines().find(|l| l.starts_with("model name")).map(|l| l.split(':').nth(1).unwrap_or("").trim().to_string()))
        .unwrap_or_else(|| "unknown CPU".into());
    let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0);
    let kernel = fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    let s6 = Command::new("dpkg-query")
        .args(["-W", "-f", "${Version}", "s6"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| format!(", s6 {}", String::from_utf8_lossy(&o.stdout)))
        .unwrap_or_default();
    format!("{cores} cores, {cpu}, Linux {}{s6}", kernel.trim())
}

/// The load average when a benchmark starts: the machine is shared, so the report says it.
pub fn loadavg() -> String {
    fs::read_to_string("/proc/loadavg").map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" ")).unwrap_or_default()
}

/// Raise the open-file limit to its hard maximum (s6-svscan with 2000 services, inherited).
pub fn raise_nofile() {
    let mut r: nix::libc::rlimit = unsafe { std::mem::zeroed() };
    unsafe {
        if nix::libc::getrlimit(nix::libc::RLIMIT_NOFILE, &mut r) == 0 && r.rlim_cur < r.rlim_max {
            r.rlim_cur = r.rlim_max;
            nix::libc::setrlimit(nix::libc::RLIMIT_NOFILE, &r);
        }
    }
}

/// Run `f` with this thread's file-system identity set to `ids` (so what it creates is the
/// user's, as when the user creates a profile).
pub fn as_user<T>(ids: (u32, u32), f: impl FnOnce() -> T) -> T {
    // SAFETY: plain system calls on this thread's own credentials.
    unsafe {
        nix::libc::syscall(nix::libc::SYS_setfsgid, ids.1 as nix::libc::c_long);
        nix::libc::syscall(nix::libc::SYS_setfsuid, ids.0 as nix::libc::c_long);
    }
    let out = f();
    unsafe {
        nix::libc::syscall(nix::libc::SYS_setfsuid, 0 as nix::libc::c_long);
        nix::libc::syscall(nix::libc::SYS_setfsgid, 0 as nix::libc::c_long);
    }
    out
}

/// CPU time a process has used, in nanoseconds, from the scheduler (`/proc/<pid>/task/*/schedstat`,
/// first field), and in clock ticks (`utime + stime` of `/proc/<pid>/stat`).
pub fn cpu_of(pid: u32) -> Option<(u64, u64)> {
    let mut ns = 0;
    for t in fs::read_dir(format!("/proc/{pid}/task")).ok()? {
        let s = fs::read_to_string(t.ok()?.path().join("schedstat")).ok()?;
        ns += s.split_whitespace().next()?.parse::<u64>().ok()?;
    }
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command (which may hold spaces) close with ')'.
    let rest = &stat[stat.rfind(')')? + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks = f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?;
    Some((ns, ticks))
}

/// Clock ticks per second (for `utime`/`stime`).
pub fn ticks_per_sec() -> u64 {
    let t = unsafe { nix::libc::sysconf(nix::libc::_SC_CLK_TCK) };
    if t > 0 {
        t as u64
    } else {
        100
    }
}

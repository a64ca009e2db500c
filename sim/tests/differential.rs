//! The differential suite: each scenario of s6-semantics §8 that applies to Debian's s6
//! 2.11.3.2 runs twice, once under the real `s6-svscan` and once under the simulator's
//! drop-in `hermes-svscan`, is observed only through the real s6 client tools (s6-svstat,
//! s6-svc, s6-svok, s6-svwait, s6-svscanctl) and the file system, and the two observation
//! logs must be equal. Pids, seconds and TAI stamps are normalised; timing-dependent counts
//! are recorded as ranges.

use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

#[derive(Clone, Copy, Debug, PartialEq)]
enum Backend {
    Real,
    Sim,
}

struct W {
    _tmp: tempfile::TempDir,
    scan: PathBuf,
    out: PathBuf,
    backend: Backend,
    child: Option<Child>,
    obs: Vec<String>,
    max: Option<usize>,
}

fn ms(n: u64) {
    std::thread::sleep(Duration::from_millis(n));
}

fn norm(s: &str, scan: &Path, out: &Path) -> String {
    let s = s.replace(&scan.display().to_string(), "$S").replace(&out.display().to_string(), "$O");
    let mut r = String::new();
    let words: Vec<&str> = s.split(' ').collect();
    for (i, w) in words.iter().enumerate() {
        let prev = if i > 0 { words[i - 1] } else { "" };
        let next = words.get(i + 1).copied().unwrap_or("");
        let tok = if (prev == "(pid" || prev == "pgid") && w.trim_end_matches(')').chars().all(|c| c.is_ascii_digit()) {
            format!("P{}", if w.ends_with(')') { ")" } else { "" })
        } else if (next.starts_with("seconds")) && w.chars().all(|c| c.is_ascii_digit()) {
            "S".to_string()
        } else if w.starts_with('@') && w.len() == 25 {
            "@T".to_string()
        } else {
            w.to_string()
        };
        if i > 0 {
            r.push(' ');
        }
        r.push_str(&tok);
    }
    r
}

impl W {
    fn new(backend: Backend) -> W {
        let tmp = tempfile::tempdir().unwrap();
        fs::set_permissions(tmp.path(), fs::Permissions::from_mode(0o755)).unwrap();
        let scan = tmp.path().join("scan");
        let out = tmp.path().join("out");
        fs::create_dir(&scan).unwrap();
        fs::create_dir(&out).unwrap();
        W { _tmp: tmp, scan, out, backend, child: None, obs: Vec::new(), max: None }
    }

    fn p(&self, rel: &str) -> PathBuf {
        self.scan.join(rel)
    }

    /// A service directory with a `run` script (sh body) and optional extra files.
    fn svc(&self, name: &str, run: &str, files: &[(&str, &str)]) {
        let d = self.p(name);
        fs::create_dir_all(&d).unwrap();
        self.script(&format!("{name}/run"), run);
        for (f, body) in files {
            if f.ends_with("finish") || f.ends_with("/run") {
                self.script(&format!("{name}/{f}"), body);
            } else {
                fs::write(d.join(f), body).unwrap();
            }
        }
    }

    fn script(&self, rel: &str, body: &str) {
        let p = self.p(rel);
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        let body = body.replace("$O", &self.out.display().to_string());
        fs::write(&p, format!("#!/bin/sh\n{body}\n")).unwrap();
        fs::set_permissions(&p, fs::Permissions::from_mode(0o755)).unwrap();
    }

    fn program(&self) -> String {
        match self.backend {
            Backend::Real => "s6-svscan".into(),
            Backend::Sim => env!("CARGO_BIN_EXE_hermes-svscan").into(),
        }
    }

    fn start(&mut self) {
        let mut c = Command::new(self.program());
        if let Some(m) = self.max {
            c.arg("-c").arg(m.to_string());
        }
        c.arg(&self.scan).stdin(Stdio::null()).stdout(Stdio::null()).stderr(fs::File::create(self.out.join("svscan.err")).unwrap());
        use std::os::unix::process::CommandExt;
        c.process_group(0);
        self.child = Some(c.spawn().unwrap());
        let ok = wait(2000, || Command::new("s6-svscanctl").arg("-z").arg(&self.scan).stderr(Stdio::null()).status().is_ok_and(|s| s.success()));
        assert!(ok, "{:?}: scanner did not start", self.backend);
        ms(300);
    }

    fn o(&mut self, what: &str, v: impl std::fmt::Display) {
        let v = norm(&v.to_string(), &self.scan, &self.out);
        self.obs.push(format!("{what}: {v}"));
    }

    fn tool(&self, prog: &str, args: &[&str]) -> (i32, String) {
        let o = Command::new(prog).args(args).output().unwrap();
        let text = format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr));
        (o.status.code().unwrap_or(-1), text.trim_end().to_string())
    }

    fn svstat(&mut self, rel: &str) {
        let p = self.p(rel).display().to_string();
        let (c, t) = self.tool("s6-svstat", &[&p]);
        self.o(&format!("svstat {rel}"), format!("[{c}] {t}"));
    }

    fn svstat_o(&mut self, rel: &str, fields: &str) {
        let p = self.p(rel).display().to_string();
        let (c, t) = self.tool("s6-svstat", &["-o", fields, &p]);
        self.o(&format!("svstat -o {fields} {rel}"), format!("[{c}] {t}"));
    }

    fn svc_(&mut self, args: &[&str], rel: &str) {
        let p = self.p(rel).display().to_string();
        let mut a: Vec<&str> = args.to_vec();
        a.push(&p);
        let (c, t) = self.tool("s6-svc", &a);
        self.o(&format!("s6-svc {} {rel}", args.join(" ")), format!("[{c}] {t}"));
    }

    fn svok(&mut self, rel: &str) {
        let p = self.p(rel).display().to_string();
        let (c, _) = self.tool("s6-svok", &[&p]);
        self.o(&format!("svok {rel}"), c);
    }

    fn ctl(&mut self, flags: &str) {
        let s = self.scan.display().to_string();
        let (c, t) = self.tool("s6-svscanctl", &[flags, &s]);
        self.o(&format!("s6-svscanctl {flags}"), format!("[{c}] {t}"));
    }

    fn pid(&self, rel: &str) -> i32 {
        let p = self.p(rel).display().to_string();
        self.tool("s6-svstat", &["-o", "pid", &p]).1.parse().unwrap_or(-1)
    }

    fn mode(&mut self, rel: &str) {
        let m = fs::symlink_metadata(self.p(rel)).map(|m| {
            let kind = if m.is_dir() { "d" } else if m.file_type().is_symlink() { "l" } else if std::os::unix::fs::FileTypeExt::is_fifo(&m.file_type()) { "p" } else { "f" };
            format!("{kind} {:o} uid={} size={}", m.mode() & 0o7777, m.uid(), if m.is_file() { m.size() } else { 0 })
        });
        self.o(&format!("mode {rel}"), m.map_err(|e| e.kind()).unwrap_or_else(|e| format!("{e:?}")));
    }

    fn lines(&self, f: &str) -> usize {
        fs::read_to_string(self.out.join(f)).map(|s| s.lines().count()).unwrap_or(0)
    }

    fn text(&self, f: &str) -> String {
        fs::read_to_string(self.out.join(f)).unwrap_or_default().trim_end().to_string()
    }

    fn range(&mut self, what: &str, n: usize, lo: usize, hi: usize) {
        self.o(what, if n >= lo && n <= hi { format!("in {lo}..={hi}") } else { format!("{n} (outside {lo}..={hi})") });
    }

    fn alive(pid: i32) -> bool {
        pid > 0 && Path::new(&format!("/proc/{pid}")).exists() && !fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default().contains(") Z")
    }

    fn stop(&mut self) {
        let Some(mut c) = self.child.take() else { return };
        let _ = Command::new("s6-svscanctl").arg("-t").arg(&self.scan).stderr(Stdio::null()).status();
        let t = Instant::now();
        while t.elapsed() < Duration::from_secs(5) {
            if let Ok(Some(_)) = c.try_wait() {
                return;
            }
            ms(20);
        }
        let _ = nix::sys::signal::killpg(nix::unistd::Pid::from_raw(c.id() as i32), nix::sys::signal::Signal::SIGKILL);
        let _ = c.wait();
    }
}

impl Drop for W {
    fn drop(&mut self) {
        self.stop();
        // Services are session leaders: anything still running from this world goes too.
        let me = self.out.display().to_string();
        let _ = Command::new("pkill").args(["-9", "-f", &me]).status();
    }
}

fn wait(limit_ms: u64, mut f: impl FnMut() -> bool) -> bool {
    let t = Instant::now();
    while t.elapsed() < Duration::from_millis(limit_ms) {
        if f() {
            return true;
        }
        ms(20);
    }
    false
}

fn prerequisites() -> bool {
    let have = Command::new("s6-svscan").arg("-h").stderr(Stdio::null()).stdout(Stdio::null()).status().is_ok();
    let root = nix::unistd::geteuid().is_root();
    if have && root {
        return true;
    }
    let why = if !have { "s6 is not installed (apt-get install s6 execline)" } else { "the differential suite runs as root (ownership scenarios)" };
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("CI=true but {why}");
    }
    eprintln!("\n*** SKIPPED: {why} ***\n");
    false
}

/// At most this many scenarios at once: each starts a scanner per backend and dozens of
/// processes, and the timing windows of the scenarios assume a machine that is not starved.
const PARALLEL_SCENARIOS: usize = 4;

struct Slot;
static RUNNING: std::sync::Mutex<usize> = std::sync::Mutex::new(0);
static FREED: std::sync::Condvar = std::sync::Condvar::new();

impl Slot {
    fn take() -> Slot {
        let mut n = RUNNING.lock().unwrap_or_else(|e| e.into_inner());
        while *n >= PARALLEL_SCENARIOS {
            n = FREED.wait(n).unwrap_or_else(|e| e.into_inner());
        }
        *n += 1;
        Slot
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        *RUNNING.lock().unwrap_or_else(|e| e.into_inner()) -= 1;
        FREED.notify_one();
    }
}

/// Run `scenario` against both backends (in parallel) and require equal observations.
fn diff(scenario: fn(&mut W)) {
    if !prerequisites() {
        return;
    }
    let _slot = Slot::take();
    let run = move |b| {
        std::thread::spawn(move || {
            let mut w = W::new(b);
            scenario(&mut w);
            w.stop();
            std::mem::take(&mut w.obs)
        })
    };
    let real = run(Backend::Real);
    let sim = run(Backend::Sim);
    let (real, sim) = (real.join().expect("real s6 run panicked"), sim.join().expect("simulator run panicked"));
    assert!(!real.is_empty(), "the scenario observed nothing");
    if real != sim {
        let mut report = String::new();
        for i in 0..real.len().max(sim.len()) {
            let a = real.get(i).map(String::as_str).unwrap_or("<none>");
            let b = sim.get(i).map(String::as_str).unwrap_or("<none>");
            report.push_str(&format!("{} real: {a}\n  sim:  {b}\n", if a == b { " " } else { "!" }));
        }
        panic!("simulator and real s6 differ:\n{report}");
    }
}

const SLEEP: &str = "exec sleep 100";

#[test]
fn d01_fresh_slot_files_modes_and_up() {
    diff(|w| {
        w.svc("a", SLEEP, &[]);
        w.start();
        for p in ["a/supervise", "a/supervise/control", "a/supervise/lock", "a/supervise/status", "a/supervise/death_tally", "a/event"] {
            w.mode(p);
        }
        w.svstat("a");
        w.svstat_o("a", "up,wantedup,normallyup,ready,paused,exitcode,signal");
        w.svok("a");
    });
}

#[test]
fn d02_down_file_keeps_a_fresh_slot_down() {
    diff(|w| {
        w.svc("a", "echo run >> $O/runs; exec sleep 100", &[("down", "")]);
        w.start();
        ms(700);
        let n = w.lines("runs");
        w.o("runs", n);
        w.svstat("a");
        w.svstat_o("a", "up,wantedup,normallyup,ready,pid,exitcode");
        w.svok("a");
    });
}

#[test]
fn d03_svc_u_starts_at_once_and_keeps_down_file() {
    diff(|w| {
        w.svc("a", SLEEP, &[("down", "")]);
        w.start();
        w.svc_(&["-u"], "a");
        ms(150);
        w.svstat("a");
        w.mode("a/down");
    });
}

#[test]
fn d04_precreated_skeleton_owned_by_another_uid_is_reused() {
    diff(|w| {
        w.svc("a", SLEEP, &[]);
        let d = w.p("a");
        fs::create_dir(d.join("supervise")).unwrap();
        fs::create_dir(d.join("event")).unwrap();
        nix::unistd::mkfifo(&d.join("supervise/control"), nix::sys::stat::Mode::from_bits_truncate(0o620)).unwrap();
        fs::write(d.join("supervise/lock"), "").unwrap();
        fs::write(d.join("supervise/death_tally"), [0u8; 14]).unwrap();
        for (p, m) in [("supervise", 0o755), ("event", 0o750), ("supervise/control", 0o620), ("supervise/lock", 0o664), ("supervise/death_tally", 0o640)] {
            nix::unistd::chown(&d.join(p), Some(nix::unistd::Uid::from_raw(65534)), Some(nix::unistd::Gid::from_raw(65534))).unwrap();
            fs::set_permissions(d.join(p), fs::Permissions::from_mode(m)).unwrap();
        }
        w.start();
        for p in ["a/supervise", "a/event", "a/supervise/control", "a/supervise/lock", "a/supervise/death_tally", "a/supervise/status"] {
            w.mode(p);
        }
        w.svstat("a");
        w.svc_(&["-d"], "a");
        ms(150);
        w.svstat_o("a", "up,wantedup");
    });
}

#[test]
fn d05_bad_skeleton_entries_stop_the_supervisor() {
    diff(|w| {
        w.svc("f", SLEEP, &[]);
        fs::write(w.p("f/supervise"), "not a dir").unwrap();
        w.svc("c", SLEEP, &[]);
        fs::create_dir(w.p("c/supervise")).unwrap();
        fs::write(w.p("c/supervise/control"), "not a fifo").unwrap();
        w.svc("e", SLEEP, &[]);
        fs::write(w.p("e/event"), "not a dir").unwrap();
        w.start();
        for s in ["f", "c", "e"] {
            w.svok(s);
        }
        w.mode("f/event");
    });
}

#[test]
fn d06_crash_loop_is_throttled_to_one_per_second() {
    diff(|w| {
        w.svc("a", "echo run >> $O/runs; exit 3", &[]);
        w.start();
        ms(2300);
        let n = w.lines("runs");
        w.range("runs in 2.6 s", n, 2, 4);
        let dt = fs::read(w.p("a/supervise/death_tally")).unwrap_or_default();
        w.o("death_tally records well-formed", dt.len() % 14 == 0 && !dt.is_empty());
        w.o("last death exit/signal bytes", format!("{:?}", &dt[dt.len().saturating_sub(2)..]));
        w.svstat_o("a", "wantedup,normallyup");
    });
}

#[test]
fn d07_finish_arguments() {
    diff(|w| {
        w.svc("a", "exit 3", &[("finish", "echo \"$0 $*\" >> $O/fin; exec sleep 100")]);
        w.svc("b", SLEEP, &[("finish", "echo \"$0 $*\" >> $O/finb; exit 0"), ("down", "")]);
        w.start();
        ms(200);
        w.svc_(&["-u"], "b");
        ms(200);
        w.svc_(&["-d"], "b");
        ms(300);
        let fa = w.text("fin");
        w.o("finish args after exit 3", fa.lines().next().unwrap_or(""));
        let fb = w.text("finb");
        w.o("finish args after SIGTERM", fb);
        w.svstat("a");
    });
}

#[test]
fn d08_finish_125_parks_and_svc_u_revives_once() {
    diff(|w| {
        w.svc("a", "echo run >> $O/runs; exit 7", &[("finish", "exit 125")]);
        w.start();
        ms(1500);
        let n = w.lines("runs");
        w.o("runs", n);
        w.svstat("a");
        w.svstat_o("a", "wantedup,up,exitcode");
        w.svc_(&["-u"], "a");
        ms(1500);
        let n = w.lines("runs");
        w.o("runs after -u", n);
        w.svstat_o("a", "wantedup,up");
    });
}

#[test]
fn d09_status_while_finishing_and_finish_timeout() {
    diff(|w| {
        w.svc("a", "echo run >> $O/runs; exit 2", &[("finish", "exec sleep 10"), ("timeout-finish", "700\n")]);
        w.start();
        ms(250);
        w.svstat("a");
        w.svstat_o("a", "pid,up,ready");
        ms(1700);
        let n = w.lines("runs");
        w.range("runs after the finish was killed", n, 2, 2);
    });
}

#[test]
fn d10_readiness_notification() {
    diff(|w| {
        w.svc("a", "echo >&3; exec sleep 100", &[("notification-fd", "3\n")]);
        w.start();
        ms(200);
        w.svstat("a");
        w.svstat_o("a", "up,ready");
        let t = Instant::now();
        let p = w.p("a").display().to_string();
        let (c, _) = w.tool("s6-svwait", &["-U", "-t", "2000", &p]);
        w.o("svwait -U", format!("{c} fast={}", t.elapsed() < Duration::from_millis(500)));
    });
}

#[test]
fn d11_svc_d_stops_and_stays_down() {
    diff(|w| {
        w.svc("a", SLEEP, &[]);
        w.start();
        let pid = w.pid("a");
        w.svc_(&["-d"], "a");
        ms(200);
        w.o("service alive", W::alive(pid));
        w.svstat("a");
        w.svstat_o("a", "wantedup,up,signal");
        ms(1300);
        w.svstat_o("a", "up");
    });
}

#[test]
fn d12_down_signal_file_is_used() {
    diff(|w| {
        w.svc("a", "trap 'echo hup >> $O/sig; kill $!; exit 0' HUP; sleep 100 & wait", &[("down-signal", "HUP\n")]);
        w.start();
        w.svc_(&["-d"], "a");
        ms(300);
        let s = w.text("sig");
        w.o("signal seen", s);
        w.svstat_o("a", "up,exitcode");
    });
}

#[test]
fn d13_timeout_kill_escalates() {
    diff(|w| {
        w.svc("a", "trap '' TERM; exec sleep 100", &[("timeout-kill", "800\n")]);
        w.start();
        w.svc_(&["-d"], "a");
        ms(250);
        w.svstat("a");
        ms(1000);
        w.svstat("a");
    });
}

#[test]
fn d14_svc_r_restarts_with_a_new_pid() {
    diff(|w| {
        w.svc("a", SLEEP, &[]);
        w.start();
        let p1 = w.pid("a");
        w.svc_(&["-r"], "a");
        ms(1500);
        let p2 = w.pid("a");
        w.o("new pid", p2 > 0 && p2 != p1);
        w.svstat_o("a", "up,wantedup");
    });
}

#[test]
fn d15_once_and_once_at_most() {
    diff(|w| {
        w.svc("o", "echo run >> $O/o; exit 0", &[("down", "")]);
        w.svc("m", "echo run >> $O/m; exec sleep 100", &[]);
        w.start();
        w.svc_(&["-o"], "o");
        ms(1500);
        let n = w.lines("o");
        w.o("runs after -o", n);
        w.svc_(&["-O"], "m");
        ms(100);
        w.svstat("m");
        let pid = w.pid("m");
        let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), nix::sys::signal::Signal::SIGKILL);
        ms(1500);
        let n = w.lines("m");
        w.o("runs of m", n);
        w.svstat_o("m", "up,wantedup");
    });
}

#[test]
fn d16_capital_d_and_u_manage_the_down_file() {
    diff(|w| {
        w.svc("a", SLEEP, &[]);
        w.start();
        w.svc_(&["-D"], "a");
        ms(200);
        w.mode("a/down");
        w.svstat("a");
        w.svc_(&["-U"], "a");
        ms(200);
        w.mode("a/down");
        w.svstat("a");
    });
}

#[test]
fn d17_pause_and_continue() {
    diff(|w| {
        w.svc("a", SLEEP, &[]);
        w.start();
        w.svc_(&["-p"], "a");
        ms(100);
        w.svstat("a");
        w.svstat_o("a", "paused");
        w.svc_(&["-c"], "a");
        ms(100);
        w.svstat("a");
    });
}

#[test]
fn d18_x_then_death_supervisor_exits_and_is_respawned() {
    diff(|w| {
        w.svc("a", SLEEP, &[("down", "")]);
        w.svc("b", "echo run >> $O/b; exec sleep 100", &[]);
        w.start();
        w.svc_(&["-x"], "a");
        ms(300);
        w.svok("a");
        w.svc_(&["-x"], "b");
        ms(100);
        w.svok("b");
        let pid = w.pid("b");
        let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), nix::sys::signal::Signal::SIGTERM);
        ms(1800);
        w.svok("b");
        let n = w.lines("b");
        w.o("runs of b", n);
        w.svstat_o("b", "up");
    });
}

#[test]
fn d19_missing_run_waits_until_told() {
    diff(|w| {
        fs::create_dir(w.p("eps")).unwrap();
        w.start();
        w.svok("eps");
        w.svstat("eps");
        w.script("eps/run", SLEEP);
        ms(700);
        w.svstat_o("eps", "up");
        w.svc_(&["-u"], "eps");
        ms(200);
        w.svstat_o("eps", "up");
    });
}

#[test]
fn d20_scan_filtering_and_initial_cleanup() {
    diff(|w| {
        w.svc(".hidden", SLEEP, &[]);
        w.svc("alpha", SLEEP, &[]);
        fs::write(w.p("plainfile"), "x").unwrap();
        fs::write(w.out.join("afile"), "x").unwrap();
        std::os::unix::fs::symlink(w.out.join("afile"), w.p("tofile")).unwrap();
        let beta = w.out.join("beta");
        fs::create_dir(&beta).unwrap();
        w.script("../out/beta/run", SLEEP);
        std::os::unix::fs::symlink(&beta, w.p("beta")).unwrap();
        std::os::unix::fs::symlink(w.out.join("nowhere"), w.p("dangling")).unwrap();
        w.start();
        for s in [".hidden", "alpha", "beta", "plainfile", "tofile"] {
            w.svok(s);
        }
        w.mode("dangling");
        w.mode(".s6-svscan");
        w.mode(".s6-svscan/control");
        w.mode(".s6-svscan/lock");
    });
}

#[test]
fn d21_a_new_directory_needs_a_rescan() {
    diff(|w| {
        w.start();
        w.svc("gamma", SLEEP, &[]);
        ms(700);
        w.svok("gamma");
        w.ctl("-a");
        ms(300);
        w.svok("gamma");
        w.svstat_o("gamma", "up");
    });
}

#[test]
fn d22_dangling_link_is_skipped_by_2_11_not_fatal_to_the_scan() {
    diff(|w| {
        w.start();
        std::os::unix::fs::symlink(w.out.join("nowhere"), w.p("dangling")).unwrap();
        w.svc("delta", SLEEP, &[]);
        w.ctl("-a");
        ms(500);
        w.svok("delta");
        fs::remove_file(w.p("dangling")).unwrap();
        ms(4500);
        w.svok("delta");
    });
}

#[test]
fn d23_rescan_after_removal_keeps_and_prune_stops() {
    diff(|w| {
        w.svc("gamma", SLEEP, &[]);
        w.svc("kappa", SLEEP, &[]);
        w.start();
        let g = w.pid("gamma");
        let k = w.pid("kappa");
        fs::remove_dir_all(w.p("gamma")).unwrap();
        w.ctl("-a");
        ms(500);
        w.o("gamma alive after -a", W::alive(g));
        fs::remove_dir_all(w.p("kappa")).unwrap();
        w.ctl("-an");
        ms(1000);
        w.o("kappa alive after -an", W::alive(k));
        w.ctl("-n");
        ms(1000);
        w.o("gamma alive after -n", W::alive(g));
    });
}

#[test]
fn d24_half_populated_directory_is_supervised_as_seen() {
    diff(|w| {
        w.start();
        fs::create_dir(w.p("eps")).unwrap();
        w.ctl("-a");
        ms(300);
        w.svstat_o("eps", "up,wantedup");
        w.script("eps/run", SLEEP);
        fs::write(w.p("eps/down"), "").unwrap();
        ms(500);
        w.svstat_o("eps", "up");
        w.svc_(&["-u"], "eps");
        ms(200);
        w.svstat_o("eps", "up,normallyup");
    });
}

#[test]
fn d25_logged_service_pipe_survives_a_producer_restart() {
    diff(|w| {
        w.svc("foo", "echo line-$$; exec sleep 100", &[("log/run", "exec cat >> $O/log")]);
        w.start();
        ms(300);
        let lp = w.pid("foo/log");
        w.o("log lines", w.lines("log"));
        w.svc_(&["-k"], "foo");
        ms(1500);
        w.o("log lines after restart", w.lines("log"));
        w.o("same logger", w.pid("foo/log") == lp);
    });
}

#[test]
fn d26_same_directory_twice_is_one_service() {
    diff(|w| {
        let d = w.out.join("shared");
        fs::create_dir(&d).unwrap();
        w.script("../out/shared/run", "echo run >> $O/runs; exec sleep 100");
        std::os::unix::fs::symlink(&d, w.p("aaa")).unwrap();
        std::os::unix::fs::symlink(&d, w.p("bbb")).unwrap();
        w.start();
        ms(300);
        let n = w.lines("runs");
        w.o("runs", n);
        w.svok("aaa");
        w.svok("bbb");
    });
}

#[test]
fn d27_sigterm_script_replaces_the_builtin() {
    diff(|w| {
        w.svc("a", SLEEP, &[]);
        w.script(".s6-svscan/SIGTERM", "echo term >> $O/term");
        w.start();
        let pid = w.child.as_ref().unwrap().id() as i32;
        let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), nix::sys::signal::Signal::SIGTERM);
        ms(400);
        let t = w.text("term");
        w.o("script ran", t);
        w.svok("a");
        let alive = w.child.as_mut().unwrap().try_wait().unwrap().is_none();
        w.o("scanner alive", alive);
    });
}

#[test]
fn d28_terminate_stops_everything_then_runs_finish() {
    diff(|w| {
        w.svc("a", SLEEP, &[("finish", "echo fin >> $O/fa")]);
        w.svc("b", "echo hi; exec sleep 100", &[("log/run", "exec cat >> $O/blog")]);
        w.script(".s6-svscan/finish", "echo done >> $O/finish; exit 3");
        w.start();
        let (a, b, l) = (w.pid("a"), w.pid("b"), w.pid("b/log"));
        w.ctl("-t");
        let mut child = w.child.take().unwrap();
        let exited = wait(4000, || child.try_wait().ok().flatten().is_some());
        w.o("scanner exited", exited);
        w.o("exit code", child.wait().unwrap().code().unwrap_or(-1));
        w.o("services gone", !W::alive(a) && !W::alive(b) && !W::alive(l));
        w.o("service finish ran", w.text("fa"));
        w.o("scanner finish ran", w.text("finish"));
    });
}

#[test]
fn d29_second_scanner_on_the_same_directory_is_refused() {
    diff(|w| {
        w.start();
        let o = Command::new(w.program()).arg(&w.scan).output().unwrap();
        w.o("second scanner exit", o.status.code().unwrap_or(-1));
    });
}

#[test]
fn d30_wait_tools_timeouts_and_readiness_downgrade() {
    diff(|w| {
        w.svc("a", SLEEP, &[("down", "")]);
        w.start();
        w.svc_(&["-wu", "-T", "300"], "a");
        w.svc_(&["-wu", "-T", "1000", "-o"], "a");
        w.svc_(&["-d"], "a");
        ms(200);
        w.svc_(&["-wU", "-T", "1000", "-u"], "a");
        let p = w.p("a").display().to_string();
        let (c, _) = w.tool("s6-svwait", &["-u", "-t", "1000", &p]);
        w.o("svwait -u", c);
    });
}

#[test]
fn d31_wait_down_waits_for_finish() {
    diff(|w| {
        w.svc("a", SLEEP, &[("finish", "sleep 1")]);
        w.start();
        let t = Instant::now();
        w.svc_(&["-wD", "-T", "5000", "-d"], "a");
        w.o("waited for finish", t.elapsed() >= Duration::from_millis(800));
        w.svstat_o("a", "up,ready");
    });
}

#[test]
fn d32_wait_down_on_a_fresh_down_slot_returns_at_once() {
    diff(|w| {
        w.svc("a", SLEEP, &[("down", "")]);
        w.start();
        let p = w.p("a").display().to_string();
        let t = Instant::now();
        let (c, _) = w.tool("s6-svwait", &["-D", "-t", "3000", &p]);
        w.o("svwait -D", format!("{c} fast={}", t.elapsed() < Duration::from_millis(500)));
    });
}

#[test]
fn d33_service_limit() {
    diff(|w| {
        w.max = Some(4);
        for s in ["a", "b", "c", "d", "e"] {
            w.svc(s, SLEEP, &[]);
        }
        w.start();
        let ok: usize = ["a", "b", "c", "d", "e"]
            .iter()
            .filter(|s| Command::new("s6-svok").arg(w.p(s)).status().unwrap().success())
            .count();
        w.o("supervised of 5 with -c 4", ok);
    });
}

#[test]
fn d34_hermes_user_controls_a_seeded_slot() {
    diff(|w| {
        w.svc("g", SLEEP, &[("down", "")]);
        let d = w.p("g");
        for (p, m) in [("event", 0o3730), ("supervise", 0o755)] {
            fs::create_dir(d.join(p)).unwrap();
            nix::unistd::chown(&d.join(p), Some(nix::unistd::Uid::from_raw(10000)), Some(nix::unistd::Gid::from_raw(10000))).unwrap();
            fs::set_permissions(d.join(p), fs::Permissions::from_mode(m)).unwrap();
        }
        nix::unistd::mkfifo(&d.join("supervise/control"), nix::sys::stat::Mode::from_bits_truncate(0o660)).unwrap();
        nix::unistd::chown(&d.join("supervise/control"), Some(nix::unistd::Uid::from_raw(10000)), Some(nix::unistd::Gid::from_raw(10000))).unwrap();
        fs::set_permissions(d.join("supervise/control"), fs::Permissions::from_mode(0o660)).unwrap();
        w.start();
        let p = d.display().to_string();
        for args in [vec!["s6-svc", "-u", &p], vec!["s6-svwait", "-u", "-t", "2000", &p], vec!["s6-svc", "-d", &p], vec!["s6-svwait", "-D", "-t", "2000", &p]] {
            let o = Command::new("s6-setuidgid").arg("10000").args(&args).output();
            let code = o.map(|o| o.status.code().unwrap_or(-1)).unwrap_or(-2);
            w.o(&format!("as uid 10000: {}", args[0]), code);
        }
        w.svstat_o("g", "up,wantedup");
    });
}

//! A real s6-svscan for the benchmarks: started on a fresh scandir, asked what it supervises
//! through its on-disk files (no s6-svstat per poll), and stopped with nothing of it left.

use crate::util::{self, Env};
use hermes_core::s6::svstat::Status;
use std::fs;
use std::os::fd::AsRawFd;
use std::os::unix::fs::OpenOptionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The service limit the benchmarks give s6-svscan (Debian's 2.11 defaults to 500).
pub const MAX_SERVICES: usize = 12000;

pub fn installed() -> bool {
    util::have("s6-svscan") && util::have("s6-svscanctl") && util::have("s6-svstat")
}

/// Whether an s6-supervise holds `<svc>/supervise/lock`: the fcntl F_GETLK probe s6-svok makes.
pub fn supervised(svc: &Path) -> bool {
    let Ok(f) = fs::OpenOptions::new().read(true).custom_flags(nix::libc::O_NONBLOCK).open(svc.join("supervise/lock")) else {
        return false;
    };
    let mut fl: nix::libc::flock = unsafe { std::mem::zeroed() };
    fl.l_type = nix::libc::F_WRLCK as _;
    fl.l_whence = nix::libc::SEEK_SET as _;
    // SAFETY: F_GETLK fills the flock we own.
    let r = unsafe { nix::libc::fcntl(f.as_raw_fd(), nix::libc::F_GETLK, &mut fl) };
    r == 0 && i32::from(fl.l_type) != nix::libc::F_UNLCK
}

/// Whether s6 says `<svc>` is up: its 35-byte `supervise/status` names a live pid.
pub fn up(svc: &Path) -> bool {
    fs::read(svc.join("supervise/status")).ok().and_then(|b| Status::parse(&b)).is_some_and(|s| s.is_up())
}

/// Wait until every service of `svcs` satisfies `check`, re-checking only the ones that did not
/// yet, every `every`. The time it took, or `None` after `limit` (with how many were left).
pub fn wait_all(svcs: &[PathBuf], check: fn(&Path) -> bool, every: Duration, limit: Duration) -> Result<Duration, usize> {
    let t = Instant::now();
    let mut left: Vec<&PathBuf> = svcs.iter().collect();
    loop {
        left.retain(|s| !check(s));
        if left.is_empty() {
            return Ok(t.elapsed());
        }
        if t.elapsed() > limit {
            return Err(left.len());
        }
        std::thread::sleep(every);
    }
}

/// An s6-svscan on a scandir, in its own process group, owning everything under `root` (the
/// run's directory: its scandir, home and logs).
pub struct Scanner {
    pub scandir: PathBuf,
    pub root: PathBuf,
    child: Option<Child>,
}

impl Scanner {
    /// Start `s6-svscan -c MAX_SERVICES scandir` (not waiting for it).
    pub fn spawn(scandir: &Path, root: &Path, env: &[(&str, String)]) -> Scanner {
        Scanner::spawn_under(&[], scandir, root, env)
    }

    /// The same, run under `wrapper` (e.g. `strace -f -c -o FILE`).
    pub fn spawn_under(wrapper: &[&str], scandir: &Path, root: &Path, env: &[(&str, String)]) -> Scanner {
        let mut c = match wrapper.split_first() {
            Some((w, rest)) => {
                let mut c = Command::new(w);
                c.args(rest).arg("s6-svscan");
                c
            }
            None => Command::new("s6-svscan"),
        };
        c.arg("-c")
            .arg(MAX_SERVICES.to_string())
            .arg(scandir)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0);
        for (k, v) in env {
            c.env(k, v);
        }
        let child = c.spawn().expect("spawn s6-svscan");
        Scanner { scandir: scandir.to_path_buf(), root: root.to_path_buf(), child: Some(child) }
    }

    /// Whether the scanner reads its control FIFO (s6-svscanctl would get through).
    pub fn listening(&self) -> bool {
        fs::OpenOptions::new().write(true).custom_flags(nix::libc::O_NONBLOCK).open(self.scandir.join(".s6-svscan/control")).is_ok()
    }

    /// Start one and wait until it listens.
    pub fn start(scandir: &Path, root: &Path, env: &[(&str, String)]) -> Scanner {
        let s = Scanner::spawn(scandir, root, env);
        if util::wait_for(Duration::from_secs(10), Duration::from_micros(200), || s.listening()).is_none() {
            panic!("s6-svscan on {} did not start listening", scandir.display());
        }
        s
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().map_or(0, |c| c.id())
    }

    /// Stop the wrapper the scanner was started under (strace: it detaches and writes its
    /// output), leaving the scanner running; waits for the wrapper to exit.
    pub fn end_wrapper(&mut self) {
        if let Some(c) = self.child.as_mut() {
            let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(c.id() as i32), nix::sys::signal::Signal::SIGTERM);
            let _ = c.wait();
        }
    }

    /// `s6-svscanctl -t`, wait for the scanner to exit, then kill whatever of this run is
    /// left (supervisors, loggers, gateways: every process whose working directory is under
    /// `root`). How many stragglers had to be killed.
    pub fn stop(mut self) -> usize {
        self.stop_inner()
    }

    fn stop_inner(&mut self) -> usize {
        let Some(mut child) = self.child.take() else { return 0 };
        let _ = util::quiet(Command::new("s6-svscanctl").arg("-t").arg(&self.scandir));
        let t = Instant::now();
        while t.elapsed() < Duration::from_secs(10) {
            if let Ok(Some(_)) = child.try_wait() {
                break;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        if child.try_wait().ok().flatten().is_none() {
            let _ = child.kill();
            let _ = child.wait();
        }
        // Supervisors exit on their own once the scanner told them to; give them a moment.
        let _ = util::wait_for(Duration::from_secs(5), Duration::from_millis(20), || processes_under(&self.root).is_empty());
        kill_under(&self.root)
    }
}

impl Drop for Scanner {
    fn drop(&mut self) {
        self.stop_inner();
    }
}

/// Live processes whose working directory is under `root`.
pub fn processes_under(root: &Path) -> Vec<i32> {
    let mut out = Vec::new();
    let Ok(rd) = fs::read_dir("/proc") else { return out };
    for e in rd.flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<i32>().ok()) else { continue };
        if let Ok(cwd) = fs::read_link(e.path().join("cwd")) {
            if cwd.starts_with(root) {
                out.push(pid);
            }
        }
    }
    out
}

/// SIGKILL every process under `root` until none is left; how many there were.
pub fn kill_under(root: &Path) -> usize {
    let mut killed = std::collections::BTreeSet::new();
    for _ in 0..50 {
        let left = processes_under(root);
        if left.is_empty() {
            break;
        }
        for pid in left {
            unsafe { nix::libc::kill(pid, nix::libc::SIGKILL) };
            killed.insert(pid);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    killed.len()
}

/// A gateway program that stays up doing nothing: `exec sleep 3600` (what scripts/demo uses).
pub fn sleeper(dir: &Path) -> PathBuf {
    let gw = dir.join("gateway");
    util::script(&gw, "#!/bin/sh\nexec sleep 3600\n");
    gw
}

/// The environment `hermes-reconcile` gets in the benchmarks that run under a real scanner:
/// `/bin/sh` instead of with-contenv, a sleeping gateway, a limit the scanner really has.
pub fn reconcile_env(env: &Env, home: &Path, scandir: &Path, gateway: &Path, fifo: &Path) -> Vec<(&'static str, String)> {
    vec![
        ("HERMES_HOME", home.display().to_string()),
        ("S6_PROFILE_GATEWAY_SCANDIR", scandir.display().to_string()),
        ("HERMES_S6_INTERPRETER", "/bin/sh".into()),
        ("HERMES_S6_GATEWAY_PROGRAM", gateway.display().to_string()),
        ("HERMES_S6_MAX_SERVICES", MAX_SERVICES.to_string()),
        ("HERMES_S6_REGISTRAR", fifo.display().to_string()),
        ("HERMES_UID", env.hermes.0.to_string()),
        ("HERMES_GID", env.hermes.1.to_string()),
    ]
}

/// `n` profiles, every one registered and supervised under a running scanner, every gateway
/// down (wanted stopped): the fixture of the lifecycle and registrar benchmarks.
pub struct Fleet {
    pub root: PathBuf,
    pub home: PathBuf,
    pub scandir: PathBuf,
    pub vars: Vec<(&'static str, String)>,
    pub scanner: Option<Scanner>,
    pub n: usize,
}

impl Fleet {
    pub fn up(env: &Env, name: &str, n: usize) -> Fleet {
        let root = env.fresh_dir(name);
        let (home, scandir) = (root.join("home"), root.join("service"));
        util::make_home(&home, n);
        util::stop_all(&home, n);
        util::give(&home, env.hermes);
        fs::create_dir_all(&scandir).unwrap();
        let gw = sleeper(&root);
        fs::create_dir_all(root.join("run")).unwrap();
        let vars = reconcile_env(env, &home, &scandir, &gw, &root.join("run/hermes-s6/registrar"));
        let scanner = Scanner::start(&scandir, &root, &[("HERMES_HOME", home.display().to_string())]);
        let mut c = Command::new(util::bin("hermes-reconcile"));
        c.envs(vars.iter().map(|(k, v)| (*k, v.as_str())));
        util::measure(&mut c);
        let fleet = Fleet { root, home, scandir, vars, scanner: Some(scanner), n };
        let all: Vec<PathBuf> = fleet.slots().into_iter().flat_map(|s| [s.join("log"), s]).collect();
        if let Err(left) = wait_all(&all, supervised, Duration::from_millis(20), Duration::from_secs(60)) {
            panic!("{left} services of the {name} fleet never got a supervisor");
        }
        fleet
    }

    pub fn slot(&self, profile: &str) -> PathBuf {
        self.scandir.join(format!("gateway-{profile}"))
    }

    pub fn slots(&self) -> Vec<PathBuf> {
        std::iter::once(self.slot("default")).chain((0..self.n).map(|i| self.slot(&util::profile_name(i)))).collect()
    }

    /// `hermes-reconcile <args>` with this fleet's environment.
    pub fn reconcile(&self, args: &[&str]) -> Command {
        let mut c = Command::new(util::bin("hermes-reconcile"));
        c.args(args).envs(self.vars.iter().map(|(k, v)| (*k, v.as_str())));
        c
    }

    /// Stop the scanner and everything of the fleet; remove its files.
    pub fn down(mut self) -> usize {
        let killed = self.scanner.take().map_or(0, |s| s.stop());
        let _ = fs::remove_dir_all(&self.root);
        killed
    }
}

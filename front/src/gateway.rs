//! The reference gateway: what `hermes [-p P] gateway run --replace` runs in the image and in
//! the tests. It keeps upstream's state-file contract (README, "hermes-agent inside"):
//!
//! - `gateway.pid`: created exclusively; `--replace` takes over from a live holder (SIGTERM,
//!   then wait) and clears a stale one;
//! - `gateway_state.json`: `starting`, then `running`, written atomically, read-modify-write so
//!   other keys (`desired_state`…) survive;
//! - on SIGTERM: with a matching planned-stop marker (pid and start time, younger than 60 s)
//!   it persists `stopped` and exits 0 (operator stop: the finish script parks the slot);
//!   without one it persists `running` and exits 1 (container stop or `restart`: revive me);
//! - `state/gateway.lifecycle.json`: `running` while alive, `exited` on an orderly exit, so
//!   the next boot can tell a clean exit from a container that died under it;
//! - it listens on its profile's port and answers `GET /health`;
//! - it proves it is alive as hermes-agent's event loop does (`gateway/shutdown_watchdog.py`,
//!   `gateway/systemd_notify.py`): `state/gateway.heartbeat` (`pid`, `updated_at`,
//!   `monotonic`, `start_time`) rewritten from `running` on, every 30 s; and with
//!   `NOTIFY_SOCKET` and `WATCHDOG_USEC` set, `READY=1` once running, `WATCHDOG=1` every half
//!   interval, `STOPPING=1` when it stops.
//!
//! Knobs, as files in the profile directory (so a test can set them per profile, whatever runs
//! the gateway): `fake-exit-code` (exit at once with that code: 78 is a configuration error),
//! `fake-crash-after-ms` (exit 1 after that long), `fake-start-delay-ms` (slow start: that
//! long from `starting` to `running`), `fake-hang-after-ms` (that long after `running` its
//! "event loop" stalls: no heartbeat, no `WATCHDOG=1`, no reaction to SIGTERM, the pid alive),
//! `fake-heartbeat-ms` (the heartbeat's period), `fake-grow-memory-mb-per-s` (once running, grow
//! its resident memory at that rate, like a leaking gateway). `--ready-after SECS`,
//! `--hang-after SECS` and `--grow-memory MB_PER_S` do the same from the command line.

use hermes_core::agent_files::{
    process_start_time, read_json_object, LIFECYCLE_FILE, MARKER_FILE, MARKER_TTL_SECS, SLOT_LOCK_FILE, STATE_FILE, STATE_SUBDIR,
};
use hermes_core::fs::{write_atomic, FileLock, Fs, RealFs};
use serde_json::{json, Value};
use std::ffi::OsStr;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

pub const PID_FILE: &str = "gateway.pid";
/// In `state/`: the event loop's heartbeat.
pub const HEARTBEAT_FILE: &str = "gateway.heartbeat";
pub const PORT_FILE: &str = "gateway.port";
pub const DEFAULT_PORT: u16 = 8642;
pub const DASHBOARD_PORT: u16 = 9119;

#[derive(Debug, Clone)]
pub struct Options {
    /// The root home (`$HERMES_HOME` of the container).
    pub root: PathBuf,
    pub profile: String,
    pub replace: bool,
    pub port: Option<u16>,
    pub argv: Vec<String>,
    /// Slow start: this long from `starting` to `running` (else `fake-start-delay-ms`).
    pub ready_after: Option<Duration>,
    /// Stall this long after `running` (else `fake-hang-after-ms`).
    pub hang_after: Option<Duration>,
    /// Grow resident memory by this many MB a second once running (a leak, for the memory
    /// limit's tests).
    pub grow_memory_mb_per_s: Option<f64>,
}

/// Resident memory that only grows: pages written so they count in RSS.
#[derive(Default)]
struct Leak {
    held: Vec<Vec<u8>>,
    bytes: f64,
}

impl Leak {
    /// Grow to `target` bytes.
    fn grow_to(&mut self, target: f64) {
        const CHUNK: usize = 1 << 20;
        while self.bytes + CHUNK as f64 <= target {
            // Every page written: an untouched allocation costs no resident memory.
            self.held.push(vec![0x5a; CHUNK]);
            self.bytes += CHUNK as f64;
        }
    }
}

/// Where a running gateway of `profile` listens, for a probe from outside its slot: as
/// [`port_for`], with the port its slot was given (`gateway_ports.json`) in place of the
/// environment's.
pub fn probe_port_for(root: &Path, profile: &str) -> u16 {
    let dir = profile_dir(root, profile);
    let recorded = std::fs::read_to_string(root.join(hermes_core::agent_files::PORTS_RECORD_FILE))
        .ok()
        .and_then(|t| serde_json::from_str::<Value>(&t).ok())
        .and_then(|v| v["ports"][profile]["port"].as_u64())
        .and_then(|p| u16::try_from(p).ok());
    let dotenv = std::fs::read_to_string(dir.join(hermes_core::agent_files::DOTENV_FILE))
        .map(|t| hermes_core::agent_files::parse_dotenv(&t))
        .unwrap_or_default();
    match recorded {
        Some(p) if !dir.join(PORT_FILE).exists() && dotenv.port.is_none() => p,
        _ => port_for(&dir, profile),
    }
}

pub fn profile_dir(root: &Path, profile: &str) -> PathBuf {
    if profile == "default" {
        root.to_path_buf()
    } else {
        root.join("profiles").join(profile)
    }
}

/// The profile's port: `gateway.port` in its directory, else `API_SERVER_PORT` from its `.env`
/// (which hermes-agent loads over the environment), else from the environment (what its slot
/// assigns), else 8642 for the root profile and a stable per-name port in 20000-29999 for the
/// others (so several gateways share one container without configuration).
pub fn port_for(dir: &Path, profile: &str) -> u16 {
    if let Some(p) = std::fs::read_to_string(dir.join(PORT_FILE)).ok().and_then(|s| s.trim().parse().ok()) {
        return p;
    }
    let dotenv = std::fs::read_to_string(dir.join(hermes_core::agent_files::DOTENV_FILE))
        .map(|t| hermes_core::agent_files::parse_dotenv(&t))
        .unwrap_or_default();
    if let Some(p) = dotenv.port.or_else(|| std::env::var("API_SERVER_PORT").ok()).and_then(|s| s.trim().parse().ok()) {
        return p;
    }
    if profile == "default" {
        return DEFAULT_PORT;
    }
    let h = profile.bytes().fold(0xcbf29ce484222325u64, |h, b| (h ^ b as u64).wrapping_mul(0x100000001b3));
    20000 + (h % 10000) as u16
}

static TERM: AtomicBool = AtomicBool::new(false);
extern "C" fn on_term(_: nix::libc::c_int) {
    TERM.store(true, Ordering::SeqCst);
}

fn knob(dir: &Path, name: &str) -> Option<u64> {
    std::fs::read_to_string(dir.join(name)).ok()?.trim().parse().ok()
}

fn now_iso() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// hermes-agent's heartbeat period (`DEFAULT_HEARTBEAT_INTERVAL_S`).
pub const HEARTBEAT_EVERY: Duration = Duration::from_secs(30);

/// One sd_notify datagram to `NOTIFY_SOCKET` (`@name` is abstract), if it is set; failures
/// are ignored, as hermes-agent ignores them.
fn sd_notify(message: &str) {
    use std::os::linux::net::SocketAddrExt;
    use std::os::unix::net::{SocketAddr, UnixDatagram};
    let Some(target) = std::env::var_os("NOTIFY_SOCKET").filter(|v| !v.is_empty()) else { return };
    let Ok(sock) = UnixDatagram::unbound() else { return };
    let _ = sock.set_nonblocking(true);
    let bytes = std::os::unix::ffi::OsStrExt::as_bytes(target.as_os_str());
    let addr = match bytes.strip_prefix(b"@") {
        Some(name) => SocketAddr::from_abstract_name(name),
        None => SocketAddr::from_pathname(Path::new(&target)),
    };
    if let Ok(addr) = addr {
        let _ = sock.send_to_addr(message.as_bytes(), &addr);
    }
}

/// The watchdog interval a supervisor gave (`NOTIFY_SOCKET` and `WATCHDOG_USEC` both set).
fn watchdog_interval() -> Option<Duration> {
    std::env::var_os("NOTIFY_SOCKET").filter(|v| !v.is_empty())?;
    let us: u64 = std::env::var("WATCHDOG_USEC").ok()?.trim().parse().ok()?;
    (us > 0).then(|| Duration::from_micros(us))
}

struct Gateway {
    dir: PathBuf,
    /// The profile's s6 slot: its `data/lock` serialises writers of the state file.
    slot: PathBuf,
    pid: u32,
    start_time: Option<u64>,
    argv: Vec<String>,
}

impl Gateway {
    fn open(&self) -> Option<hermes_core::fs::Dir> {
        RealFs.open_root(&self.dir).ok()
    }

    /// The profile's lifecycle lock, which `start`/`stop`/`restart` hold while they record
    /// `desired_state` in the same file: taken around the read-modify-write so neither side's
    /// update is lost (a stop's `stopped` overwritten by the gateway's exit record would start
    /// it again at the next boot). Waited for at most 2 s, well inside s6's stop grace; past
    /// that (or without a slot) the write goes ahead unlocked.
    fn lock_profile(&self) -> Option<FileLock> {
        let slot = RealFs.open_root(&self.slot).ok()?;
        let deadline = Instant::now() + Duration::from_secs(2);
        loop {
            match RealFs.try_lock(&slot, OsStr::new(SLOT_LOCK_FILE)) {
                Ok(Some(held)) => return Some(held),
                Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(5)),
                _ => return None,
            }
        }
    }

    /// Merge `fields` into gateway_state.json, re-stamping identity and time.
    fn write_state(&self, fields: Value) {
        let Some(d) = self.open() else { return };
        let _held = self.lock_profile();
        let mut map = read_json_object(&RealFs, &d, STATE_FILE).ok().flatten().unwrap_or_default();
        map.insert("kind".into(), json!("hermes-gateway"));
        map.insert("pid".into(), json!(self.pid));
        map.insert("argv".into(), json!(self.argv));
        map.insert("start_time".into(), json!(self.start_time));
        map.insert("updated_at".into(), json!(now_iso()));
        if let Value::Object(f) = fields {
            map.extend(f);
        }
        let body = format!("{}\n", Value::Object(map));
        let _ = write_atomic(&RealFs, &d, OsStr::new(STATE_FILE), body.as_bytes(), 0o644);
    }

    /// Rewrite `state/gateway.heartbeat`, as hermes-agent's event loop does.
    fn beat(&self, started: f64, t0: Instant) {
        let _ = std::fs::create_dir_all(self.dir.join(STATE_SUBDIR));
        let Ok(d) = RealFs.open_root(&self.dir.join(STATE_SUBDIR)) else { return };
        let doc = json!({"pid": self.pid, "updated_at": chrono::Utc::now().to_rfc3339(), "monotonic": t0.elapsed().as_secs_f64(), "start_time": started});
        let _ = write_atomic(&RealFs, &d, OsStr::new(HEARTBEAT_FILE), format!("{doc}\n").as_bytes(), 0o644);
    }

    fn write_lifecycle(&self, doc: Value) {
        let _ = std::fs::create_dir_all(self.dir.join(STATE_SUBDIR));
        let Ok(d) = RealFs.open_root(&self.dir.join(STATE_SUBDIR)) else { return };
        let _ = write_atomic(&RealFs, &d, OsStr::new(LIFECYCLE_FILE), format!("{doc}\n").as_bytes(), 0o644);
    }

    /// Take the pid file: exclusive create; with `replace`, stop a live holder first.
    fn claim_pid_file(&self, replace: bool) -> Result<(), String> {
        let path = self.dir.join(PID_FILE);
        let record = json!({"pid": self.pid, "kind": "hermes-gateway", "argv": self.argv,
            "start_time": self.start_time, "hermes_home": self.dir.display().to_string()});
        for _ in 0..2 {
            match std::fs::OpenOptions::new().write(true).create_new(true).open(&path) {
                Ok(mut f) => return f.write_all(format!("{record}\n").as_bytes()).map_err(|e| e.to_string()),
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                    let holder = std::fs::read_to_string(&path).ok().and_then(|s| {
                        serde_json::from_str::<Value>(&s).ok().and_then(|v| v["pid"].as_u64()).or_else(|| s.trim().parse().ok())
                    });
                    let alive = holder.is_some_and(|p| p as u32 != self.pid && Path::new(&format!("/proc/{p}")).exists());
                    if alive && !replace {
                        return Err(format!("Another gateway instance is already running (pid {})", holder.unwrap()));
                    }
                    if let (true, Some(p)) = (alive, holder) {
                        let pid = nix::unistd::Pid::from_raw(p as i32);
                        let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
                        let end = Instant::now() + Duration::from_secs(5);
                        while Path::new(&format!("/proc/{p}")).exists() && Instant::now() < end {
                            std::thread::sleep(Duration::from_millis(50));
                        }
                    }
                    let _ = std::fs::remove_file(&path);
                }
                Err(e) => return Err(format!("{}: {e}", path.display())),
            }
        }
        Err(format!("could not claim {}", path.display()))
    }

    /// An operator stop is a marker naming this very process, recently written.
    fn planned_stop(&self) -> bool {
        let Some(d) = self.open() else { return false };
        let Ok(Some(m)) = read_json_object(&RealFs, &d, MARKER_FILE) else { return false };
        let pid_ok = m.get("target_pid").and_then(Value::as_u64) == Some(self.pid as u64);
        let st_ok = match m.get("target_start_time").and_then(Value::as_u64) {
            Some(t) => Some(t) == self.start_time,
            None => true,
        };
        let fresh = m
            .get("written_at")
            .and_then(Value::as_str)
            .and_then(|s| chrono::DateTime::parse_from_rfc3339(s).ok())
            .is_some_and(|t| (chrono::Utc::now() - t.with_timezone(&chrono::Utc)).num_seconds() <= MARKER_TTL_SECS as i64);
        if pid_ok && st_ok && fresh {
            let _ = std::fs::remove_file(self.dir.join(MARKER_FILE));
            true
        } else {
            false
        }
    }

    fn exit(&self, code: i32, state: &str, reason: &str) -> i32 {
        self.write_state(json!({"gateway_state": state, "exit_reason": reason}));
        self.write_lifecycle(json!({"phase": "exited", "pid": self.pid, "exit_code": code, "exit_reason": reason, "exited_at": now_iso()}));
        let _ = std::fs::remove_file(self.dir.join(PID_FILE));
        code
    }
}

/// A line on stdout, or nothing when it cannot be written: a gateway outlives its logger
/// (a closed pipe is EPIPE, not a reason to panic).
fn say(line: &str) {
    let _ = writeln!(std::io::stdout().lock(), "{line}");
}

/// A line on stderr, likewise.
fn warn(line: &str) {
    let _ = writeln!(std::io::stderr().lock(), "{line}");
}

/// Serve `GET /health` on 127.0.0.1:`port` from a background thread.
pub fn serve_health(port: u16, body: String) -> std::io::Result<()> {
    let listener = TcpListener::bind(("127.0.0.1", port))?;
    std::thread::spawn(move || {
        for conn in listener.incoming().flatten() {
            let body = body.clone();
            std::thread::spawn(move || answer(conn, &body));
        }
    });
    Ok(())
}

fn answer(mut conn: TcpStream, body: &str) {
    let _ = conn.set_read_timeout(Some(Duration::from_secs(2)));
    let mut buf = [0u8; 1024];
    let n = conn.read(&mut buf).unwrap_or(0);
    let req = String::from_utf8_lossy(&buf[..n]);
    let (status, text) = if req.starts_with("GET /health") { ("200 OK", body) } else { ("404 Not Found", "{}") };
    let _ = write!(conn, "HTTP/1.0 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{text}", text.len());
}

/// `GET /health` against 127.0.0.1:`port`; the body on a 200.
pub fn probe(port: u16) -> Result<String, String> {
    let mut c =
        TcpStream::connect_timeout(&([127, 0, 0, 1], port).into(), Duration::from_secs(2)).map_err(|e| format!("127.0.0.1:{port}: {e}"))?;
    let _ = c.set_read_timeout(Some(Duration::from_secs(2)));
    c.write_all(b"GET /health HTTP/1.0\r\n\r\n").map_err(|e| e.to_string())?;
    let mut resp = String::new();
    c.read_to_string(&mut resp).map_err(|e| e.to_string())?;
    match resp.split_once("\r\n\r\n") {
        Some((head, body)) if head.starts_with("HTTP/1.0 200") => Ok(body.to_string()),
        _ => Err(format!("unexpected answer: {resp:?}")),
    }
}

fn trap_term() {
    use nix::sys::signal::{signal, SigHandler, Signal};
    unsafe {
        let _ = signal(Signal::SIGTERM, SigHandler::Handler(on_term));
        let _ = signal(Signal::SIGINT, SigHandler::Handler(on_term));
    }
}

/// Run the gateway; returns the process exit code.
pub fn run(opts: &Options) -> i32 {
    let dir = profile_dir(&opts.root, &opts.profile);
    if !dir.is_dir() {
        warn(&format!("gateway: no profile directory {}", dir.display()));
        return 78;
    }
    let pid = std::process::id();
    let started = chrono::Utc::now().timestamp_millis() as f64 / 1000.0;
    let t0 = Instant::now();
    let scandir = std::env::var_os("S6_PROFILE_GATEWAY_SCANDIR")
        .filter(|v| !v.is_empty())
        .map_or_else(|| PathBuf::from(hermes_core::config::DEFAULT_SCANDIR), PathBuf::from);
    let slot = scandir.join(hermes_core::name::slot_name(&opts.profile));
    let gw = Gateway {
        dir: dir.clone(),
        slot,
        pid,
        start_time: process_start_time(&RealFs, std::path::Path::new("/proc"), pid as u64),
        argv: opts.argv.clone(),
    };
    trap_term();
    if let Some(code) = knob(&dir, "fake-exit-code") {
        let exit = gw.exit(code as i32, if code == 78 { "startup_failed" } else { "stopped" }, "fake-exit-code");
        warn(&format!("gateway[{}]: refusing to start (fake-exit-code {code})", opts.profile));
        return exit;
    }
    if let Err(e) = gw.claim_pid_file(opts.replace) {
        warn(&format!("gateway[{}]: {e}", opts.profile));
        return 1;
    }
    gw.write_state(json!({"gateway_state": "starting", "exit_reason": null, "restart_requested": false,
        "active_agents": 0, "platforms": {}, "session_store": {"status": "unknown"}}));
    gw.write_lifecycle(json!({"phase": "running", "pid": pid}));
    if let Some(d) = opts.ready_after.or_else(|| knob(&dir, "fake-start-delay-ms").map(Duration::from_millis)) {
        std::thread::sleep(d);
    }
    let port = opts.port.unwrap_or_else(|| port_for(&dir, &opts.profile));
    let body = json!({"status": "ok", "profile": opts.profile, "pid": pid, "port": port}).to_string();
    // As hermes-agent's gateway does when its api_server cannot bind: that platform fails,
    // the gateway runs on (and tests that share one host's ports do not kill each other's).
    if let Err(e) = serve_health(port, body) {
        warn(&format!("gateway[{}]: cannot listen on 127.0.0.1:{port}: {e}; running without the health endpoint", opts.profile));
    }
    gw.write_state(json!({"gateway_state": "running"}));
    say(&format!("gateway[{}]: running (pid {pid}, port {port})", opts.profile));
    let crash_at = knob(&dir, "fake-crash-after-ms").map(|ms| Instant::now() + Duration::from_millis(ms));
    let grow = opts.grow_memory_mb_per_s.or_else(|| knob(&dir, "fake-grow-memory-mb-per-s").map(|n| n as f64)).filter(|r| *r > 0.0);
    let (mut leak, grown_from) = (Leak::default(), Instant::now());
    let hang_at = opts.hang_after.or_else(|| knob(&dir, "fake-hang-after-ms").map(Duration::from_millis)).map(|d| Instant::now() + d);
    let beat_every = knob(&dir, "fake-heartbeat-ms").map(Duration::from_millis).unwrap_or(HEARTBEAT_EVERY);
    let watchdog = watchdog_interval();
    if watchdog.is_some() {
        sd_notify("READY=1\nSTATUS=Hermes Gateway running");
    }
    let (mut next_beat, mut next_ping) = (Instant::now(), Instant::now());
    loop {
        if let Some(rate) = grow {
            leak.grow_to(rate * 1e6 * grown_from.elapsed().as_secs_f64());
        }
        if hang_at.is_some_and(|t| Instant::now() >= t) {
            warn(&format!("gateway[{}]: event loop stalled (hang-after): no heartbeat, no WATCHDOG=1, SIGTERM unheard", opts.profile));
            loop {
                std::thread::sleep(Duration::from_secs(3600));
            }
        }
        if Instant::now() >= next_beat {
            gw.beat(started, t0);
            next_beat = Instant::now() + beat_every;
        }
        if let Some(every) = watchdog.filter(|_| Instant::now() >= next_ping) {
            sd_notify("WATCHDOG=1");
            next_ping = Instant::now() + every / 2;
        }
        if TERM.load(Ordering::SeqCst) {
            if watchdog.is_some() {
                sd_notify("STOPPING=1");
            }
            return if gw.planned_stop() {
                // The exit record first: the logger may already be gone (a container stop
                // TERMs everything at once), and what the next boot reads must not depend on it.
                let code = gw.exit(0, "stopped", "operator-stop");
                say(&format!("gateway[{}]: planned stop \u{2014} exiting cleanly", opts.profile));
                code
            } else {
                let code = gw.exit(1, "running", "signal");
                say(&format!("gateway[{}]: SIGTERM without a planned-stop marker \u{2014} exiting for a restart", opts.profile));
                code
            };
        }
        if crash_at.is_some_and(|t| Instant::now() >= t) {
            warn(&format!("gateway[{}]: simulated crash", opts.profile));
            let _ = std::fs::remove_file(dir.join(PID_FILE));
            return 1; // no orderly exit record: the sentinel still says running
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The dashboard stand-in: answers health on its port until SIGTERM; exits 0 then.
pub fn run_dashboard(port: u16) -> i32 {
    trap_term();
    let body = json!({"status": "ok", "service": "dashboard", "pid": std::process::id()}).to_string();
    if let Err(e) = serve_health(port, body) {
        warn(&format!("dashboard: cannot listen on 127.0.0.1:{port}: {e}"));
        return 1;
    }
    say(&format!("dashboard: listening on 127.0.0.1:{port}"));
    while !TERM.load(Ordering::SeqCst) {
        std::thread::sleep(Duration::from_millis(50));
    }
    0
}

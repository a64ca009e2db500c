//! The seed scenarios against the core's boot pass and lifecycle commands, on the
//! virtual-clock simulator: real files, scripted services, time that only the test moves.

use hermes_core::boot::plan::Container;
use hermes_core::boot::{self, Options};
use hermes_core::clock::SystemClock;
use hermes_core::config::Config;
use hermes_core::ctx::Ctx;
use hermes_core::fs::RealFs;
use hermes_sim::s6sim::virtual_world::{container_restart, Behaviour, FinishHook, Script, VirtualWorld};
use std::fs;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

mod common;
use common::operate;

struct Setup {
    _tmp: tempfile::TempDir,
    cfg: Config,
}

fn setup() -> Setup {
    let tmp = tempfile::tempdir().unwrap();
    let mut cfg = Config { home: tmp.path().join("home"), scandir: tmp.path().join("service"), ..Config::default() };
    // The volume belongs to whoever runs the test (the core writes it as the volume's user).
    (cfg.uid, cfg.gid) = (nix::unistd::getuid().as_raw(), nix::unistd::getgid().as_raw());
    fs::create_dir_all(cfg.home.join("profiles")).unwrap();
    Setup { _tmp: tmp, cfg }
}

/// Gateway slots run the reference gateway contract; loggers just run.
fn script(home: &Path) -> Script {
    let home = home.to_path_buf();
    Box::new(move |_dir, name| match name.strip_prefix("gateway-") {
        Some(p) if !p.ends_with("/log") => {
            let dir: PathBuf = if p == "default" { home.clone() } else { home.join("profiles").join(p) };
            Behaviour::Gateway { profile_dir: dir }
        }
        _ => Behaviour::RunsForever,
    })
}

/// The rendered slots' finish: a clean exit (0) or EX_CONFIG (78) parks the slot (125).
/// The product's finish contract, from the product's own exit policy.
fn finish_contract() -> FinishHook {
    use hermes_core::exit_policy::{ExitClass, S6_PERMANENT_FAILURE};
    Box::new(|_dir, _name, code, _sig| if ExitClass::of_finish_arg(code).restarts() { 0 } else { S6_PERMANENT_FAILURE })
}

/// `slot` behaves as `b`; everything else just runs.
fn only(slot: &'static str, b: Behaviour) -> Script {
    Box::new(move |_d, name| if name == slot { b.clone() } else { Behaviour::RunsForever })
}

/// How many times `slot`'s run (not its finish) was spawned.
fn runs(w: &VirtualWorld, slot: &str) -> usize {
    w.host.spawns.iter().filter(|(n, f)| n == slot && !f).count()
}

fn profile(cfg: &Config, name: &str, state: Option<&str>) {
    let d = cfg.home.join("profiles").join(name);
    fs::create_dir_all(&d).unwrap();
    fs::write(d.join("SOUL.md"), "x").unwrap();
    if let Some(s) = state {
        fs::write(d.join("gateway_state.json"), format!(r#"{{"gateway_state":"{s}"}}"#)).unwrap();
    }
}

/// The real file system: the virtual world's files are real, only its time is not.
fn ctx(cfg: &Config) -> Ctx<'_> {
    Ctx::new(&RealFs, &SystemClock, cfg)
}

/// The virtual world moves only when the test advances it: the pass must not wait for its
/// supervisors.
fn boot_pass(cfg: &Config) {
    let r = boot::run(&ctx(cfg), &Container::default(), &Options { supervise_wait: Duration::ZERO, ..Options::default() }).unwrap();
    assert!(r.errors.is_empty(), "{:?}", r.errors);
}

fn state(cfg: &Config, p: &str) -> serde_json::Value {
    let path =
        if p == "default" { cfg.home.join("gateway_state.json") } else { cfg.home.join("profiles").join(p).join("gateway_state.json") };
    serde_json::from_slice(&fs::read(path).unwrap_or_default()).unwrap_or(serde_json::Value::Null)
}

#[test]
fn seed_restart_survival() {
    let s = setup();
    profile(&s.cfg, "coder", None);
    let mut w = VirtualWorld::boot(&s.cfg.scandir, 500, script(&s.cfg.home), finish_contract());
    boot_pass(&s.cfg);
    w.advance(Duration::from_secs(1));
    assert_eq!(w.up("gateway-coder"), Some(false), "no prior state: registered down");
    let (mut w, r) = operate(w, &s.cfg, |c| hermes_core::lifecycle::start::start(c, "coder", hermes_core::lifecycle::Wait::No));
    r.unwrap();
    w.advance(Duration::from_secs(1));
    assert_eq!(w.up("gateway-coder"), Some(true));
    assert_eq!(state(&s.cfg, "coder")["gateway_state"], "running", "the gateway wrote its own state");

    let mut w = container_restart(w, script(&s.cfg.home));
    boot_pass(&s.cfg);
    w.advance(Duration::from_secs(2));
    assert_eq!(w.up("gateway-coder"), Some(true), "back after the container restart");
}

#[test]
fn seed_stopped_stays_stopped() {
    let s = setup();
    profile(&s.cfg, "coder", Some("running"));
    let mut w = VirtualWorld::boot(&s.cfg.scandir, 500, script(&s.cfg.home), finish_contract());
    boot_pass(&s.cfg);
    w.advance(Duration::from_secs(1));
    assert_eq!(w.up("gateway-coder"), Some(true));
    let (mut w, r) = operate(w, &s.cfg, |c| hermes_core::lifecycle::stop::stop(c, "coder", hermes_core::lifecycle::Wait::No));
    r.unwrap();
    w.advance(Duration::from_secs(5));
    assert_eq!(w.up("gateway-coder"), Some(false));
    assert_eq!(state(&s.cfg, "coder")["gateway_state"], "stopped", "the marker made it an operator stop");
    let mut w = container_restart(w, script(&s.cfg.home));
    boot_pass(&s.cfg);
    w.advance(Duration::from_secs(60));
    assert_eq!(w.up("gateway-coder"), Some(false), "still down a minute after the restart");
    assert!(s.cfg.scandir.join("gateway-coder/down").exists());
}

#[test]
fn seed_stale_pid_is_swept() {
    let s = setup();
    profile(&s.cfg, "coder", Some("running"));
    let d = s.cfg.home.join("profiles/coder");
    fs::write(d.join("gateway.pid"), r#"{"pid": 99999}"#).unwrap();
    fs::write(d.join("processes.json"), "[]").unwrap();
    let mut w = VirtualWorld::boot(&s.cfg.scandir, 500, script(&s.cfg.home), finish_contract());
    boot_pass(&s.cfg);
    assert!(!d.join("gateway.pid").exists() && !d.join("processes.json").exists());
    w.advance(Duration::from_secs(1));
    assert_eq!(w.up("gateway-coder"), Some(true));
}

#[test]
fn seed_default_slot_is_registered_and_startable() {
    let s = setup();
    let mut w = VirtualWorld::boot(&s.cfg.scandir, 500, script(&s.cfg.home), finish_contract());
    boot_pass(&s.cfg);
    w.advance(Duration::from_secs(1));
    assert_eq!(w.up("gateway-default"), Some(false));
    let (mut w, r) = operate(w, &s.cfg, |c| hermes_core::lifecycle::start::start(c, "default", hermes_core::lifecycle::Wait::No));
    r.unwrap();
    w.advance(Duration::from_millis(10));
    assert_eq!(w.up("gateway-default"), Some(true), "-u starts at once, no throttle");
    assert_eq!(state(&s.cfg, "default")["desired_state"], "running");
}

#[test]
fn an_hour_of_crash_loop_runs_in_about_a_second() {
    let s = setup();
    profile(&s.cfg, "flaky", Some("running"));
    let script = only("gateway-flaky", Behaviour::ExitAfter { code: 1, after: Duration::from_millis(500) });
    let mut w = VirtualWorld::boot(&s.cfg.scandir, 500, script, finish_contract());
    boot_pass(&s.cfg);
    let t = Instant::now();
    // An hour, then 0.7 s into a cycle (0.5 s up, 1 s throttle): between two runs.
    w.advance(Duration::from_millis(3_600_700));
    let runs = runs(&w, "gateway-flaky");
    eprintln!("virtual hour: {runs} runs of a crashing gateway in {:?} of real time", t.elapsed());
    // Each cycle: 0.5 s up, finish, 1 s throttle.
    assert!((2300..=2500).contains(&runs), "{runs} runs");
    let st = hermes_core::lifecycle::status::status(&ctx(&s.cfg), Some("flaky")).unwrap();
    assert_eq!(st.profiles[0].reason, "crashed", "down between restarts, wanted up");
    assert!(t.elapsed() < Duration::from_secs(60));
}

#[test]
fn exit_78_parks_and_status_says_config_error() {
    let s = setup();
    profile(&s.cfg, "bad", Some("running"));
    let script = only("gateway-bad", Behaviour::ExitAfter { code: 78, after: Duration::from_millis(200) });
    let mut w = VirtualWorld::boot(&s.cfg.scandir, 500, script, finish_contract());
    boot_pass(&s.cfg);
    w.advance(Duration::from_secs(600));
    let runs = runs(&w, "gateway-bad");
    assert_eq!(runs, 1, "finish 125: never restarted");
    let st = hermes_core::lifecycle::status::status(&ctx(&s.cfg), Some("bad")).unwrap();
    assert_eq!((st.profiles[0].reason.as_str(), st.profiles[0].exit_code), ("config-error", Some(78)));
}

//! The crash policy on the virtual clock: the product's own `finish` (classify, decide, record
//! on the volume, answer s6) and the product's own registrar (the policy's clock, rung by
//! that finish through its real doorbell FIFO) against the simulated s6. Days of crash loops
//! run in a fraction of a second of real time.

use hermes_core::boot::plan::Container;
use hermes_core::boot::{self, Options};
use hermes_core::config::Config;
use hermes_core::ctx::Ctx;
use hermes_core::fs::{FifoReader, RealFs};
use hermes_core::lifecycle::{self, Wait};
use hermes_core::policy::record::{self, PolicyState};
use hermes_core::registrar::doorbell::{self, Rings};
use hermes_core::registrar::{Registrar, Scope};
use hermes_sim::s6sim::scan::Settings;
use hermes_sim::s6sim::version::S6Version;
use hermes_sim::s6sim::virtual_world::{container_restart, Behaviour, FinishHook, Script, VirtualTime, VirtualWorld};
use std::cell::Cell;
use std::cell::RefCell;
use std::collections::BTreeSet;
use std::fs;
use std::rc::Rc;
use std::time::{Duration, Instant, SystemTime};

mod common;
use common::SimClock;

struct Sim {
    _tmp: tempfile::TempDir,
    cfg: Config,
    time: VirtualTime,
    /// Whether the gateway now stays up (a fixed configuration) or crashes 100 ms in.
    healthy: Rc<Cell<bool>>,
}

const CRASH_AFTER: Duration = Duration::from_millis(100);

fn sim(knobs: hermes_core::policy::Knobs) -> Sim {
    let tmp = tempfile::tempdir().unwrap();
    let mut cfg = Config {
        home: tmp.path().join("home"),
        scandir: tmp.path().join("service"),
        registrar_fifo: tmp.path().join("registrar"),
        ..Config::default()
    };
    cfg.policy = knobs;
    // The volume belongs to whoever runs the test (its writes are made as the volume's user).
    (cfg.uid, cfg.gid) = (nix::unistd::getuid().as_raw(), nix::unistd::getgid().as_raw());
    let d = cfg.home.join("profiles/flaky");
    fs::create_dir_all(&d).unwrap();
    fs::write(d.join("SOUL.md"), "x").unwrap();
    fs::write(d.join("gateway_state.json"), r#"{"desired_state":"running"}"#).unwrap();
    nix::unistd::mkfifo(&cfg.registrar_fifo, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
    Sim { _tmp: tmp, cfg, time: VirtualTime::start(), healthy: Rc::new(Cell::new(false)) }
}

impl Sim {
    fn script(&self) -> Script {
        let healthy = self.healthy.clone();
        Box::new(move |_d, name| match name {
            "gateway-flaky" if !healthy.get() => Behaviour::ExitAfter { code: 1, after: CRASH_AFTER },
            _ => Behaviour::RunsForever,
        })
    }

    /// The slot's finish, as the rendered script runs it: the product's crash policy.
    fn finish(&self) -> FinishHook {
        let cfg = self.cfg.clone();
        let time = self.time.clone();
        Box::new(move |_dir, name, code, sig| {
            let clock = SimClock::inside(time.clone());
            let ctx = Ctx::new(&RealFs, &clock, &cfg);
            let profile = name.strip_prefix("gateway-").expect("only gateway slots have this finish");
            hermes_core::lifecycle::finish::finish(&ctx, profile, code, sig, None, &cfg.policy)
        })
    }

    fn boot(&self) -> VirtualWorld {
        let settings = Settings { max: 500, ..Settings::of(S6Version::V2_11) };
        let mut w = VirtualWorld::boot_at(self.time.clone(), &self.cfg.scandir, settings, self.script(), self.finish());
        self.boot_pass();
        w.step(Duration::ZERO);
        w
    }

    fn boot_pass(&self) -> boot::PassReport {
        let clock = SimClock::inside(self.time.clone());
        let r = boot::run(
            &Ctx::new(&RealFs, &clock, &self.cfg),
            &Container::default(),
            &Options { supervise_wait: Duration::ZERO, ..Options::default() },
        )
        .unwrap();
        assert!(r.errors.is_empty(), "{:?}", r.errors);
        r
    }

    fn record(&self) -> record::Record {
        let clock = SimClock::inside(self.time.clone());
        record::read(&Ctx::new(&RealFs, &clock, &self.cfg), "flaky")
    }

    fn status(&self) -> hermes_core::lifecycle::status::ProfileStatus {
        let clock = SimClock::inside(self.time.clone());
        lifecycle::status::status(&Ctx::new(&RealFs, &clock, &self.cfg), Some("flaky")).unwrap().profiles.remove(0)
    }
}

/// The registrar of one container: its memory lives as long as the container.
struct Clockwork<'a> {
    reg: Registrar<'a>,
    bell: FifoReader,
    rings: Rings,
}

impl<'a> Clockwork<'a> {
    fn start(ctx: Ctx<'a>) -> Clockwork<'a> {
        let bell = doorbell::open(&ctx).unwrap();
        let mut reg = Registrar::new(ctx, Container::default()).unwrap();
        reg.converge(&Scope::Everything);
        Clockwork { reg, bell, rings: Rings::default() }
    }

    /// Let `d` of virtual time pass event by event; the registrar hears every ring and acts at
    /// every deadline, as its daemon loop does.
    fn run(&mut self, w: &mut VirtualWorld, d: Duration) {
        let end = w.elapsed() + d;
        while w.elapsed() < end {
            let until_due = self.reg.next_deadline().saturating_duration_since(w.time().instant());
            if until_due.is_zero() {
                self.reg.tick();
                continue;
            }
            w.step(until_due.min(end - w.elapsed()));
            let rung = self.rings.read(&self.bell);
            if !rung.profiles.is_empty() {
                self.reg.converge(&Scope::Profiles(rung.profiles));
            }
        }
    }
}

/// Starts of the gateway's run, as virtual seconds since the first boot.
fn starts(w: &VirtualWorld) -> Vec<f64> {
    w.host.runs.iter().filter(|(n, _)| n == "gateway-flaky").map(|(_, t)| t.as_secs_f64()).collect()
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() < 0.05
}

#[test]
fn days_of_crash_loop_back_off_quarantine_probe_survive_a_container_restart_and_clear() {
    let t0 = Instant::now();
    let s = sim(hermes_core::policy::Knobs::default());
    let clock = SimClock::inside(s.time.clone());
    let mut w = s.boot();
    let mut cw = Clockwork::start(Ctx::new(&RealFs, &clock, &s.cfg));

    // The first minute: 1 s, 2 s, 4 s, 8 s of backoff (±20 %), then the 5th crash in the
    // window quarantines it.
    cw.run(&mut w, Duration::from_secs(60));
    let v = starts(&w);
    assert_eq!(v.len(), 5, "5 runs, then quarantined: {v:?}");
    for (i, pair) in v.windows(2).enumerate() {
        let down = pair[1] - pair[0] - CRASH_AFTER.as_secs_f64();
        let nominal = 2f64.powi(i as i32);
        if i == 0 {
            // The first restart is s6's own: one second after the finish ended.
            assert!(close(down, 1.0), "{v:?}");
            continue;
        }
        assert!(
            down >= 0.8 * nominal - 0.01 && down <= 1.2 * nominal + 0.01,
            "backoff #{} was {down:.2} s, want {nominal} s ±20 %: {v:?}",
            i + 1
        );
    }
    let rec = s.record();
    let quarantined_at = v[4] + 0.1;
    assert_eq!(rec.state, PolicyState::Quarantined);
    assert!(
        close(
            rec.next_start.unwrap() - s.time.wall_base.duration_since(SystemTime::UNIX_EPOCH).unwrap().as_secs_f64(),
            quarantined_at + 600.0
        ),
        "{rec:?}"
    );
    let st = s.status();
    assert_eq!((st.state.state(), st.up, st.want_up), ("quarantined", false, false));
    assert!(st.explanation.contains("quarantined after 5 crashes") && st.explanation.contains("next probe at"), "{}", st.explanation);
    assert!(st.next_start.is_some());

    // Probes at 10 min, then 20, 40 min… each failed probe doubles the cool-down.
    cw.run(&mut w, Duration::from_secs(2 * 3600));
    let v = starts(&w);
    assert_eq!(v.len(), 8, "three probes in two hours: {v:?}");
    assert!(close(v[5], quarantined_at + 600.0), "first probe at the cool-down: {v:?}");
    assert!(close(v[6], v[5] + 0.1 + 1200.0) && close(v[7], v[6] + 0.1 + 2400.0), "then doubling: {v:?}");
    let next_probe = v[7] + 0.1 + 4800.0;

    // The container restarts while it is quarantined: the boot pass keeps it down and says
    // why; the new container's registrar probes it when the cool-down ends, not before.
    drop(cw);
    let mut w = container_restart(w, s.script());
    let r = s.boot_pass();
    let e = r.entries.iter().find(|e| e.profile == "flaky").unwrap();
    assert_eq!((e.action.as_str(), e.reason.as_deref()), ("registered", Some("quarantined")));
    let log = fs::read_to_string(s.cfg.home.join("logs/container-boot.log")).unwrap_or_default();
    assert!(
        log.lines().any(|l| l.contains("profile=flaky") && l.contains("action=registered") && l.contains("reason=quarantined")),
        "{log}"
    );
    let mut cw = Clockwork::start(Ctx::new(&RealFs, &clock, &s.cfg));
    cw.run(&mut w, Duration::from_secs(60));
    assert_eq!(w.up("gateway-flaky"), Some(false), "still quarantined after the restart");
    assert_eq!(starts(&w).len(), 8, "no run replayed by the restart");
    let to_probe = Duration::from_secs_f64(next_probe - w.elapsed().as_secs_f64() + 1.0);
    cw.run(&mut w, to_probe);
    let v = starts(&w);
    assert_eq!(v.len(), 9, "{v:?}");
    assert!(close(v[8], next_probe), "the probe kept its time across the restart: {} vs {next_probe}", v[8]);

    // The cool-down doubles up to its cap of 6 h, and stays there.
    cw.run(&mut w, Duration::from_secs(9600 + 19200 + 21600 + 21600 + 60));
    let v = starts(&w);
    assert_eq!(v.len(), 13, "{v:?}");
    let gaps: Vec<f64> = v[8..].windows(2).map(|p| p[1] - p[0] - 0.1).collect();
    for (gap, want) in gaps.iter().zip([9600.0, 19200.0, 21600.0, 21600.0]) {
        assert!(close(*gap, want), "probe gaps {gaps:?}");
    }

    // The configuration is fixed: the next probe stays up and, after the stable window, clears.
    s.healthy.set(true);
    cw.run(&mut w, Duration::from_secs(21600 + 120));
    let v = starts(&w);
    assert_eq!(v.len(), 14, "{v:?}");
    assert!(close(v[13], v[12] + 0.1 + 21600.0), "{v:?}");
    let rec = s.record();
    assert_eq!((rec.state, rec.consecutive, rec.crashes.len(), rec.probes), (PolicyState::Running, 0, 0, 0), "{rec:?}");
    let st = s.status();
    assert_eq!((st.state.state(), st.up), ("running", true));
    eprintln!("{:.1} virtual hours of crash policy in {:?} of real time", w.elapsed().as_secs_f64() / 3600.0, t0.elapsed());
}

#[test]
fn delays_cap_and_spread_when_nothing_quarantines() {
    let k = hermes_core::policy::Knobs { crash_limit: 100_000, ..Default::default() };
    let s = sim(k);
    let clock = SimClock::inside(s.time.clone());
    let mut w = s.boot();
    let mut cw = Clockwork::start(Ctx::new(&RealFs, &clock, &s.cfg));
    cw.run(&mut w, Duration::from_secs(3 * 3600));
    let v = starts(&w);
    let downs: Vec<f64> = v.windows(2).map(|p| p[1] - p[0] - 0.1).collect();
    let late = &downs[10..];
    assert!(late.iter().all(|d| *d <= 60.0 + 0.01 && *d >= 48.0 - 0.01), "capped at 60 s, jittered down by at most a fifth: {late:?}");
    let distinct: BTreeSet<u64> = late.iter().map(|d| (d * 10.0) as u64).collect();
    assert!(distinct.len() > 3, "the jitter spreads restarts: {late:?}");
    assert!((170..=230).contains(&v.len()), "about one run a minute for three hours: {}", v.len());
}

#[test]
fn an_operator_stop_during_a_backoff_wins_and_a_start_clears_it() {
    let s = sim(hermes_core::policy::Knobs::default());
    let inside = SimClock::inside(s.time.clone());
    let w = Rc::new(RefCell::new(s.boot()));
    let mut cw = Clockwork::start(Ctx::new(&RealFs, &inside, &s.cfg));
    // Three crashes: now backing off for ~4 s.
    while starts(&w.borrow()).len() < 3 || w.borrow().up("gateway-flaky") == Some(true) {
        cw.run(&mut w.borrow_mut(), Duration::from_millis(50));
    }
    cw.run(&mut w.borrow_mut(), Duration::from_millis(200));
    assert_eq!(s.record().state, PolicyState::BackingOff);
    // The operator's commands wait for s6 to take in what they said: their clock moves the world.
    let operator = SimClock::stepping(&w);
    let ctx = Ctx::new(&RealFs, &operator, &s.cfg);
    lifecycle::stop::stop(&ctx, "flaky", Wait::No).unwrap();
    cw.run(&mut w.borrow_mut(), Duration::from_secs(3600));
    assert_eq!(starts(&w.borrow()).len(), 3, "the backoff's end did not start a stopped gateway");
    assert_eq!(s.status().state, "stopped");

    let done = lifecycle::start::start(&ctx, "flaky", Wait::No).unwrap();
    assert_eq!(done.cleared, Some(PolicyState::BackingOff), "the start says what it cleared");
    w.borrow_mut().step(Duration::ZERO);
    assert_eq!(starts(&w.borrow()).len(), 4);
    let rec = s.record();
    assert_eq!((rec.state, rec.consecutive), (PolicyState::Running, 0));
}

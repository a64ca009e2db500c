//! A booted world for real-s6 tests: a home owned by the hermes user, a stand-in gateway, a
//! real s6-svscan and one boot pass.

use super::svscan::Svscan;
use super::*;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::process::Command;

/// A stand-in for `hermes [-p P] gateway run --replace` that keeps the shutdown contract: on
/// SIGTERM it exits 0 if a planned-stop marker is in its profile's home (operator stop), 1
/// otherwise (container stop or crash: restart me). A file `exit78` makes it fail like a
/// configuration error; `exit75` makes it ask to be restarted (hermes-agent's `EX_TEMPFAIL`);
/// `crash` makes it exit 1 at once; `ignore-term` makes it ignore SIGTERM altogether;
/// `never-ready` keeps it from saying it is ready. Ready, it says so as hermes-agent does:
/// `gateway_state` `running` with its pid in its state file (merged under the slot's lock, as
/// the gateway and the lifecycle commands share it). It writes no heartbeat: worlds turn that
/// check off (`HERMES_GATEWAY_HEARTBEAT_TIMEOUT=0`).
pub const FAKE_GATEWAY: &str = r#"#!/bin/sh
dir="$HERMES_HOME"
name=default
[ "$1" = "-p" ] && dir="$HERMES_HOME/profiles/$2" && name="$2"
[ -f "$dir/exit78" ] && exit 78
[ -f "$dir/exit75" ] && exit 75
[ -f "$dir/crash" ] && exit 1
running() {
  [ -f "$dir/never-ready" ] && return
  f="$dir/gateway_state.json"
  (
    flock 9
    old=$(cat "$f" 2>/dev/null)
    case "$old" in "{"*"}") ;; *) old="{}" ;; esac
    printf '%s\n' "$old" | sed -e 's/"gateway_state":"[^"]*",\{0,1\}//g' -e 's/"pid":[0-9]*,\{0,1\}//g' -e 's/,}$/}/' \
      -e "s/^{/{\"gateway_state\":\"running\",\"pid\":$$,/" -e 's/,}$/}/' > "$f.fake" && mv "$f.fake" "$f"
  ) 9<"$S6_PROFILE_GATEWAY_SCANDIR/gateway-$name/data/lock"
}
if [ -f "$dir/ignore-term" ]; then
  echo $$ > "$dir/fake-gateway.ready"
  running
  trap '' TERM
  exec sleep 3600
fi
child=
# rewrite-state-on-exit: as it exits, write that file's content as the state file a moment
# later, like a gateway whose read-modify-write began before a stop recorded its intent.
trap 'kill $child 2>/dev/null; if [ -f "$dir/rewrite-state-on-exit" ]; then sleep 0.3; cp "$dir/rewrite-state-on-exit" "$dir/gateway_state.json.gw" && mv "$dir/gateway_state.json.gw" "$dir/gateway_state.json"; fi; if [ -f "$dir/.gateway-planned-stop.json" ]; then rm -f "$dir/.gateway-planned-stop.json"; exit 0; fi; exit 1' TERM
sleep 3600 &
child=$!
# Ready: the TERM handler is in place (a SIGTERM before this line kills the shell outright).
echo $$ > "$dir/fake-gateway.ready"
running
echo "fake gateway $$ up"
wait $child
"#;

pub struct World {
    pub f: Fixture,
    pub sv: Option<Svscan>,
    /// The `hermes-reconcile` binary [`World::cli`] runs (set by suites that have one).
    pub bin: Option<std::path::PathBuf>,
    /// Environment given to s6-svscan (so to every finish), the CLI and the registrar: the
    /// crash policy's short test timings, for one.
    pub env: Vec<(String, String)>,
}

impl Drop for World {
    fn drop(&mut self) {
        // The scanner must stop before the fixture's temporary tree is deleted under it.
        if let Some(mut sv) = self.sv.take() {
            sv.stop();
        }
    }
}

/// What every real-s6 test needs: root (the pass runs as root, as in the container), Debian's
/// s6, and the hermes user. Fails the test with the missing piece named.
pub fn prerequisites() {
    need(is_root(), "runs the pass as root, as in the container (run it as root)");
    need(have_program("s6-svscan"), "needs s6-svscan (apt-get install s6 execline)");
    need(hermes_core::config::lookup_user("hermes").is_some(), "needs the `hermes` user, uid 10000 (scripts/install-deps)");
}

/// A binary of another package of this workspace (`hermes-reconcile` for the front's tests),
/// from the target directory this test runs from. Fails the test, naming the fix, when it was
/// not built (`cargo test --workspace` and `scripts/test` build every binary).
pub fn workspace_binary(name: &str) -> std::path::PathBuf {
    let exe = std::env::current_exe().expect("the test's own path");
    // target/<profile>/deps/<test> → target/<profile>/<name>
    let bin = exe.parent().and_then(|deps| deps.parent()).map(|dir| dir.join(name)).expect("a target directory");
    assert!(bin.exists(), "{} is not built: run `cargo build -p hermes-cli` (or the whole workspace) first", bin.display());
    bin
}

pub fn chown_tree(p: &std::path::Path) {
    let st = Command::new("chown").args(["-R", "hermes:hermes"]).arg(p).status().unwrap();
    assert!(st.success());
}

/// Crash-policy timings short enough for a test (configuration, not minutes of sleeping):
/// quarantine at the 3rd crash within a minute; probes after 10 s, then 20 s; a run up 3 s is
/// healthy; backoff from 1 s, capped at 2 s. The cool-down is the window in which a test sees
/// the first quarantine before its probe: wide enough for a loaded 2-core machine. For
/// [`World::crash_policy`].
pub const SHORT_POLICY: &[(&str, &str)] = &[
    ("BACKOFF_INITIAL", "1s"),
    ("BACKOFF_MAX", "2s"),
    ("STABLE_AFTER", "3s"),
    ("LIMIT", "3"),
    ("WINDOW", "1m"),
    ("COOLDOWN", "10s"),
    ("COOLDOWN_MAX", "20s"),
];

/// A command's output as a person reads it: its stdout, then its stderr.
pub fn text(o: &std::process::Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr))
}

impl World {
    /// A world `setup` populates, booted under real s6 with this `hermes-reconcile`.
    pub fn booted(bin: &str, setup: impl FnOnce(&Fixture)) -> World {
        let mut w = World::new(setup);
        w.set_bin(bin);
        w.boot();
        w
    }

    /// [`World::booted`], then wait (at most 10 s) for `profile`'s gateway to be up and ready
    /// (so it has written its state file: nothing of its start is still under way).
    pub fn booted_with_up(bin: &str, profile: &str, setup: impl FnOnce(&Fixture)) -> World {
        let w = World::booted(bin, setup);
        assert!(
            super::svscan::wait_for(std::time::Duration::from_secs(10), || super::svscan::is_ready(&w.f.slot(profile))),
            "gateway-{profile} did not come up ready"
        );
        w
    }

    /// `setup` populates the home (as root); it is then handed to the hermes user.
    pub fn new(setup: impl FnOnce(&Fixture)) -> World {
        let mut f = Fixture::new();
        fs::set_permissions(f.tmp.path(), fs::Permissions::from_mode(0o755)).unwrap();
        setup(&f);
        chown_tree(&f.home);
        let gw = f.tmp.path().join("fake-gateway");
        fs::write(&gw, FAKE_GATEWAY).unwrap();
        fs::set_permissions(&gw, fs::Permissions::from_mode(0o755)).unwrap();
        f.cfg.interpreter = "/bin/sh".into();
        f.cfg.gateway_program = gw.to_string_lossy().into_owned();
        f.cfg.registrar_fifo = f.tmp.path().join("run/registrar");
        // The stand-in writes no heartbeat.
        let env = vec![("HERMES_GATEWAY_HEARTBEAT_TIMEOUT".to_string(), "0".to_string())];
        World { f, sv: None, bin: None, env }
    }

    /// Use this `hermes-reconcile` for the CLI, the registrar and the slots' `finish` (the
    /// crash policy).
    pub fn set_bin(&mut self, bin: &str) {
        self.bin = Some(bin.into());
        self.f.cfg.reconcile_program = bin.to_string();
    }

    /// Crash-policy timings for everything this world starts (`HERMES_CRASH_<name>`); the
    /// in-process configuration follows.
    pub fn crash_policy(&mut self, knobs: &[(&str, &str)]) {
        for (k, v) in knobs {
            self.env.push((format!("HERMES_CRASH_{k}"), v.to_string()));
        }
        let env: std::collections::HashMap<String, String> = self.env.iter().cloned().collect();
        self.f.cfg.policy = hermes_core::config::Config::resolve(&|k: &str| env.get(k).cloned(), Default::default(), &|_| None)
            .expect("valid crash-policy knobs")
            .policy;
    }

    /// What every process this world starts gets in its environment.
    fn apply_env(&self, c: &mut Command) {
        c.env("HERMES_HOME", &self.f.home)
            .env("S6_PROFILE_GATEWAY_SCANDIR", &self.f.scandir)
            .env("HERMES_S6_INTERPRETER", &self.f.cfg.interpreter)
            .env("HERMES_S6_GATEWAY_PROGRAM", &self.f.cfg.gateway_program)
            .env("HERMES_S6_REGISTRAR", &self.f.cfg.registrar_fifo)
            .env("HERMES_S6_RECONCILE", &self.f.cfg.reconcile_program);
        for (k, v) in &self.env {
            c.env(k, v);
        }
    }

    /// Start s6-svscan and run one boot pass. The pass returns once every slot it published
    /// (and its logger) is supervised, so a command right after it finds a listening
    /// supervisor: that is checked here, with no waiting.
    pub fn boot(&mut self) {
        let _ = self.boot_with(&hermes_core::boot::plan::Container::default());
    }

    /// [`World::boot`] with these container facts (multiplexing, say); the pass's report.
    pub fn boot_with(&mut self, container: &hermes_core::boot::plan::Container) -> hermes_core::boot::PassReport {
        let mut env: Vec<(&str, &std::ffi::OsStr)> =
            vec![("HERMES_HOME", self.f.home.as_os_str()), ("S6_PROFILE_GATEWAY_SCANDIR", self.f.scandir.as_os_str())];
        env.extend(self.env.iter().map(|(k, v)| (k.as_str(), std::ffi::OsStr::new(v))));
        self.sv = Some(Svscan::start(&self.f.scandir, &env));
        let r = self.f.run_with(container, &hermes_core::boot::Options::default());
        assert!(r.errors.is_empty(), "{:?}", r.errors);
        assert_eq!(r.rescan, Some(hermes_core::s6::svscan::Rescan::Sent));
        assert!(r.unsupervised.is_empty(), "the pass gave up waiting for {:?}", r.unsupervised);
        for e in r.entries.iter().filter(|e| e.wants_slot()) {
            let s = self.f.slot(&e.profile);
            assert!(
                super::svscan::is_up(&s).is_some() && super::svscan::is_up(&s.join("log")).is_some(),
                "{} was not supervised when the pass returned",
                s.display()
            );
        }
        r
    }

    /// A container restart: the tree stops, the scandir is a fresh tmpfs, s6-svscan starts
    /// again and the boot pass runs. The volume stays.
    pub fn container_restart(&mut self) {
        let _ = self.container_restart_with(&hermes_core::boot::plan::Container::default());
    }

    /// [`World::container_restart`] with these container facts; the boot pass's report.
    pub fn container_restart_with(&mut self, container: &hermes_core::boot::plan::Container) -> hermes_core::boot::PassReport {
        if let Some(mut sv) = self.sv.take() {
            sv.stop();
        }
        fs::remove_dir_all(&self.f.scandir).unwrap();
        fs::create_dir(&self.f.scandir).unwrap();
        self.boot_with(container)
    }

    /// How many s6-supervise processes of this world's scandir run `name` (its logger's
    /// included when `name` has no `/log`): other tests run their own scanners with the same
    /// slot names at the same time, so a process counts only if it works under this scandir.
    pub fn supervisors(&self, name: &str) -> usize {
        let o = Command::new("pgrep").args(["-f", &format!("^s6-supervise {name}(/log)?$")]).output().unwrap();
        String::from_utf8_lossy(&o.stdout)
            .split_whitespace()
            .filter(|pid| fs::read_link(format!("/proc/{pid}/cwd")).is_ok_and(|cwd| cwd.starts_with(&self.f.scandir)))
            .count()
    }

    /// `hermes-reconcile status P --json`'s entry for `profile` (as the hermes user).
    pub fn status_json(&self, profile: &str) -> serde_json::Value {
        let o = self.cli(true, &["--json", "status", profile]);
        let v: serde_json::Value =
            serde_json::from_slice(&o.stdout).unwrap_or_else(|_| panic!("status --json: {}", String::from_utf8_lossy(&o.stderr)));
        v["profiles"][0].clone()
    }

    /// `hermes-reconcile` with this world's configuration; `as_hermes` runs it as uid 10000.
    pub fn cli(&self, as_hermes: bool, args: &[&str]) -> std::process::Output {
        let bin = self.bin.as_deref().expect("World::cli needs World::bin (the hermes-reconcile binary)");
        self.run(bin, as_hermes, args)
    }

    /// Any program (the `hermes` front, say) with this world's configuration.
    pub fn run(&self, bin: &std::path::Path, as_hermes: bool, args: &[&str]) -> std::process::Output {
        let mut c = if as_hermes {
            let mut c = Command::new("s6-setuidgid");
            c.arg("hermes").arg(bin);
            c
        } else {
            Command::new(bin)
        };
        self.apply_env(&mut c);
        c.args(args).output().unwrap()
    }

    /// Wait until the stand-in gateway of `profile` runs as s6's current pid with its SIGTERM
    /// handler in place, and s6 marks it ready.
    pub fn wait_gateway_ready(&self, profile: &str) -> bool {
        let slot = self.f.slot(profile);
        let ready = self.f.profile_dir(profile).join("fake-gateway.ready");
        super::svscan::wait_for(std::time::Duration::from_secs(10), || {
            let pid = Command::new("s6-svstat")
                .args(["-o", "pid"])
                .arg(&slot)
                .output()
                .ok()
                .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string());
            // Its ready file names this run, and s6 says ready: the bridge saw its state file
            // say `running`, so its start wrote everything it writes (nothing races a caller
            // that goes on to change or remove the profile).
            pid.is_some_and(|p| fs::read_to_string(&ready).is_ok_and(|r| r.trim() == p)) && super::svscan::is_ready(&slot)
        })
    }

    /// Start the registrar (`hermes-reconcile watch`) as root, its output in
    /// `<tmp>/registrar.log`, and wait until its doorbell listens.
    pub fn spawn_registrar(&self) -> Registrar {
        let bin = self.bin.as_deref().expect("World::spawn_registrar needs World::bin");
        let log = fs::File::create(self.f.tmp.path().join("registrar.log")).unwrap();
        let mut c = Command::new(bin);
        c.arg("watch");
        self.apply_env(&mut c);
        let child = c.stdout(log.try_clone().unwrap()).stderr(log).spawn().unwrap();
        let r = Registrar(child);
        let log = self.f.tmp.path().join("registrar.log");
        assert!(
            super::svscan::wait_for(std::time::Duration::from_secs(10), || fs::read_to_string(&log)
                .is_ok_and(|l| l.contains("registrar: watching"))),
            "the registrar did not start: {}",
            fs::read_to_string(&log).unwrap_or_default()
        );
        r
    }

    /// What the registrar printed so far.
    pub fn registrar_log(&self) -> String {
        fs::read_to_string(self.f.tmp.path().join("registrar.log")).unwrap_or_default()
    }

    pub fn state_json(&self, profile: &str) -> serde_json::Value {
        let p = self.f.profile_dir(profile).join("gateway_state.json");
        serde_json::from_str(&fs::read_to_string(&p).unwrap_or_else(|_| "null".into())).unwrap()
    }
}

/// A running registrar; SIGTERMed and reaped when dropped.
pub struct Registrar(pub std::process::Child);

impl Registrar {
    pub fn pid(&self) -> nix::unistd::Pid {
        nix::unistd::Pid::from_raw(self.0.id() as i32)
    }
}

impl Drop for Registrar {
    fn drop(&mut self) {
        let _ = nix::sys::signal::kill(self.pid(), nix::sys::signal::Signal::SIGTERM);
        let _ = self.0.wait();
    }
}

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
/// configuration error.
pub const FAKE_GATEWAY: &str = r#"#!/bin/sh
dir="$HERMES_HOME"
[ "$1" = "-p" ] && dir="$HERMES_HOME/profiles/$2"
[ -f "$dir/exit78" ] && exit 78
sleep 3600 &
child=$!
trap 'kill $child 2>/dev/null; if [ -f "$dir/.gateway-planned-stop.json" ]; then rm -f "$dir/.gateway-planned-stop.json"; exit 0; fi; exit 1' TERM
wait $child
"#;

pub struct World {
    pub f: Fixture,
    pub sv: Option<Svscan>,
}

impl Drop for World {
    fn drop(&mut self) {
        // The scanner must stop before the fixture's temporary tree is deleted under it.
        if let Some(mut sv) = self.sv.take() {
            sv.stop();
        }
    }
}

pub fn prerequisites() -> bool {
    require(is_root(), "real-s6 tests run the pass as root (as in the container)")
        && require(have_program("s6-svscan"), "s6-svscan is not installed (apt-get install s6 execline)")
        && require(hermes_core::config::lookup_user("hermes").is_some(), "no `hermes` user (uid 10000) exists")
}

pub fn chown_tree(p: &std::path::Path) {
    let st = Command::new("chown").args(["-R", "hermes:hermes"]).arg(p).status().unwrap();
    assert!(st.success());
}

impl World {
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
        World { f, sv: None }
    }

    /// Start s6-svscan, run one boot pass, and wait until every published slot (and its
    /// logger) is supervised: the scanner may have scanned mid-pass and picks up the rest
    /// only when it processes the pass's rescan request.
    pub fn boot(&mut self) {
        self.sv = Some(Svscan::start(&self.f.scandir, &[("HERMES_HOME", &self.f.home)]));
        let r = self.f.run();
        assert!(r.errors.is_empty(), "{:?}", r.errors);
        assert_eq!(r.rescan, Some(hermes_core::s6::svscan::Rescan::Sent));
        let slots: Vec<std::path::PathBuf> = r.entries.iter().filter(|e| e.wants_slot()).map(|e| self.f.slot(&e.profile)).collect();
        let all = super::svscan::wait_for(std::time::Duration::from_secs(10), || {
            slots.iter().all(|s| super::svscan::is_up(s).is_some() && super::svscan::is_up(&s.join("log")).is_some())
        });
        assert!(all, "not every slot got a supervisor within 10 s");
    }

    /// `hermes-reconcile` with this world's configuration; `as_hermes` runs it as uid 10000.
    pub fn cli(&self, as_hermes: bool, args: &[&str]) -> std::process::Output {
        let bin = env!("CARGO_BIN_EXE_hermes-reconcile");
        let mut c = if as_hermes {
            let mut c = Command::new("s6-setuidgid");
            c.args(["hermes", bin]);
            c
        } else {
            Command::new(bin)
        };
        c.env("HERMES_HOME", &self.f.home)
            .env("S6_PROFILE_GATEWAY_SCANDIR", &self.f.scandir)
            .env("HERMES_S6_INTERPRETER", &self.f.cfg.interpreter)
            .env("HERMES_S6_GATEWAY_PROGRAM", &self.f.cfg.gateway_program)
            .env("HERMES_S6_REGISTRAR", &self.f.cfg.registrar_fifo)
            .args(args)
            .output()
            .unwrap()
    }

    pub fn state_json(&self, profile: &str) -> serde_json::Value {
        let p = self.f.profile_dir(profile).join("gateway_state.json");
        serde_json::from_str(&fs::read_to_string(&p).unwrap_or_else(|_| "null".into())).unwrap()
    }
}

//! Property tests: generated homes (states, names good and bad, links, FIFOs, leftovers) and
//! the pass's invariants: it never aborts, one slot per valid profile and nothing else, `down`
//! exactly when the profile is not wanted running, nothing written outside home and scandir.

use hermes_core::boot::plan::{Action, Container};
use hermes_core::boot::{self, Options};
use hermes_core::config::Config;
use hermes_core::fs::faulty::FaultyFs;
use hermes_core::fs::RealFs;
use hermes_core::name;
use proptest::prelude::*;
use std::collections::BTreeSet;
use std::fs;
use std::os::unix::fs::symlink;

#[derive(Debug, Clone)]
enum Entry {
    /// A profile directory with SOUL.md and an optional state file body.
    Profile { name: String, state: Option<String> },
    /// A symlink under profiles/ pointing at a real profile outside.
    Link { name: String },
    /// A directory without SOUL.md.
    NotAProfile { name: String },
    /// A FIFO as the state file.
    FifoState { name: String },
}

fn name() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => "[a-z0-9][a-z0-9_-]{0,10}",
        1 => "[A-Za-z0-9 ._-]{1,12}",
        1 => Just("default".to_string()),
        1 => "[a-z]{65,70}",
    ]
}

fn state() -> impl Strategy<Value = Option<String>> {
    prop_oneof![
        Just(None),
        Just(Some(r#"{"gateway_state":"running"}"#.to_string())),
        Just(Some(r#"{"gateway_state":"stopped"}"#.to_string())),
        Just(Some(r#"{"gateway_state":"draining"}"#.to_string())),
        Just(Some(r#"{"desired_state":"running","gateway_state":"startup_failed"}"#.to_string())),
        Just(Some(r#"{"desired_state":"stopped","gateway_state":"running"}"#.to_string())),
        Just(Some("{ not json".to_string())),
        Just(Some("[1,2]".to_string())),
        "\\PC{0,40}".prop_map(Some),
    ]
}

fn entry() -> impl Strategy<Value = Entry> {
    prop_oneof![
        6 => (name(), state()).prop_map(|(name, state)| Entry::Profile { name, state }),
        1 => name().prop_map(|name| Entry::Link { name }),
        1 => name().prop_map(|name| Entry::NotAProfile { name }),
        1 => name().prop_map(|name| Entry::FifoState { name }),
    ]
}

fn wants_running(body: &Option<String>) -> bool {
    let Some(b) = body else { return false };
    let Ok(serde_json::Value::Object(m)) = serde_json::from_str::<serde_json::Value>(b) else { return false };
    hermes_core::volume::state::effective_state(&m).is_some_and(|w| w.autostarts())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]

    #[test]
    fn pass_invariants(entries in proptest::collection::vec(entry(), 0..12), leftovers in proptest::collection::vec("[a-z]{1,6}", 0..3), root_state in state()) {
        let tmp = tempfile::tempdir().unwrap();
        let home = tmp.path().join("home");
        let scandir = tmp.path().join("service");
        let outside = tmp.path().join("outside");
        fs::create_dir_all(home.join("profiles")).unwrap();
        fs::create_dir_all(&scandir).unwrap();
        fs::create_dir_all(&outside).unwrap();
        fs::write(outside.join("SOUL.md"), "x").unwrap();
        if let Some(b) = &root_state {
            fs::write(home.join("gateway_state.json"), b).unwrap();
        }
        for l in &leftovers {
            fs::create_dir_all(scandir.join(format!(".gateway-{l}.tmp/supervise"))).unwrap();
        }
        // Expected: valid, unique names that are real profiles (the last write wins on duplicates).
        let mut expected: std::collections::BTreeMap<String, bool> = Default::default();
        let mut seen = BTreeSet::new();
        for e in &entries {
            let (n, kind) = match e {
                Entry::Profile { name, .. } | Entry::Link { name } | Entry::NotAProfile { name } | Entry::FifoState { name } => (name.clone(), e),
            };
            if !seen.insert(n.clone()) || n.contains('/') || n == "." || n == ".." {
                continue;
            }
            let d = home.join("profiles").join(&n);
            match kind {
                Entry::Profile { state, .. } => {
                    fs::create_dir_all(&d).unwrap();
                    fs::write(d.join("SOUL.md"), "x").unwrap();
                    if let Some(b) = state { fs::write(d.join("gateway_state.json"), b).unwrap(); }
                    if name::validate(&n).is_ok() && n != "default" {
                        expected.insert(n.clone(), wants_running(state));
                    }
                }
                Entry::Link { .. } => symlink(&outside, &d).unwrap(),
                Entry::NotAProfile { .. } => fs::create_dir_all(&d).unwrap(),
                Entry::FifoState { .. } => {
                    fs::create_dir_all(&d).unwrap();
                    fs::write(d.join("SOUL.md"), "x").unwrap();
                    nix::unistd::mkfifo(&d.join("gateway_state.json"), nix::sys::stat::Mode::from_bits_truncate(0o644)).unwrap();
                    if name::validate(&n).is_ok() && n != "default" {
                        expected.insert(n.clone(), false);
                    }
                }
            }
        }
        expected.insert("default".into(), wants_running(&root_state));

        let cfg = Config { home: home.clone(), scandir: scandir.clone(), ..Config::default() };
        let rec = FaultyFs::new(&RealFs, None);
        if hermes_testkit::is_root() {
            hermes_testkit::give(&home, cfg.uid, cfg.gid);
        }
        let report = boot::run(&hermes_core::ctx::Ctx::new(&rec, &hermes_core::clock::SystemClock, &cfg), &Container::default(), &Options::default());
        prop_assert!(report.is_ok(), "the pass aborted");
        let report = report.unwrap();
        prop_assert!(report.errors.is_empty(), "errors: {:?}", report.errors);

        // Exactly one slot per valid profile, nothing else in the scandir.
        let names: BTreeSet<String> = fs::read_dir(&scandir).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
        let want: BTreeSet<String> = expected.keys().map(|p| format!("gateway-{p}")).collect();
        prop_assert_eq!(&names, &want);
        // down iff not wanted running; the report agrees.
        for (p, running) in &expected {
            let down = scandir.join(format!("gateway-{p}/down")).exists();
            prop_assert_eq!(down, !running, "profile {}", p);
            let entry = report.entries.iter().find(|e| &e.profile == p).unwrap();
            prop_assert_eq!(entry.action, if *running { Action::Started } else { Action::Registered });
        }
        // Nothing written outside.
        for (op, path) in rec.log() {
            prop_assert!(path.starts_with(&home) || path.starts_with(&scandir), "{} on {}", op, path.display());
        }
        let outside_names: Vec<_> = fs::read_dir(&outside).unwrap().collect();
        prop_assert_eq!(outside_names.len(), 1);
    }
}

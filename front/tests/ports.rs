//! Per-profile ports and the per-profile environment against Debian's real s6: two profiles
//! that enable hermes-agent's api_server answer on their own ports (kept across a container
//! restart, shown by `status`); two profiles set to one port are reported, naming both; and a
//! named profile's gateway gets only the allow-listed part of the container environment.

use hermes_testkit as common;

use common::svscan::{is_up, wait_for};
use common::world::{prerequisites, workspace_binary, World};
use std::fs;
use std::process::Output;
use std::time::Duration;

fn text(o: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr))
}

fn profile_env(w: &World, profile: &str, body: &str) {
    let p = w.f.profile_dir(profile).join(".env");
    fs::write(&p, body).unwrap();
    common::world::chown_tree(&p);
}

/// The stand-in gateway's `/health` on `port` names `profile`.
fn answers(port: u16, profile: &str) -> bool {
    wait_for(Duration::from_secs(10), || {
        hermes_front::gateway::probe(port)
            .ok()
            .and_then(|b| serde_json::from_str::<serde_json::Value>(&b).ok())
            .is_some_and(|v| v["profile"] == profile)
    })
}

fn status(w: &World) -> serde_json::Value {
    let o = w.cli(true, &["--json", "status"]);
    serde_json::from_slice(&o.stdout).unwrap_or_else(|_| panic!("status --json: {}", text(&o)))
}

fn port_of(st: &serde_json::Value, profile: &str) -> serde_json::Value {
    st["profiles"].as_array().unwrap().iter().find(|p| p["profile"] == profile).map(|p| p["port"].clone()).unwrap_or_default()
}

#[test]
#[ignore = "needs root, s6 and the hermes user"]
fn two_api_server_profiles_answer_on_their_own_ports_and_keep_them_across_a_restart() {
    prerequisites();
    let mut w = World::new(|f| {
        f.state("default", Some("stopped"), None);
        f.profile("coder", Some("running"), None);
        f.profile("writer", Some("running"), None);
    });
    w.set_bin(workspace_binary("hermes-reconcile").to_str().unwrap());
    w.f.cfg.gateway_program = env!("CARGO_BIN_EXE_hermes-gateway").into();
    // Both enable the API server and leave the port to us (upstream: both would bind 8642).
    profile_env(&w, "coder", "API_SERVER_ENABLED=true\nAPI_SERVER_KEY=coder-key\n");
    profile_env(&w, "writer", "API_SERVER_ENABLED=true\nAPI_SERVER_KEY=writer-key\n");
    w.boot();
    let st = status(&w);
    let (coder, writer) = (port_of(&st, "coder"), port_of(&st, "writer"));
    assert_eq!(coder["source"], "assigned", "{st}");
    assert_eq!(port_of(&st, "default")["port"], 8642, "the default profile keeps upstream's port: {st}");
    let (cp, wp) = (coder["port"].as_u64().unwrap() as u16, writer["port"].as_u64().unwrap() as u16);
    assert_ne!(cp, wp);
    assert!(answers(cp, "coder") && answers(wp, "writer"), "both gateways up on their ports: {st}");
    let human = text(&w.cli(true, &["status"]));
    assert!(human.contains(" PORT ") && human.contains(&format!(" {cp} ")), "{human}");
    use std::os::unix::fs::MetadataExt;
    assert_eq!(
        fs::metadata(w.f.home.join("gateway_ports.json")).unwrap().uid(),
        10000,
        "the record is the user's, written as the volume's owner"
    );

    // The same ports after a container restart (the record is on the volume), and the same
    // ones `status` shows.
    w.container_restart();
    assert_eq!(port_of(&status(&w), "coder"), coder);
    assert_eq!(port_of(&status(&w), "writer"), writer);
    assert!(answers(cp, "coder") && answers(wp, "writer"));
}

#[test]
#[ignore = "needs root, s6 and the hermes user"]
fn a_port_a_profile_sets_itself_wins_and_a_collision_names_both_profiles() {
    prerequisites();
    let mut w = World::new(|f| {
        f.state("default", Some("stopped"), None);
        f.profile("alpha", Some("running"), None);
        f.profile("beta", None, None);
        f.profile("gamma", Some("running"), None);
    });
    w.set_bin(workspace_binary("hermes-reconcile").to_str().unwrap());
    w.f.cfg.gateway_program = env!("CARGO_BIN_EXE_hermes-gateway").into();
    profile_env(&w, "alpha", "export API_SERVER_PORT=38712\n");
    let cfg = w.f.profile_dir("beta").join("config.yaml");
    fs::write(&cfg, "platforms:\n  api_server:\n    enabled: true\n    extra:\n      port: 38712\n").unwrap();
    common::world::chown_tree(&cfg);
    profile_env(&w, "gamma", "export API_SERVER_PORT=38713\n");
    w.boot();
    assert!(answers(38712, "alpha") && answers(38713, "gamma"), "own ports are the gateways' own");

    // The boot pass says so on its output, `status` in its table and its JSON.
    let o = w.cli(false, &[]);
    let want = "profiles 'alpha' (.env) and 'beta' (config.yaml) both set API server port 38712";
    assert!(text(&o).contains(want), "{}", text(&o));
    let human = text(&w.cli(true, &["status"]));
    assert!(human.contains(&format!("warning: {want}")), "{human}");
    let st = status(&w);
    assert_eq!(port_of(&st, "alpha")["shared_with"], serde_json::json!(["beta"]), "{st}");
    assert_eq!(port_of(&st, "beta")["source"], "config.yaml", "{st}");
    assert!(port_of(&st, "gamma").get("shared_with").is_none(), "{st}");
    assert!(st["port_collisions"][0].as_str().unwrap().contains(want), "{st}");
}

/// The environment of the process s6 runs for `profile`.
fn environ(w: &World, profile: &str) -> Vec<String> {
    let slot = w.f.slot(profile);
    assert!(wait_for(Duration::from_secs(10), || is_up(&slot) == Some(true) && w.wait_gateway_ready(profile)));
    let pid = std::process::Command::new("s6-svstat").args(["-o", "pid"]).arg(&slot).output().unwrap();
    let pid = String::from_utf8_lossy(&pid.stdout).trim().to_string();
    let raw = fs::read(format!("/proc/{pid}/environ")).unwrap();
    raw.split(|b| *b == 0).filter(|kv| !kv.is_empty()).map(|kv| String::from_utf8_lossy(kv).into_owned()).collect()
}

#[test]
#[ignore = "needs root, s6 and the hermes user"]
fn a_named_profile_gets_the_allow_list_and_the_default_profile_the_container_environment() {
    prerequisites();
    let mut w = World::new(|f| {
        f.state("default", Some("running"), None);
        f.profile("coder", Some("running"), None);
    });
    w.set_bin(workspace_binary("hermes-reconcile").to_str().unwrap());
    // The container's environment, as the scanner (so every slot) gets it.
    for (k, v) in [
        ("API_SERVER_KEY", "container-secret"),
        ("API_SERVER_HOST", "0.0.0.0"),
        ("TELEGRAM_BOT_TOKEN", "one-bot"),
        ("TZ", "Europe/Paris"),
        ("OPENROUTER_API_KEY", "shared-provider-key"),
        ("HERMES_S6_PROFILE_ENV", "OPENROUTER_API_KEY"),
    ] {
        w.env.push((k.into(), v.into()));
    }
    w.f.cfg.profile_env = vec!["OPENROUTER_API_KEY".into()];
    w.boot();
    let named = environ(&w, "coder");
    let has = |env: &[String], kv: &str| env.iter().any(|e| e == kv);
    let names = |env: &[String], k: &str| env.iter().any(|e| e.starts_with(&format!("{k}=")));
    for gone in ["API_SERVER_KEY", "API_SERVER_HOST", "TELEGRAM_BOT_TOKEN"] {
        assert!(!names(&named, gone), "{gone} reached a named profile: {named:?}");
    }
    assert!(has(&named, "TZ=Europe/Paris"), "allowed: {named:?}");
    assert!(has(&named, "OPENROUTER_API_KEY=shared-provider-key"), "allowed by HERMES_S6_PROFILE_ENV: {named:?}");
    assert!(has(&named, &format!("HERMES_HOME={}", w.f.home.display())) && has(&named, "HERMES_S6_SUPERVISED_CHILD=1"), "{named:?}");
    let port = named.iter().find_map(|e| e.strip_prefix("API_SERVER_PORT=")).expect("an assigned port");
    assert_eq!(port_of(&status(&w), "coder")["port"].to_string(), port);

    // The default profile is upstream's single gateway: the container's settings are its own.
    let default = environ(&w, "default");
    for kv in [
        "API_SERVER_KEY=container-secret",
        "API_SERVER_HOST=0.0.0.0",
        "TELEGRAM_BOT_TOKEN=one-bot",
        "TZ=Europe/Paris",
        "API_SERVER_PORT=8642",
    ] {
        assert!(has(&default, kv), "{kv} missing for the default profile: {default:?}");
    }
}

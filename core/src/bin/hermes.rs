//! `hermes`: the image's front for upstream's CLI surface around supervision.
//!
//!   hermes profile create P | profile delete P --yes | profile list
//!   hermes [-p P] gateway start|stop|restart [--all] | gateway status | gateway run
//!   hermes status | hermes dashboard [--host H] [--port N]
//!
//! Run as root (e.g. `docker exec <c> hermes …`) it drops to the hermes user first, unless
//! HERMES_DOCKER_EXEC_AS_ROOT is 1/true/yes. Gateways run the reference gateway
//! (`hermes-gateway`, next to this binary).

use hermes_core::config::{self, Config};
use hermes_core::lifecycle::{self, desired::Written, Error};
use hermes_core::profile;
use hermes_core::safe_fs::RealFs;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Command, ExitCode};

const USAGE: &str = "\
usage: hermes [-p PROFILE] COMMAND
  profile create NAME        create a profile (and have its gateway slot registered, down)
  profile delete NAME --yes  stop its gateway, delete the profile and its slot
  profile list               profiles with a registered slot
  gateway start|stop|restart [--all]
                             control the profile's gateway under s6 (records the wanted state)
  gateway status             wanted state, s6 state and reason for the profile
  gateway run [--no-supervise]
                             run the gateway (under s6: ask s6 to run it, then wait)
  status                     the service manager and every profile's gateway
  dashboard [--port N]       run the dashboard
Environment: HERMES_HOME (default /opt/data), S6_PROFILE_GATEWAY_SCANDIR (/run/service),
HERMES_DOCKER_EXEC_AS_ROOT=1 keeps root for `docker exec`.";

fn truthy(v: Option<String>) -> bool {
    v.is_some_and(|v| matches!(v.to_ascii_lowercase().as_str(), "1" | "true" | "yes"))
}

/// `docker exec` runs as root; the user's commands must not, or files they create in the
/// volume end up root-owned and the user's gateways lose access to them.
fn drop_root() -> Result<(), String> {
    if !nix::unistd::geteuid().is_root() || truthy(std::env::var("HERMES_DOCKER_EXEC_AS_ROOT").ok()) {
        return Ok(());
    }
    let user = std::env::var("HERMES_S6_USER").unwrap_or_else(|_| config::DEFAULT_USER.into());
    let u = nix::unistd::User::from_name(&user)
        .map_err(|e| e.to_string())?
        .ok_or_else(|| format!("no user '{user}' to drop to (set HERMES_DOCKER_EXEC_AS_ROOT=1 to stay root)"))?;
    nix::unistd::setgroups(&[u.gid]).map_err(|e| format!("setgroups: {e}"))?;
    nix::unistd::setgid(u.gid).map_err(|e| format!("setgid: {e}"))?;
    nix::unistd::setuid(u.uid).map_err(|e| format!("setuid: {e}"))?;
    std::env::set_var("HOME", &u.dir);
    Ok(())
}

fn config() -> Config {
    let env_path = |k: &str, d: &str| PathBuf::from(std::env::var(k).unwrap_or_else(|_| d.into()));
    let user = std::env::var("HERMES_S6_USER").unwrap_or_else(|_| config::DEFAULT_USER.into());
    let (uid, gid) = config::lookup_user(&user).unwrap_or((config::DEFAULT_UID, config::DEFAULT_UID));
    Config {
        home: config::root_home(&env_path("HERMES_HOME", config::DEFAULT_HOME)),
        scandir: env_path("S6_PROFILE_GATEWAY_SCANDIR", config::DEFAULT_SCANDIR),
        registrar_fifo: env_path("HERMES_S6_REGISTRAR", config::DEFAULT_REGISTRAR_FIFO),
        max_services: std::env::var("HERMES_S6_MAX_SERVICES").ok().and_then(|s| s.parse().ok()).unwrap_or(config::DEFAULT_MAX_SERVICES),
        user,
        uid,
        gid,
        ..Config::default()
    }
}

/// s6 is the service manager when it is PID 1 (read as any user: `/proc/1/comm`, never
/// `/proc/1/exe`) and its base directory exists.
fn s6_running() -> bool {
    std::fs::read_to_string("/proc/1/comm").is_ok_and(|c| c.trim() == "s6-svscan") && std::path::Path::new("/run/s6/basedir").is_dir()
}

fn gateway_binary() -> PathBuf {
    std::env::current_exe()
        .ok()
        .and_then(|p| p.parent().map(|d| d.join("hermes-gateway")))
        .filter(|p| p.exists())
        .unwrap_or_else(|| PathBuf::from("hermes-gateway"))
}

fn main() -> ExitCode {
    if let Err(e) = drop_root() {
        eprintln!("\u{2717} {e}");
        return ExitCode::from(1);
    }
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    let mut profile_arg: Option<String> = None;
    if let Some(i) = args.iter().position(|a| a == "-p" || a == "--profile") {
        if i + 1 < args.len() {
            profile_arg = Some(args.remove(i + 1));
        }
        args.remove(i);
    }
    let cfg = config();
    let words: Vec<&str> = args.iter().map(String::as_str).collect();
    let result = match words.as_slice() {
        ["profile", "create", name] => create(&cfg, name),
        ["profile", "delete", name, rest @ ..] => {
            if rest.contains(&"--yes") || rest.contains(&"-y") {
                delete(&cfg, name)
            } else {
                Err(format!("this deletes profile '{name}' and everything in it; repeat with --yes to confirm"))
            }
        }
        ["profile", "list"] => lifecycle::open_scandir(&RealFs, &cfg)
            .and_then(|s| lifecycle::registered(&RealFs, &s).map_err(|e| Error::io(&cfg.scandir, "list", e)))
            .map(|v| v.iter().for_each(|p| println!("{p}")))
            .map_err(|e| e.to_string()),
        ["gateway", verb @ ("start" | "stop" | "restart"), rest @ ..] => gateway_verb(&cfg, verb, profile_arg.as_deref(), rest.contains(&"--all")),
        ["gateway", "status", ..] => status(&cfg, Some(profile_arg.as_deref().unwrap_or("default")), false),
        ["gateway", "run", rest @ ..] => return run_gateway(&cfg, profile_arg.as_deref().unwrap_or("default"), rest),
        ["status", ..] => status(&cfg, None, true),
        ["dashboard", rest @ ..] => {
            let port = rest.iter().position(|a| *a == "--port").and_then(|i| rest.get(i + 1)).unwrap_or(&"9119").to_string();
            let err = Command::new(gateway_binary()).args(["--dashboard", "--port", &port]).exec();
            Err(format!("cannot run the dashboard: {err}"))
        }
        [] | ["help"] | ["--help"] | ["-h"] => {
            println!("{USAGE}");
            Ok(())
        }
        _ => Err(format!("unknown command: hermes {}\n{USAGE}", args.join(" "))),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("\u{2717} {e}");
            ExitCode::from(1)
        }
    }
}

fn create(cfg: &Config, name: &str) -> Result<(), String> {
    let path = profile::create(&RealFs, cfg, name).map_err(|e| e.to_string())?;
    println!("\u{2713} created profile '{name}' at {}", path.display());
    if s6_running() || cfg.registrar_fifo.exists() {
        lifecycle::watch::ring(cfg).map_err(|e| e.to_string())?;
        lifecycle::watch::wait_for_slot(cfg, name, true, lifecycle::watch::CLIENT_WAIT).map_err(|e| e.to_string())?;
        println!("\u{2713} registered the s6 gateway slot for profile '{name}' (down; start it with `hermes -p {name} gateway start`)");
    }
    Ok(())
}

fn delete(cfg: &Config, name: &str) -> Result<(), String> {
    profile::delete(&RealFs, cfg, name).map_err(|e| e.to_string())?;
    println!("\u{2713} deleted profile '{name}'");
    if s6_running() || cfg.registrar_fifo.exists() {
        lifecycle::watch::ring(cfg).map_err(|e| e.to_string())?;
        lifecycle::watch::wait_for_slot(cfg, name, false, lifecycle::watch::CLIENT_WAIT).map_err(|e| e.to_string())?;
        println!("\u{2713} removed the s6 gateway slot for profile '{name}'");
    }
    Ok(())
}

fn one(cfg: &Config, verb: &str, profile: &str) -> Result<Written, Error> {
    match verb {
        "start" => lifecycle::start::start(&RealFs, cfg, profile),
        "stop" => lifecycle::stop::stop(&RealFs, cfg, profile),
        _ => lifecycle::restart::restart(&RealFs, cfg, profile),
    }
}

fn gateway_verb(cfg: &Config, verb: &str, profile: Option<&str>, all: bool) -> Result<(), String> {
    let past = match verb {
        "start" => "Started",
        "stop" => "Stopped",
        _ => "Restarted",
    };
    if all {
        if verb == "start" {
            return Err("`gateway start --all` is not supported; start profiles one by one with -p".into());
        }
        let all = lifecycle::for_all(&RealFs, cfg, |p| one(cfg, verb, p)).map_err(|e| e.to_string())?;
        print!("{}", all.render(verb, past));
        return if all.failed() == 0 { Ok(()) } else { Err(format!("{} gateway(s) failed", all.failed())) };
    }
    let profile = lifecycle::profile_from_arg(profile.unwrap_or("default")).map_err(|e| e.to_string())?;
    match one(cfg, verb, &profile) {
        Err(Error::NotRegistered { .. }) if verb == "start" && lifecycle::register::require_profile(&RealFs, cfg, &profile).is_ok() => {
            // Self-heal: a profile on the volume without a slot (created from outside, or the
            // registrar was down) gets one, then starts.
            lifecycle::watch::ring(cfg).map_err(|e| e.to_string())?;
            lifecycle::watch::wait_for_slot(cfg, &profile, true, lifecycle::watch::CLIENT_WAIT).map_err(|e| e.to_string())?;
            println!("\u{2713} registered the s6 gateway slot for profile '{profile}'");
            one(cfg, verb, &profile).map_err(|e| e.to_string())?;
        }
        other => {
            other.map_err(|e| e.to_string())?;
        }
    }
    println!("\u{2713} {past} gateway-{profile} under s6");
    Ok(())
}

fn status(cfg: &Config, profile: Option<&str>, manager_line: bool) -> Result<(), String> {
    if manager_line {
        let manager = if s6_running() { "s6 (container supervisor)" } else { "none" };
        println!("Manager:      {manager}");
        println!("Home:         {}", cfg.home.display());
        println!();
    }
    let only = profile.map(lifecycle::profile_from_arg).transpose().map_err(|e| e.to_string())?;
    let r = lifecycle::status::status(&RealFs, cfg, only.as_deref()).map_err(|e| e.to_string())?;
    print!("{}", lifecycle::status::render_table(&r));
    Ok(())
}

/// `gateway run`: the supervised child (or an explicit opt-out) runs the gateway in the
/// foreground; anything else under s6 asks s6 to run it and becomes a heartbeat, so the
/// container outlives gateway restarts.
fn run_gateway(cfg: &Config, profile: &str, rest: &[&str]) -> ExitCode {
    let no_supervise = rest.contains(&"--no-supervise") || truthy(std::env::var("HERMES_GATEWAY_NO_SUPERVISE").ok());
    let supervised_child = std::env::var("HERMES_S6_SUPERVISED_CHILD").is_ok_and(|v| !v.is_empty());
    if no_supervise || supervised_child || !s6_running() {
        let mut args = vec!["-p".to_string(), profile.to_string(), "gateway".into(), "run".into()];
        args.extend(rest.iter().filter(|a| **a != "--no-supervise").map(|a| a.to_string()));
        let err = Command::new(gateway_binary()).args(&args).exec();
        eprintln!("\u{2717} cannot run the gateway: {err}");
        return ExitCode::from(1);
    }
    if let Err(e) = gateway_verb(cfg, "start", Some(profile), false) {
        eprintln!("\u{2717} {e}");
        return ExitCode::from(1);
    }
    eprintln!("\u{2192} gateway is now running under s6 supervision (auto-restart on crash,");
    eprintln!("  dashboard supervised alongside if HERMES_DASHBOARD is set).");
    eprintln!("  This is the recommended setup for the s6 container image \u{2014} the");
    eprintln!("  gateway will keep running even if it crashes.");
    eprintln!("  Use `--no-supervise` (or HERMES_GATEWAY_NO_SUPERVISE=1) to opt out");
    eprintln!("  and get the pre-s6 foreground behavior instead.");
    let err = Command::new("sleep").arg("infinity").exec();
    eprintln!("\u{2192} `sleep` is unavailable ({err}); keeping the s6 CMD process alive in-process until the container is stopped.");
    loop {
        std::thread::park();
    }
}

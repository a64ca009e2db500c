//! `hermes-reconcile`: the thin command-line shell over `hermes_core`.

use clap::{Args, Parser, Subcommand};
use hermes_core::boot::{self, Options};
use hermes_core::config::{self, Config};
use hermes_core::lifecycle::{self, desired::Written, Error};
use hermes_core::plan::Container;
use hermes_core::safe_fs::{Fs, LinuxFs};
use hermes_core::{container_argv, multiplex};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

const EXIT_CODES: &str = "\
Exit codes:
  0  done (for the boot pass: every wanted slot was published; skipped profiles are
     reported, not failures)
  1  failed, or partly failed (each problem is printed on stderr with the path concerned;
     with --all, at least one slot failed)
  2  usage or configuration error
  3  the scan directory could not be opened; nothing was changed

Environment (flags win): HERMES_HOME, S6_PROFILE_GATEWAY_SCANDIR, HERMES_UID, HERMES_GID,
HERMES_S6_USER, HERMES_S6_INTERPRETER, HERMES_S6_GATEWAY_PROGRAM, HERMES_S6_MAX_SERVICES,
HERMES_S6_REGISTRAR, GATEWAY_MULTIPLEX_PROFILES, HERMES_GATEWAY_NO_SUPERVISE.";

/// Rebuild and manage the s6 service slots of hermes-agent's per-profile gateways.
///
/// With no subcommand, runs the boot pass (a drop-in for upstream's
/// `python -m hermes_cli.container_boot`): for the root profile at $HERMES_HOME and every
/// $HERMES_HOME/profiles/<name>/ holding SOUL.md, publish /run/service/gateway-<name>/,
/// started only if the profile's last wanted state was `running`, then ask s6-svscan to
/// rescan. Prints one `reconcile: profile=<p> prior_state=<s> action=<a>` line per profile and
/// appends the same to $HERMES_HOME/logs/container-boot.log.
///
/// start/stop/restart/status work as the unprivileged user; register/unregister/watch and the
/// boot pass write the root-owned scan directory and run as root.
#[derive(Parser, Debug)]
#[command(name = "hermes-reconcile", version, after_help = EXIT_CODES)]
struct Cli {
    #[command(flatten)]
    global: Global,
    #[command(subcommand)]
    cmd: Option<Cmd>,
}

#[derive(Args, Debug)]
struct Global {
    /// The persistent home volume (root profile at its top).
    #[arg(long, env = "HERMES_HOME", default_value = config::DEFAULT_HOME, global = true)]
    home: PathBuf,
    /// The s6-svscan scan directory the slots are published into.
    #[arg(long, env = "S6_PROFILE_GATEWAY_SCANDIR", default_value = config::DEFAULT_SCANDIR, global = true)]
    scandir: PathBuf,
    /// The unprivileged user the gateways run as (named in the run scripts).
    #[arg(long, env = "HERMES_S6_USER", default_value = config::DEFAULT_USER, global = true)]
    user: String,
    /// The user's uid for the supervise skeleton [default: the user's uid, else 10000].
    #[arg(long, env = "HERMES_UID", global = true)]
    uid: Option<u32>,
    /// The user's gid [default: the user's gid, else 10000].
    #[arg(long, env = "HERMES_GID", global = true)]
    gid: Option<u32>,
    /// The interpreter line of every rendered script (what follows `#!`).
    #[arg(long, env = "HERMES_S6_INTERPRETER", default_value = config::DEFAULT_INTERPRETER, global = true)]
    interpreter: String,
    /// The program run as `<program> [-p <profile>] gateway run --replace`.
    #[arg(long, env = "HERMES_S6_GATEWAY_PROGRAM", default_value = config::DEFAULT_GATEWAY_PROGRAM, global = true)]
    gateway_program: String,
    /// The scanner's service limit (its `s6-svscan -c`), loggers included.
    #[arg(long, env = "HERMES_S6_MAX_SERVICES", default_value_t = config::DEFAULT_MAX_SERVICES, global = true)]
    max_services: usize,
    /// The registrar's FIFO (written by the user to ask for slots, read by `watch`).
    #[arg(long, env = "HERMES_S6_REGISTRAR", default_value = config::DEFAULT_REGISTRAR_FIFO, global = true)]
    registrar: PathBuf,
    /// Print machine-readable JSON on stdout instead of text.
    #[arg(long, global = true)]
    json: bool,
    /// Where to read the container's command line from (tests use a fake tree).
    #[arg(long, default_value = "/proc", hide = true, global = true)]
    proc_root: PathBuf,
}

#[derive(Subcommand, Debug)]
enum Cmd {
    /// Run the boot pass (the default when no subcommand is given).
    Boot {
        /// Decide and print, but change nothing on disk (same as `plan`).
        #[arg(long)]
        dry_run: bool,
    },
    /// Print what the boot pass would do, changing nothing.
    Plan,
    /// Start a profile's gateway (s6-svc -u) and record desired_state=running.
    Start { profile: String },
    /// Stop a profile's gateway (planned-stop marker, s6-svc -d), record desired_state=stopped.
    Stop {
        profile: Option<String>,
        /// Every registered slot; continues past failures and reports each.
        #[arg(long, conflicts_with = "profile")]
        all: bool,
    },
    /// Restart a profile's gateway (s6-svc -t; starts it if down), record running.
    Restart {
        profile: Option<String>,
        /// Every registered slot; continues past failures and reports each.
        #[arg(long, conflicts_with = "profile")]
        all: bool,
    },
    /// Wanted state, s6 state and a reason per profile, and the scanner's capacity.
    Status { profile: Option<String> },
    /// The registered slots, one profile name per line.
    List,
    /// (root) Create a profile's slot, down unless --start, and rescan.
    Register {
        profile: String,
        #[arg(long)]
        start: bool,
    },
    /// (root) Take a profile's gateway down, wait, and remove its slot. Idempotent.
    Unregister { profile: String },
    /// (root) The registrar daemon: keep slots converged with the profiles on the volume.
    Watch {
        /// Periodic resync interval in milliseconds.
        #[arg(long, default_value_t = 2000)]
        interval_ms: u64,
        /// Converge once and exit.
        #[arg(long)]
        once: bool,
    },
    /// (user) Ask the registrar to converge now and wait until PROFILE's slot exists
    /// (or, with --gone, is removed).
    Request {
        profile: String,
        #[arg(long)]
        gone: bool,
    },
    /// (root) Let the hermes user control static services under DIR (015-supervise-perms).
    StaticPerms {
        #[arg(default_value = "/run/s6-rc/servicedirs")]
        dir: PathBuf,
        /// Leave this service root-only (repeatable).
        #[arg(long)]
        skip: Vec<String>,
    },
}

fn config_from(g: &Global) -> Result<Config, String> {
    let looked_up = config::lookup_user(&g.user);
    let cfg = Config {
        home: config::root_home(&g.home),
        scandir: g.scandir.clone(),
        user: g.user.clone(),
        uid: g.uid.or(looked_up.map(|x| x.0)).unwrap_or(config::DEFAULT_UID),
        gid: g.gid.or(looked_up.map(|x| x.1)).unwrap_or(config::DEFAULT_UID),
        interpreter: g.interpreter.clone(),
        gateway_program: g.gateway_program.clone(),
        max_services: g.max_services,
        registrar_fifo: g.registrar.clone(),
    };
    cfg.check()?;
    Ok(cfg)
}

fn container_facts(fs: &dyn Fs, cfg: &Config, proc_root: &std::path::Path) -> (Container, Option<String>) {
    let argv = container_argv::read(proc_root);
    let no_supervise = container_argv::no_supervise_env(std::env::var("HERMES_GATEWAY_NO_SUPERVISE").ok().as_deref());
    let env = std::env::var("GATEWAY_MULTIPLEX_PROFILES").ok();
    let config_flag = match fs.open_root(&cfg.home) {
        Ok(home) => multiplex::read_config_flag(fs, &home),
        Err(_) => Ok(None),
    };
    let (multiplex, warning) = multiplex::resolve(env.as_deref(), config_flag);
    let c = Container {
        dashboard: container_argv::is_dashboard(&argv),
        legacy_gateway_run: !no_supervise && container_argv::is_legacy_gateway_run(&argv),
        multiplex,
    };
    (c, warning)
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let cfg = match config_from(&cli.global) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("hermes-reconcile: error: {e}");
            return ExitCode::from(2);
        }
    };
    let json = cli.global.json;
    // Every file this program creates is given its mode explicitly; with no umask the kernel
    // applies those modes as asked, which saves a chmod per created entry.
    nix::sys::stat::umask(nix::sys::stat::Mode::empty());
    let fs = LinuxFs::with_zero_umask();
    let result = match cli.cmd {
        None | Some(Cmd::Boot { .. }) | Some(Cmd::Plan) => {
            let dry_run = matches!(cli.cmd, Some(Cmd::Plan) | Some(Cmd::Boot { dry_run: true }));
            return boot_pass(&fs, &cfg, &cli.global.proc_root, dry_run, json);
        }
        Some(Cmd::Start { profile }) => one(&profile, "start", json, |p| lifecycle::start::start(&fs, &cfg, p)),
        Some(Cmd::Stop { profile, all }) => {
            verb(&fs, &cfg, profile, all, "stop", "Stopped", json, |p| lifecycle::stop::stop(&fs, &cfg, p))
        }
        Some(Cmd::Restart { profile, all }) => {
            verb(&fs, &cfg, profile, all, "restart", "Restarted", json, |p| lifecycle::restart::restart(&fs, &cfg, p))
        }
        Some(Cmd::Status { profile }) => status(&fs, &cfg, profile.as_deref(), json),
        Some(Cmd::List) => lifecycle::open_scandir(&fs, &cfg).and_then(|s| {
            let v = lifecycle::registered(&fs, &s).map_err(|e| Error::io(&cfg.scandir, "list", e))?;
            if json {
                println!("{}", serde_json::to_string(&v).unwrap());
            } else {
                v.iter().for_each(|p| println!("{p}"));
            }
            Ok(true)
        }),
        Some(Cmd::Register { profile, start }) => one(&profile, "register", json, |p| {
            let r = lifecycle::register::register(&fs, &cfg, p, start)?;
            if r == hermes_core::s6::svscan::Rescan::NoScanner {
                eprintln!("note: no s6-svscan is listening on {}; the slot is picked up when it starts", cfg.scandir.display());
            }
            Ok(Written::Yes)
        }),
        Some(Cmd::Unregister { profile }) => one(&profile, "unregister", json, |p| {
            lifecycle::unregister::unregister(&fs, &cfg, p).map(|_| Written::Yes)
        }),
        Some(Cmd::Watch { interval_ms, once }) => watch(&fs, &cfg, Duration::from_millis(interval_ms), once, json),
        Some(Cmd::Request { profile, gone }) => one(&profile, "request", json, |p| {
            lifecycle::watch::ring(&cfg)?;
            lifecycle::watch::wait_for_slot(&cfg, p, !gone, lifecycle::watch::CLIENT_WAIT).map(|_| Written::Yes)
        }),
        Some(Cmd::StaticPerms { dir, skip }) => lifecycle::static_perms::apply(&fs, &dir, (cfg.uid, cfg.gid), &skip).map(|done| {
            for d in &done {
                println!("[supervise-perms] {} controllable by {}", dir.join(d).display(), cfg.user);
            }
            true
        }),
    };
    match result {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err(e) => {
            eprintln!("\u{2717} {e}");
            ExitCode::from(1)
        }
    }
}

fn boot_pass(fs: &dyn Fs, cfg: &Config, proc_root: &std::path::Path, dry_run: bool, json: bool) -> ExitCode {
    let (container, mx_warning) = container_facts(fs, cfg, proc_root);
    let opts = Options { dry_run, ..Options::default() };
    let mut report = match boot::run(fs, cfg, &container, &opts) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("reconcile: error: {e}");
            return ExitCode::from(3);
        }
    };
    report.warnings.extend(mx_warning);
    if json {
        println!("{}", serde_json::to_string_pretty(&report).expect("report serialises"));
    } else {
        print_boot(&report, cfg);
    }
    if report.errors.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}

fn print_boot(report: &boot::Report, cfg: &Config) {
    if report.dashboard_skip {
        println!("reconcile: skipping (dashboard container \u{2014} does not need per-profile gateways)");
        return;
    }
    for w in &report.warnings {
        eprintln!("reconcile: warning: {w}");
    }
    for e in &report.entries {
        println!("{}", boot::stdout_line(e));
    }
    if report.dry_run {
        eprintln!("reconcile: dry run: nothing was changed");
    }
    for s in &report.swept_staging {
        eprintln!("reconcile: removed staging leftover {}", cfg.scandir.join(s).display());
    }
    if report.rescan == Some(hermes_core::s6::svscan::Rescan::NoScanner) {
        eprintln!(
            "reconcile: no s6-svscan is listening on {}; the slots will be picked up when it starts",
            cfg.scandir.display()
        );
    }
    for e in &report.errors {
        eprintln!("reconcile: error: {e}");
    }
}

/// One verb on one profile: `✓ <verb> gateway-<p>` or the error.
fn one(arg: &str, verb: &str, json: bool, f: impl FnOnce(&str) -> Result<Written, Error>) -> Result<bool, Error> {
    let profile = lifecycle::profile_from_arg(arg)?;
    let written = f(&profile);
    if json {
        let (ok, error) = match &written {
            Ok(_) => (true, None),
            Err(e) => (false, Some(e.to_string())),
        };
        println!("{}", serde_json::json!({"profile": profile, "action": verb, "ok": ok, "error": error}));
        return Ok(ok);
    }
    match written? {
        Written::ReplacedUnreadable(why) => {
            println!("\u{2713} {verb} gateway-{profile}");
            eprintln!("warning: the old gateway_state.json {why}; it was replaced");
        }
        Written::NoProfileDir if verb != "register" && verb != "unregister" && verb != "request" => {
            println!("\u{2713} {verb} gateway-{profile} (no profile directory: wanted state not recorded)");
        }
        _ => println!("\u{2713} {verb} gateway-{profile}"),
    }
    Ok(true)
}

#[allow(clippy::too_many_arguments)]
fn verb(
    fs: &dyn Fs,
    cfg: &Config,
    profile: Option<String>,
    all: bool,
    name: &str,
    done: &str,
    json: bool,
    f: impl Fn(&str) -> Result<Written, Error>,
) -> Result<bool, Error> {
    if !all {
        let Some(p) = profile else {
            return Err(Error::Io {
                path: "-".into(),
                error: std::io::Error::new(std::io::ErrorKind::InvalidInput, format!("{name} needs a PROFILE or --all")),
            });
        };
        return one(&p, name, json, f);
    }
    let all = lifecycle::for_all(fs, cfg, f)?;
    if json {
        let v: Vec<_> = all
            .results
            .iter()
            .map(|(p, r)| serde_json::json!({"profile": p, "action": name, "ok": r.is_ok(), "error": r.as_ref().err().map(|e| e.to_string())}))
            .collect();
        println!("{}", serde_json::to_string(&v).unwrap());
    } else {
        print!("{}", all.render(name, done));
    }
    Ok(all.failed() == 0)
}

fn status(fs: &dyn Fs, cfg: &Config, profile: Option<&str>, json: bool) -> Result<bool, Error> {
    let only = profile.map(lifecycle::profile_from_arg).transpose()?;
    let r = lifecycle::status::status(fs, cfg, only.as_deref())?;
    if json {
        println!("{}", serde_json::to_string_pretty(&r).unwrap());
        return Ok(true);
    }
    print!("{}", lifecycle::status::render_table(&r));
    Ok(true)
}

fn watch(fs: &dyn Fs, cfg: &Config, interval: Duration, once: bool, json: bool) -> Result<bool, Error> {
    let print = |c: &lifecycle::watch::Converged| {
        if json && (once || !c.added.is_empty() || !c.removed.is_empty() || !c.errors.is_empty()) {
            println!("{}", serde_json::to_string(c).unwrap());
            return;
        }
        for p in &c.added {
            println!("registrar: registered gateway-{p} (down)");
        }
        for p in &c.removed {
            println!("registrar: unregistered gateway-{p}");
        }
        for e in &c.errors {
            eprintln!("registrar: error: {e}");
        }
    };
    if once {
        let c = lifecycle::watch::converge(fs, cfg)?;
        print(&c);
        return Ok(c.errors.is_empty());
    }
    println!("registrar: watching {} for {} (resync every {} ms)", cfg.registrar_fifo.display(), cfg.home.display(), interval.as_millis());
    lifecycle::watch::run(fs, cfg, interval, print)?;
    Ok(true)
}

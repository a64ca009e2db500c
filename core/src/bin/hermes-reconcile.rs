//! `hermes-reconcile`: the thin command-line shell over `hermes_core`.

use clap::{Args, Parser, Subcommand};
use hermes_core::boot::{self, Options};
use hermes_core::config::{self, Config};
use hermes_core::plan::Container;
use hermes_core::safe_fs::{Fs, RealFs};
use hermes_core::{container_argv, multiplex};
use std::path::PathBuf;
use std::process::ExitCode;

const EXIT_CODES: &str = "\
Exit codes:
  0  the pass completed; every wanted slot was published (skipped profiles are reported,
     not failures)
  1  the pass completed, but some slot could not be published or the rescan could not be
     requested (each problem is printed on stderr with the path concerned)
  2  usage or configuration error
  3  the scan directory could not be opened; nothing was changed

Environment (flags win): HERMES_HOME, S6_PROFILE_GATEWAY_SCANDIR, HERMES_UID, HERMES_GID,
HERMES_S6_USER, HERMES_S6_INTERPRETER, HERMES_S6_GATEWAY_PROGRAM, GATEWAY_MULTIPLEX_PROFILES,
HERMES_GATEWAY_NO_SUPERVISE.";

/// Rebuild and manage the s6 service slots of hermes-agent's per-profile gateways.
///
/// With no subcommand, runs the boot pass (a drop-in for upstream's
/// `python -m hermes_cli.container_boot`): for the root profile at $HERMES_HOME and every
/// $HERMES_HOME/profiles/<name>/ holding SOUL.md, publish /run/service/gateway-<name>/,
/// started only if the profile's last wanted state was `running`, then ask s6-svscan to
/// rescan. Prints one `reconcile: profile=<p> prior_state=<s> action=<a>` line per profile and
/// appends the same to $HERMES_HOME/logs/container-boot.log.
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
}

fn config_from(g: &Global) -> Result<Config, String> {
    let looked_up = config::lookup_user(&g.user);
    let uid = g.uid.or(looked_up.map(|x| x.0)).unwrap_or(config::DEFAULT_UID);
    let gid = g.gid.or(looked_up.map(|x| x.1)).unwrap_or(config::DEFAULT_UID);
    let cfg = Config {
        home: g.home.clone(),
        scandir: g.scandir.clone(),
        user: g.user.clone(),
        uid,
        gid,
        interpreter: g.interpreter.clone(),
        gateway_program: g.gateway_program.clone(),
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
    let dry_run = matches!(cli.cmd, Some(Cmd::Plan) | Some(Cmd::Boot { dry_run: true }));
    let fs = RealFs;
    let (container, mx_warning) = container_facts(&fs, &cfg, &cli.global.proc_root);
    let opts = Options { dry_run, ..Options::default() };
    let mut report = match boot::run(&fs, &cfg, &container, &opts) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("reconcile: error: {e}");
            return ExitCode::from(3);
        }
    };
    report.warnings.extend(mx_warning);
    if cli.global.json {
        println!("{}", serde_json::to_string_pretty(&report).expect("report serialises"));
    } else {
        print_text(&report, &cfg);
    }
    if report.errors.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}

fn print_text(report: &boot::Report, cfg: &Config) {
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

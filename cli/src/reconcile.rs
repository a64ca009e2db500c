//! `hermes-reconcile`'s command tree: the boot pass, the lifecycle verbs, the registrar and
//! the slot hooks, as root and the user run them. Flags and the environment are resolved once
//! into a `Config`; each verb's work is in `crate::verbs`, its output in `crate::out`.

use crate::args::{Global, RenderArgs};
use crate::out::{self, Out, Voice};
use crate::verbs::{
    adopt, boot, bridge, dump_env, finish, health, list, register, request, restart, start, static_perms, status, stop, unregister, watch,
};
use clap::{Parser, Subcommand};
use hermes_core::clock::SystemClock;
use hermes_core::config::{self, Config, Overrides};
use hermes_core::ctx::Ctx;
use hermes_core::fs::LinuxFs;
use hermes_core::name::Profile;
use hermes_core::problem::Problem;
use hermes_core::Gateways;
use std::process::ExitCode;

const AFTER_HELP: &str = "\
Exit codes (every command):
  0  done (for the boot pass: every wanted slot was published; skipped profiles are
     reported, not failures)
  1  failed, or partly failed (each problem is printed on stderr with the path concerned;
     with --all, at least one slot failed)
  2  usage or configuration error: nothing was done
  3  the s6 scan directory could not be used: nothing was done
`status` answers like an init script instead (see `hermes-reconcile status --help`).

With --json, results and errors are JSON on stdout: {\"ok\": false, \"error\": {\"kind\", \"message\",
\"path\", \"exit_code\"}} when a command fails.";

/// The top-level help's tail: the exit codes, then every environment variable read (from
/// the library's own list, so it cannot fall behind).
fn after_help() -> String {
    let mut s = format!("{AFTER_HELP}\n\nEnvironment (flags win):\n");
    for (name, what) in config::ENV_VARS {
        s.push_str(&format!("  {name:<30} {what}\n"));
    }
    s
}

/// Rebuild and manage the s6 service slots of hermes-agent's per-profile gateways.
///
/// With no subcommand, runs the boot pass (a drop-in for upstream's
/// `python -m hermes_cli.container_boot`): for the root profile at $HERMES_HOME and every
/// $HERMES_HOME/profiles/<name>/ holding SOUL.md, publish /run/service/gateway-<name>/,
/// started only if the profile's last wanted state was `running`, then ask s6-svscan to
/// rescan. Prints one `reconcile: profile=<p> prior_state=<s> action=<a>` line per profile and
/// appends the same to $HERMES_HOME/logs/container-boot.log.
///
/// start/stop/restart/status/list/request work as the unprivileged user; the boot pass,
/// register, unregister, watch and static-perms write the root-owned scan directory and run
/// as root.
#[derive(Parser, Debug)]
#[command(name = "hermes-reconcile", version)]
pub struct Cli {
    #[command(flatten)]
    pub global: Global,
    /// Options of the boot pass when no subcommand is given.
    #[command(flatten)]
    pub render: RenderArgs,
    #[command(subcommand)]
    pub cmd: Option<Cmd>,
}

#[derive(Subcommand, Debug)]
pub enum Cmd {
    /// Run the boot pass (the default when no subcommand is given)
    Boot(boot::BootArgs),
    /// Print what the boot pass would do, changing nothing
    Plan(boot::PlanArgs),
    /// Start a profile's gateway (s6-svc -u), record desired_state=running, clear any crash-policy hold, and wait until it is ready and has stayed up
    Start(start::StartArgs),
    /// Stop a profile's gateway (planned-stop marker, s6-svc -d), record desired_state=stopped, and wait until it is down
    Stop(stop::StopArgs),
    /// Restart a profile's gateway (s6-svc -t; starts it if down), record running, and wait until the new one is ready and has stayed up
    Restart(restart::RestartArgs),
    /// Per profile: wanted state, s6 state, restarts, last exit, the crash policy's verdict and why; and the scanner's capacity
    #[command(after_help = status::AFTER_HELP)]
    Status(status::StatusArgs),
    /// The registered slots, one profile name per line
    List,
    /// (root) Create a profile's slot, down unless --start, and rescan
    Register(register::RegisterArgs),
    /// (root) Take a profile's gateway down, wait, and remove its slot; idempotent
    Unregister(unregister::UnregisterArgs),
    /// (root) The registrar daemon: keep slots converged with the profiles on the volume
    Watch(watch::WatchArgs),
    /// (user) Ask the registrar to converge now and wait until PROFILE's slot exists (or, with --gone, is removed)
    Request(request::RequestArgs),
    /// (root) Let the hermes user control the static services under DIR (015-supervise-perms)
    StaticPerms(static_perms::StaticPermsArgs),
    /// (root) Take over a volume populated under another uid: what that uid owned becomes the configured user's (no /etc is written)
    AdoptVolume,
    /// The container's probe: exit 0 when live (and, without --live, ready), 1 with the reasons otherwise
    #[command(after_help = health::AFTER_HELP)]
    Health(health::HealthArgs),
    /// (image stage 1) Write this process's environment into DIR, one file per variable
    #[command(hide = true)]
    DumpEnv(dump_env::DumpEnvArgs),
    /// (root, a slot's finish script) The crash policy's verdict on a gateway's death
    #[command(hide = true)]
    Finish(finish::FinishArgs),
    /// (a slot's run script) Exec the gateway, telling s6 when it is ready and killing it when it hangs
    #[command(hide = true)]
    Bridge(bridge::BridgeArgs),
}

/// Resolve the configuration the one way every command does.
pub fn resolve(global: &Global, render: &RenderArgs) -> Result<Config, Problem> {
    let o = Overrides {
        home: global.home.clone(),
        scandir: global.scandir.clone(),
        user: render.user.clone(),
        uid: render.uid.clone(),
        gid: render.gid.clone(),
        interpreter: render.interpreter.clone(),
        gateway_program: render.gateway_program.clone(),
        max_services: render.max_services.clone(),
        reserved_services: render.reserved_services.clone(),
        registrar: render.registrar.clone(),
        proc_root: global.proc_root.clone(),
        current_exe: std::env::current_exe().ok(),
    };
    Config::resolve(&|k| std::env::var(k).ok(), o, &config::lookup_user)
}

fn run(cli: Cli) -> Result<u8, Problem> {
    let out = Out { json: cli.global.json, voice: Voice::Reconcile };
    // A slot's run, as the gateway's user: nothing but its own options and the environment
    // (it reads its own knobs: it runs in place of the gateway, before any configuration).
    if let Some(Cmd::Bridge(a)) = &cli.cmd {
        return bridge::run(cli.global.home.clone(), a);
    }
    // Options before a subcommand belong to the boot pass; elsewhere they would be ignored,
    // so they are refused instead.
    let top = cli.render.clone();
    if !matches!(cli.cmd, None | Some(Cmd::Boot(_)) | Some(Cmd::Plan(_))) && !top.given().is_empty() {
        return Err(Problem::usage(format!(
            "{} before a subcommand applies to the boot pass only; give it after the subcommand if that subcommand takes it (see --help)",
            top.given().join(", ")
        )));
    }
    let render = match &cli.cmd {
        None => top,
        Some(Cmd::Boot(a)) => top.or(&a.render),
        Some(Cmd::Plan(a)) => top.or(&a.render),
        Some(Cmd::Register(a)) => a.render.clone(),
        Some(Cmd::Watch(a)) => a.render.clone(),
        Some(Cmd::Status(a)) => RenderArgs { max_services: a.capacity.max_services.clone(), ..Default::default() },
        Some(Cmd::Request(a)) => RenderArgs { registrar: a.registrar.registrar.clone(), ..Default::default() },
        Some(Cmd::Finish(a)) => a.render.clone(),
        _ => RenderArgs::default(),
    };
    // Stage 1 dumps the environment before anything reads it: no configuration needed.
    let cfg = if matches!(cli.cmd, Some(Cmd::DumpEnv(_))) { Config::default() } else { resolve(&cli.global, &render)? };
    let fs = LinuxFs::with_zero_umask();
    let g = Gateways::new(Ctx::new(&fs, &SystemClock, &cfg));
    match cli.cmd {
        None => boot::boot(&g, false, out),
        Some(Cmd::Boot(a)) => boot::boot(&g, a.dry_run, out),
        Some(Cmd::Plan(_)) => boot::boot(&g, true, out),
        Some(Cmd::Start(a)) => start::run(&g, &a.which.which("start")?, &a.settle, out),
        Some(Cmd::Stop(a)) => stop::run(&g, &a.which.which("stop")?, &a.wait, out),
        Some(Cmd::Restart(a)) => restart::run(&g, &a.which.which("restart")?, &a.settle, out),
        Some(Cmd::Status(a)) => {
            let only = a.profile.as_deref().map(Profile::new).transpose()?;
            status::run(&g, only.as_ref(), out)
        }
        Some(Cmd::List) => list::run(&g, out),
        Some(Cmd::Register(a)) => register::run(&g, &a, out),
        Some(Cmd::Unregister(a)) => unregister::run(&g, &a, out),
        Some(Cmd::Watch(a)) => watch::run(&g, &a, out),
        Some(Cmd::Request(a)) => request::run(&g, &a, out),
        Some(Cmd::StaticPerms(a)) => static_perms::run(&g, &a, out),
        Some(Cmd::AdoptVolume) => adopt::run(&g, out),
        Some(Cmd::Health(a)) => health::run(&g, &a, out),
        Some(Cmd::DumpEnv(a)) => dump_env::run(&g, &a),
        Some(Cmd::Finish(a)) => finish::run(&g, &a),
        Some(Cmd::Bridge(a)) => bridge::run(cli.global.home.clone(), &a),
    }
}

pub fn main() -> ExitCode {
    // A slot's watcher, re-exec'd by the bridge: no command line of ours to parse.
    let mut argv = std::env::args_os().skip(1);
    if argv.next().is_some_and(|a| a == "--bridge-watcher") {
        hermes_core::gateways::bridge_watcher(&argv.next().unwrap_or_default().to_string_lossy());
    }
    let json_requested = std::env::args().any(|a| a == "--json");
    use clap::{CommandFactory, FromArgMatches};
    let parsed = Cli::command().after_help(after_help()).try_get_matches().and_then(|m| Cli::from_arg_matches(&m));
    let cli = match parsed {
        Ok(c) => c,
        Err(e) => return out::clap_error(e, json_requested),
    };
    // Every file this program creates is given its mode explicitly; with no umask the kernel
    // applies those modes as asked, which saves a chmod per created entry. Not the bridge's:
    // the gateway it execs inherits its umask.
    if !matches!(cli.cmd, Some(Cmd::Bridge(_))) {
        nix::sys::stat::umask(nix::sys::stat::Mode::empty());
    }
    let out = Out { json: cli.global.json, voice: Voice::Reconcile };
    match run(cli) {
        Ok(code) => ExitCode::from(code),
        Err(p) => out.fail(&p),
    }
}

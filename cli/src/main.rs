//! `hermes-reconcile`: the thin command-line shell over `hermes_core`. Flags and the
//! environment are resolved once into a `Config`; each verb lives in its own file under
//! `cmd/`; what can go wrong is rendered in `out.rs`.

mod cmd;
mod out;

use clap::{Args, Parser, Subcommand};
use hermes_core::config::{self, Config, Overrides};
use hermes_core::problem::Problem;
use std::path::PathBuf;
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
    for (name, what) in config::ENV_VARS.iter().chain(&[
        ("GATEWAY_MULTIPLEX_PROFILES", "one root gateway serves every profile: named slots stay down"),
        ("HERMES_GATEWAY_NO_SUPERVISE", "the container's `gateway run` opts out of s6 (the boot pass seeds no state)"),
    ]) {
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

/// Where things are, and how to answer: for every command.
#[derive(Args, Debug, Clone)]
pub struct Global {
    /// The persistent home volume, root profile at its top [env: HERMES_HOME; default: /opt/data]
    #[arg(long, global = true, value_name = "DIR")]
    pub home: Option<PathBuf>,
    /// The s6-svscan scan directory [env: S6_PROFILE_GATEWAY_SCANDIR; default: /run/service]
    #[arg(long, global = true, value_name = "DIR")]
    pub scandir: Option<PathBuf>,
    /// Print results and errors as JSON on stdout
    #[arg(long, global = true)]
    pub json: bool,
    /// Where processes are read from (tests use a fake tree)
    #[arg(long, global = true, hide = true, value_name = "DIR")]
    pub proc_root: Option<PathBuf>,
}

/// The scanner's limit: for the commands that count services.
#[derive(Args, Debug, Clone, Default)]
pub struct CapacityArgs {
    /// The scanner's service limit, loggers included [env: HERMES_S6_MAX_SERVICES; default: 500]
    #[arg(long, value_name = "N")]
    pub max_services: Option<String>,
}

/// Where the registrar listens: for the commands that ring it.
#[derive(Args, Debug, Clone, Default)]
pub struct RegistrarArgs {
    /// The registrar's doorbell FIFO [env: HERMES_S6_REGISTRAR; default: /run/hermes-s6/registrar]
    #[arg(long, value_name = "PATH")]
    pub registrar: Option<PathBuf>,
}

/// How slots are rendered and how many the scanner takes: for the commands that write slots.
#[derive(Args, Debug, Clone, Default)]
pub struct RenderArgs {
    /// The unprivileged user the gateways run as [env: HERMES_S6_USER; default: hermes]
    #[arg(long, value_name = "NAME")]
    pub user: Option<String>,
    /// That user's uid [env: HERMES_UID; default: from the password database, else 10000]
    #[arg(long, value_name = "UID")]
    pub uid: Option<String>,
    /// That user's gid [env: HERMES_GID; default: from the password database, else 10000]
    #[arg(long, value_name = "GID")]
    pub gid: Option<String>,
    /// The `#!` line of every rendered gateway script [env: HERMES_S6_INTERPRETER; default: /command/with-contenv sh]
    #[arg(long, value_name = "LINE")]
    pub interpreter: Option<String>,
    /// The program run as `<program> [-p <profile>] gateway run --replace` [env: HERMES_S6_GATEWAY_PROGRAM; default: hermes]
    #[arg(long, value_name = "PROGRAM")]
    pub gateway_program: Option<String>,
    /// The scanner's service limit, loggers included [env: HERMES_S6_MAX_SERVICES; default: 500]
    #[arg(long, value_name = "N")]
    pub max_services: Option<String>,
    /// Services kept free for the static ones, not given to gateways [env: HERMES_S6_RESERVED_SERVICES; default: 8]
    #[arg(long, value_name = "N")]
    pub reserved_services: Option<String>,
    /// The registrar's doorbell FIFO [env: HERMES_S6_REGISTRAR; default: /run/hermes-s6/registrar]
    #[arg(long, value_name = "PATH")]
    pub registrar: Option<PathBuf>,
}

impl RenderArgs {
    /// Which options were given, by flag name.
    fn given(&self) -> Vec<&'static str> {
        [
            ("--user", self.user.is_some()),
            ("--uid", self.uid.is_some()),
            ("--gid", self.gid.is_some()),
            ("--interpreter", self.interpreter.is_some()),
            ("--gateway-program", self.gateway_program.is_some()),
            ("--max-services", self.max_services.is_some()),
            ("--reserved-services", self.reserved_services.is_some()),
            ("--registrar", self.registrar.is_some()),
        ]
        .into_iter()
        .filter_map(|(f, on)| on.then_some(f))
        .collect()
    }

    /// These options, with `more` winning where both are given.
    fn or(self, more: &RenderArgs) -> RenderArgs {
        let m = more.clone();
        RenderArgs {
            user: m.user.or(self.user),
            uid: m.uid.or(self.uid),
            gid: m.gid.or(self.gid),
            interpreter: m.interpreter.or(self.interpreter),
            gateway_program: m.gateway_program.or(self.gateway_program),
            max_services: m.max_services.or(self.max_services),
            reserved_services: m.reserved_services.or(self.reserved_services),
            registrar: m.registrar.or(self.registrar),
        }
    }
}

#[derive(Subcommand, Debug)]
pub enum Cmd {
    /// Run the boot pass (the default when no subcommand is given)
    Boot(cmd::boot::BootArgs),
    /// Print what the boot pass would do, changing nothing
    Plan(cmd::boot::PlanArgs),
    /// Start a profile's gateway (s6-svc -u), record desired_state=running, clear any crash-policy hold, and wait until it is ready and has stayed up
    Start(cmd::start::StartArgs),
    /// Stop a profile's gateway (planned-stop marker, s6-svc -d), record desired_state=stopped, and wait until it is down
    Stop(cmd::stop::StopArgs),
    /// Restart a profile's gateway (s6-svc -t; starts it if down), record running, and wait until the new one is ready and has stayed up
    Restart(cmd::restart::RestartArgs),
    /// Per profile: wanted state, s6 state, restarts, last exit, the crash policy's verdict and why; and the scanner's capacity
    #[command(after_help = cmd::status::AFTER_HELP)]
    Status(cmd::status::StatusArgs),
    /// The registered slots, one profile name per line
    List,
    /// (root) Create a profile's slot, down unless --start, and rescan
    Register(cmd::register::RegisterArgs),
    /// (root) Take a profile's gateway down, wait, and remove its slot; idempotent
    Unregister(cmd::unregister::UnregisterArgs),
    /// (root) The registrar daemon: keep slots converged with the profiles on the volume
    Watch(cmd::watch::WatchArgs),
    /// (user) Ask the registrar to converge now and wait until PROFILE's slot exists (or, with --gone, is removed)
    Request(cmd::request::RequestArgs),
    /// (root) Let the hermes user control the static services under DIR (015-supervise-perms)
    StaticPerms(cmd::static_perms::StaticPermsArgs),
    /// (root) Take over a volume populated under another uid: what that uid owned becomes the configured user's (no /etc is written)
    AdoptVolume,
    /// The container's probe: exit 0 when live (and, without --live, ready), 1 with the reasons otherwise
    #[command(after_help = cmd::health::AFTER_HELP)]
    Health(cmd::health::HealthArgs),
    /// (image stage 1) Write this process's environment into DIR, one file per variable
    #[command(hide = true)]
    DumpEnv(cmd::dump_env::DumpEnvArgs),
    /// (root, a slot's finish script) The crash policy's verdict on a gateway's death
    #[command(hide = true)]
    Finish(cmd::finish::FinishArgs),
    /// (a slot's run script) Exec the gateway, telling s6 when it is ready and killing it when it hangs
    #[command(hide = true)]
    Bridge(cmd::bridge::BridgeArgs),
}

/// Resolve the configuration the one way every binary does.
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

fn main() -> ExitCode {
    // A slot's watcher, re-exec'd by the bridge: no command line of ours to parse.
    let mut argv = std::env::args_os().skip(1);
    if argv.next().is_some_and(|a| a == "--bridge-watcher") {
        hermes_core::liveness::bridge::watcher_main(&argv.next().unwrap_or_default().to_string_lossy());
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
    let json = cli.global.json;
    let code = cmd::run(cli);
    match code {
        Ok(code) => ExitCode::from(code),
        Err(p) => out::fail(&p, json),
    }
}

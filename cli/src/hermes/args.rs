//! The `hermes` command tree, as clap definitions (also what completions and the man page are
//! generated from). Upstream's surface around supervision:
//!
//!   hermes [-p P] gateway start|stop|restart|status|logs|run
//!   hermes profile create|delete|list
//!   hermes status | dashboard

use crate::verbs::{logs, restart, run_gateway, start, stop};
use clap::{Args, Parser, Subcommand};

pub const AFTER_HELP: &str = "\
Exit codes (every command):
  0  done
  1  failed (the problem is printed on stderr, naming the path concerned)
  2  usage error: nothing was done
  3  the s6 scan directory could not be used: nothing was done
`gateway status` with a profile answers like an init script: 0 running, 3 not running,
4 unknown (no such profile, or the scan directory cannot be used); `status` exits 0 when
every gateway is as wanted, 3 when one wanted running is not.

With --json, results and errors are JSON on stdout.

Environment: HERMES_HOME (default /opt/data), S6_PROFILE_GATEWAY_SCANDIR (/run/service),
HERMES_DOCKER_EXEC_AS_ROOT=1 keeps root for `docker exec` of these verbs (files in the volume are still
written as the hermes user).";

/// Manage hermes-agent's per-profile gateways under s6.
#[derive(Parser, Debug)]
#[command(name = "hermes", version, after_help = AFTER_HELP)]
pub struct Cli {
    /// The profile to act on (`default`, the root profile at $HERMES_HOME, when not given)
    #[arg(short = 'p', long = "profile", global = true, value_name = "PROFILE")]
    pub profile: Option<String>,
    /// Print results and errors as JSON on stdout
    #[arg(long, global = true)]
    pub json: bool,
    #[command(subcommand)]
    pub cmd: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Control a profile's gateway under s6
    #[command(subcommand)]
    Gateway(Gateway),
    /// Create, delete and list profiles
    #[command(subcommand)]
    Profile(Profile),
    /// The service manager and every profile's gateway
    Status,
    /// Run the dashboard (the image's dashboard service does this)
    Dashboard(DashboardArgs),
    /// Write shell completions or the man page (the image build does this)
    #[command(hide = true)]
    Generate(GenerateArgs),
}

/// A profile given after the verb; the same as `-p`.
#[derive(Args, Debug)]
pub struct Target {
    /// The profile (same as -p; `default` is the root profile)
    #[arg(id = "target", value_name = "PROFILE")]
    pub profile: Option<String>,
}

#[derive(Subcommand, Debug)]
pub enum Gateway {
    /// Start the gateway (registering its slot if the profile has none), record that it is wanted running, clear any crash-policy hold, and wait until it has stayed up
    Start(start::StartArgs),
    /// Stop the gateway, record that it is wanted stopped, and wait until it is down (killed if it ignores SIGTERM)
    Stop(stop::StopArgs),
    /// Restart the gateway (starts it if down), record that it is wanted running, and wait until the new one has stayed up
    Restart(restart::RestartArgs),
    /// One gateway: wanted state, s6 state, restarts, last exit, the crash policy's verdict and why, its log
    Status(Target),
    /// Show the gateway's log (its output and errors, as its s6-log logger keeps them)
    Logs(logs::LogsArgs),
    /// Every profile's gateway: the same table as `hermes status`
    List,
    /// Under s6 there is no service to install: says how gateways are registered and started
    Install(IgnoredArgs),
    /// Under s6 there is no service to remove: says how gateways are stopped and unregistered
    Uninstall(IgnoredArgs),
    /// Run the gateway (under s6: ask s6 to run it, then stay as a heartbeat)
    Run(run_gateway::RunArgs),
}

/// hermes-agent's options for a verb that has nothing to do here (accepted, unused).
#[derive(Args, Debug)]
pub struct IgnoredArgs {
    #[arg(trailing_var_arg = true, allow_hyphen_values = true, hide = true)]
    pub rest: Vec<String>,
}

#[derive(Subcommand, Debug)]
pub enum Profile {
    /// Create a profile (hermes-agent's own `profile create`: SOUL.md, .env, skills) and have its gateway slot registered, down
    Create {
        /// The new profile's name ([a-z0-9][a-z0-9_-]{0,63}), with any of hermes-agent's
        /// `profile create` options (--clone, --clone-from SOURCE, --no-skills, ...)
        #[arg(required = true, num_args = 1.., allow_hyphen_values = true, value_name = "NAME")]
        args: Vec<String>,
    },
    /// Stop a profile's gateway, delete the profile and its slot (and its gateway log)
    Delete {
        /// The profile to delete
        name: String,
        /// Confirm: the profile's directory and everything in it is deleted
        #[arg(short, long)]
        yes: bool,
        /// Keep the gateway's log directory (logs/gateways/<name>)
        #[arg(long)]
        keep_logs: bool,
    },
    /// The profiles on the volume, each with its gateway's state
    List,
}

#[derive(Args, Debug)]
pub struct DashboardArgs {
    #[arg(long, default_value = "127.0.0.1")]
    pub host: String,
    #[arg(long, default_value_t = 9119)]
    pub port: u16,
    /// Accepted for compatibility; the dashboard never opens a browser
    #[arg(long)]
    pub no_open: bool,
}

#[derive(Args, Debug)]
pub struct GenerateArgs {
    /// `bash`, `zsh`, `fish`, `elvish`, `powershell`, or `man`
    pub what: String,
    /// The directory to write into
    pub dir: std::path::PathBuf,
}

//! The arguments both binaries share, parsed once: where things are and how to answer
//! ([`Global`]), which gateways a verb acts on ([`OneOrAll`]), how long it watches them
//! ([`Settle`], [`StopWait`]), and the settings of the commands that write slots
//! ([`RenderArgs`]). Each becomes a `hermes_core::config::Overrides` or a
//! `hermes_core::gateways::Wait`; nothing here reads the environment.

use clap::Args;
use hermes_core::gateways::{Wait, SETTLE};
use hermes_core::name::{Profile, DEFAULT_PROFILE};
use hermes_core::problem::Problem;
use std::path::PathBuf;

/// The gateways a verb acts on, resolved: one validated profile, or all.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Which {
    One(Profile),
    All,
}

/// `hermes`'s profile: the one after the verb, else `-p`, else `default`. Both given and
/// different is a usage error, never a silent choice.
pub fn profile_or_default(after_verb: Option<&str>, dash_p: Option<&str>) -> Result<Profile, Problem> {
    let p = match (after_verb, dash_p) {
        (Some(a), Some(b)) if a != b => {
            return Err(Problem::usage(format!("two different profiles given: '{a}' after the command and '{b}' with -p; give one")))
        }
        (Some(a), _) => a,
        (None, Some(b)) => b,
        (None, None) => DEFAULT_PROFILE,
    };
    Ok(Profile::new(p)?)
}

/// The gateways a verb acts on: one profile, or every registered slot.
#[derive(Args, Debug, Default)]
pub struct OneOrAll {
    /// The profile (`default` is the root profile at $HERMES_HOME; `hermes` also takes -p)
    #[arg(id = "target", value_name = "PROFILE")]
    pub profile: Option<String>,
    /// Every registered gateway; goes on past failures, reports each, exits 1 if any failed
    #[arg(long, conflicts_with = "target")]
    pub all: bool,
}

impl OneOrAll {
    /// `hermes-reconcile`'s: a PROFILE or `--all`, one of them.
    pub fn which(&self, verb: &str) -> Result<Which, Problem> {
        match (&self.profile, self.all) {
            (_, true) => Ok(Which::All),
            (Some(p), false) => Ok(Which::One(Profile::new(p)?)),
            (None, false) => Err(Problem::usage(format!("{verb} needs a PROFILE or --all"))),
        }
    }

    /// `hermes`'s: `--all`, else [`profile_or_default`]; `--all` with `-p` is refused.
    pub fn which_or_default(&self, dash_p: Option<&str>) -> Result<Which, Problem> {
        match (self.all, dash_p) {
            (true, Some(p)) => Err(Problem::usage(format!("--all acts on every gateway; -p {p} names one: give one or the other"))),
            (true, None) => Ok(Which::All),
            (false, _) => Ok(Which::One(profile_or_default(self.profile.as_deref(), dash_p)?)),
        }
    }
}

/// How long `start`/`restart` watch the gateway they started.
#[derive(Args, Debug, Clone, Default)]
pub struct Settle {
    /// Succeed only once the gateway is ready (it says so; killed as start-timeout past HERMES_GATEWAY_START_TIMEOUT) and has stayed up this long after (default 1; 0: just ready)
    #[arg(long, value_name = "SECONDS", conflicts_with = "no_wait")]
    pub wait: Option<f64>,
    /// Return once s6 is told and the wanted state recorded, without watching the gateway
    #[arg(long)]
    pub no_wait: bool,
}

impl Settle {
    pub fn wait(&self) -> Result<Wait, Problem> {
        Wait::from_flags(self.wait, self.no_wait)
    }
}

/// Whether `stop` watches the gateway go down.
#[derive(Args, Debug, Clone, Default)]
pub struct StopWait {
    /// Return once s6 is told and the wanted state recorded, without waiting for the gateway to be down
    #[arg(long)]
    pub no_wait: bool,
}

impl StopWait {
    pub fn wait(&self) -> Wait {
        if self.no_wait {
            Wait::No
        } else {
            Wait::Settle(SETTLE)
        }
    }
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
    pub fn given(&self) -> Vec<&'static str> {
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
    pub fn or(self, more: &RenderArgs) -> RenderArgs {
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

//! `hermes`: the image's front for upstream's CLI surface around supervision. The supervision
//! verbs are ours (the tree in [`args`], each verb's work in `crate::verbs`); every other
//! command is hermes-agent's own CLI, exec'd in place (`crate::upstream` decides which).
//! The configuration is resolved once, before root is dropped ([`privilege`]).

pub mod args;
pub mod privilege;

use crate::args::profile_or_default;
use crate::out::{self, Out, Voice};
use crate::upstream::{self, Route};
use crate::verbs::{dashboard, generate, install, logs, profile, restart, run_gateway, start, status, stop};
use args::{Cli, Command, Gateway, Profile};
use clap::{CommandFactory, Parser};
use hermes_core::clock::SystemClock;
use hermes_core::config::{self, Config, Overrides};
use hermes_core::ctx::Ctx;
use hermes_core::fs::LinuxFs;
use hermes_core::problem::Problem;
use hermes_core::Gateways;
use std::ffi::OsString;
use std::path::Path;
use std::process::ExitCode;

fn gateway(gw: &Gateways, cli: &Cli, g: &Gateway, out: Out) -> Result<u8, Problem> {
    let dash_p = cli.profile.as_deref();
    match g {
        Gateway::Start(a) => start::run(gw, &a.which.which_or_default(dash_p)?, &a.settle, out),
        Gateway::Stop(a) => stop::run(gw, &a.which.which_or_default(dash_p)?, &a.wait, out),
        Gateway::Restart(a) => restart::run(gw, &a.which.which_or_default(dash_p)?, &a.settle, out),
        Gateway::Status(t) => status::one(gw, &profile_or_default(t.profile.as_deref(), dash_p)?, out),
        Gateway::Logs(a) => logs::run(gw, &profile_or_default(a.target.profile.as_deref(), dash_p)?, a, out),
        Gateway::List => status::everything(gw, out),
        Gateway::Install(_) => install::install(),
        Gateway::Uninstall(_) => install::uninstall(),
        Gateway::Run(a) => run_gateway::run(gw, &profile_or_default(None, dash_p)?, a, out),
    }
}

fn run(cli: &Cli, cfg: Result<Config, Problem>) -> Result<u8, Problem> {
    // The image build writes completions and man pages as root into system directories: that
    // reads nothing of the user's, so it is done before dropping to the user.
    if let Command::Generate(g) = &cli.cmd {
        return generate::run(Cli::command(), "hermes", &g.what, &g.dir);
    }
    let cfg = cfg?;
    privilege::drop_root(&cfg)?;
    let fs = LinuxFs::default();
    let g = Gateways::new(Ctx::new(&fs, &SystemClock, &cfg));
    let out = Out { json: cli.json, voice: Voice::Hermes };
    match &cli.cmd {
        Command::Gateway(verb) => gateway(&g, cli, verb, out),
        Command::Profile(Profile::Create { args }) => profile::create(&g, args, out),
        Command::Profile(Profile::Delete { name, yes, keep_logs }) => {
            // `-p` naming another profile than the one to delete is refused, never ignored.
            profile_or_default(Some(name), cli.profile.as_deref())?;
            profile::delete(&g, name, *yes, *keep_logs, out)
        }
        Command::Profile(Profile::List) => profile::list(&g, out),
        Command::Status => status::everything(&g, out),
        Command::Dashboard(d) => dashboard::run(d.port),
        Command::Generate(g) => generate::run(Cli::command(), "hermes", &g.what, &g.dir),
    }
}

/// A command line that is not ours: upstream's CLI becomes this process (root already dropped).
fn pass_through(program: &Path, args: &[OsString]) -> ExitCode {
    let err = upstream::exec(program, args);
    Out { json: false, voice: Voice::Hermes }.fail(&Problem::Io {
        path: program.to_path_buf(),
        action: "run hermes-agent's CLI".into(),
        error: err,
    })
}

/// `hermes --version`: upstream's version line, then ours.
fn version(program: Option<&Path>) -> ExitCode {
    if let Some(line) = program.and_then(|p| upstream::output(p, &["--version"])).and_then(|o| o.lines().next().map(str::to_string)) {
        println!("{line}");
    }
    println!("hermes (hermes-s6) {}: supervision by s6, this front and hermes-reconcile", env!("CARGO_PKG_VERSION"));
    ExitCode::SUCCESS
}

pub fn main() -> ExitCode {
    let json = std::env::args().any(|a| a == "--json");
    let say = Out { json, voice: Voice::Hermes };
    // Before anything, whatever the command (upstream's included): root under a PATH the
    // user could fill is refused.
    if let Err(p) = privilege::refuse_unsafe_path() {
        return say.fail(&p);
    }
    let cfg = Config::resolve(&|k| std::env::var(k).ok(), Overrides::default(), &config::lookup_user);
    let args: Vec<OsString> = std::env::args_os().skip(1).collect();
    let route = upstream::route(&args);
    if route != Route::Ours {
        let plain = Out { json: false, ..say };
        match &cfg {
            Ok(c) => {
                if let Err(p) = privilege::drop_root_always(c) {
                    return plain.fail(&p);
                }
            }
            // Unprivileged there is nothing to drop; as root, nothing runs not knowing whom to become.
            Err(p) if nix::unistd::geteuid().is_root() => return plain.fail(p),
            Err(_) => {}
        }
        // Upstream's CLI, when the configuration can be read and it is installed there.
        let program = cfg.as_ref().ok().map(|c| c.upstream_program.clone()).filter(|p| upstream::installed(p));
        match (route, program) {
            (Route::Version, program) => return version(program.as_deref()),
            (Route::Help, Some(program)) => {
                if let Some(help) = upstream::output(&program, &["--help"]) {
                    print!("{help}");
                    println!("\n{}", upstream::OUR_VERBS);
                    return ExitCode::SUCCESS;
                }
            }
            (Route::Upstream, Some(program)) => return pass_through(&program, &args),
            // Without upstream's CLI only our own commands exist: clap says what they are.
            _ => {}
        }
    }
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => return out::clap_error(e, json),
    };
    match run(&cli, cfg) {
        Ok(code) => ExitCode::from(code),
        Err(p) => Out { json: cli.json, ..say }.fail(&p),
    }
}

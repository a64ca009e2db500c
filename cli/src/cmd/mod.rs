//! One file per verb. Each takes its parsed arguments and the resolved context, does its work
//! through the library, prints its result, and returns the exit code (or the problem).

pub mod adopt;
pub mod boot;
pub mod bridge;
pub mod common;
pub mod dump_env;
pub mod finish;
pub mod health;
pub mod list;
pub mod register;
pub mod request;
pub mod restart;
pub mod start;
pub mod static_perms;
pub mod status;
pub mod stop;
pub mod unregister;
pub mod watch;

use crate::{resolve, Cli, Cmd, RenderArgs};
use hermes_core::clock::SystemClock;
use hermes_core::ctx::Ctx;
use hermes_core::fs::LinuxFs;
use hermes_core::problem::Problem;

pub fn run(cli: Cli) -> Result<u8, Problem> {
    // Stage 1 dumps the environment before anything reads it: no configuration needed.
    if let Some(Cmd::DumpEnv(a)) = &cli.cmd {
        let fs = LinuxFs::with_zero_umask();
        let cfg = hermes_core::config::Config::default();
        return dump_env::run(&Ctx::new(&fs, &SystemClock, &cfg), a);
    }
    // A slot's run, as the gateway's user: nothing but its own options and the environment.
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
    let cfg = resolve(&cli.global, &render)?;
    let fs = LinuxFs::with_zero_umask();
    let ctx = Ctx::new(&fs, &SystemClock, &cfg);
    let json = cli.global.json;
    match cli.cmd {
        None => boot::boot(&ctx, false, json),
        Some(Cmd::Boot(a)) => boot::boot(&ctx, a.dry_run, json),
        Some(Cmd::Plan(_)) => boot::boot(&ctx, true, json),
        Some(Cmd::Start(a)) => start::run(&ctx, &a, json),
        Some(Cmd::Stop(a)) => stop::run(&ctx, &a, json),
        Some(Cmd::Restart(a)) => restart::run(&ctx, &a, json),
        Some(Cmd::Status(a)) => status::run(&ctx, &a, json),
        Some(Cmd::List) => list::run(&ctx, json),
        Some(Cmd::Register(a)) => register::run(&ctx, &a, json),
        Some(Cmd::Unregister(a)) => unregister::run(&ctx, &a, json),
        Some(Cmd::Watch(a)) => watch::run(&ctx, &a, json),
        Some(Cmd::Request(a)) => request::run(&ctx, &a, json),
        Some(Cmd::StaticPerms(a)) => static_perms::run(&ctx, &a, json),
        Some(Cmd::AdoptVolume) => adopt::run(&ctx, json),
        Some(Cmd::Health(a)) => health::run(&ctx, &a, json),
        Some(Cmd::DumpEnv(a)) => dump_env::run(&ctx, &a),
        Some(Cmd::Finish(a)) => finish::run(&ctx, &a),
        Some(Cmd::Bridge(_)) => unreachable!("run before the configuration"),
    }
}

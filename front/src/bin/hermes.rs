//! `hermes`: the image's front for upstream's CLI surface around supervision (see
//! `hermes --help`). Run as root (e.g. `docker exec <c> hermes …`) it drops to the hermes
//! user first, unless HERMES_DOCKER_EXEC_AS_ROOT is set; before anything, it refuses a PATH
//! the hermes user could use to choose what root runs (docs/security.md, attack 24).

use clap::{CommandFactory, Parser};
use hermes_core::clock::SystemClock;
use hermes_core::config::{self, is_set, Config, Overrides};
use hermes_core::ctx::Ctx;
use hermes_core::fs::LinuxFs;
use hermes_core::problem::{exit, Problem};
use hermes_front::cli::{Cli, Command};
use hermes_front::commands::{gateway_binary, report_problem, Front};
use hermes_front::upstream::{self, Route};
use std::os::unix::process::CommandExt;
use std::process::ExitCode;

/// `docker exec` runs as root; the user's commands must not, or root does the user's work.
/// `HERMES_DOCKER_EXEC_AS_ROOT=1` keeps root for this front's own verbs only.
fn drop_root() -> Result<(), Problem> {
    if is_set(std::env::var("HERMES_DOCKER_EXEC_AS_ROOT").ok().as_deref()) {
        return Ok(());
    }
    drop_root_always()
}

/// Become the hermes user. hermes-agent's own CLI always runs so, whatever
/// `HERMES_DOCKER_EXEC_AS_ROOT` says: it loads the volume's `.env` and plugins, which are
/// the user's to write (docs/security.md, attack 27).
fn drop_root_always() -> Result<(), Problem> {
    if !nix::unistd::geteuid().is_root() {
        return Ok(());
    }
    // The gateways' ids, as the boot pass renders them: HERMES_UID/HERMES_GID, else the user.
    let cfg = Config::resolve(&|k| std::env::var(k).ok(), Overrides::default(), &config::lookup_user)?;
    upstream::become_user(cfg.uid, cfg.gid).map_err(|(what, e)| {
        Problem::usage(format!("cannot drop root to uid {} ({what}: {e}); set HERMES_DOCKER_EXEC_AS_ROOT=1 to stay root", cfg.uid))
    })?;
    std::env::set_var("HOME", &cfg.home);
    Ok(())
}

/// The PATH the image sets: every entry root's and writable by root only.
const SAFE_PATH: &str = "/command:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// Run as root, refuse a PATH with an entry anyone but root could fill (a directory the hermes
/// user owns or can write, one below such a directory, an empty or relative entry, one that
/// cannot be checked). This front runs its own programs by absolute path, but a PATH like that
/// already chose which `hermes` root ran, and chooses what root's next command runs: say so
/// before doing anything, rather than work under it. Unprivileged, PATH is the caller's own.
fn refuse_unsafe_path() -> Result<(), Problem> {
    if !nix::unistd::geteuid().is_root() {
        return Ok(());
    }
    let Some(path) = std::env::var_os("PATH") else { return Ok(()) };
    let refuse = |entry: &str, why: &str| {
        Problem::usage(format!(
            "refusing to run as root with PATH entry {entry:?}: {why}, so a program planted there would run as root; \
             remove it from PATH (e.g. `docker exec -e PATH={SAFE_PATH} <container> /usr/local/bin/hermes …`) \
             or make it root's and writable by root only"
        ))
    };
    let Some(path) = path.to_str() else { return Err(refuse(&path.to_string_lossy(), "it is not valid UTF-8 and cannot be checked")) };
    for entry in path.split(':') {
        if let Some(why) = hermes_core::trusted::unsafe_path_entry(entry) {
            return Err(refuse(entry, &why));
        }
    }
    Ok(())
}

fn generate(what: &str, dir: &std::path::Path) -> Result<u8, Problem> {
    use clap_complete::Shell;
    let mut cmd = Cli::command();
    let io = |e: std::io::Error| Problem::Io { path: dir.to_path_buf(), action: "write into".into(), error: e };
    if what == "man" {
        clap_mangen::generate_to(cmd, dir).map_err(io)?;
    } else {
        let shell: Shell = what.parse().map_err(|_| Problem::usage(format!("unknown shell {what:?}: bash, zsh, fish, elvish, powershell or man")))?;
        clap_complete::generate_to(shell, &mut cmd, "hermes", dir).map_err(io)?;
    }
    Ok(exit::OK)
}

fn run(cli: Cli) -> Result<u8, Problem> {
    // The image build writes completions and man pages as root into system directories: that
    // reads nothing of the user's, so it is done before dropping to the user.
    if let Command::Generate(g) = &cli.cmd {
        return generate(&g.what, &g.dir);
    }
    drop_root()?;
    let cfg = Config::resolve(&|k| std::env::var(k).ok(), Overrides::default(), &config::lookup_user)?;
    let fs = LinuxFs::default();
    let front = Front { ctx: Ctx::new(&fs, &SystemClock, &cfg), json: cli.json, profile: cli.profile.clone() };
    match &cli.cmd {
        Command::Gateway(g) => front.gateway(g),
        Command::Profile(p) => front.profile(p),
        Command::Status => front.status(),
        Command::Dashboard(d) => {
            let err = std::process::Command::new(gateway_binary()).args(["--dashboard", "--port", &d.port.to_string()]).exec();
            Err(Problem::Io { path: gateway_binary(), action: "run the dashboard".into(), error: err })
        }
        Command::Generate(g) => generate(&g.what, &g.dir),
    }
}

/// Upstream's CLI, when the configuration can be read and it is installed there.
fn upstream_program() -> Option<std::path::PathBuf> {
    let cfg = Config::resolve(&|k| std::env::var(k).ok(), Overrides::default(), &config::lookup_user).ok()?;
    upstream::installed(&cfg.upstream_program).then_some(cfg.upstream_program)
}

/// A command line that is not ours: upstream's CLI becomes this process (root already dropped).
fn pass_through(program: &std::path::Path, args: &[std::ffi::OsString]) -> ExitCode {
    let err = upstream::exec(program, args);
    report_problem(&Problem::Io { path: program.to_path_buf(), action: "run hermes-agent's CLI".into(), error: err }, false);
    ExitCode::from(exit::FAILED)
}

/// `hermes --version`: upstream's version line, then ours.
fn version(program: Option<&std::path::Path>) -> ExitCode {
    if let Some(line) = program.and_then(|p| upstream::output(p, &["--version"])).and_then(|o| o.lines().next().map(str::to_string)) {
        println!("{line}");
    }
    println!("hermes (hermes-s6) {}: supervision by s6, this front and hermes-reconcile", env!("CARGO_PKG_VERSION"));
    ExitCode::SUCCESS
}

fn main() -> ExitCode {
    // Before anything, whatever the command (upstream's included): root under a PATH the
    // user could fill is refused.
    if let Err(p) = refuse_unsafe_path() {
        report_problem(&p, std::env::args().any(|a| a == "--json"));
        return ExitCode::from(p.exit_code());
    }
    let args: Vec<std::ffi::OsString> = std::env::args_os().skip(1).collect();
    let route = upstream::route(&args);
    if route != Route::Ours {
        if let Err(p) = drop_root_always() {
            report_problem(&p, false);
            return ExitCode::from(p.exit_code());
        }
        match (route, upstream_program()) {
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
    let json = std::env::args().any(|a| a == "--json");
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            use clap::error::ErrorKind;
            if matches!(e.kind(), ErrorKind::DisplayHelp | ErrorKind::DisplayVersion) {
                let _ = e.print();
                return ExitCode::SUCCESS;
            }
            if json {
                let p = Problem::from_clap_rendering(&e.render().to_string());
                report_problem(&p, true);
            } else {
                let _ = e.print();
            }
            return ExitCode::from(exit::USAGE);
        }
    };
    let json = cli.json;
    match run(cli) {
        Ok(code) => ExitCode::from(code),
        Err(p) => {
            report_problem(&p, json);
            ExitCode::from(p.exit_code())
        }
    }
}

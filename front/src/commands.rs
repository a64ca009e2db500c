//! What each `hermes` command does, over the library. Text results go to stdout, problems to
//! stderr; under `--json` both are JSON on stdout.

use crate::cli::{Gateway, LogsArgs, OneOrAll, Profile, RunArgs, Settle, Target};
use crate::profile;
use crate::upstream;
use hermes_core::config::is_set;
use hermes_core::ctx::Ctx;
use hermes_core::lifecycle::status::{self, render_table, ProfileStatus};
use hermes_core::lifecycle::{self, all, confirm_up, outcome_json, profile_arg, register, restart, start, stop, Asked, Done, Wait};
use hermes_core::name::DEFAULT_PROFILE;
use hermes_core::problem::{exit, Problem};
use hermes_core::registrar;
use hermes_core::volume::gateway_logs;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::Command;

/// LSB's codes for a single service's `status`.
pub mod lsb {
    pub const RUNNING: u8 = 0;
    pub const NOT_RUNNING: u8 = 3;
    pub const UNKNOWN: u8 = 4;
}

pub struct Front<'a> {
    pub ctx: Ctx<'a>,
    pub json: bool,
    /// `-p`, if given.
    pub profile: Option<String>,
}

fn print_json(v: &serde_json::Value) {
    println!("{}", serde_json::to_string_pretty(v).expect("a JSON value serialises"));
}

impl Front<'_> {
    /// The profile a command acts on: the positional one, else `-p`, else `default`. Both
    /// given and different is a usage error, never a silent choice.
    fn target(&self, t: &Target) -> Result<String, Problem> {
        let p = match (&t.profile, &self.profile) {
            (Some(a), Some(b)) if a != b => {
                return Err(Problem::usage(format!("two different profiles given: '{a}' after the command and '{b}' with -p; give one")))
            }
            (Some(a), _) => a.clone(),
            (None, Some(b)) => b.clone(),
            (None, None) => DEFAULT_PROFILE.to_string(),
        };
        profile_arg(&p)
    }

    /// s6 is the service manager when an s6-svscan runs (PID 1 in the image, or a child of
    /// tini or of a pod's pause process: read as any user from `/proc/<pid>/comm`, never
    /// `/exe`) on our scan directory (its `.s6-svscan`).
    pub fn s6_running(&self) -> bool {
        let fs = self.ctx.fs;
        let Ok(proc) = fs.open_root(&self.ctx.cfg.proc_root) else { return false };
        let is_svscan = |pid: &std::ffi::OsStr| {
            fs.open_dir(&proc, pid)
                .and_then(|d| fs.read_capped(&d, "comm".as_ref(), 64))
                .is_ok_and(|c| matches!(c, hermes_core::fs::Capped::Data(b) if String::from_utf8_lossy(&b).trim() == "s6-svscan"))
        };
        let found = is_svscan("1".as_ref())
            || fs.list(&proc).is_ok_and(|l| l.iter().filter(|(n, _)| n.to_str().is_some_and(|s| s.bytes().all(|b| b.is_ascii_digit()))).any(|(n, _)| is_svscan(n)));
        // Our scanner's own control directory, not s6-overlay's /run/s6/basedir (which the
        // image never makes: it would switch on hermes-agent's own s6 code).
        found && self.ctx.cfg.scandir.join(".s6-svscan").is_dir()
    }

    /// One outcome, printed: `✓ <Past> gateway-<p> under s6` and what happened (or its JSON).
    fn print_outcome(&self, verb: &str, past: &str, profile: &str, wait: Wait, r: Result<Done, Problem>) -> Result<u8, Problem> {
        if self.json {
            print_json(&outcome_json(verb, profile, &r));
            return Ok(r.map(|_| exit::OK).unwrap_or_else(|e| e.exit_code()));
        }
        let done = r?;
        println!("\u{2713} {past} gateway-{profile} under s6");
        for line in done.details(wait) {
            println!("  {line}");
        }
        Ok(exit::OK)
    }

    pub fn gateway(&self, g: &Gateway) -> Result<u8, Problem> {
        match g {
            Gateway::Start(a) if !a.which.all => {
                let p = self.target(&a.which.target)?;
                let wait = settle(&a.settle)?;
                let r = self.start_or_register(&p, wait);
                self.print_outcome("start", "Started", &p, wait, r)
            }
            Gateway::Start(a) => self.one_or_all(&a.which, settle(&a.settle)?, ("start", "Started"), start::ask, confirm_up),
            Gateway::Stop(a) => {
                let wait = if a.no_wait { Wait::No } else { Wait::Settle(lifecycle::SETTLE) };
                self.one_or_all(&a.which, wait, ("stop", "Stopped"), stop::ask, stop::confirm)
            }
            Gateway::Restart(a) => self.one_or_all(&a.which, settle(&a.settle)?, ("restart", "Restarted"), restart::ask, confirm_up),
            Gateway::Status(t) => self.gateway_status(t),
            Gateway::Logs(a) => self.logs(a),
            Gateway::List => self.status(),
            // Upstream's own words for these under s6 (its host message, "not needed inside a
            // Docker container", is wrong in this image).
            Gateway::Install(_) => {
                println!("Per-profile gateways are auto-registered when you create a profile.\n");
                println!("  hermes profile create <name>     # creates the s6 service slot");
                println!("  hermes -p <name> gateway start   # bring it up via s6");
                println!("  hermes status                    # see currently-supervised gateways");
                Ok(exit::OK)
            }
            Gateway::Uninstall(_) => {
                println!("Per-profile gateways are auto-unregistered when you delete the profile.\n");
                println!("  hermes profile delete <name>     # tears down the s6 service slot");
                println!("  hermes -p <name> gateway stop    # stop without deleting the profile");
                Ok(exit::OK)
            }
            Gateway::Run(a) => self.run_gateway(a),
        }
    }

    /// `start`, self-healing: a profile on the volume without a slot (created from outside, or
    /// while the registrar was down) gets one from the registrar, then starts.
    fn start_or_register(&self, p: &str, wait: Wait) -> Result<Done, Problem> {
        match start::start(&self.ctx, p, wait) {
            Err(Problem::NotRegistered { .. }) if register::require_profile(&self.ctx, p).is_ok() => {
                registrar::request(&self.ctx, p, true)?;
                if !self.json {
                    println!("\u{2713} registered the s6 gateway slot for profile '{p}'");
                }
                start::start(&self.ctx, p, wait)
            }
            other => other,
        }
    }

    fn one_or_all(
        &self,
        a: &OneOrAll,
        wait: Wait,
        (verb, past): (&str, &str),
        ask: impl Fn(&Ctx, &str) -> Result<Asked, Problem> + Sync,
        confirm: impl Fn(&Ctx, Asked, Wait) -> Result<Done, Problem> + Sync,
    ) -> Result<u8, Problem> {
        if !a.all {
            let p = self.target(&a.target)?;
            let r = ask(&self.ctx, &p).and_then(|asked| confirm(&self.ctx, asked, wait));
            return self.print_outcome(verb, past, &p, wait, r);
        }
        if let Some(p) = &self.profile {
            return Err(Problem::usage(format!("--all acts on every gateway; -p {p} names one: give one or the other")));
        }
        // Gateways that start are paced like a boot (HERMES_GATEWAY_BOOT_PACE).
        let pace = if matches!(verb, "start" | "restart") { self.ctx.cfg.boot_pace } else { 0 };
        let r = all::for_all_paced(&self.ctx, pace, ask, |ctx, asked| confirm(ctx, asked, wait))?;
        if self.json {
            print_json(&serde_json::Value::Array(r.results.iter().map(|(p, res)| outcome_json(verb, p, res)).collect()));
        } else {
            if let Some(s) = r.summary(past) {
                println!("{s}");
            }
            for line in r.failures(verb) {
                eprintln!("{line}");
            }
        }
        Ok(if r.failed() == 0 { exit::OK } else { exit::FAILED })
    }

    fn gateway_status(&self, t: &Target) -> Result<u8, Problem> {
        let p = self.target(t)?;
        let r = match status::status(&self.ctx, Some(&p)) {
            Ok(r) => r,
            Err(e) => {
                if self.json {
                    print_json(&serde_json::json!({"ok": false, "error": e.to_json_exiting(lsb::UNKNOWN)}));
                } else {
                    report_problem(&e, false);
                }
                return Ok(lsb::UNKNOWN);
            }
        };
        if self.json {
            let mut v = serde_json::to_value(&r.profiles[0]).expect("serialises");
            v["log_dir"] = v["log"].clone();
            print_json(&v);
        } else {
            print!("{}", render_table(&r));
            println!("(its log: hermes -p {p} gateway logs)");
        }
        Ok(if r.profiles[0].up { lsb::RUNNING } else { lsb::NOT_RUNNING })
    }

    fn logs(&self, a: &LogsArgs) -> Result<u8, Problem> {
        let p = self.target(&a.target)?;
        // A name that is neither on the volume nor registered is a typo, not an empty log.
        status::status(&self.ctx, Some(&p))?;
        let dir = gateway_logs::log_dir(&self.ctx.cfg.home, &p);
        let exists = gateway_logs::open_log_dir(&self.ctx, &p)?.is_some();
        let lines = if exists { gateway_logs::tail(&self.ctx, &p, a.lines)? } else { Vec::new() };
        if self.json && !a.follow {
            print_json(&serde_json::json!({"profile": p, "log_dir": dir.display().to_string(), "lines": lines}));
            return Ok(exit::OK);
        }
        if lines.is_empty() && !a.follow {
            let why = if exists { "it is empty" } else { "the gateway has not run since its slot was registered" };
            eprintln!("no log lines yet for gateway-{p} in {} ({why})", dir.display());
            return Ok(exit::OK);
        }
        for line in lines {
            println!("{line}");
        }
        if !a.follow {
            return Ok(exit::OK);
        }
        let mut at = gateway_logs::end(&self.ctx, &p)?;
        loop {
            let (bytes, next) = gateway_logs::read_new(&self.ctx, &p, at)?;
            if !bytes.is_empty() {
                use std::io::Write;
                let mut out = std::io::stdout().lock();
                if out.write_all(&bytes).and_then(|()| out.flush()).is_err() {
                    return Ok(exit::OK); // the reader went away (a closed pipe)
                }
            }
            at = next;
            self.ctx.clock.sleep(std::time::Duration::from_millis(200));
        }
    }

    /// `gateway run`: the supervised child (or an explicit opt-out) runs the gateway in the
    /// foreground; anything else under s6 asks s6 to run it and becomes a heartbeat, so the
    /// container outlives gateway restarts.
    fn run_gateway(&self, a: &RunArgs) -> Result<u8, Problem> {
        let p = self.target(&Target { profile: None })?;
        let no_supervise = a.no_supervise || is_set(std::env::var("HERMES_GATEWAY_NO_SUPERVISE").ok().as_deref());
        let supervised_child = std::env::var("HERMES_S6_SUPERVISED_CHILD").is_ok_and(|v| !v.is_empty());
        if no_supervise || supervised_child || !self.s6_running() {
            let mut args = vec!["-p".to_string(), p, "gateway".into(), "run".into()];
            if a.replace {
                args.push("--replace".into());
            }
            args.extend(a.rest.iter().cloned());
            let err = Command::new(gateway_binary()).args(&args).exec();
            return Err(Problem::Io { path: gateway_binary(), action: "run the gateway".into(), error: err });
        }
        // The heartbeat must not die with a gateway that crashes at once: s6 and the crash
        // policy own it from here, so this does not wait for it.
        self.start_or_register(&p, Wait::No)?;
        eprintln!("\u{2192} gateway is now running under s6 supervision (auto-restart on crash,");
        eprintln!("  dashboard supervised alongside if HERMES_DASHBOARD is set).");
        eprintln!("  This is the recommended setup for the s6 container image \u{2014} the");
        eprintln!("  gateway will keep running even if it crashes.");
        eprintln!("  Use `--no-supervise` (or HERMES_GATEWAY_NO_SUPERVISE=1) to opt out");
        eprintln!("  and get the pre-s6 foreground behavior instead.");
        let err = Command::new("/bin/sleep").arg("infinity").exec();
        eprintln!("\u{2192} `sleep` is unavailable ({err}); keeping the s6 CMD process alive in-process until the container is stopped.");
        loop {
            std::thread::park();
        }
    }

    pub fn profile(&self, p: &Profile) -> Result<u8, Problem> {
        match p {
            Profile::Create { args } => {
                let name = &profile::name_in_create_args(args)?;
                let path = if upstream::installed(&self.ctx.cfg.upstream_program) {
                    // hermes-agent's own create (its SOUL.md, .env and skills), as this user.
                    profile::check_new_name(name)?;
                    let mut argv: Vec<&std::ffi::OsStr> = vec!["profile".as_ref(), "create".as_ref()];
                    // Our own global flag is not hermes-agent's.
                    argv.extend(args.iter().filter(|a| *a != "--json").map(std::ffi::OsStr::new));
                    let program = &self.ctx.cfg.upstream_program;
                    let code = upstream::run(program, &argv, (self.ctx.cfg.uid, self.ctx.cfg.gid)).map_err(|e| Problem::Io { path: program.clone(), action: "run".into(), error: e })?;
                    if code != 0 {
                        eprintln!("\u{2717} hermes-agent's `profile create` exited {code}: no gateway slot was registered for '{name}'");
                        return Ok(u8::try_from(code).unwrap_or(exit::FAILED));
                    }
                    // It may have exited 0 without making one (`--help`): then there is nothing to register.
                    if !hermes_core::volume::profile_exists(&self.ctx, name).unwrap_or(false) {
                        return Ok(exit::OK);
                    }
                    self.ctx.cfg.home.join(hermes_core::volume::PROFILES_DIR).join(name)
                } else {
                    let path = profile::create(&self.ctx, name)?;
                    if !self.json {
                        println!("\u{2713} created profile '{name}' at {}", path.display());
                    }
                    path
                };
                let registered = self.registrar_listens();
                if registered {
                    registrar::request(&self.ctx, name, true)?;
                    if !self.json {
                        println!("\u{2713} registered the s6 gateway slot for profile '{name}' (down; start it with `hermes -p {name} gateway start`)");
                    }
                }
                if self.json {
                    print_json(&serde_json::json!({"ok": true, "action": "create", "profile": name, "path": path.display().to_string(), "slot_registered": registered}));
                }
                Ok(exit::OK)
            }
            Profile::Delete { name, yes, keep_logs } => {
                if !yes {
                    return Err(Problem::usage(format!("this deletes profile '{name}' and everything in it; repeat with --yes to confirm")));
                }
                let program = &self.ctx.cfg.upstream_program;
                profile::delete(&self.ctx, name, upstream::installed(program).then_some(program.as_path()))?;
                if !self.json {
                    println!("\u{2713} deleted profile '{name}'{}", if *keep_logs { " (its gateway log is kept)" } else { "" });
                }
                let unregistered = self.registrar_listens();
                // The slot first: its logger writes into the log directory until it is gone.
                let slot = if unregistered { registrar::request(&self.ctx, name, false) } else { Ok(()) };
                if !keep_logs {
                    gateway_logs::remove(&self.ctx, name)?;
                }
                slot?;
                if unregistered && !self.json {
                    println!("\u{2713} removed the s6 gateway slot for profile '{name}'");
                }
                if self.json {
                    print_json(&serde_json::json!({"ok": true, "action": "delete", "profile": name, "slot_removed": unregistered, "logs_kept": keep_logs}));
                }
                Ok(exit::OK)
            }
            Profile::List => self.profile_list(),
        }
    }

    fn registrar_listens(&self) -> bool {
        self.s6_running() || self.ctx.cfg.registrar_fifo.exists()
    }

    fn profile_list(&self) -> Result<u8, Problem> {
        let r = status::status(&self.ctx, None)?;
        let on_volume: Vec<&ProfileStatus> = r.profiles.iter().filter(|p| p.profile == DEFAULT_PROFILE || hermes_core::volume::profile_exists(&self.ctx, &p.profile).unwrap_or(false)).collect();
        if self.json {
            print_json(&serde_json::to_value(&on_volume).expect("serialises"));
        } else {
            println!("{:<24} {:<14} {:<10} STATE", "PROFILE", "SLOT", "WANTED");
            for p in on_volume {
                let slot = if p.registered { "registered" } else { "not registered" };
                println!("{:<24} {:<14} {:<10} {}", p.profile, slot, hermes_core::escape::terminal(p.wanted.as_ref().map(|w| w.as_str()).unwrap_or("-")), p.state);
            }
        }
        Ok(exit::OK)
    }

    pub fn status(&self) -> Result<u8, Problem> {
        let r = status::status(&self.ctx, None)?;
        let manager = if self.s6_running() { "s6 (container supervisor)" } else { "none" };
        if self.json {
            let mut v = serde_json::to_value(&r).expect("serialises");
            v["manager"] = serde_json::json!(manager);
            v["home"] = serde_json::json!(self.ctx.cfg.home.display().to_string());
            print_json(&v);
        } else {
            println!("Manager:      {manager}");
            println!("Home:         {}", self.ctx.cfg.home.display());
            println!();
            print!("{}", render_table(&r));
        }
        Ok(if r.profiles.iter().all(ProfileStatus::as_wanted) { exit::OK } else { lsb::NOT_RUNNING })
    }
}

fn settle(s: &Settle) -> Result<Wait, Problem> {
    Wait::from_flags(s.wait, s.no_wait)
}

/// A problem on stderr, or as JSON on stdout.
pub fn report_problem(p: &Problem, json: bool) {
    if json {
        print_json(&serde_json::json!({"ok": false, "error": p.to_json()}));
    } else {
        eprintln!("\u{2717} {}", hermes_core::escape::terminal(&p.to_string()));
    }
}

/// The reference gateway, installed next to this binary (else where the image installs it):
/// always an absolute path, never looked up on PATH, whoever runs this.
pub fn gateway_binary() -> PathBuf {
    std::env::current_exe()
        .ok()
        .and_then(|p| p.parent().map(|d| d.join("hermes-gateway")))
        .filter(|p| p.is_absolute() && p.exists())
        .unwrap_or_else(|| PathBuf::from("/usr/local/bin/hermes-gateway"))
}

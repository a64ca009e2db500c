//! `hermes profile create|delete|list`: hermes-agent's own create and delete (when it is
//! installed) inside ours, which registers or removes the gateway's slot; `list` shows each
//! profile on the volume with its gateway's state.

use crate::out::{self, Out};
use crate::upstream;
use hermes_core::escape::terminal;
use hermes_core::gateways::{ProfileStatus, Remover};
use hermes_core::name::{Profile, DEFAULT_PROFILE};
use hermes_core::problem::{exit, Problem};
use hermes_core::Gateways;
use std::ffi::OsStr;

/// The profile name in `profile create`'s arguments: the first word that is neither an
/// option nor the value of one (hermes-agent's `--clone-from SOURCE`, `--description TEXT`).
pub fn name_in_create_args(args: &[String]) -> Result<String, Problem> {
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--clone-from" | "--description" => {
                it.next();
            }
            o if o.starts_with('-') => {}
            n => return Ok(n.to_string()),
        }
    }
    Err(Problem::usage("profile create needs the new profile's NAME"))
}

/// `profile create NAME [hermes-agent's options]`.
pub fn create(g: &Gateways, args: &[String], out: Out) -> Result<u8, Problem> {
    let cfg = g.config();
    let name = &g.check_new_name(&name_in_create_args(args)?)?;
    let program = &cfg.upstream_program;
    let path = if upstream::installed(program) {
        // hermes-agent's own create (its SOUL.md, .env and skills), as this user.
        let existed = g.profile_exists(name);
        let mut argv: Vec<&OsStr> = vec!["profile".as_ref(), "create".as_ref()];
        // Our own global flag is not hermes-agent's.
        argv.extend(args.iter().filter(|a| *a != "--json").map(OsStr::new));
        let code = upstream::run(program, &argv, (cfg.uid, cfg.gid)).map_err(|e| Problem::Io {
            path: program.clone(),
            action: "run".into(),
            error: e,
        })?;
        if code != 0 {
            if existed {
                eprintln!("\u{2717} hermes-agent's `profile create` exited {code}: profile '{name}' already exists (its gateway slot is as it was)");
            } else {
                eprintln!("\u{2717} hermes-agent's `profile create` exited {code}: no gateway slot was registered for '{name}'");
            }
            return Ok(u8::try_from(code).unwrap_or(exit::FAILED));
        }
        // It may have exited 0 without making one (`--help`): then there is nothing to register.
        if !g.profile_exists(name) {
            return Ok(exit::OK);
        }
        g.profile_path(name)
    } else {
        let path = g.create_profile(name)?;
        out.say(format_args!("\u{2713} created profile '{name}' at {}", path.display()));
        path
    };
    let registered = g.registrar_listens();
    if registered {
        g.request(name, true)?;
        out.say(format_args!(
            "\u{2713} registered the s6 gateway slot for profile '{name}' (down; start it with `hermes -p {name} gateway start`)"
        ));
    }
    if out.json {
        out::json(
            &serde_json::json!({"ok": true, "action": "create", "profile": name, "path": path.display().to_string(), "slot_registered": registered}),
        );
    }
    Ok(exit::OK)
}

/// `profile delete NAME --yes [--keep-logs]`.
pub fn delete(g: &Gateways, name: &str, yes: bool, keep_logs: bool, out: Out) -> Result<u8, Problem> {
    if !yes {
        return Err(Problem::usage(format!("this deletes profile '{name}' and everything in it; repeat with --yes to confirm")));
    }
    let name = &Profile::new(name)?;
    let cfg = g.config();
    let program = cfg.upstream_program.as_path();
    let run = || upstream::run(program, &["profile", "delete", name, "--yes"].map(OsStr::new), (cfg.uid, cfg.gid));
    let remover = if upstream::installed(program) { Remover::Upstream { program, run: &run } } else { Remover::Ourselves };
    let done = g.delete_profile(name, remover, keep_logs)?;
    out.say(format_args!("\u{2713} deleted profile '{name}'{}", if keep_logs { " (its gateway log is kept)" } else { "" }));
    let slot_removed = done.slot?;
    if slot_removed {
        out.say(format_args!("\u{2713} removed the s6 gateway slot for profile '{name}'"));
    }
    if out.json {
        out::json(
            &serde_json::json!({"ok": true, "action": "delete", "profile": name, "slot_removed": slot_removed, "logs_kept": keep_logs}),
        );
    }
    Ok(exit::OK)
}

/// `profile list`: the profiles on the volume (not slots left without one).
pub fn list(g: &Gateways, out: Out) -> Result<u8, Problem> {
    let r = g.status(None)?;
    let on_volume: Vec<&ProfileStatus> =
        r.profiles.iter().filter(|p| p.profile == DEFAULT_PROFILE || g.profile_exists(&p.profile)).collect();
    if out.json {
        out::json(&serde_json::to_value(&on_volume).expect("serialises"));
    } else {
        println!("{:<24} {:<14} {:<10} STATE", "PROFILE", "SLOT", "WANTED");
        for p in on_volume {
            let slot = if p.registered { "registered" } else { "not registered" };
            println!("{:<24} {:<14} {:<10} {}", p.profile, slot, terminal(p.wanted.as_ref().map(|w| w.as_str()).unwrap_or("-")), p.state);
        }
    }
    Ok(exit::OK)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_name_is_the_first_word_that_is_not_an_option_or_its_value() {
        let args = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(name_in_create_args(&args(&["--clone-from", "base", "--no-skills", "coder"])).unwrap(), "coder");
        assert_eq!(name_in_create_args(&args(&["--description", "a bot", "bot"])).unwrap(), "bot");
        assert!(name_in_create_args(&args(&["--clone"])).is_err());
    }
}

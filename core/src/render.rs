//! The files of a slot, rendered from a validated profile name and root's configuration.
//!
//! By default the output is byte-identical to upstream [B] (`#!/command/with-contenv sh`,
//! `hermes [-p <P>] gateway run --replace`, the home at `/opt/data`). Names reaching this module
//! have passed [`crate::profile_name::validate`], so they need no shell quoting; paths from
//! the configuration are quoted.

use crate::config::Config;
use crate::profile_name::DEFAULT_PROFILE;

pub const TYPE: &str = "longrun\n";

/// Single-quote a string for POSIX sh unless it is made only of safe characters.
pub fn sh_quote(s: &str) -> String {
    if !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric() || b"/._-+:@%,=".contains(&b)) {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', r#"'"'"'"#))
    }
}

/// `hermes gateway run --replace` for the root profile (never `-p default`, which would mean
/// `profiles/default/`), `hermes -p <P> gateway run --replace` otherwise.
pub fn gateway_command(cfg: &Config, profile: &str) -> String {
    if profile == DEFAULT_PROFILE {
        format!("{} gateway run --replace", cfg.gateway_program)
    } else {
        format!("{} -p {} gateway run --replace", cfg.gateway_program, profile)
    }
}

pub fn run_script(cfg: &Config, profile: &str) -> String {
    let home = sh_quote(&cfg.home.to_string_lossy());
    let cmd = gateway_command(cfg, profile);
    format!(
        "#!{interp}\n\
         # shellcheck shell=sh\n\
         set -e\n\
         export HOME={home}\n\
         cd {home}\n\
         export HERMES_S6_SUPERVISED_CHILD=1\n\
         export HERMES_SUPERVISED_CHILD=1\n\
         [ \"$(id -u)\" = 0 ] || exec {cmd}\n\
         exec s6-setuidgid {user} {cmd}\n",
        interp = cfg.interpreter,
        user = cfg.user,
    )
}

/// s6 runs `finish <exit code|256> <signal> ...`. Exit 125 tells s6-supervise not to restart:
/// a clean exit (0) is an intentional stop, 78 (EX_CONFIG) a configuration error that a
/// restart cannot fix. Anything else (crash, signal) restarts.
pub fn finish_script(cfg: &Config) -> String {
    format!(
        "#!{}\n\
         # shellcheck shell=sh\n\
         # $1 = exit code from the run script.\n\
         # Exit 78 (EX_CONFIG) = fatal config error \u{2014} don't restart.\n\
         # Exit 0 (clean stop) = intentional stop \u{2014} don't restart.\n\
         if [ \"$1\" = \"78\" ]; then\n\
         \x20 exit 125\n\
         fi\n\
         if [ \"$1\" = \"0\" ]; then\n\
         \x20 exit 125\n\
         fi\n\
         exit 0\n",
        cfg.interpreter
    )
}

/// The logger: `$HERMES_HOME` is expanded when the logger starts, never baked in, and the
/// directory is made by the unprivileged user (root never chowns in a user-writable tree).
pub fn log_run_script(cfg: &Config, profile: &str) -> String {
    let home = cfg.home.to_string_lossy();
    // Inside "${VAR:=word}" quotes are literal, so only a plain path can be used there (the
    // upstream form); anything else is assigned with ordinary quoting.
    let default_home = if home.bytes().all(|b| b.is_ascii_alphanumeric() || b"/._-+:@%,".contains(&b)) {
        format!(": \"${{HERMES_HOME:={home}}}\"")
    } else {
        format!("[ -n \"${{HERMES_HOME:-}}\" ] || HERMES_HOME={}", sh_quote(&home))
    };
    format!(
        "#!{interp}\n\
         # shellcheck shell=sh\n\
         {default_home}\n\
         log_dir=\"$HERMES_HOME/logs/gateways/{profile}\"\n\
         if [ \"$(id -u)\" = 0 ]; then\n\
         \x20 s6-setuidgid {user} mkdir -p \"$log_dir\"\n\
         \x20 s6-setuidgid {user} rm -f \"$log_dir/lock\"\n\
         else\n\
         \x20 mkdir -p \"$log_dir\"\n\
         \x20 rm -f \"$log_dir/lock\"\n\
         fi\n\
         [ \"$(id -u)\" = 0 ] || exec s6-log 1 n10 s1000000 T \"$log_dir\"\n\
         exec s6-setuidgid {user} s6-log 1 n10 s1000000 T \"$log_dir\"\n",
        interp = cfg.interpreter,
        user = cfg.user,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    #[test]
    fn run_script_is_upstream_b_byte_for_byte() {
        let got = run_script(&Config::default(), "coder");
        let want = "#!/command/with-contenv sh\n# shellcheck shell=sh\nset -e\nexport HOME=/opt/data\ncd /opt/data\nexport HERMES_S6_SUPERVISED_CHILD=1\nexport HERMES_SUPERVISED_CHILD=1\n[ \"$(id -u)\" = 0 ] || exec hermes -p coder gateway run --replace\nexec s6-setuidgid hermes hermes -p coder gateway run --replace\n";
        assert_eq!(got, want);
    }

    #[test]
    fn default_slot_run_has_no_profile_flag() {
        let got = run_script(&Config::default(), "default");
        assert!(got.contains("exec s6-setuidgid hermes hermes gateway run --replace\n"));
        assert!(!got.contains("-p default") && !got.contains("-p 'default'"));
    }

    #[test]
    fn finish_script_is_upstream_b() {
        let want = "#!/command/with-contenv sh\n# shellcheck shell=sh\n# $1 = exit code from the run script.\n# Exit 78 (EX_CONFIG) = fatal config error \u{2014} don't restart.\n# Exit 0 (clean stop) = intentional stop \u{2014} don't restart.\nif [ \"$1\" = \"78\" ]; then\n  exit 125\nfi\nif [ \"$1\" = \"0\" ]; then\n  exit 125\nfi\nexit 0\n";
        assert_eq!(finish_script(&Config::default()), want);
    }

    #[test]
    fn log_run_expands_home_at_run_time() {
        let got = log_run_script(&Config::default(), "coder");
        assert!(got.contains(": \"${HERMES_HOME:=/opt/data}\"\n"));
        assert!(got.contains("log_dir=\"$HERMES_HOME/logs/gateways/coder\"\n"));
        assert!(!got.contains("/opt/data/logs/gateways/coder"));
        assert!(got.contains("exec s6-log 1 n10 s1000000 T \"$log_dir\"\n"));
        assert!(got.contains("s6-setuidgid hermes rm -f \"$log_dir/lock\""));
        assert!(!got.contains("chown"), "root must never chown in the user's tree");
    }

    #[test]
    fn configured_interpreter_program_and_home_are_used_and_quoted() {
        let cfg = Config {
            home: PathBuf::from("/srv/my home"),
            interpreter: "/bin/sh".into(),
            gateway_program: "/usr/local/bin/fake-gateway".into(),
            user: "svc".into(),
            ..Config::default()
        };
        let run = run_script(&cfg, "coder");
        assert!(run.starts_with("#!/bin/sh\n"));
        assert!(run.contains("export HOME='/srv/my home'\ncd '/srv/my home'\n"));
        assert!(run.ends_with("exec s6-setuidgid svc /usr/local/bin/fake-gateway -p coder gateway run --replace\n"));
        assert!(finish_script(&cfg).starts_with("#!/bin/sh\n"));
        assert!(log_run_script(&cfg, "coder").contains("[ -n \"${HERMES_HOME:-}\" ] || HERMES_HOME='/srv/my home'\n"));
    }

    #[test]
    fn sh_quote_escapes_single_quotes() {
        assert_eq!(sh_quote("a'b"), r#"'a'"'"'b'"#);
        assert_eq!(sh_quote("/opt/data"), "/opt/data");
    }
}

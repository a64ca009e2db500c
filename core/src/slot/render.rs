//! The files of a slot, rendered from a validated profile name and root's configuration.
//!
//! They differ from upstream's on purpose (see the README, "Slot files"):
//! - privilege is decided when the slot is rendered, not by the script at run time: a slot
//!   rendered by root drops to the hermes uid/gid unconditionally (`s6-applyuidgid`, numeric,
//!   no password-database lookup), so no failing program (upstream ran `id -u`) can fall
//!   through to running the gateway or its logger as root; a slot rendered by an
//!   unprivileged pass (a container started with `--user`) has no drop at all;
//! - the gateway's stderr goes to its logger too, so its crash reasons are in its own log;
//! - the logger is lean: its directory is made when the slot is published (as the hermes
//!   user), so `log/run` is one exec, with no shell command substitution and no `mkdir`/`rm`
//!   forks at every start; it needs no container environment, so it skips `with-contenv`.
//!
//! Names reaching this module have passed [`crate::name::validate`], so they need no shell
//! quoting; paths from the configuration are quoted.

use crate::config::Config;
use crate::name::DEFAULT_PROFILE;
use crate::volume::gateway_logs;

pub const TYPE: &str = "longrun\n";
/// The files of a slot that are the same in every slot (whatever the profile, privilege or
/// port): the boot pass links them from one copy instead of creating each anew
/// ([`super::publish::Common`]).
pub const SHARED: &[&str] = &["type", "max-death-tally", "timeout-kill", "flag-timeout-killpg"];
/// The logger's interpreter: it needs nothing from the container environment.
pub const LOG_INTERPRETER: &str = "/bin/sh";
/// s6-log's script: copy lines to stdout (so they also reach `docker logs`), keep 10
/// archives of at most 1 MB, stamp each line in the file with an ISO 8601 time.
pub const LOG_SCRIPT: &str = "1 n10 s1000000 T";

/// Who the scripts run their program as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Privilege {
    /// Rendered by root: always exec through `s6-applyuidgid` (at the configuration's
    /// absolute path, which only root can change) to these ids.
    DropTo { uid: u32, gid: u32 },
    /// Rendered by an unprivileged pass: the supervisor already runs as the user.
    AsIs,
}

impl Privilege {
    /// Root renders slots that drop; anyone else renders slots that run as they are.
    pub fn for_renderer(euid: u32, cfg: &Config) -> Privilege {
        if euid == 0 {
            Privilege::DropTo { uid: cfg.uid, gid: cfg.gid }
        } else {
            Privilege::AsIs
        }
    }

    /// The `exec` line that starts `cmd` with this privilege.
    fn exec(self, cfg: &Config, cmd: &str) -> String {
        format!("exec {}", self.command(cfg, cmd))
    }

    /// `cmd` with this privilege, as words to exec.
    fn command(self, cfg: &Config, cmd: &str) -> String {
        match self {
            Privilege::DropTo { uid, gid } => format!("{} -u {uid} -g {gid} -G {gid} {cmd}", sh_quote(&cfg.applyuidgid)),
            Privilege::AsIs => cmd.to_string(),
        }
    }

    /// How the gateway enters the home: after the drop, through execline's `cd`, when root
    /// renders and it is there (the home may be the user's 0700, which a root without
    /// CAP_DAC_READ_SEARCH cannot enter); else the script's own `cd` first.
    fn enter_home(self, cfg: &Config) -> (String, String) {
        let home = sh_quote(&cfg.home.to_string_lossy());
        match (self, &cfg.execline_cd) {
            (Privilege::DropTo { .. }, Some(cd)) => (String::new(), format!("{} {home} ", sh_quote(cd))),
            _ => (format!("cd {home} || exit 111\n"), String::new()),
        }
    }
}

/// Single-quote a string for POSIX sh unless it is made only of safe characters.
pub fn sh_quote(s: &str) -> String {
    if !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric() || b"/._-+:@%,".contains(&b)) {
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

/// What a gateway run by us is told, read from hermes-agent 0.19.0's own code:
/// - `HERMES_S6_SUPERVISED_CHILD`: it is the supervised child itself, so `gateway run` runs in
///   the foreground instead of redirecting to `gateway start` (which would recurse); the
///   default slot does not follow a sticky `active_profile`; and it counts as supervised
///   (`gateway/restart.py`), so `/restart` exits 75 for its supervisor to restart it instead
///   of respawning itself detached.
/// - `HERMES_SUPERVISED_CHILD`: not read by 0.19.0; newer upstream reads it where it reads
///   the s6 marker (the profile override), so both are given.
/// - `HERMES_GATEWAY_EXTERNAL_SUPERVISOR=1`: the explicit supervised marker of
///   `gateway run --external-supervisor`, which survives wrappers that rebuild the
///   environment.
/// - `HERMES_GATEWAY_MAX_STARTS=0`: turns off its own respawn-storm breaker (after 5 starts
///   in 120 s it slept 10 s to 300 s before running, while s6 reported it up); one supervisor
///   owns the restart policy, and it is ours.
/// - `PYTHONUNBUFFERED=1`: its lines reach the logger as they are written, not at exit.
pub const SUPERVISED_ENV: &str = "export HERMES_S6_SUPERVISED_CHILD=1 HERMES_SUPERVISED_CHILD=1 HERMES_GATEWAY_EXTERNAL_SUPERVISOR=1\n\
export HERMES_GATEWAY_MAX_STARTS=0 PYTHONUNBUFFERED=1\n";

/// The bridge between the gateway's own signals and s6's readiness (see [`crate::liveness`]):
/// run after the privilege drop, it execs the gateway in its place.
pub fn bridge_command(cfg: &Config, profile: &str) -> String {
    format!("{} --home {} bridge {profile} --", sh_quote(&cfg.reconcile_program), sh_quote(&cfg.home.to_string_lossy()))
}

/// The gateway's run script. `port`: the `API_SERVER_PORT` assigned to the profile (see
/// [`crate::volume::ports`]), `None` when the profile sets its own. A named profile's gateway
/// gets only the allow-listed part of the container environment ([`super::env`]); the
/// default profile's gets all of it, as upstream's single-gateway containers expect.
pub fn run_script(cfg: &Config, profile: &str, privilege: Privilege, port: Option<u16>) -> String {
    let home = sh_quote(&cfg.home.to_string_lossy());
    let (cd_first, cd_after) = privilege.enter_home(cfg);
    let port_line = port.map(|p| format!("export API_SERVER_PORT={p}\n")).unwrap_or_default();
    let cmd = format!("{cd_after}{} {}", bridge_command(cfg, profile), gateway_command(cfg, profile));
    let exec = if profile == DEFAULT_PROFILE {
        privilege.exec(cfg, &cmd)
    } else {
        format!(
            "# Only the allow-listed container variables (README, \"Per-profile environment\").\n\
             # shellcheck disable=SC3028 # HOSTNAME is the container's variable, not bash's\n{}",
            super::env::filtered_exec(cfg, &privilege.command(cfg, &cmd))
        )
    };
    format!(
        "#!{interp}\n\
         # shellcheck shell=sh\n\
         export HOME={home} HERMES_HOME={home}\n\
         {cd_first}\
         {SUPERVISED_ENV}\
         {port_line}\
         exec 2>&1\n\
         {exec}\n",
        interp = cfg.interpreter,
    )
}

/// s6 runs `finish <exit code|256> <signal> <name> [pgid]` after every death of the gateway
/// and restarts it unless finish exits 125. The crash policy decides (see
/// [`crate::policy`]); if it cannot run at all, the plain contract holds: a clean exit (0) or a
/// configuration error (78) stays down, anything else restarts.
pub fn finish_script(cfg: &Config, profile: &str) -> String {
    use crate::exit_policy::{CONFIG_ERROR, FINISHED, S6_PERMANENT_FAILURE};
    let q = |p: &std::path::Path| sh_quote(&p.to_string_lossy());
    format!(
        "#!{interp}\n\
         # shellcheck shell=sh\n\
         # $1 = the run's exit code (256: killed by a signal), $2 = the signal.\n\
         # The crash policy answers 0 (restart) or {S6_PERMANENT_FAILURE} (stay down) and records why.\n\
         {prog} --home {home} --scandir {scandir} finish --registrar {fifo} --uid {uid} --gid {gid} {profile} \"$@\"\n\
         code=$?\n\
         if [ \"$code\" = 0 ] || [ \"$code\" = {S6_PERMANENT_FAILURE} ]; then exit \"$code\"; fi\n\
         # The policy could not run: {CONFIG_ERROR} (EX_CONFIG) and {FINISHED} (a clean stop) stay down.\n\
         if [ \"$1\" = \"{CONFIG_ERROR}\" ] || [ \"$1\" = \"{FINISHED}\" ]; then exit {S6_PERMANENT_FAILURE}; fi\n\
         exit 0\n",
        interp = cfg.interpreter,
        prog = sh_quote(&cfg.reconcile_program),
        home = q(&cfg.home),
        scandir = q(&cfg.scandir),
        fifo = q(&cfg.registrar_fifo),
        uid = cfg.uid,
        gid = cfg.gid,
    )
}

/// The logger: one exec of s6-log into `$HERMES_HOME/logs/gateways/<P>` (which s6-log makes,
/// as the user, if it is missing; its parent is made at publish).
pub fn log_run_script(cfg: &Config, profile: &str, privilege: Privilege) -> String {
    let dir = sh_quote(&gateway_logs::log_dir(&cfg.home, profile).to_string_lossy());
    format!(
        "#!{LOG_INTERPRETER}\n\
         # shellcheck shell=sh\n\
         {exec}\n",
        exec = privilege.exec(cfg, &format!("s6-log {LOG_SCRIPT} {dir}")),
    )
}

/// One file of a slot as rendered: its path in the slot, content and mode.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RenderedFile {
    pub path: &'static str,
    pub data: Vec<u8>,
    pub mode: u32,
}

/// Every file of a slot but `down` (which is state, not code), in creation order (`log/run`
/// needs `log/` first). What a slot is built from, and what a live slot is compared with.
pub fn files(cfg: &Config, profile: &str, privilege: Privilege, port: Option<u16>) -> Vec<RenderedFile> {
    use super::layout::{DATA_MODE, SCRIPT_MODE, STOP_GRACE_MS};
    let f = |path, data: String, mode| RenderedFile { path, data: data.into_bytes(), mode };
    vec![
        f("type", TYPE.to_string(), DATA_MODE),
        f("run", run_script(cfg, profile, privilege, port), SCRIPT_MODE),
        f("finish", finish_script(cfg, profile), SCRIPT_MODE),
        f("max-death-tally", "4096\n".to_string(), DATA_MODE),
        f("timeout-kill", format!("{STOP_GRACE_MS}\n"), DATA_MODE),
        // No `timeout-finish`: s6's default (5 s) is what the finish needs (the
        // crash policy takes milliseconds, waits at most 1 s for the profile's lock, never
        // sleeps), and one file less per slot is one inode less on a disk-backed scandir.
        f("flag-timeout-killpg", String::new(), DATA_MODE),
        // s6 marks the gateway ready when the bridge writes a line here (see crate::liveness).
        f("notification-fd", format!("{}\n", crate::liveness::NOTIFICATION_FD), DATA_MODE),
        f("log/run", log_run_script(cfg, profile, privilege), SCRIPT_MODE),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    const DROP: Privilege = Privilege::DropTo { uid: 10000, gid: 10000 };

    #[test]
    fn a_root_rendered_run_script_always_drops_and_never_asks_id() {
        let got = run_script(&Config::default(), "default", DROP, Some(8642));
        let want = "#!/command/with-contenv sh\n# shellcheck shell=sh\nexport HOME=/opt/data HERMES_HOME=/opt/data\ncd /opt/data || exit 111\nexport HERMES_S6_SUPERVISED_CHILD=1 HERMES_SUPERVISED_CHILD=1 HERMES_GATEWAY_EXTERNAL_SUPERVISOR=1\nexport HERMES_GATEWAY_MAX_STARTS=0 PYTHONUNBUFFERED=1\nexport API_SERVER_PORT=8642\nexec 2>&1\nexec /usr/bin/s6-applyuidgid -u 10000 -g 10000 -G 10000 /usr/local/bin/hermes-reconcile --home /opt/data bridge default -- hermes gateway run --replace\n";
        assert_eq!(got, want);
        let named = run_script(&Config::default(), "coder", DROP, Some(8650));
        assert!(named.contains("\nexport API_SERVER_PORT=8650\nexec 2>&1\n# Only the allow-listed"), "{named}");
        assert!(named.contains("\n# shellcheck disable=SC3028 "), "{named}");
        assert!(named.ends_with(" ${API_SERVER_PORT+\"API_SERVER_PORT=$API_SERVER_PORT\"} /usr/bin/s6-applyuidgid -u 10000 -g 10000 -G 10000 /usr/local/bin/hermes-reconcile --home /opt/data bridge coder -- hermes -p coder gateway run --replace\n"), "{named}");
        assert!(named.contains("\nexec /usr/bin/env -i ${PATH+\"PATH=$PATH\"} "), "{named}");
        assert!(!got.contains("$(id"), "no program decides privilege at run time");
        assert!(!got.contains("exec 4<>") && !got.contains("<>"), "no root descriptor is handed across the drop: {got}");
    }

    /// What hermes-agent needs to be supervised by us rather than by itself: measured with
    /// 0.19.0, without PYTHONUNBUFFERED its banner reached the log only at exit, and its own
    /// respawn-storm breaker slept up to 300 s before running while s6 said it was up.
    #[test]
    fn the_gateway_is_told_it_is_supervised_and_never_breaks_its_own_storms() {
        let got = run_script(&Config::default(), "default", DROP, None);
        for env in
            ["HERMES_S6_SUPERVISED_CHILD=1", "HERMES_GATEWAY_EXTERNAL_SUPERVISOR=1", "HERMES_GATEWAY_MAX_STARTS=0", "PYTHONUNBUFFERED=1"]
        {
            assert!(got.contains(env), "{env} missing:\n{got}");
        }
        assert!(got.contains(super::super::trust::RUN_MARK), "the trust check must know our run script:\n{got}");
        assert!(!got.contains("activate"), "the venv's bin must not come first on the gateway's PATH: its /restart finds our `hermes`");
    }

    /// hermes-agent makes the home 0700; a root without CAP_DAC_READ_SEARCH (Kubernetes' root
    /// mode) cannot enter it, so the gateway enters it after the drop, with execline's `cd`.
    #[test]
    fn a_root_rendered_slot_enters_the_home_after_the_drop() {
        let cfg = Config { execline_cd: Some("/usr/lib/execline/bin/cd".into()), ..Config::default() };
        let got = run_script(&cfg, "coder", DROP, None);
        assert!(!got.contains("\ncd "), "no cd as root: {got}");
        assert!(got.ends_with(" /usr/bin/s6-applyuidgid -u 10000 -g 10000 -G 10000 /usr/lib/execline/bin/cd /opt/data /usr/local/bin/hermes-reconcile --home /opt/data bridge coder -- hermes -p coder gateway run --replace\n"), "{got}");
        let unprivileged = run_script(&cfg, "coder", Privilege::AsIs, None);
        assert!(unprivileged.contains("\ncd /opt/data || exit 111\n"), "{unprivileged}");
    }

    #[test]
    fn an_unprivileged_render_has_no_drop() {
        let got = run_script(&Config::default(), "coder", Privilege::AsIs, None);
        assert!(
            got.ends_with("\"} /usr/local/bin/hermes-reconcile --home /opt/data bridge coder -- hermes -p coder gateway run --replace\n")
                && !got.contains("applyuidgid"),
            "{got}"
        );
        assert!(log_run_script(&Config::default(), "coder", Privilege::AsIs)
            .ends_with("\nexec s6-log 1 n10 s1000000 T /opt/data/logs/gateways/coder\n"));
    }

    #[test]
    fn the_shared_files_are_the_same_in_every_slot() {
        let cfg = Config::default();
        let shared = |p, privilege, port| -> Vec<RenderedFile> {
            files(&cfg, p, privilege, port).into_iter().filter(|f| SHARED.contains(&f.path)).collect()
        };
        let a = shared("default", DROP, Some(8642));
        assert_eq!(a.len(), SHARED.len());
        assert_eq!(a, shared("coder", Privilege::AsIs, None));
        assert!(!files(&cfg, "coder", DROP, None).iter().any(|f| f.path == "timeout-finish"), "s6's default");
    }

    #[test]
    fn default_slot_run_has_no_profile_flag() {
        let got = run_script(&Config::default(), "default", DROP, None);
        assert!(got.contains(" hermes gateway run --replace\n"));
        assert!(!got.contains("-p default") && !got.contains("-p 'default'"));
    }

    /// Run the rendered finish with s6's arguments; its exit code.
    fn run_finish(script: &str, code: &str) -> i32 {
        let tmp = tempfile::tempdir().unwrap();
        let p = tmp.path().join("finish");
        std::fs::write(&p, script).unwrap();
        let o = std::process::Command::new("sh").arg(&p).args([code, "0", "gateway-coder"]).output().unwrap();
        o.status.code().unwrap()
    }

    #[test]
    fn finish_keeps_the_contract_when_the_policy_cannot_run() {
        let cfg = Config { interpreter: "/bin/sh".into(), reconcile_program: "/nonexistent/hermes-reconcile".into(), ..Config::default() };
        let script = finish_script(&cfg, "coder");
        for (code, want) in [("0", 125), ("78", 125), ("1", 0), ("137", 0), ("256", 0)] {
            assert_eq!(run_finish(&script, code), want, "finish {code}");
        }
        assert!(script.contains("/nonexistent/hermes-reconcile --home /opt/data --scandir /run/service finish --registrar /run/hermes-s6/registrar --uid 10000 --gid 10000 coder \"$@\"\n"), "{script}");
    }

    #[test]
    fn the_logger_is_one_exec_as_the_user_into_its_profile_dir() {
        let got = log_run_script(&Config::default(), "coder", DROP);
        assert_eq!(got, "#!/bin/sh\n# shellcheck shell=sh\nexec /usr/bin/s6-applyuidgid -u 10000 -g 10000 -G 10000 s6-log 1 n10 s1000000 T /opt/data/logs/gateways/coder\n");
        assert!(!got.contains("chown") && !got.contains("mkdir") && !got.contains("$(id"));
    }

    #[test]
    fn configured_interpreter_program_ids_and_home_are_used_and_quoted() {
        let cfg = Config {
            home: PathBuf::from("/srv/my home"),
            interpreter: "/bin/sh".into(),
            gateway_program: "/usr/local/bin/fake-gateway".into(),
            uid: 12000,
            gid: 12001,
            ..Config::default()
        };
        let p = Privilege::for_renderer(0, &cfg);
        let run = run_script(&cfg, "coder", p, None);
        assert!(run.starts_with("#!/bin/sh\n"));
        assert!(run.contains("export HOME='/srv/my home' HERMES_HOME='/srv/my home'\ncd '/srv/my home' || exit 111\n"));
        assert!(run.ends_with(" /usr/bin/s6-applyuidgid -u 12000 -g 12001 -G 12001 /usr/local/bin/hermes-reconcile --home '/srv/my home' bridge coder -- /usr/local/bin/fake-gateway -p coder gateway run --replace\n"), "{run}");
        assert!(finish_script(&cfg, "coder").starts_with("#!/bin/sh\n"));
        assert!(log_run_script(&cfg, "coder", p).contains("s6-log 1 n10 s1000000 T '/srv/my home/logs/gateways/coder'\n"));
        assert_eq!(Privilege::for_renderer(10000, &cfg), Privilege::AsIs);
    }

    #[test]
    fn sh_quote_escapes_single_quotes() {
        assert_eq!(sh_quote("a'b"), r#"'a'"'"'b'"#);
        assert_eq!(sh_quote("/opt/data"), "/opt/data");
    }
}

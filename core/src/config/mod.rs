//! Where things are and who the unprivileged user is: resolved once, by every binary the same
//! way (flags, then the environment, then defaults), and passed down. The library never reads
//! the environment itself; [`Config::resolve`] is given it.

pub(crate) mod knobs;

use crate::problem::Problem;
use std::path::{Path, PathBuf};

pub const DEFAULT_HOME: &str = "/opt/data";
pub const DEFAULT_SCANDIR: &str = "/run/service";
pub const DEFAULT_UID: u32 = 10000;
pub const DEFAULT_USER: &str = "hermes";
/// s6-overlay's interpreter line: the container environment reaches the scripts through it.
pub const DEFAULT_INTERPRETER: &str = "/command/with-contenv sh";
pub const DEFAULT_GATEWAY_PROGRAM: &str = "hermes";
/// Debian's s6-svscan supervises at most 500 service directories unless started with `-c`;
/// every profile needs two (gateway + logger).
pub const DEFAULT_MAX_SERVICES: usize = 500;
/// Services kept free for the static ones (the registrar, the dashboard, s6-overlay's own):
/// profiles never take the last of the scanner's capacity.
pub const DEFAULT_RESERVED_SERVICES: usize = 8;
/// The registrar's doorbell: the unprivileged user writes a profile name, root converges.
pub const DEFAULT_REGISTRAR_FIFO: &str = "/run/hermes-s6/registrar";
pub const DEFAULT_PROC: &str = "/proc";
/// Where the image installs `hermes-reconcile`: what a slot's finish runs when no better
/// (root-only) copy is known.
pub const DEFAULT_RECONCILE: &str = "/usr/local/bin/hermes-reconcile";
/// Where the image installs upstream's hermes-agent CLI: the `hermes` front passes every
/// command that is not a supervision verb to it.
pub const DEFAULT_UPSTREAM: &str = "/opt/hermes/.venv/bin/hermes";
/// Where execline's programs are: s6-overlay's /command, Debian's /usr/lib/execline/bin.
pub const EXECLINE_DIRS: &str = "/command:/usr/lib/execline/bin";
/// What a slot rendered by root runs to drop privileges, when no root-only copy is on PATH.
pub const DEFAULT_APPLYUIDGID: &str = "/usr/bin/s6-applyuidgid";

/// The environment variables [`Config::resolve`] reads, for `--help` texts.
pub const ENV_VARS: &[(&str, &str)] = &[
    ("HERMES_HOME", "the persistent volume (root profile at its top)"),
    ("S6_PROFILE_GATEWAY_SCANDIR", "the s6-svscan scan directory"),
    ("HERMES_S6_USER", "the unprivileged user the gateways run as"),
    ("HERMES_UID", "that user's uid (default: from the password database, else 10000)"),
    ("HERMES_GID", "that user's gid (default: from the password database, else 10000)"),
    ("HERMES_S6_INTERPRETER", "the `#!` line of every rendered gateway script"),
    ("HERMES_S6_GATEWAY_PROGRAM", "the program run as `<program> [-p <profile>] gateway run --replace`"),
    ("HERMES_S6_MAX_SERVICES", "the scanner's service limit, loggers included"),
    ("HERMES_S6_RESERVED_SERVICES", "services kept free for non-gateway services"),
    ("HERMES_S6_REGISTRAR", "the registrar's doorbell FIFO"),
    ("HERMES_S6_RECONCILE", "the hermes-reconcile program a slot's finish script runs"),
    ("HERMES_S6_UPSTREAM", "hermes-agent's own CLI, which `hermes` passes every other command to (default /opt/hermes/.venv/bin/hermes)"),
    ("HERMES_S6_PROFILE_ENV", "container variables that also reach named profiles' gateways, beyond the allow-list (names, separated by spaces or commas)"),
    ("HERMES_CRASH_BACKOFF_INITIAL", "crash policy: first restart delay (default 1s)"),
    ("HERMES_CRASH_BACKOFF_MAX", "crash policy: longest restart delay (default 60s)"),
    ("HERMES_CRASH_STABLE_AFTER", "crash policy: a run this long resets the crash count (default 60s)"),
    ("HERMES_CRASH_LIMIT", "crash policy: crashes within the window that quarantine (default 5)"),
    ("HERMES_CRASH_WINDOW", "crash policy: that window (default 5m)"),
    ("HERMES_CRASH_COOLDOWN", "crash policy: first probe after a quarantine (default 10m)"),
    ("HERMES_CRASH_COOLDOWN_MAX", "crash policy: longest wait between probes (default 6h)"),
    ("GATEWAY_MULTIPLEX_PROFILES", "one root gateway serves every profile: named slots stay down"),
    ("HERMES_GATEWAY_NO_SUPERVISE", "1, true or yes (any case): the container's `gateway run` opts out of s6 (the boot pass seeds no state)"),
    ("HERMES_S6_SUPERVISED_CHILD", "set by a slot's run script: `hermes gateway run` is the supervised gateway itself"),
    ("HERMES_DOCKER_EXEC_AS_ROOT", "`hermes` run as root keeps root for its own verbs (hermes-agent's CLI never does)"),
    ("HERMES_GATEWAY_MEMORY_LIMIT", "a gateway whose resident memory passes this (512M, 2G; unset or off: no limit) is restarted; a profile's config.yaml `gateway.memory_limit` overrides it"),
    ("HERMES_GATEWAY_MEMORY_CHECK", "how often the registrar compares gateways' memory with their limits (default 10s)"),
    ("HERMES_S6_OOM_EVENTS", "the cgroup file whose `oom_kill` counter tells a kernel OOM kill (default: this process's cgroup's memory.events, or memory.oom_control on cgroup v1)"),
    ("HERMES_GATEWAY_BOOT_PACE", "after a boot or `restart --all`, start at most this many gateways at a time (default: the number of CPUs plus one; 0: all at once)"),
    ("HERMES_GATEWAY_START_TIMEOUT", "a gateway not ready this long after it started is killed and restarted as start-timeout, and a paced boot starts the next (default 120s; 0: never)"),
    ("HERMES_GATEWAY_HEARTBEAT_TIMEOUT", "a gateway without sd_notify whose heartbeat is this old is killed and restarted as hung (default 90s; 0: never)"),
];

/// A duration as people write it: `500ms`, `2s`, `10m`, `6h`, or a bare number of seconds
/// (fractions allowed).
pub fn parse_duration(v: &str) -> Option<std::time::Duration> {
    let v = v.trim();
    let (num, unit) = match v.find(|c: char| c.is_ascii_alphabetic()) {
        Some(i) => (&v[..i], &v[i..]),
        None => (v, "s"),
    };
    let n: f64 = num.trim().parse().ok()?;
    let secs = match unit {
        "ms" => n / 1000.0,
        "s" => n,
        "m" | "min" => n * 60.0,
        "h" => n * 3600.0,
        _ => return None,
    };
    (secs.is_finite() && (0.0..1e9).contains(&secs)).then(|| std::time::Duration::from_secs_f64(secs))
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// `$HERMES_HOME`: the persistent volume, root profile at its top.
    pub home: PathBuf,
    /// The s6-svscan scan directory the slots are published into.
    pub scandir: PathBuf,
    /// The unprivileged user the gateways run as.
    pub user: String,
    pub uid: u32,
    pub gid: u32,
    /// What follows `#!` in every rendered gateway script.
    pub interpreter: String,
    /// The program that runs a gateway: rendered as `<program> [-p <P>] gateway run --replace`.
    pub gateway_program: String,
    /// The scanner's service limit (its `-c`/`-C`), loggers included.
    pub max_services: usize,
    /// How many of those the boot pass leaves for services that are not gateways.
    pub reserved_services: usize,
    /// FIFO the registrar (`hermes-reconcile watch`) listens on.
    pub registrar_fifo: PathBuf,
    /// Where processes are read from (a fake tree in tests).
    pub proc_root: PathBuf,
    /// The `hermes-reconcile` a slot's `finish` runs (the crash policy): an absolute path.
    pub reconcile_program: String,
    /// The `s6-applyuidgid` a root-rendered slot drops privileges with: an absolute path only
    /// root can change (see [`crate::trusted`]).
    pub applyuidgid: String,
    /// execline's `cd`, where only root can change it: a root-rendered slot enters the home
    /// after dropping privileges (hermes-agent makes it 0700, and a root without
    /// CAP_DAC_READ_SEARCH cannot enter it); `None`: the script's own `cd`, before the drop.
    pub execline_cd: Option<String>,
    /// hermes-agent's own `hermes` (the `hermes` front passes it what is not ours).
    pub upstream_program: PathBuf,
    pub policy: knobs::Knobs,
    /// The container-wide memory limit of one gateway, bytes (`None`: no limit unless a
    /// profile sets one).
    pub memory_limit: Option<u64>,
    /// How often the registrar checks gateways' memory.
    pub memory_check: std::time::Duration,
    /// Where the kernel counts OOM kills (`oom_kill` lines); `None`: found from this
    /// process's cgroup.
    pub oom_events: Option<PathBuf>,
    /// At most this many gateways starting at once after a boot or `restart --all`; 0: all.
    pub boot_pace: usize,
    /// The start timeout and the heartbeat bound (see [`crate::liveness`]).
    pub liveness: crate::liveness::Knobs,
    /// The container's facts that come from its environment, as given (their meaning is
    /// `volume::container`'s and `volume::multiplex`'s to decide).
    pub container_env: ContainerEnv,
    /// Container variables the operator lets reach named profiles' gateways too, beyond
    /// the allow-list in `slot::env` (`HERMES_S6_PROFILE_ENV`).
    pub profile_env: Vec<String>,
}

/// The `API_SERVER_*` settings an environment holds, as written (what they mean for a
/// profile's port is `volume::ports`' to decide).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ApiEnv {
    /// `API_SERVER_PORT`.
    pub port: Option<String>,
    /// `API_SERVER_ENABLED`.
    pub enabled: Option<String>,
    /// `API_SERVER_KEY`.
    pub key: Option<String>,
}

impl ApiEnv {
    pub fn from_lookup(env: &dyn Fn(&str) -> Option<String>) -> ApiEnv {
        ApiEnv { port: env("API_SERVER_PORT"), enabled: env("API_SERVER_ENABLED"), key: env("API_SERVER_KEY") }
    }
}

/// What the container's environment says about how its gateways run, read with the rest of
/// the configuration and nowhere else.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ContainerEnv {
    /// `GATEWAY_MULTIPLEX_PROFILES`: one root gateway serves every profile.
    pub multiplex: Option<String>,
    /// `HERMES_GATEWAY_NO_SUPERVISE`: the container's `gateway run` opts out of s6.
    pub no_supervise: Option<String>,
    /// `HERMES_S6_SUPERVISED_CHILD`: set by a slot's run script, so `hermes gateway run`
    /// knows it is the supervised gateway itself.
    pub supervised_child: bool,
    /// `HERMES_DOCKER_EXEC_AS_ROOT`: the `hermes` front keeps root for its own verbs.
    pub exec_as_root: bool,
    /// `API_SERVER_*`: the default profile's gateway gets the container environment, so a
    /// port set there is that profile's own (see `volume::ports`).
    pub api: ApiEnv,
}

/// How often the registrar compares gateways' memory with their limits, by default.
pub const DEFAULT_MEMORY_CHECK: std::time::Duration = std::time::Duration::from_secs(10);

/// The machine's CPUs, at least 1.
pub fn cpus() -> usize {
    std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1)
}

/// The boot pace by default: one more gateway than CPUs. A lone hermes-agent 0.19.0 gateway
/// spends 1.04 s of CPU in 1.57 s from exec to ready (issue 21): it keeps a core two-thirds
/// busy, so K = the CPUs would leave a third of the machine idle during a boot and finish
/// later than starting all at once; one more fills it, and the first is still ready in about a
/// lone start's time.
pub fn default_boot_pace() -> usize {
    cpus() + 1
}

impl Config {
    /// How long a paced start waits for a gateway's readiness before releasing the next: the
    /// start timeout, or its default when the watcher's kill is off (a gateway never ready
    /// must not hold a place forever).
    pub fn pace_timeout(&self) -> std::time::Duration {
        match self.liveness.start_timeout {
            d if d.is_zero() => crate::liveness::DEFAULT_START_TIMEOUT,
            d => d,
        }
    }
}

impl Default for Config {
    fn default() -> Self {
        Config {
            home: PathBuf::from(DEFAULT_HOME),
            scandir: PathBuf::from(DEFAULT_SCANDIR),
            user: DEFAULT_USER.to_string(),
            uid: DEFAULT_UID,
            gid: DEFAULT_UID,
            interpreter: DEFAULT_INTERPRETER.to_string(),
            gateway_program: DEFAULT_GATEWAY_PROGRAM.to_string(),
            max_services: DEFAULT_MAX_SERVICES,
            reserved_services: DEFAULT_RESERVED_SERVICES,
            registrar_fifo: PathBuf::from(DEFAULT_REGISTRAR_FIFO),
            proc_root: PathBuf::from(DEFAULT_PROC),
            reconcile_program: DEFAULT_RECONCILE.to_string(),
            applyuidgid: DEFAULT_APPLYUIDGID.to_string(),
            execline_cd: None,
            upstream_program: PathBuf::from(DEFAULT_UPSTREAM),
            policy: knobs::Knobs::default(),
            container_env: ContainerEnv::default(),
            memory_limit: None,
            memory_check: DEFAULT_MEMORY_CHECK,
            oom_events: None,
            boot_pace: 0,
            liveness: crate::liveness::Knobs::default(),
            profile_env: Vec::new(),
        }
    }
}

/// Values given on a command line; each wins over its environment variable.
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    pub home: Option<PathBuf>,
    pub scandir: Option<PathBuf>,
    pub user: Option<String>,
    pub uid: Option<String>,
    pub gid: Option<String>,
    pub interpreter: Option<String>,
    pub gateway_program: Option<String>,
    pub max_services: Option<String>,
    pub reserved_services: Option<String>,
    pub registrar: Option<PathBuf>,
    pub proc_root: Option<PathBuf>,
    /// The running program, when it is a `hermes-reconcile` (a slot's finish runs this one).
    pub current_exe: Option<PathBuf>,
}

fn number<T: std::str::FromStr>(what: &str, v: &str) -> Result<T, Problem> {
    v.trim().parse().map_err(|_| Problem::usage(format!("{what} must be a whole number, got {v:?}")))
}

/// The `hermes-reconcile` slots' finish scripts run, as root: `HERMES_S6_RECONCILE` (root's
/// own setting, which must be absolute), else this very program if only root can change it,
/// else a root-only copy on PATH, else where the image installs it.
fn reconcile_program(env: &dyn Fn(&str) -> Option<String>, current_exe: Option<&Path>) -> Result<String, Problem> {
    if let Some(v) = env("HERMES_S6_RECONCILE").filter(|v| !v.is_empty()) {
        if !v.starts_with('/') || v.contains(['\n', '\r', '\0']) {
            return Err(Problem::usage(format!("HERMES_S6_RECONCILE must be an absolute path, got {v:?}")));
        }
        return Ok(v);
    }
    let this = current_exe
        .filter(|p| p.file_name().is_some_and(|n| n == "hermes-reconcile") && crate::trusted::only_root_can_change(p))
        .map(Path::to_path_buf);
    Ok(this
        .or_else(|| crate::trusted::find("hermes-reconcile", env("PATH").as_deref()))
        .map(|p| p.to_string_lossy().into_owned())
        .unwrap_or_else(|| DEFAULT_RECONCILE.to_string()))
}

/// `HERMES_S6_PROFILE_ENV`: variable names, separated by spaces or commas. Each becomes part
/// of a root-rendered script, so each must be a plain name.
fn profile_env(env: &dyn Fn(&str) -> Option<String>) -> Result<Vec<String>, Problem> {
    let Some(v) = env("HERMES_S6_PROFILE_ENV") else { return Ok(Vec::new()) };
    let mut names = Vec::new();
    for n in v.split(|c: char| c == ',' || c.is_whitespace()).filter(|n| !n.is_empty()) {
        let plain = n.bytes().next().is_some_and(|b| b.is_ascii_alphabetic() || b == b'_')
            && n.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
        if !plain {
            return Err(Problem::usage(format!(
                "HERMES_S6_PROFILE_ENV must list variable names (letters, digits, _), separated by spaces or commas; {n:?} is not one"
            )));
        }
        if !names.iter().any(|x| x == n) {
            names.push(n.to_string());
        }
    }
    Ok(names)
}

/// The crash policy's settings from `HERMES_CRASH_*`.
fn knobs(env: &dyn Fn(&str) -> Option<String>) -> Result<knobs::Knobs, Problem> {
    let mut k = knobs::Knobs::default();
    let dur = |var: &str, into: &mut std::time::Duration| -> Result<(), Problem> {
        if let Some(v) = env(var).filter(|v| !v.trim().is_empty()) {
            *into = parse_duration(&v)
                .ok_or_else(|| Problem::usage(format!("{var} must be a duration like 500ms, 2s, 10m or 6h, got {v:?}")))?;
        }
        Ok(())
    };
    dur("HERMES_CRASH_BACKOFF_INITIAL", &mut k.backoff_initial)?;
    dur("HERMES_CRASH_BACKOFF_MAX", &mut k.backoff_max)?;
    dur("HERMES_CRASH_STABLE_AFTER", &mut k.stable_after)?;
    dur("HERMES_CRASH_WINDOW", &mut k.crash_window)?;
    dur("HERMES_CRASH_COOLDOWN", &mut k.cooldown)?;
    dur("HERMES_CRASH_COOLDOWN_MAX", &mut k.cooldown_max)?;
    if let Some(v) = env("HERMES_CRASH_LIMIT").filter(|v| !v.trim().is_empty()) {
        k.crash_limit = number("HERMES_CRASH_LIMIT", &v)?;
    }
    // Each inconsistency names the variables involved, with their values (and which one is a
    // default), and the fix.
    let shown = |var: &str, d: std::time::Duration| match env(var).filter(|v| !v.trim().is_empty()) {
        Some(v) => format!("{var}={}", v.trim()),
        None => format!("{var} (unset: default {})", format_duration(d)),
    };
    let mut wrong = Vec::new();
    if k.crash_limit == 0 {
        wrong.push("HERMES_CRASH_LIMIT=0: the number of crashes that quarantine must be at least 1 (set it to 1 or more, or unset it for the default 5)".to_string());
    }
    for (max_var, max, init_var, init) in [
        ("HERMES_CRASH_BACKOFF_MAX", k.backoff_max, "HERMES_CRASH_BACKOFF_INITIAL", k.backoff_initial),
        ("HERMES_CRASH_COOLDOWN_MAX", k.cooldown_max, "HERMES_CRASH_COOLDOWN", k.cooldown),
    ] {
        if max < init {
            wrong.push(format!(
                "{} is shorter than {}: raise {max_var} to at least {} or lower {init_var} to at most {}",
                shown(max_var, max),
                shown(init_var, init),
                format_duration(init),
                format_duration(max)
            ));
        }
    }
    if !wrong.is_empty() {
        return Err(Problem::usage(format!("the crash policy's settings are inconsistent: {}", wrong.join("; "))));
    }
    Ok(k)
}

/// A duration setting that must be more than zero (a zero check interval would spin).
fn positive_duration(
    env: &dyn Fn(&str) -> Option<String>,
    var: &str,
    default: std::time::Duration,
) -> Result<std::time::Duration, Problem> {
    match env(var).filter(|v| !v.trim().is_empty()) {
        None => Ok(default),
        Some(v) => parse_duration(&v)
            .filter(|d| !d.is_zero())
            .ok_or_else(|| Problem::usage(format!("{var} must be a duration above zero like 500ms, 10s or 2m, got {v:?}"))),
    }
}

/// A duration as `parse_duration` reads it back: `500ms`, `45s`, `10m`, `6h`.
fn format_duration(d: std::time::Duration) -> String {
    let ms = d.as_millis();
    match ms {
        _ if !ms.is_multiple_of(1000) => format!("{ms}ms"),
        _ if ms > 0 && ms.is_multiple_of(3_600_000) => format!("{}h", ms / 3_600_000),
        _ if ms > 0 && ms.is_multiple_of(60_000) => format!("{}m", ms / 60_000),
        _ => format!("{}s", ms / 1000),
    }
}

impl Config {
    /// Flags, then `env`, then defaults. `lookup_user` maps a user name to its uid/gid (the
    /// password database in production). Every value is checked: a bad one is a usage error
    /// naming the variable, never a silent default.
    pub fn resolve(
        env: &dyn Fn(&str) -> Option<String>,
        o: Overrides,
        lookup_user: &dyn Fn(&str) -> Option<(u32, u32)>,
    ) -> Result<Config, Problem> {
        let pick = |flag: Option<String>, var: &str| flag.or_else(|| env(var).filter(|v| !v.is_empty()));
        let path = |flag: Option<PathBuf>, var: &str, default: &str| {
            flag.or_else(|| env(var).filter(|v| !v.is_empty()).map(PathBuf::from)).unwrap_or_else(|| PathBuf::from(default))
        };
        let user = pick(o.user, "HERMES_S6_USER").unwrap_or_else(|| DEFAULT_USER.to_string());
        let looked_up = lookup_user(&user);
        let uid = match pick(o.uid, "HERMES_UID") {
            Some(v) => number("HERMES_UID (--uid)", &v)?,
            None => looked_up.map(|x| x.0).unwrap_or(DEFAULT_UID),
        };
        let gid = match pick(o.gid, "HERMES_GID") {
            Some(v) => number("HERMES_GID (--gid)", &v)?,
            None => looked_up.map(|x| x.1).unwrap_or(DEFAULT_UID),
        };
        let max_services = match pick(o.max_services, "HERMES_S6_MAX_SERVICES") {
            Some(v) => number("HERMES_S6_MAX_SERVICES (--max-services)", &v)?,
            None => DEFAULT_MAX_SERVICES,
        };
        let reserved_services = match pick(o.reserved_services, "HERMES_S6_RESERVED_SERVICES") {
            Some(v) => number("HERMES_S6_RESERVED_SERVICES (--reserved-services)", &v)?,
            None => DEFAULT_RESERVED_SERVICES,
        };
        let cfg = Config {
            home: root_home(&path(o.home, "HERMES_HOME", DEFAULT_HOME)),
            scandir: path(o.scandir, "S6_PROFILE_GATEWAY_SCANDIR", DEFAULT_SCANDIR),
            user,
            uid,
            gid,
            interpreter: pick(o.interpreter, "HERMES_S6_INTERPRETER").unwrap_or_else(|| DEFAULT_INTERPRETER.to_string()),
            gateway_program: pick(o.gateway_program, "HERMES_S6_GATEWAY_PROGRAM").unwrap_or_else(|| DEFAULT_GATEWAY_PROGRAM.to_string()),
            max_services,
            reserved_services,
            registrar_fifo: path(o.registrar, "HERMES_S6_REGISTRAR", DEFAULT_REGISTRAR_FIFO),
            proc_root: o.proc_root.unwrap_or_else(|| PathBuf::from(DEFAULT_PROC)),
            reconcile_program: reconcile_program(env, o.current_exe.as_deref())?,
            applyuidgid: crate::trusted::find("s6-applyuidgid", env("PATH").as_deref())
                .map(|p| p.to_string_lossy().into_owned())
                .unwrap_or_else(|| DEFAULT_APPLYUIDGID.to_string()),
            execline_cd: crate::trusted::find("cd", Some(EXECLINE_DIRS)).map(|p| p.to_string_lossy().into_owned()),
            upstream_program: path(None, "HERMES_S6_UPSTREAM", DEFAULT_UPSTREAM),
            policy: knobs(env)?,
            container_env: ContainerEnv {
                multiplex: env("GATEWAY_MULTIPLEX_PROFILES"),
                no_supervise: env("HERMES_GATEWAY_NO_SUPERVISE"),
                supervised_child: env("HERMES_S6_SUPERVISED_CHILD").is_some_and(|v| !v.is_empty()),
                exec_as_root: is_set(env("HERMES_DOCKER_EXEC_AS_ROOT").as_deref()),
                api: ApiEnv::from_lookup(env),
            },
            memory_limit: match env("HERMES_GATEWAY_MEMORY_LIMIT") {
                Some(v) => parse_limit(&v).map_err(|why| Problem::usage(format!("HERMES_GATEWAY_MEMORY_LIMIT: {why}")))?,
                None => None,
            },
            memory_check: positive_duration(env, "HERMES_GATEWAY_MEMORY_CHECK", DEFAULT_MEMORY_CHECK)?,
            oom_events: env("HERMES_S6_OOM_EVENTS").filter(|v| !v.is_empty()).map(PathBuf::from),
            boot_pace: match env("HERMES_GATEWAY_BOOT_PACE").filter(|v| !v.trim().is_empty()) {
                Some(v) => number("HERMES_GATEWAY_BOOT_PACE", &v)?,
                None => default_boot_pace(),
            },
            liveness: crate::liveness::Knobs::from_env(env).map_err(Problem::usage)?,
            profile_env: profile_env(env)?,
        };
        cfg.check()?;
        Ok(cfg)
    }

    /// Reject values that would break the rendered scripts or the privilege model. These come
    /// from root's own configuration, not from the volume, so they are checked for shape.
    pub fn check(&self) -> Result<(), Problem> {
        for (what, v) in [
            ("HERMES_S6_INTERPRETER (--interpreter)", &self.interpreter),
            ("HERMES_S6_GATEWAY_PROGRAM (--gateway-program)", &self.gateway_program),
            ("HERMES_S6_USER (--user)", &self.user),
        ] {
            if v.trim().is_empty() || v.contains(['\n', '\r', '\0']) {
                return Err(Problem::usage(format!("{what} must be a non-empty single line, got {v:?}")));
            }
        }
        if self.user.contains(|c: char| c.is_whitespace() || c == '\'' || c == '"') {
            return Err(Problem::usage(format!("HERMES_S6_USER (--user) must be a plain user name, got {:?}", self.user)));
        }
        if self.uid == 0 || self.gid == 0 {
            return Err(Problem::usage(format!(
                "the gateways' user must not be root (uid {}, gid {}): set HERMES_UID/HERMES_GID to an unprivileged id",
                self.uid, self.gid
            )));
        }
        for (what, p) in [("HERMES_HOME (--home)", &self.home), ("S6_PROFILE_GATEWAY_SCANDIR (--scandir)", &self.scandir)] {
            if !p.is_absolute() {
                return Err(Problem::usage(format!("{what} must be an absolute path, got {}", p.display())));
            }
        }
        if self.max_services < self.reserved_services + 2 {
            return Err(Problem::usage(format!(
                "HERMES_S6_MAX_SERVICES ({}) leaves no room for a gateway after the {} reserved for other services (HERMES_S6_RESERVED_SERVICES)",
                self.max_services, self.reserved_services
            )));
        }
        Ok(())
    }

    /// The volume owner's identity, for [`crate::fs::Fs::open_volume`].
    pub fn owner(&self) -> crate::fs::Ident {
        crate::fs::Ident { uid: self.uid, gid: self.gid }
    }
}

/// The root home for a `HERMES_HOME` that may point at one profile: a CLI started as
/// `hermes -p coder` runs with `HERMES_HOME=<root>/profiles/coder`, but every slot and every
/// wanted state belongs to the tree under `<root>`.
pub fn root_home(home: &Path) -> PathBuf {
    match (home.parent(), home.file_name()) {
        (Some(parent), Some(_)) if parent.file_name().is_some_and(|n| n == "profiles") => {
            parent.parent().map(|p| p.to_path_buf()).unwrap_or_else(|| home.to_path_buf())
        }
        _ => home.to_path_buf(),
    }
}

/// The uid/gid of `user` from the password database, if it exists.
pub fn lookup_user(user: &str) -> Option<(u32, u32)> {
    nix::unistd::User::from_name(user).ok().flatten().map(|u| (u.uid.as_raw(), u.gid.as_raw()))
}

/// The one reading of a yes/no setting: `1`/`true`/`yes`/`on` and `0`/`false`/`no`/`off`, any
/// case, surrounding blanks ignored; anything else is `None` (not a recognised token).
pub fn parse_bool(v: &str) -> Option<bool> {
    match v.trim().to_ascii_lowercase().as_str() {
        "1" | "true" | "yes" | "on" => Some(true),
        "0" | "false" | "no" | "off" => Some(false),
        _ => None,
    }
}

/// A memory limit as people write it: `512M`, `2G`, `1.5GB`, `800MiB`, `300000000` (bytes);
/// `off`/`none`/`0`/empty: no limit. Decimal and binary units both mean what they say.
pub fn parse_limit(v: &str) -> Result<Option<u64>, String> {
    let t = v.trim();
    if t.is_empty() || ["off", "none", "no", "false", "0"].contains(&t.to_ascii_lowercase().as_str()) {
        return Ok(None);
    }
    let split = t.find(|c: char| c.is_ascii_alphabetic()).unwrap_or(t.len());
    let (num, unit) = (t[..split].trim(), t[split..].trim());
    let n: f64 = num.parse().map_err(|_| format!("{v:?} is not a size like 512M, 2G or a number of bytes"))?;
    let factor: f64 = match unit.to_ascii_lowercase().as_str() {
        "" | "b" => 1.0,
        "k" | "kb" => 1e3,
        "kib" => 1024.0,
        "m" | "mb" => 1e6,
        "mib" => 1024.0 * 1024.0,
        "g" | "gb" => 1e9,
        "gib" => 1024.0 * 1024.0 * 1024.0,
        _ => return Err(format!("{v:?} has an unknown unit {unit:?} (use K, M, G, or KiB, MiB, GiB)")),
    };
    let bytes = n * factor;
    // Below a megabyte no gateway can run: a typo (`512` meant as MB) would restart it forever.
    if !bytes.is_finite() || !(1e6..=1e15).contains(&bytes) {
        return Err(format!("{v:?} is out of range (at least 1M; a bare number is bytes)"));
    }
    Ok(Some(bytes as u64))
}

/// An opt-in switch: set to a recognised "yes".
pub fn is_set(v: Option<&str>) -> bool {
    v.and_then(parse_bool) == Some(true)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn resolve(vars: &[(&str, &str)], o: Overrides) -> Result<Config, Problem> {
        let env: HashMap<String, String> = vars.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        Config::resolve(&|k| env.get(k).cloned(), o, &|u| (u == "hermes").then_some((10000, 10001)))
    }

    #[test]
    fn a_profile_home_maps_to_its_root() {
        assert_eq!(root_home(Path::new("/opt/data/profiles/coder")), Path::new("/opt/data"));
        assert_eq!(root_home(Path::new("/opt/data")), Path::new("/opt/data"));
        assert_eq!(root_home(Path::new("/srv/profiles")), Path::new("/srv/profiles"));
    }

    #[test]
    fn flags_beat_environment_beats_defaults() {
        let c = resolve(
            &[("HERMES_HOME", "/srv/env"), ("HERMES_UID", "12000")],
            Overrides { home: Some("/srv/flag".into()), ..Default::default() },
        )
        .unwrap();
        assert_eq!((c.home.as_path(), c.uid, c.gid), (Path::new("/srv/flag"), 12000, 10001));
        let c = resolve(&[], Overrides::default()).unwrap();
        assert_eq!((c.home.as_path(), c.scandir.as_path(), c.max_services), (Path::new("/opt/data"), Path::new("/run/service"), 500));
    }

    #[test]
    fn bad_values_are_usage_errors_naming_the_variable() {
        for (k, v, says) in [
            ("HERMES_UID", "not-a-number", "HERMES_UID"),
            ("HERMES_S6_MAX_SERVICES", "lots", "HERMES_S6_MAX_SERVICES"),
            ("HERMES_S6_INTERPRETER", "  ", "HERMES_S6_INTERPRETER"),
            ("HERMES_HOME", "relative/path", "HERMES_HOME"),
            ("HERMES_UID", "0", "must not be root"),
        ] {
            let e = resolve(&[(k, v)], Overrides::default()).unwrap_err();
            assert_eq!(e.exit_code(), 2, "{k}={v}");
            assert!(e.to_string().contains(says), "{k}={v}: {e}");
        }
    }

    #[test]
    fn durations_read_as_people_write_them() {
        use std::time::Duration;
        for (v, want) in [("500ms", 0.5), ("2s", 2.0), ("10m", 600.0), ("6h", 21600.0), ("1.5", 1.5), (" 3 ", 3.0)] {
            assert_eq!(parse_duration(v), Some(Duration::from_secs_f64(want)), "{v:?}");
        }
        for v in ["", "x", "5d", "-1s", "1e99"] {
            assert_eq!(parse_duration(v), None, "{v:?}");
        }
        let c = resolve(&[("HERMES_CRASH_COOLDOWN", "2s"), ("HERMES_CRASH_LIMIT", "3")], Overrides::default()).unwrap();
        assert_eq!((c.policy.cooldown, c.policy.crash_limit), (Duration::from_secs(2), 3));
        assert!(resolve(&[("HERMES_CRASH_WINDOW", "soon")], Overrides::default()).unwrap_err().to_string().contains("HERMES_CRASH_WINDOW"));
    }

    #[test]
    fn an_inconsistent_pair_names_its_own_variables_their_values_and_the_fix() {
        // (environment, what the error says, what it must not say)
        type Case<'a> = (&'a [(&'a str, &'a str)], &'a [&'a str], &'a [&'a str]);
        let cases: [Case; 4] = [
            (
                &[("HERMES_CRASH_BACKOFF_INITIAL", "2m")],
                &[
                    "HERMES_CRASH_BACKOFF_MAX (unset: default 1m) is shorter than HERMES_CRASH_BACKOFF_INITIAL=2m",
                    "raise HERMES_CRASH_BACKOFF_MAX to at least 2m",
                    "lower HERMES_CRASH_BACKOFF_INITIAL to at most 1m",
                ],
                &["HERMES_CRASH_LIMIT", "COOLDOWN"],
            ),
            (
                &[("HERMES_CRASH_COOLDOWN", "7h"), ("HERMES_CRASH_COOLDOWN_MAX", "90m")],
                &["HERMES_CRASH_COOLDOWN_MAX=90m is shorter than HERMES_CRASH_COOLDOWN=7h", "at least 7h", "at most 90m"],
                &["HERMES_CRASH_LIMIT", "BACKOFF"],
            ),
            (&[("HERMES_CRASH_LIMIT", "0")], &["HERMES_CRASH_LIMIT=0", "at least 1"], &["BACKOFF", "COOLDOWN"]),
            (
                &[("HERMES_CRASH_BACKOFF_MAX", "500ms")],
                &["HERMES_CRASH_BACKOFF_MAX=500ms is shorter than HERMES_CRASH_BACKOFF_INITIAL (unset: default 1s)"],
                &["HERMES_CRASH_LIMIT"],
            ),
        ];
        for (env, says, not) in cases {
            let e = resolve(env, Overrides::default()).unwrap_err();
            let m = e.to_string();
            assert_eq!(e.exit_code(), 2, "{m}");
            for s in says {
                assert!(m.contains(s), "{env:?}: {m:?} should say {s:?}");
            }
            for s in not.iter().chain(&["Knobs", "Duration", "secs:", "nanos", "{"]) {
                assert!(!m.contains(s), "{env:?}: {m:?} should not say {s:?}");
            }
        }
    }

    #[test]
    fn one_boolean_reading() {
        for (v, want) in [
            ("1", Some(true)),
            ("TRUE", Some(true)),
            (" yes ", Some(true)),
            ("on", Some(true)),
            ("0", Some(false)),
            ("off", Some(false)),
            ("", None),
            ("garbage", None),
        ] {
            assert_eq!(parse_bool(v), want, "{v:?}");
        }
        assert!(is_set(Some("Yes")) && !is_set(Some("no")) && !is_set(None));
    }
}

//! What a named profile's gateway gets from the container environment: an allow-list, not
//! everything. A container is usually set up for one gateway (`API_SERVER_KEY`,
//! `API_SERVER_PORT`, `TELEGRAM_BOT_TOKEN`, …); handed to every profile, those made each named
//! profile's gateway serve the same API server key, bind the same port and poll the same bot
//! (upstream #80310). A profile's own settings are its `.env`, which hermes-agent loads over the
//! process environment itself.
//!
//! The default profile keeps the whole container environment, as upstream's single-gateway
//! containers expect (`docker run -e API_SERVER_KEY=… -p 8642:8642`).
//!
//! The filter is the run script's last exec before the privilege drop: `env -i` with each
//! allowed variable passed only when it is set (`${NAME+"NAME=$NAME"}`), so values are read
//! from the environment the script runs in (the container's, through `with-contenv` where the
//! image has it) and never written into a script.

use crate::config::Config;

/// What the program run needs from any container, whatever it runs (locale, time zone,
/// search path, temporary files, the host name).
const SYSTEM: &[&str] = &[
    "PATH",
    "HOSTNAME",
    "TZ",
    "TMPDIR",
    "LANG",
    "LANGUAGE",
    "LC_ALL",
    "LC_CTYPE",
    "LC_NUMERIC",
    "LC_TIME",
    "LC_COLLATE",
    "LC_MONETARY",
    "LC_MESSAGES",
    "LC_PAPER",
    "LC_NAME",
    "LC_ADDRESS",
    "LC_TELEPHONE",
    "LC_MEASUREMENT",
    "LC_IDENTIFICATION",
];
/// How the container reaches the network: its proxies and trusted certificates.
const NETWORK: &[&str] = &[
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "NO_PROXY",
    "ALL_PROXY",
    "http_proxy",
    "https_proxy",
    "no_proxy",
    "all_proxy",
    "SSL_CERT_FILE",
    "SSL_CERT_DIR",
    "REQUESTS_CA_BUNDLE",
    "CURL_CA_BUNDLE",
];
/// Where the supervisor is: a gateway's own `/restart` runs our `hermes`, which must find
/// the same home, scandir and settings (every variable [`crate::config::ENV_VARS`] lists is
/// passed too).
const SUPERVISOR: &[&str] = &["S6_PROFILE_GATEWAY_SCANDIR"];
/// What the run script itself sets before the filter: kept.
const RENDERED: &[&str] = &[
    "HOME",
    "HERMES_HOME",
    "HERMES_S6_SUPERVISED_CHILD",
    "HERMES_SUPERVISED_CHILD",
    "HERMES_GATEWAY_EXTERNAL_SUPERVISOR",
    "HERMES_GATEWAY_MAX_STARTS",
    "PYTHONUNBUFFERED",
    "API_SERVER_PORT",
];

/// The container variables allowed through to every named profile's gateway, with what each
/// group is for (the README's table is this list).
pub const ALLOWED: &[(&str, &[&str])] = &[("system", SYSTEM), ("network", NETWORK), ("supervisor", SUPERVISOR)];

/// Every name passed through for `cfg`, in a fixed order: the allow-list, the supervisor's own
/// settings, the operator's `HERMES_S6_PROFILE_ENV`, what the script sets.
pub fn passed(cfg: &Config) -> Vec<&str> {
    let mut out: Vec<&str> = Vec::new();
    for (_, names) in ALLOWED {
        out.extend_from_slice(names);
    }
    out.extend(crate::config::ENV_VARS.iter().map(|(n, _)| *n).filter(|n| *n != "HERMES_HOME" && *n != "S6_PROFILE_GATEWAY_SCANDIR"));
    out.extend(cfg.profile_env.iter().map(String::as_str));
    out.extend_from_slice(RENDERED);
    let mut seen = std::collections::BTreeSet::new();
    out.retain(|n| seen.insert(*n));
    out
}

/// `exec env -i <each passed variable that is set> <cmd>`: the named profile's gateway starts
/// from nothing but these.
pub fn filtered_exec(cfg: &Config, cmd: &str) -> String {
    let mut line = String::from("exec /usr/bin/env -i");
    for n in passed(cfg) {
        line.push_str(&format!(" ${{{n}+\"{n}=${n}\"}}"));
    }
    line.push(' ');
    line.push_str(cmd);
    line
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The filter run by a real shell: what is allowed and set arrives whole, what is not
    /// allowed (the container's api_server settings) or not set does not arrive at all.
    #[test]
    fn only_allowed_and_set_variables_pass_whole() {
        let cfg = Config { profile_env: vec!["OPENROUTER_API_KEY".into()], ..Config::default() };
        let script = format!("{}\n", filtered_exec(&cfg, "/usr/bin/env"));
        let out = std::process::Command::new("/bin/sh")
            .arg("-c")
            .arg(script)
            .env_clear()
            .env("PATH", "/usr/bin:/bin")
            .env("LANG", "C.UTF-8")
            .env("TZ", "a b\n'c\"$(id)")
            .env("API_SERVER_KEY", "secret")
            .env("API_SERVER_HOST", "0.0.0.0")
            .env("TELEGRAM_BOT_TOKEN", "t")
            .env("OPENROUTER_API_KEY", "k")
            .env("HERMES_S6_MAX_SERVICES", "10")
            .output()
            .unwrap();
        let got = String::from_utf8(out.stdout).unwrap();
        for want in
            ["PATH=/usr/bin:/bin\n", "LANG=C.UTF-8\n", "TZ=a b\n'c\"$(id)\n", "OPENROUTER_API_KEY=k\n", "HERMES_S6_MAX_SERVICES=10\n"]
        {
            assert!(got.contains(want), "{want:?} missing from {got:?}");
        }
        for gone in ["API_SERVER_KEY", "API_SERVER_HOST", "TELEGRAM_BOT_TOKEN", "LC_ALL", "HOME"] {
            assert!(!got.contains(&format!("{gone}=")), "{gone} leaked: {got:?}");
        }
    }
}

//! Per-profile API server ports: every gateway gets its own `API_SERVER_PORT`, so two profiles
//! that enable hermes-agent's api_server no longer both bind 8642 (upstream's default, and
//! since 0.19.0 nothing upstream picks another: its allocator was removed).
//!
//! A profile that sets a port itself keeps it; read from what hermes-agent 0.19.0 reads
//! (`gateway/config.py`, `gateway/platforms/api_server.py`): `API_SERVER_PORT` in the
//! environment (its `.env`, which the gateway loads over the process environment; for the
//! default profile also the container's), and `platforms.api_server.extra.port` in its
//! `config.yaml` (or under `gateway.platforms`, which the top level overrides). The
//! environment's port replaces config.yaml's only when the environment also enables the
//! server (`API_SERVER_ENABLED` or `API_SERVER_KEY`), as upstream's loader does.
//!
//! Every other profile is assigned one: `default` keeps 8642 unless a profile claims it, the
//! others get the lowest free port from 8650 up (above upstream's fixed listeners), never one
//! a profile claims, never one of upstream's default listeners. The assignment is recorded in
//! `$HERMES_HOME/gateway_ports.json`, so it survives restarts and container recreation (the
//! ports are what clients and `docker run -p` mappings are pointed at), and `status` reads
//! the same record the slots were rendered from. The file is the user's, written as the
//! volume's owner, like the crash policy's record: it only chooses ports for the user's own
//! gateways, which the user can set anyway; root reads it capped, without following links,
//! and a port only ever reaches a script as a validated number.

use crate::config::parse_bool;
use crate::fs::{write_atomic, Capped, Dir, Fs};
use crate::name::DEFAULT_PROFILE;
use std::collections::{BTreeMap, BTreeSet};
use std::ffi::OsStr;
use std::io;
use yaml_rust2::parser::{Event, Parser};

pub const RECORD_FILE: &str = "gateway_ports.json";
pub const DOTENV_FILE: &str = ".env";
/// hermes-agent's api_server default (`gateway/platforms/api_server.py`).
pub const DEFAULT_PORT: u16 = 8642;
/// Where assigned ports start for named profiles: above upstream's fixed listeners.
pub const FIRST_ASSIGNED: u16 = 8650;
/// hermes-agent 0.19.0's default listeners (api_server 8642, webhook 8644, proxy and
/// wecom_callback 8645, msgraph_webhook 8646, feishu 8765, the dashboard 9119): never
/// assigned, so an assigned api_server port cannot meet another platform's default.
pub const UPSTREAM_LISTENERS: &[u16] = &[8642, 8644, 8645, 8646, 8765, 9119];
const RECORD_CAP: u64 = 1024 * 1024;
const DOTENV_CAP: u64 = 1024 * 1024;
const CONFIG_CAP: u64 = 1024 * 1024;

pub use crate::config::ApiEnv;

impl ApiEnv {
    /// `over` laid over `self`, as python-dotenv's `override=True` lays `.env` over the
    /// process environment.
    fn overlaid(&self, over: &ApiEnv) -> ApiEnv {
        ApiEnv {
            port: over.port.clone().or_else(|| self.port.clone()),
            enabled: over.enabled.clone().or_else(|| self.enabled.clone()),
            key: over.key.clone().or_else(|| self.key.clone()),
        }
    }

    /// Whether upstream's loader lets the environment's port replace config.yaml's.
    fn enables(&self) -> bool {
        self.enabled.as_deref().and_then(parse_bool) == Some(true) || self.key.as_deref().is_some_and(|k| !k.is_empty())
    }
}

/// Where a profile's port comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
pub enum Source {
    /// Assigned here, and given to the gateway as `API_SERVER_PORT`.
    #[serde(rename = "assigned")]
    Assigned,
    /// The profile's `.env`.
    #[serde(rename = ".env")]
    DotEnv,
    /// The profile's `config.yaml`.
    #[serde(rename = "config.yaml")]
    ConfigYaml,
    /// The container's environment (the default profile only).
    #[serde(rename = "container")]
    Container,
}

impl Source {
    pub fn as_str(self) -> &'static str {
        match self {
            Source::Assigned => "assigned",
            Source::DotEnv => ".env",
            Source::ConfigYaml => "config.yaml",
            Source::Container => "container",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Port {
    pub port: u16,
    pub source: Source,
}

impl Port {
    /// The `API_SERVER_PORT` the slot gives its gateway: only an assigned one (a profile's own
    /// setting is left for the gateway to read, so upstream's precedence holds).
    pub fn injected(&self) -> Option<u16> {
        (self.source == Source::Assigned).then_some(self.port)
    }
}

/// Profile name -> its port, as recorded.
pub type Record = BTreeMap<String, Port>;

/// A string as upstream's `int()` reads a port.
fn port_number(s: &str) -> Option<u16> {
    s.trim().parse::<u16>().ok().filter(|p| *p > 0)
}

/// The `API_SERVER_*` lines of a `.env` (python-dotenv's syntax: `export `, quotes, trailing
/// comments; the last assignment wins).
pub fn parse_dotenv(text: &str) -> ApiEnv {
    let mut out = ApiEnv::default();
    for line in text.lines() {
        let line = line.trim_start();
        let line = line.strip_prefix("export ").map(str::trim_start).unwrap_or(line);
        let Some((k, v)) = line.split_once('=') else { continue };
        let slot = match k.trim() {
            "API_SERVER_PORT" => &mut out.port,
            "API_SERVER_ENABLED" => &mut out.enabled,
            "API_SERVER_KEY" => &mut out.key,
            _ => continue,
        };
        let v = v.trim();
        let value = match v.chars().next() {
            Some(q @ ('"' | '\'')) => v[1..].split(q).next().unwrap_or("").to_string(),
            _ => v.split(" #").next().unwrap_or("").trim_end().to_string(),
        };
        *slot = Some(value);
    }
    out
}

fn read_text(fs: &dyn Fs, dir: &Dir, name: &str, cap: u64) -> Result<Option<String>, String> {
    let path = dir.child(OsStr::new(name));
    match fs.read_capped(dir, OsStr::new(name), cap) {
        Ok(Capped::Data(d)) => Ok(Some(String::from_utf8_lossy(&d).into_owned())),
        Ok(Capped::NotRegular(k)) => Err(format!("{} is a {}", path.display(), k.describe())),
        Ok(Capped::TooLarge(n)) => Err(format!("{} is {n} bytes, over the cap", path.display())),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(format!("{}: {e}", path.display())),
    }
}

/// `platforms.api_server.extra.port` of a config.yaml (top level over `gateway.platforms`),
/// read as a stream of parser events like [`super::multiplex`]: nothing recurses however
/// deep the user nests it. A value that is not a number is upstream's fallback, 8642.
pub fn config_port(text: &str) -> Result<Option<u16>, String> {
    const TOP: [&str; 4] = ["platforms", "api_server", "extra", "port"];
    const NESTED: [&str; 5] = ["gateway", "platforms", "api_server", "extra", "port"];
    // Per open mapping: its path from the root (None below a sequence or a non-string key)
    // and the key waiting for its value.
    struct Map {
        path: Option<Vec<String>>,
        key: Option<Option<String>>,
    }
    let mut parser = Parser::new_from_str(text);
    let mut stack: Vec<Option<Map>> = Vec::new();
    let (mut top, mut nested): (Option<String>, Option<String>) = (None, None);
    let mut anchors: BTreeMap<usize, String> = BTreeMap::new();
    let mut documents = 0usize;
    loop {
        let (event, _) = parser.next_token().map_err(|e| e.to_string())?;
        let value: Option<Option<String>> = match event {
            Event::StreamEnd => break,
            Event::DocumentStart => {
                documents += 1;
                None
            }
            Event::Scalar(v, _, anchor, _) => {
                if anchor > 0 {
                    anchors.insert(anchor, v.clone());
                }
                Some(Some(v))
            }
            Event::Alias(id) => Some(anchors.get(&id).cloned()),
            Event::MappingStart(..) => {
                let path = match stack.last() {
                    None if documents == 1 => Some(Vec::new()),
                    Some(Some(Map { path: Some(p), key: Some(Some(k)) })) => {
                        let mut p = p.clone();
                        p.push(k.clone());
                        Some(p)
                    }
                    _ => None,
                };
                stack.push(Some(Map { path, key: None }));
                continue;
            }
            Event::SequenceStart(..) => {
                stack.push(None);
                continue;
            }
            Event::MappingEnd | Event::SequenceEnd => {
                stack.pop();
                Some(None)
            }
            _ => None,
        };
        let Some(value) = value else { continue };
        if let Some(Some(m)) = stack.last_mut() {
            match m.key.take() {
                None => m.key = Some(value),
                Some(Some(k)) => {
                    if let Some(p) = &m.path {
                        let full: Vec<&str> = p.iter().map(String::as_str).chain([k.as_str()]).collect();
                        // A mapping or sequence as the value is not a port: upstream falls back.
                        let v = value.unwrap_or_default();
                        if full == TOP {
                            top = Some(v);
                        } else if full == NESTED {
                            nested = Some(v);
                        }
                    }
                }
                Some(None) => {}
            }
        }
    }
    Ok(top.or(nested).map(|v| port_number(&v).unwrap_or(DEFAULT_PORT)))
}

/// The port a profile sets itself, read from its directory (as the volume's owner): `None`
/// when it leaves the port to us. `container` is the container's `API_SERVER_*` (for the
/// default profile, whose gateway gets the container environment). Unreadable files count as
/// setting nothing; the reason is returned for a warning.
pub fn own_port(fs: &dyn Fs, dir: &Dir, container: Option<&ApiEnv>) -> (Option<Port>, Vec<String>) {
    let mut why = Vec::new();
    let dotenv = match read_text(fs, dir, DOTENV_FILE, DOTENV_CAP) {
        Ok(t) => t.map(|t| parse_dotenv(&t)).unwrap_or_default(),
        Err(e) => {
            why.push(e);
            ApiEnv::default()
        }
    };
    let cfg = match read_text(fs, dir, super::multiplex::CONFIG_FILE, CONFIG_CAP) {
        Ok(Some(t)) => config_port(&t).unwrap_or_else(|e| {
            why.push(format!("{} is not valid YAML: {e}", dir.child(OsStr::new(super::multiplex::CONFIG_FILE)).display()));
            None
        }),
        Ok(None) => None,
        Err(e) => {
            why.push(e);
            None
        }
    };
    let base = container.cloned().unwrap_or_default();
    let env = base.overlaid(&dotenv);
    let env_port = env.port.as_deref().map(|p| {
        let source = if dotenv.port.is_some() { Source::DotEnv } else { Source::Container };
        Port { port: port_number(p).unwrap_or(DEFAULT_PORT), source }
    });
    let from_cfg = cfg.map(|port| Port { port, source: Source::ConfigYaml });
    let own = match (env_port, from_cfg) {
        (Some(e), Some(_)) if env.enables() => Some(e),
        (_, Some(c)) => Some(c),
        (e, None) => e,
    };
    (own, why)
}

/// The record as stored: unreadable or malformed means empty (every port is assigned again,
/// the same way), and entries that are not valid profile names or ports are dropped.
pub fn read_record(fs: &dyn Fs, home: &Dir) -> Record {
    let Ok(Some(text)) = read_text(fs, home, RECORD_FILE, RECORD_CAP) else { return Record::new() };
    let Ok(serde_json::Value::Object(m)) = serde_json::from_str::<serde_json::Value>(&text) else { return Record::new() };
    let Some(serde_json::Value::Object(ports)) = m.get("ports") else { return Record::new() };
    ports
        .iter()
        .filter(|(name, _)| crate::name::validate(name).is_ok())
        .filter_map(|(name, v)| serde_json::from_value::<Port>(v.clone()).ok().filter(|p| p.port > 0).map(|p| (name.clone(), p)))
        .collect()
}

/// The record's text.
pub fn record_text(record: &Record) -> String {
    let doc = serde_json::json!({
        "about": "API server ports of the profiles' gateways, kept by hermes-s6 (README, \"Per-profile ports\"); set a profile's own with API_SERVER_PORT in its .env",
        "ports": record,
    });
    format!("{}\n", serde_json::to_string_pretty(&doc).unwrap_or_default())
}

/// Write the record crash-safely as the volume's owner (`home` carries that identity).
pub fn write_record(fs: &dyn Fs, home: &Dir, record: &Record) -> io::Result<()> {
    write_atomic(fs, home, OsStr::new(RECORD_FILE), record_text(record).as_bytes(), 0o644)
}

/// The lowest port not taken and not one of upstream's listeners, from [`FIRST_ASSIGNED`].
fn lowest_free(taken: &BTreeSet<u16>) -> Option<u16> {
    (FIRST_ASSIGNED..=u16::MAX).find(|p| !taken.contains(p) && !UPSTREAM_LISTENERS.contains(p))
}

/// Ports for `profiles` (the default first, then the others in order, each with the port it
/// sets itself), keeping what `old` recorded wherever it is still free. Own ports always
/// win; an assigned port never equals any profile's own or another assigned one.
pub fn assign(profiles: &[(String, Option<Port>)], old: &Record) -> Record {
    let mut out = Record::new();
    let mut taken: BTreeSet<u16> = profiles.iter().filter_map(|(_, own)| own.map(|p| p.port)).collect();
    let mut pending = Vec::new();
    for (name, own) in profiles {
        if let Some(p) = own {
            out.insert(name.clone(), *p);
            continue;
        }
        let kept = old.get(name).filter(|p| p.source == Source::Assigned).map(|p| p.port);
        let wish = if name == DEFAULT_PROFILE { kept.or(Some(DEFAULT_PORT)) } else { kept };
        match wish.filter(|p| !taken.contains(p)) {
            Some(p) => {
                taken.insert(p);
                out.insert(name.clone(), Port { port: p, source: Source::Assigned });
            }
            None => pending.push(name.clone()),
        }
    }
    for name in pending {
        if let Some(p) = lowest_free(&taken) {
            taken.insert(p);
            out.insert(name, Port { port: p, source: Source::Assigned });
        }
    }
    out
}

/// Profiles whose ports collide, as `(port, first, other)` for every later profile sharing a
/// port with an earlier one (in the record's order, the default first).
pub fn collisions(record: &Record) -> Vec<(u16, String, String)> {
    let mut first: BTreeMap<u16, &str> = BTreeMap::new();
    let mut out = Vec::new();
    let ordered = record.get_key_value(DEFAULT_PROFILE).into_iter().chain(record.iter().filter(|(n, _)| *n != DEFAULT_PROFILE));
    for (name, p) in ordered {
        match first.get(&p.port) {
            Some(f) => out.push((p.port, f.to_string(), name.clone())),
            None => {
                first.insert(p.port, name);
            }
        }
    }
    out
}

/// The warning for one collision, naming both profiles and the fix.
pub fn collision_warning(record: &Record, (port, a, b): &(u16, String, String)) -> String {
    let from = |n: &str| record.get(n).map_or("?", |p| p.source.as_str());
    format!(
        "profiles '{a}' ({}) and '{b}' ({}) both set API server port {port}: only one gateway can listen on it; give one of them another API_SERVER_PORT in its .env (or remove it there to have one assigned)",
        from(a),
        from(b)
    )
}

/// Others that share `profile`'s port.
pub fn sharing(record: &Record, profile: &str) -> Vec<String> {
    let Some(mine) = record.get(profile) else { return Vec::new() };
    record.iter().filter(|(n, p)| *n != profile && p.port == mine.port).map(|(n, _)| n.clone()).collect()
}

/// The port of one profile being registered at run time (the registrar, `register`): its own,
/// else what the record holds for it if no other entry has it, else the lowest port no entry
/// has. The record is updated when that changes anything. A port another profile set after
/// the record was written is found by the next boot pass, which reassigns and warns.
pub fn for_registration(
    fs: &dyn Fs,
    home: &Dir,
    profile_dir: Option<&Dir>,
    profile: &str,
    container: &ApiEnv,
) -> (Option<Port>, Vec<String>) {
    let (own, mut why) = match profile_dir {
        Some(d) => own_port(fs, d, (profile == DEFAULT_PROFILE).then_some(container)),
        None => (None, Vec::new()),
    };
    let mut record = read_record(fs, home);
    let others: BTreeSet<u16> = record.iter().filter(|(n, _)| *n != profile).map(|(_, p)| p.port).collect();
    let port = match own {
        Some(p) => Some(p),
        None => {
            let kept = record.get(profile).filter(|p| p.source == Source::Assigned && !others.contains(&p.port)).copied();
            let wish = (profile == DEFAULT_PROFILE && !others.contains(&DEFAULT_PORT))
                .then_some(Port { port: DEFAULT_PORT, source: Source::Assigned });
            kept.or(wish).or_else(|| lowest_free(&others).map(|port| Port { port, source: Source::Assigned }))
        }
    };
    if let Some(p) = port {
        if record.get(profile) != Some(&p) {
            record.insert(profile.to_string(), p);
            if let Err(e) = write_record(fs, home, &record) {
                why.push(format!("could not record the port in {}: {e}", home.child(OsStr::new(RECORD_FILE)).display()));
            }
        }
    }
    (port, why)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn own(port: u16, source: Source) -> Option<Port> {
        Some(Port { port, source })
    }

    #[test]
    fn dotenv_lines_as_python_dotenv_reads_them() {
        let e = parse_dotenv("# c\nAPI_SERVER_PORT=1\nexport API_SERVER_PORT = \"8700\" \nAPI_SERVER_KEY='k # not a comment'\nAPI_SERVER_ENABLED=true # yes\nOTHER=2\n");
        assert_eq!(e.port.as_deref(), Some("8700"));
        assert_eq!(e.key.as_deref(), Some("k # not a comment"));
        assert_eq!(e.enabled.as_deref(), Some("true"));
    }

    #[test]
    fn config_port_top_level_wins_and_junk_is_upstreams_fallback() {
        assert_eq!(config_port("platforms:\n  api_server:\n    extra:\n      port: 8700\n"), Ok(Some(8700)));
        assert_eq!(
            config_port(
                "gateway:\n  platforms:\n    api_server: {extra: {port: '8701'}}\nplatforms:\n  api_server:\n    extra: {port: 8702}\n"
            ),
            Ok(Some(8702))
        );
        assert_eq!(config_port("gateway:\n  platforms:\n    api_server: {extra: {port: 8701}}\n"), Ok(Some(8701)));
        assert_eq!(config_port("platforms:\n  api_server:\n    extra:\n      port: nope\n"), Ok(Some(DEFAULT_PORT)));
        assert!(config_port("a: [unclosed\n").is_err());
        assert_eq!(config_port("x:\n  platforms: {api_server: {extra: {port: 1}}}\n"), Ok(None));
        assert_eq!(config_port("platforms:\n  api_server:\n    port: 8703\n"), Ok(None), "upstream reads the port from extra only");
        assert_eq!(config_port("a: &p 8704\nplatforms: {api_server: {extra: {port: *p}}}\n"), Ok(Some(8704)));
    }

    #[test]
    fn default_keeps_8642_others_get_stable_free_ports() {
        let names = |v: &[&str]| v.iter().map(|n| (n.to_string(), None)).collect::<Vec<_>>();
        let r = assign(&names(&["default", "a", "b"]), &Record::new());
        assert_eq!(r["default"].port, 8642);
        assert_eq!((r["a"].port, r["b"].port), (8650, 8651));
        // A profile added before the others in order does not move them.
        let r2 = assign(&names(&["default", "0new", "a", "b"]), &r);
        assert_eq!((r2["a"].port, r2["b"].port, r2["0new"].port), (8650, 8651, 8652));
        assert!(collisions(&r2).is_empty());
    }

    #[test]
    fn an_own_port_wins_and_moves_an_assigned_one() {
        let mut old = Record::new();
        old.insert("a".into(), Port { port: 8650, source: Source::Assigned });
        let r = assign(
            &[
                ("default".into(), None),
                ("a".into(), None),
                ("b".into(), own(8650, Source::DotEnv)),
                ("c".into(), own(8642, Source::ConfigYaml)),
            ],
            &old,
        );
        assert_eq!(r["b"], Port { port: 8650, source: Source::DotEnv });
        assert_eq!(r["c"].port, 8642);
        assert_ne!(r["default"].port, 8642, "taken by c's own");
        assert!(![8642, 8650].contains(&r["a"].port));
        assert!(collisions(&r).is_empty());
    }

    #[test]
    fn two_own_ports_collide_and_are_named() {
        let r = assign(&[("default".into(), own(9000, Source::Container)), ("x".into(), own(9000, Source::DotEnv))], &Record::new());
        let c = collisions(&r);
        assert_eq!(c, vec![(9000, "default".to_string(), "x".to_string())]);
        let w = collision_warning(&r, &c[0]);
        assert!(w.contains("'default' (container)") && w.contains("'x' (.env)") && w.contains("9000"), "{w}");
    }

    #[test]
    fn the_environment_replaces_config_yaml_only_when_it_enables_the_server() {
        let tmp = tempfile::tempdir().unwrap();
        let fs = crate::fs::RealFs;
        let dir = fs.open_root(tmp.path()).unwrap();
        std::fs::write(tmp.path().join("config.yaml"), "platforms:\n  api_server:\n    extra:\n      port: 8700\n").unwrap();
        std::fs::write(tmp.path().join(".env"), "API_SERVER_PORT=8800\n").unwrap();
        assert_eq!(own_port(&fs, &dir, None).0, own(8700, Source::ConfigYaml));
        std::fs::write(tmp.path().join(".env"), "API_SERVER_PORT=8800\nAPI_SERVER_KEY=k\n").unwrap();
        assert_eq!(own_port(&fs, &dir, None).0, own(8800, Source::DotEnv));
        std::fs::remove_file(tmp.path().join("config.yaml")).unwrap();
        std::fs::write(tmp.path().join(".env"), "OTHER=1\n").unwrap();
        let container = ApiEnv { port: Some("8900".into()), ..ApiEnv::default() };
        assert_eq!(own_port(&fs, &dir, Some(&container)).0, own(8900, Source::Container));
        assert_eq!(own_port(&fs, &dir, None).0, None);
    }

    #[test]
    fn the_record_round_trips_and_junk_is_dropped() {
        let tmp = tempfile::tempdir().unwrap();
        let fs = crate::fs::RealFs;
        let home = fs.open_root(tmp.path()).unwrap();
        let r = assign(&[("default".into(), None), ("a".into(), own(9000, Source::DotEnv))], &Record::new());
        write_record(&fs, &home, &r).unwrap();
        assert_eq!(read_record(&fs, &home), r);
        std::fs::write(tmp.path().join(RECORD_FILE), r#"{"ports": {"../x": {"port": 1, "source": "assigned"}, "b": {"port": 0, "source": "assigned"}, "c": {"port": 70000, "source": "assigned"}, "d": {"port": 9001, "source": "assigned"}}}"#).unwrap();
        assert_eq!(read_record(&fs, &home).keys().collect::<Vec<_>>(), vec!["d"]);
        std::fs::write(tmp.path().join(RECORD_FILE), "[").unwrap();
        assert!(read_record(&fs, &home).is_empty());
    }
}

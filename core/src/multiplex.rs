//! Profile multiplexing: one root gateway serves every profile, so named slots stay down at
//! boot however their state reads. Set by `multiplex_profiles` in `$HERMES_HOME/config.yaml`
//! (top level or under `gateway:`); `GATEWAY_MULTIPLEX_PROFILES` with a recognised token wins.

use crate::safe_fs::{Capped, Dir, Fs};
use std::ffi::OsStr;
use std::io;

pub const CONFIG_FILE: &str = "config.yaml";
const CONFIG_CAP: u64 = 1024 * 1024;

/// `Some(bool)` for a recognised token, `None` otherwise.
pub fn parse_token(v: &str) -> Option<bool> {
    match v.trim().to_ascii_lowercase().as_str() {
        "1" | "true" | "yes" | "on" => Some(true),
        "0" | "false" | "no" | "off" => Some(false),
        _ => None,
    }
}

fn yaml_flag(v: &serde_yaml::Value) -> Option<bool> {
    match v {
        serde_yaml::Value::Bool(b) => Some(*b),
        serde_yaml::Value::String(s) => parse_token(s),
        serde_yaml::Value::Number(n) => n.as_i64().map(|i| i != 0),
        _ => None,
    }
}

/// The flag from config.yaml: `Ok(None)` when the file or key is absent.
pub fn read_config_flag(fs: &dyn Fs, home: &Dir) -> Result<Option<bool>, String> {
    let path = home.child(OsStr::new(CONFIG_FILE));
    let data = match fs.read_capped(home, OsStr::new(CONFIG_FILE), CONFIG_CAP) {
        Ok(Capped::Data(d)) => d,
        Ok(Capped::NotRegular(k)) => return Err(format!("{} is a {}", path.display(), k.describe())),
        Ok(Capped::TooLarge(n)) => return Err(format!("{} is {n} bytes, over the cap", path.display())),
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(format!("{}: {e}", path.display())),
    };
    if data.iter().all(u8::is_ascii_whitespace) {
        return Ok(None);
    }
    let doc: serde_yaml::Value =
        serde_yaml::from_slice(&data).map_err(|e| format!("{} is not valid YAML: {e}", path.display()))?;
    let top = doc.get("multiplex_profiles");
    let nested = doc.get("gateway").and_then(|g| g.get("multiplex_profiles"));
    Ok(top.or(nested).and_then(yaml_flag))
}

/// Combine env override and config. Returns the flag and a warning when config failed.
pub fn resolve(env: Option<&str>, config: Result<Option<bool>, String>) -> (bool, Option<String>) {
    if let Some(b) = env.and_then(parse_token) {
        return (b, None);
    }
    match config {
        Ok(flag) => (flag.unwrap_or(false), None),
        Err(why) => (
            env.is_some_and(|v| !v.is_empty()),
            Some(format!("could not load multiplex setting: {why}; using GATEWAY_MULTIPLEX_PROFILES")),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_override_wins_both_ways() {
        assert!(!resolve(Some("false"), Ok(Some(true))).0);
        assert!(resolve(Some("true"), Ok(Some(false))).0);
        assert!(resolve(Some("maybe"), Ok(Some(true))).0);
        assert!(!resolve(None, Ok(None)).0);
    }

    #[test]
    fn config_failure_falls_back_to_env_with_warning() {
        let (flag, warn) = resolve(None, Err("boom".into()));
        assert!(!flag);
        assert!(warn.unwrap().contains("boom"));
    }
}

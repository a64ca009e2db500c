//! Profile multiplexing: one root gateway serves every profile, so named slots stay down at
//! boot however their state reads. Set by `multiplex_profiles` in `$HERMES_HOME/config.yaml`
//! (top level or under `gateway:`); `GATEWAY_MULTIPLEX_PROFILES` with a recognised token wins.

use crate::config::parse_bool;
use crate::fs::{Capped, Dir, Fs};
use std::ffi::OsStr;
use std::io;
use yaml_rust2::{Yaml, YamlLoader};

pub const CONFIG_FILE: &str = "config.yaml";
const CONFIG_CAP: u64 = 1024 * 1024;

fn yaml_flag(v: &Yaml) -> Option<bool> {
    match v {
        Yaml::Boolean(b) => Some(*b),
        Yaml::String(s) => parse_bool(s),
        Yaml::Integer(i) => Some(*i != 0),
        _ => None,
    }
}

/// The flag from config.yaml: `Ok(None)` when the file or key is absent; `Err` says why the
/// file could not be used.
pub fn read_config_flag(fs: &dyn Fs, home: &Dir) -> Result<Option<bool>, String> {
    let path = home.child(OsStr::new(CONFIG_FILE));
    let data = match fs.read_capped(home, OsStr::new(CONFIG_FILE), CONFIG_CAP) {
        Ok(Capped::Data(d)) => d,
        Ok(Capped::NotRegular(k)) => return Err(format!("{} is a {}", path.display(), k.describe())),
        Ok(Capped::TooLarge(n)) => return Err(format!("{} is {n} bytes, over the cap", path.display())),
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(format!("{}: {e}", path.display())),
    };
    let text = std::str::from_utf8(&data).map_err(|_| format!("{} is not UTF-8", path.display()))?;
    let docs = YamlLoader::load_from_str(text).map_err(|e| format!("{} is not valid YAML: {e}", path.display()))?;
    let Some(doc) = docs.first() else { return Ok(None) };
    let top = &doc["multiplex_profiles"];
    let nested = &doc["gateway"]["multiplex_profiles"];
    Ok(yaml_flag(top).or_else(|| yaml_flag(nested)))
}

/// Combine env override and config. Returns the flag and a warning when config failed.
pub fn resolve(env: Option<&str>, config: Result<Option<bool>, String>) -> (bool, Option<String>) {
    if let Some(b) = env.and_then(parse_bool) {
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
    use crate::fs::RealFs;

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

    #[test]
    fn reads_the_flag_at_top_level_or_under_gateway() {
        let tmp = tempfile::tempdir().unwrap();
        let home = RealFs.open_root(tmp.path()).unwrap();
        let read = |body: &str| {
            std::fs::write(tmp.path().join(CONFIG_FILE), body).unwrap();
            read_config_flag(&RealFs, &home)
        };
        assert_eq!(read("multiplex_profiles: true\n"), Ok(Some(true)));
        assert_eq!(read("gateway:\n  multiplex_profiles: 'off'\n"), Ok(Some(false)));
        assert_eq!(read("gateway:\n  port: 1\n"), Ok(None));
        assert_eq!(read(""), Ok(None));
        assert!(read("a: [unclosed\n").unwrap_err().contains("not valid YAML"));
    }
}

//! Whether a profile's gateway speaks sd_notify: `gateway.systemd_watchdog_seconds` in its
//! `config.yaml`, read the way hermes-agent 0.19.0 reads it (`coerce_systemd_watchdog_seconds`):
//! a whole number from 1 to 2^31-1, given as a number or as decimal digits in a string;
//! anything else (a boolean, a fraction, 0, a negative) leaves it off. hermes-agent reads it
//! only under `gateway:`.
//!
//! Read by the bridge as the profile's own user; the file is still capped and streamed (see
//! [`crate::volume::multiplex`]).

use crate::fs::{Capped, Dir, Fs};
use crate::volume::multiplex::{scan_key, CONFIG_CAP, CONFIG_FILE};
use std::ffi::OsStr;
use std::time::Duration;
use yaml_rust2::Yaml;

pub const KEY: &str = "systemd_watchdog_seconds";
const MAX_SECONDS: i64 = 2_147_483_647;

/// The interval from a parsed value, as hermes-agent coerces it.
fn coerce(v: &Yaml) -> Option<Duration> {
    let n = match v {
        Yaml::Integer(i) => *i,
        Yaml::String(s) => {
            let t = s.trim();
            if t.is_empty() || !t.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            t.parse().ok()?
        }
        _ => return None,
    };
    (1..=MAX_SECONDS).contains(&n).then(|| Duration::from_secs(n as u64))
}

/// The watchdog interval the profile's config enables, or `None` (no file, no key, a value it
/// would ignore, a file that cannot be read: the gateway then does not speak sd_notify).
pub fn interval(fs: &dyn Fs, profile_dir: &Dir) -> Option<Duration> {
    let Ok(Capped::Data(d)) = fs.read_capped(profile_dir, OsStr::new(CONFIG_FILE), CONFIG_CAP) else { return None };
    let text = std::str::from_utf8(&d).ok()?;
    let (_, nested) = scan_key(text, KEY).ok()?;
    nested.as_ref().and_then(coerce)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn of(yaml: &str) -> Option<Duration> {
        let tmp = tempfile::tempdir().unwrap();
        std::fs::write(tmp.path().join(CONFIG_FILE), yaml).unwrap();
        let fs = crate::fs::RealFs;
        interval(&fs, &fs.open_root(tmp.path()).unwrap())
    }

    #[test]
    fn read_as_hermes_agent_reads_it() {
        assert_eq!(of("gateway:\n  systemd_watchdog_seconds: 30\n"), Some(Duration::from_secs(30)));
        assert_eq!(of("gateway:\n  systemd_watchdog_seconds: \"12\"\n"), Some(Duration::from_secs(12)));
        assert_eq!(of("gateway: {systemd_watchdog_seconds: 5, other: 1}\n"), Some(Duration::from_secs(5)));
        for off in [
            "systemd_watchdog_seconds: 30\n",
            "gateway:\n  systemd_watchdog_seconds: 0\n",
            "gateway:\n  systemd_watchdog_seconds: true\n",
            "gateway:\n  systemd_watchdog_seconds: 2.5\n",
            "gateway:\n  systemd_watchdog_seconds: -3\n",
            "gateway:\n  systemd_watchdog_seconds: \"3s\"\n",
            "gateway:\n  systemd_watchdog_seconds: 2147483648\n",
            "gateway:\n  other:\n    systemd_watchdog_seconds: 30\n",
            "gateway: [\n",
        ] {
            assert_eq!(of(off), None, "{off:?}");
        }
        let tmp = tempfile::tempdir().unwrap();
        let fs = crate::fs::RealFs;
        assert_eq!(interval(&fs, &fs.open_root(tmp.path()).unwrap()), None, "no config.yaml");
    }
}

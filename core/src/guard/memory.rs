//! The memory ceiling: a gateway whose resident memory passes its limit is restarted
//! gracefully (SIGTERM through s6) by the registrar, which leaves the reason (`memory`) for the
//! slot's finish to record, like pm2's `max_memory_restart` but explained.
//!
//! The limit is the container's (`HERMES_GATEWAY_MEMORY_LIMIT`), or the profile's own
//! `gateway.memory_limit` in its `config.yaml` (upstream's file, which hermes-agent leaves
//! keys it does not know alone), which wins either way (`off` turns a container-wide limit
//! off for one profile). Off by default.

use crate::ctx::Ctx;
use crate::volume::multiplex::read_config_key;
use yaml_rust2::Yaml;

pub use crate::config::parse_limit;

/// What a profile's config.yaml says: `Some(limit)` when it sets `gateway.memory_limit`
/// (`Some(None)`: it turns the limit off), `None` when it does not (or cannot be read: the
/// container's limit then holds, and the reason is the second value).
pub fn profile_setting(ctx: &Ctx, profile: &str) -> (Option<Option<u64>>, Option<String>) {
    let Ok(Some(dir)) = crate::volume::open_profile_dir(ctx, profile) else { return (None, None) };
    let _held = ctx.fs.hold_identity(&dir).ok();
    match read_config_key(ctx.fs, &dir, "memory_limit") {
        Ok((_, Some(v))) => match v {
            Yaml::Integer(i) if i <= 0 => (Some(None), None),
            Yaml::Integer(i) => match parse_limit(&i.to_string()) {
                Ok(l) => (Some(l), None),
                Err(e) => (None, Some(format!("gateway.memory_limit in {profile}'s config.yaml: {e}"))),
            },
            Yaml::Boolean(false) | Yaml::Null => (Some(None), None),
            Yaml::String(s) | Yaml::Real(s) => match parse_limit(&s) {
                Ok(l) => (Some(l), None),
                Err(e) => (None, Some(format!("gateway.memory_limit in {profile}'s config.yaml: {e}"))),
            },
            _ => (None, Some(format!("gateway.memory_limit in {profile}'s config.yaml is not a size like 512M"))),
        },
        Ok(_) => (None, None),
        Err(e) => (None, Some(e)),
    }
}

/// The limit that applies to `profile`'s gateway, bytes.
pub fn limit_for(ctx: &Ctx, profile: &str) -> Option<u64> {
    match profile_setting(ctx, profile).0 {
        Some(own) => own,
        None => ctx.cfg.memory_limit,
    }
}

/// Whether `rss` is over `limit`.
pub fn over(rss: u64, limit: Option<u64>) -> bool {
    limit.is_some_and(|l| rss > l)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_read_as_people_write_them() {
        for (v, want) in [
            ("512M", Some(512_000_000)),
            ("2G", Some(2_000_000_000)),
            ("800MiB", Some(800 << 20)),
            ("1.5gb", Some(1_500_000_000)),
            ("300000000", Some(300_000_000)),
            ("off", None),
            ("", None),
            ("0", None),
        ] {
            assert_eq!(parse_limit(v), Ok(want), "{v:?}");
        }
        for v in ["512", "lots", "5T", "-1G", "1e30"] {
            assert!(parse_limit(v).is_err(), "{v:?}");
        }
        assert!(over(600, Some(500)) && !over(500, Some(500)) && !over(u64::MAX, None));
    }

    #[test]
    fn a_profiles_own_setting_wins_over_the_containers() {
        let tmp = tempfile::tempdir().unwrap();
        let cfg = crate::config::Config {
            home: tmp.path().to_path_buf(),
            memory_limit: Some(900_000_000),
            uid: nix::unistd::geteuid().as_raw().max(1),
            gid: nix::unistd::getegid().as_raw().max(1),
            ..Default::default()
        };
        let ctx = Ctx::new(&crate::fs::RealFs, &crate::clock::SystemClock, &cfg);
        assert_eq!(limit_for(&ctx, "default"), Some(900_000_000), "no config.yaml: the container's");
        for (yaml, want) in [
            ("gateway:\n  memory_limit: 256M\n", Some(256_000_000)),
            ("gateway:\n  memory_limit: off\n", None),
            ("gateway:\n  memory_limit: false\n", None),
            ("memory_limit: 1G\n", Some(900_000_000)),
            ("gateway:\n  memory_limit: 3\n", Some(900_000_000)),
        ] {
            std::fs::write(tmp.path().join("config.yaml"), yaml).unwrap();
            assert_eq!(limit_for(&ctx, "default"), want, "{yaml:?}");
        }
        std::fs::write(tmp.path().join("config.yaml"), "gateway:\n  memory_limit: lots\n").unwrap();
        assert!(profile_setting(&ctx, "default").1.unwrap().contains("gateway.memory_limit"));
    }
}

/// One gateway found over its limit by a check, and what was done.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Acted {
    pub profile: String,
    pub pid: u64,
    pub rss: u64,
    pub limit: u64,
    /// It was already asked to restart at the last check and is still there: SIGKILLed.
    pub killed: bool,
}

impl Acted {
    pub fn describe(&self) -> String {
        let (rss, limit) = (crate::lifecycle::usage::human_bytes(self.rss), crate::lifecycle::usage::human_bytes(self.limit));
        if self.killed {
            format!("memory: pid {} still at {rss} over its limit {limit} a check after its SIGTERM: killed", self.pid)
        } else {
            format!("memory: pid {} at {rss} over its limit {limit}: restarted", self.pid)
        }
    }
}

/// Check every gateway in `slots` (profile, slot) against its limit (`limit`): one over it is
/// restarted gracefully (the reason left for its finish, then s6's restart command, which
/// sends its down-signal, SIGTERM); one still there at the next check with the same pid is
/// killed. `asked` carries the pids asked to restart between checks. The kernel's OOM-kill
/// counter is recorded as every running slot's baseline on the way ([`super::oom`]).
pub fn check(
    ctx: &Ctx,
    slots: &[(String, crate::fs::Dir)],
    limit: &dyn Fn(&str) -> Option<u64>,
    asked: &mut std::collections::BTreeMap<String, u64>,
) -> (Vec<Acted>, Vec<String>) {
    use crate::s6::{svc, svstat};
    let (mut acted, mut errors) = (Vec::new(), Vec::new());
    let kills = super::oom::kills(ctx);
    let mut still = std::collections::BTreeMap::new();
    for (profile, slot) in slots {
        let Some(st) = svstat::read(ctx.fs, slot).ok().flatten().filter(|s| s.is_up() && s.want_up) else { continue };
        if let Some(k) = kills {
            super::oom::set_baseline(ctx, slot, k);
        }
        let Some(l) = limit(profile) else { continue };
        let Some(rss) = crate::lifecycle::usage::of(ctx, st.pid).map(|u| u.rss_bytes) else { continue };
        if !over(rss, Some(l)) {
            continue;
        }
        let again = asked.get(profile) == Some(&st.pid);
        let now = crate::clock::unix_secs_f64(ctx.clock.now());
        let a = Acted { profile: profile.clone(), pid: st.pid, rss, limit: l, killed: again };
        let r = super::reason::Reason { cause: crate::exit_policy::Cause::Memory, pid: st.pid, at: now, detail: a.describe() };
        if let Err(e) = super::reason::leave(ctx, slot, &r) {
            // Restarted all the same: a limit is a promise; the death is then a plain crash.
            errors.push(ctx.problem(slot.child(std::ffi::OsStr::new(crate::slot::DATA_DIR)), "leave the restart reason in", e).to_string());
        }
        match svc::send(ctx.fs, slot, if again { b"k" } else { b"r" }) {
            Ok(()) => {
                still.insert(profile.clone(), st.pid);
                acted.push(a);
            }
            Err(e) => {
                // No death follows: the reason must not explain a later, unrelated one.
                let _ = super::reason::take(ctx, slot, now);
                errors.push(format!("{profile}: could not restart its gateway over its memory limit: {e}"));
            }
        }
    }
    *asked = still;
    (acted, errors)
}

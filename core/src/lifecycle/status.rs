//! `status [P]`: per profile, what the operator wants (from the volume) next to what s6 says,
//! and a one-word reason a person can act on.

use super::{capacity, open_scandir, registered, Error};
use crate::config::Config;
use crate::discovery::{self, Candidate};
use crate::profile_name::{slot_name, DEFAULT_PROFILE};
use crate::s6::status as s6status;
use crate::safe_fs::Fs;
use crate::state::{read_json_object, STATE_FILE};
use std::collections::BTreeSet;
use std::ffi::OsStr;

/// EX_CONFIG: the gateway refused its configuration; a restart cannot help.
pub const CONFIG_ERROR_EXIT: i32 = 78;

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ProfileStatus {
    pub profile: String,
    /// `desired_state` from the profile's state file, else its effective state.
    pub wanted: Option<String>,
    pub registered: bool,
    pub supervised: bool,
    pub up: bool,
    pub pid: Option<u64>,
    /// Seconds since the last up/down transition.
    pub since_secs: Option<i64>,
    pub exit_code: Option<i32>,
    pub signal: Option<i32>,
    /// No `down` file: s6 starts it when its supervisor starts.
    pub normally_up: bool,
    pub want_up: bool,
    pub reason: &'static str,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct Report {
    pub profiles: Vec<ProfileStatus>,
    pub capacity: Option<capacity::Usage>,
}

pub fn status(fs: &dyn Fs, cfg: &Config, only: Option<&str>) -> Result<Report, Error> {
    let scandir = open_scandir(fs, cfg)?;
    let home = fs.open_root(&cfg.home).ok();
    let snap = discovery::scan_home(fs, home.as_ref(), None, false);
    let mut names: BTreeSet<String> = BTreeSet::new();
    names.insert(DEFAULT_PROFILE.to_string());
    for c in &snap.named {
        if let Candidate::Profile { name, .. } = c {
            names.insert(name.clone());
        }
    }
    names.extend(registered(fs, &scandir).map_err(|e| Error::io(&cfg.scandir, "list", e))?);
    if let Some(p) = only {
        names.retain(|n| n == p);
        if names.is_empty() {
            return Err(Error::NotRegistered { profile: p.to_string() });
        }
    }
    let profiles = names.iter().map(|p| one(fs, cfg, &scandir, p)).collect();
    let capacity = capacity::usage(fs, &scandir, cfg.max_services).ok();
    Ok(Report { profiles, capacity })
}

fn wanted(fs: &dyn Fs, cfg: &Config, profile: &str) -> Option<String> {
    let dir = super::open_profile_dir(fs, cfg, profile).ok()??;
    let map = read_json_object(fs, &dir, STATE_FILE).ok()??;
    crate::state::effective_state(&map)
}

fn one(fs: &dyn Fs, cfg: &Config, scandir: &crate::safe_fs::Dir, profile: &str) -> ProfileStatus {
    let mut ps = ProfileStatus {
        profile: profile.to_string(),
        wanted: wanted(fs, cfg, profile),
        registered: false,
        supervised: false,
        up: false,
        pid: None,
        since_secs: None,
        exit_code: None,
        signal: None,
        normally_up: false,
        want_up: false,
        reason: "not-registered",
    };
    let Ok(slot) = fs.open_dir(scandir, OsStr::new(&slot_name(profile))) else { return ps };
    ps.registered = true;
    ps.normally_up = fs.lstat(&slot, OsStr::new("down")).is_err();
    ps.supervised = s6status::supervisor_alive(fs, &slot).unwrap_or(false);
    let st = if ps.supervised { s6status::read(fs, &slot).ok().flatten() } else { None };
    let Some(st) = st else {
        ps.reason = "unsupervised";
        return ps;
    };
    let now = chrono::Utc::now().timestamp();
    ps.up = st.is_up();
    ps.pid = st.is_up().then_some(st.pid);
    ps.since_secs = Some((now - st.since).max(0));
    ps.want_up = st.want_up;
    let died = s6status::has_died(fs, &slot);
    // Before the first death the wait status is just zeroes, not an exit code.
    if died {
        ps.exit_code = st.exit_code();
        ps.signal = st.signal();
    }
    ps.reason = reason(&st, died, ps.wanted.as_deref());
    ps
}

/// The one-word verdict. Order matters: the most specific explanation wins.
pub fn reason(st: &s6status::Status, died: bool, wanted: Option<&str>) -> &'static str {
    if st.is_up() {
        return if st.want_up { "running" } else { "stopping" };
    }
    if st.want_up {
        return "crashed"; // down but wanted up: between restarts, or finish still running
    }
    if died && st.exit_code() == Some(CONFIG_ERROR_EXIT) {
        return "config-error";
    }
    if wanted == Some("stopped") {
        return "operator-stopped";
    }
    if !died {
        return "not-restored"; // registered down at boot and never started since
    }
    "parked" // finish exited 125 after a clean exit (or another intentional stop)
}

/// The human table `status` prints, ending with the scanner's capacity.
pub fn render_table(r: &Report) -> String {
    use std::fmt::Write;
    let mut out = String::new();
    let _ = writeln!(out, "{:<20} {:<10} {:<5} {:<9} {:>8} {:<12} REASON", "PROFILE", "WANTED", "S6", "PID", "SINCE", "LAST EXIT");
    for p in &r.profiles {
        let last = match (p.exit_code, p.signal) {
            (Some(c), _) if !p.up => format!("exit {c}"),
            (_, Some(s)) if !p.up => format!("signal {s}"),
            _ => "-".into(),
        };
        let s6 = if !p.registered || !p.supervised {
            "-"
        } else if p.up {
            "up"
        } else {
            "down"
        };
        let _ = writeln!(
            out,
            "{:<20} {:<10} {:<5} {:<9} {:>8} {:<12} {}",
            p.profile,
            p.wanted.as_deref().unwrap_or("-"),
            s6,
            p.pid.map(|x| x.to_string()).unwrap_or_else(|| "-".into()),
            p.since_secs.map(|s| format!("{s}s")).unwrap_or_else(|| "-".into()),
            last,
            p.reason
        );
    }
    if let Some(c) = r.capacity {
        let note = if c.near_limit() { "  (near the limit: raise s6-svscan -c)" } else { "" };
        let _ = writeln!(out, "\nservices: {} of {} supervised{note}", c.used, c.max);
    }
    out
}

//! The read-only half of a pass: what the volume says. Produces a [`Snapshot`] of plain data
//! (no descriptors), from which [`crate::boot::plan`] decides and [`crate::boot`] acts.

use crate::escape::log_value;
use crate::fs::{Dir, Fs, Kind};
use crate::name::{self, DEFAULT_PROFILE};
use crate::volume::policy_record::{self as record, Hold};
use crate::volume::state::{read_prior_exit, read_prior_state, PriorExit, PriorState};
pub use crate::volume::{MARKER, PROFILES_DIR};
use std::ffi::OsStr;
use std::io;
use std::os::unix::ffi::OsStrExt;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Facts {
    pub prior: PriorState,
    pub prior_exit: PriorExit,
    /// Whether the profile has a crash-policy record, and whether that holds it down.
    pub policy: Option<Option<Hold>>,
    /// A named profile's `gateway.parked` marker (see [`crate::volume::parked`]): its slot
    /// stays down. Always false for the root profile, where the marker means nothing.
    pub parked: bool,
}

/// Why a directory under `profiles/` gets no slot.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum SkipReason {
    InvalidName,
    NonUtf8Name,
    Symlink,
    Unreadable,
}

impl SkipReason {
    pub fn as_str(self) -> &'static str {
        match self {
            SkipReason::InvalidName => "invalid-name",
            SkipReason::NonUtf8Name => "non-utf8-name",
            SkipReason::Symlink => "symlink",
            SkipReason::Unreadable => "unreadable",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Candidate {
    Profile {
        name: String,
        facts: Facts,
    },
    /// `display` is the entry name made safe for one-line logs.
    Skipped {
        display: String,
        reason: SkipReason,
        detail: String,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snapshot {
    /// Facts about the root profile; `None` when `$HERMES_HOME` itself could not be opened.
    pub default: Facts,
    pub home_error: Option<String>,
    /// Named candidates, sorted by entry name (bytes).
    pub named: Vec<Candidate>,
    /// `profiles/` exists but could not be read (or is a link): `named` is not the truth,
    /// so nothing may be concluded from a profile's absence.
    pub profiles_unreadable: bool,
    pub warnings: Vec<String>,
}

impl Snapshot {
    /// Nothing read: the default profile with no prior state.
    pub fn empty() -> Snapshot {
        Snapshot {
            default: Facts { prior: PriorState::default(), prior_exit: PriorExit::Unknown, policy: None, parked: false },
            home_error: None,
            named: Vec::new(),
            profiles_unreadable: false,
            warnings: Vec::new(),
        }
    }
}

fn facts(fs: &dyn Fs, dir: &Dir) -> Facts {
    Facts {
        prior: read_prior_state(fs, dir),
        prior_exit: read_prior_exit(fs, dir),
        policy: record::read_in(fs, dir).map(|r| r.hold()),
        parked: false,
    }
}

/// Runtime files of the previous container's gateway; their PIDs mean nothing now.
pub const STALE_RUNTIME_FILES: [&str; 2] = ["gateway.pid", "processes.json"];

/// Remove the stale runtime files of one profile (a planted link is unlinked, never followed).
fn sweep_runtime_files(fs: &dyn Fs, dir: &Dir, warnings: &mut Vec<String>) {
    for name in STALE_RUNTIME_FILES {
        if let Err(e) = crate::fs::ignore_missing(fs.unlink(dir, OsStr::new(name))) {
            warnings.push(format!("could not remove stale {}: {e}", dir.child(OsStr::new(name)).display()));
        }
    }
}

/// Read the home. Never fails: every problem becomes a warning or a skipped candidate. With
/// `sweep`, each profile that will get a slot has its stale runtime files removed while its
/// directory is open (the boot pass; a dry run reads only).
pub fn scan_home(fs: &dyn Fs, home: Option<&Dir>, home_error: Option<String>, sweep: bool) -> Snapshot {
    let mut snap = Snapshot {
        default: Facts { prior: PriorState::default(), prior_exit: PriorExit::Unknown, policy: None, parked: false },
        home_error,
        named: Vec::new(),
        profiles_unreadable: false,
        warnings: Vec::new(),
    };
    let Some(home) = home else { return snap };
    {
        let _held = fs.hold_identity(home).ok();
        snap.default = facts(fs, home);
        if sweep {
            sweep_runtime_files(fs, home, &mut snap.warnings);
        }
        if let Some(p) = crate::volume::parked::default_marker(fs, home) {
            snap.warnings
                .push(format!("{} is ignored: the root profile's gateway is stopped with `hermes gateway stop`, not parked", p.display()));
        }
    }
    if let Some(w) = &snap.default.prior.warning {
        snap.warnings.push(w.clone());
    }
    let profiles_path = home.child(OsStr::new(PROFILES_DIR));
    let profiles = match fs.lstat(home, OsStr::new(PROFILES_DIR)) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => return snap,
        Err(e) => {
            snap.warnings.push(format!("could not inspect {}: {e}; no named profile reconciled", profiles_path.display()));
            snap.profiles_unreadable = true;
            return snap;
        }
        Ok(m) if m.kind == Kind::Symlink => {
            snap.warnings.push(format!(
                "{} is a symbolic link; root does not follow links in the volume, so no named profile was reconciled (replace it with a real directory)",
                profiles_path.display()
            ));
            snap.profiles_unreadable = true;
            return snap;
        }
        Ok(m) if m.kind != Kind::Dir => {
            snap.profiles_unreadable = true;
            return snap;
        }
        Ok(_) => match fs.open_dir(home, OsStr::new(PROFILES_DIR)) {
            Ok(d) => d,
            Err(e) => {
                snap.warnings.push(format!("could not open {}: {e}; no named profile reconciled", profiles_path.display()));
                snap.profiles_unreadable = true;
                return snap;
            }
        },
    };
    let mut entries = match fs.list(&profiles) {
        Ok(v) => v,
        Err(e) => {
            snap.warnings.push(format!("could not list {}: {e}; no named profile reconciled", profiles_path.display()));
            snap.profiles_unreadable = true;
            return snap;
        }
    };
    entries.sort_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
    let (tombstones, tomb_warning) = crate::volume::tombstone::Tombstones::open(fs, &profiles);
    snap.warnings.extend(tomb_warning);
    for (name, kind) in entries {
        // `.deleted` holds tombstones, never a profile; a tombstoned name is no profile.
        if name == crate::volume::tombstone::DELETED_DIR {
            continue;
        }
        if let Some(n) = name.to_str().filter(|n| name::validate(n).is_ok() && tombstones.contains(fs, n)) {
            if kind == Kind::Dir {
                snap.warnings.push(format!(
                    "{} is not a profile: it is tombstoned by {}/{n} (hermes-agent deleted it; `hermes profile create {n}` makes it again)",
                    profiles.child(&name).display(),
                    profiles.child(OsStr::new(crate::volume::tombstone::DELETED_DIR)).display()
                ));
            }
            continue;
        }
        if let Some(c) = candidate(fs, &profiles, &name, kind, sweep, &mut snap.warnings) {
            if let Candidate::Profile { facts, .. } = &c {
                if let Some(w) = &facts.prior.warning {
                    snap.warnings.push(w.clone());
                }
            }
            snap.named.push(c);
        }
    }
    snap
}

fn candidate(fs: &dyn Fs, profiles: &Dir, name: &OsStr, kind: Kind, sweep: bool, warnings: &mut Vec<String>) -> Option<Candidate> {
    let display = log_value(name.as_bytes());
    let path = profiles.child(name);
    let skip = |reason: SkipReason, detail: String| Some(Candidate::Skipped { display: display.clone(), reason, detail });
    if name.as_bytes() == DEFAULT_PROFILE.as_bytes() && kind == Kind::Symlink {
        // Upstream follows it and skips it like a directory: one `profile=default` line.
        warnings.push(format!("{} is a symbolic link and the name is reserved for the root profile; ignored", path.display()));
        return None;
    }
    match kind {
        Kind::Dir => {}
        Kind::Symlink => {
            return skip(
                SkipReason::Symlink,
                format!("{} is a symbolic link; root does not follow links in the volume (make it a real directory)", path.display()),
            )
        }
        _ => return None, // files and the like are not profiles
    }
    let dir = match fs.open_dir(profiles, name) {
        Ok(d) => d,
        Err(e) => return skip(SkipReason::Unreadable, format!("could not open {}: {e}", path.display())),
    };
    // Followed, as upstream does (a dangling or looping link marks nothing), with the
    // profile's owner as the identity: only a stat, and only of what that user can reach.
    match fs.stat(&dir, OsStr::new(MARKER)) {
        Ok(_) => {}
        Err(e) if marks_nothing(&e) => return None, // not a profile
        Err(e) => return skip(SkipReason::Unreadable, format!("could not inspect {}/{MARKER}: {e}", path.display())),
    }
    let Some(utf8) = name.to_str() else {
        return skip(SkipReason::NonUtf8Name, format!("{} is not valid UTF-8; rename the directory", path.display()));
    };
    if let Err(e) = name::validate(utf8) {
        return skip(SkipReason::InvalidName, format!("{}: {e}; rename the directory", path.display()));
    }
    if utf8 == DEFAULT_PROFILE {
        warnings.push(format!(
            "{} exists \u{2014} skipping to avoid colliding with the reserved root-profile s6 slot (profiles/default/ is never given a slot; the root profile lives at the home itself)",
            path.display()
        ));
        return None;
    }
    // One identity switch for the profile's reads and sweeps, not one each.
    let _held = fs.hold_identity(&dir).ok();
    let mut facts = facts(fs, &dir);
    facts.parked = crate::volume::parked::is_parked_in(fs, &dir);
    if sweep {
        sweep_runtime_files(fs, &dir, warnings);
    }
    Some(Candidate::Profile { name: utf8.to_string(), facts })
}

/// What makes Python's `Path.exists()` say no rather than raise: the marker is not there.
fn marks_nothing(e: &io::Error) -> bool {
    e.kind() == io::ErrorKind::NotFound || matches!(e.raw_os_error(), Some(code) if code == nix::libc::ELOOP || code == nix::libc::ENOTDIR)
}

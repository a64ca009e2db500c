//! `profiles/.deleted/<P>` tombstones: newer hermes-agent's `profile delete` leaves one (a
//! file reading `deleted`) so that a directory something re-creates after the deletion (a
//! stray log or cron write) is not taken for the profile again; its `profile create` clears
//! it. A tombstoned name is no profile, whatever its directory holds: no slot, not listed, not
//! in `status`. `.deleted` itself, and anything in it, is never a profile either.
//!
//! Root only lists `.deleted` (never follows a link there) and never reads a tombstone.

use crate::fs::{Dir, Fs, Kind};
use std::collections::BTreeSet;
use std::ffi::OsStr;
use std::io;

pub const DELETED_DIR: &str = ".deleted";

/// The tombstoned names under `profiles` (the open `profiles/` directory), and a warning when
/// `.deleted` exists but cannot be trusted (a link, unreadable): then no name is tombstoned.
pub fn read(fs: &dyn Fs, profiles: &Dir) -> (BTreeSet<String>, Option<String>) {
    let path = profiles.child(OsStr::new(DELETED_DIR));
    let dir = match fs.lstat(profiles, OsStr::new(DELETED_DIR)) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => return (BTreeSet::new(), None),
        Ok(m) if m.kind == Kind::Dir => fs.open_dir(profiles, OsStr::new(DELETED_DIR)),
        Ok(m) => {
            return (
                BTreeSet::new(),
                Some(format!(
                    "{} is a {}, not a directory: its tombstones are ignored (root does not follow links in the volume)",
                    path.display(),
                    m.kind.describe()
                )),
            )
        }
        Err(e) => Err(e),
    };
    match dir.and_then(|d| fs.list(&d)) {
        Ok(entries) => (entries.into_iter().filter_map(|(n, _)| n.to_str().map(str::to_string)).collect(), None),
        Err(e) => (BTreeSet::new(), Some(format!("could not read the tombstones in {}: {e}", path.display()))),
    }
}

/// Whether `name` is tombstoned (one look, for the registrar and single-profile commands).
pub fn is_tombstoned(fs: &dyn Fs, profiles: &Dir, name: &str) -> bool {
    match fs.open_dir(profiles, OsStr::new(DELETED_DIR)) {
        Ok(d) => fs.lstat(&d, OsStr::new(name)).is_ok(),
        Err(_) => false,
    }
}

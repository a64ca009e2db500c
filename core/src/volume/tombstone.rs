//! `profiles/.deleted/<P>` tombstones: newer hermes-agent's `profile delete` leaves one (a
//! file reading `deleted`) so that a directory something re-creates after the deletion (a
//! stray log or cron write) is not taken for the profile again; its `profile create` clears
//! it. A tombstoned name is no profile, whatever its directory holds: no slot, not listed, not
//! in `status`. `.deleted` itself, and anything in it, is never a profile either.
//!
//! Root only looks names up in `.deleted` (never follows a link there, never lists it: its size
//! is the user's to choose) and never reads a tombstone.

use crate::fs::{Dir, Fs, Kind};
use std::ffi::OsStr;
use std::io;

pub const DELETED_DIR: &str = ".deleted";

/// `profiles/.deleted`, opened once for a pass: names are looked up in it one by one, so what
/// the pass costs follows the profiles it meets, never how many entries the user put in
/// `.deleted`.
pub struct Tombstones {
    dir: Option<Dir>,
}

impl Tombstones {
    /// `.deleted` under `profiles` (the open `profiles/` directory), and a warning when it
    /// exists but cannot be trusted (a link, unreadable): then no name is tombstoned.
    pub fn open(fs: &dyn Fs, profiles: &Dir) -> (Tombstones, Option<String>) {
        let path = profiles.child(OsStr::new(DELETED_DIR));
        let none = Tombstones { dir: None };
        match fs.lstat(profiles, OsStr::new(DELETED_DIR)) {
            Err(e) if e.kind() == io::ErrorKind::NotFound => (none, None),
            Ok(m) if m.kind == Kind::Dir => match fs.open_dir(profiles, OsStr::new(DELETED_DIR)) {
                Ok(d) => (Tombstones { dir: Some(d) }, None),
                Err(e) => (none, Some(format!("could not read the tombstones in {}: {e}", path.display()))),
            },
            Ok(m) => (
                none,
                Some(format!(
                    "{} is a {}, not a directory: its tombstones are ignored (root does not follow links in the volume)",
                    path.display(),
                    m.kind.describe()
                )),
            ),
            Err(e) => (none, Some(format!("could not read the tombstones in {}: {e}", path.display()))),
        }
    }

    /// Whether `name` has a tombstone (anything at its name in `.deleted`, never followed).
    pub fn contains(&self, fs: &dyn Fs, name: &str) -> bool {
        self.dir.as_ref().is_some_and(|d| fs.lstat(d, OsStr::new(name)).is_ok())
    }
}

/// Whether `name` is tombstoned (one look, for the registrar and single-profile commands).
pub fn is_tombstoned(fs: &dyn Fs, profiles: &Dir, name: &str) -> bool {
    match fs.open_dir(profiles, OsStr::new(DELETED_DIR)) {
        Ok(d) => fs.lstat(&d, OsStr::new(name)).is_ok(),
        Err(_) => false,
    }
}

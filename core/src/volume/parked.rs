//! The `gateway.parked` marker: a file in a named profile's directory (`profiles/<P>/gateway.parked`)
//! that newer hermes-agent writes when a profile's gateway is stopped under one multiplexing
//! gateway, and removes when it is started again (its `hermes_cli/profiles.py`: "marker
//! contents are deliberately irrelevant"). A parked profile stays installed but is not served:
//! here its slot is kept down by the boot pass, the registrar and the crash policy's
//! schedule, and `start` unparks it first, as upstream's does. On the root profile the marker
//! means nothing (upstream ignores it there with a warning: stop the root gateway instead).
//!
//! Root only ever looks at the entry (`lstat`): a link named `gateway.parked` counts as the
//! marker and is never followed; its contents are never read.

use super::open_profile_dir;
use crate::ctx::Ctx;
use crate::fs::{Dir, Fs};
use crate::name::DEFAULT_PROFILE;
use crate::problem::Problem;
use std::ffi::OsStr;
use std::io;
use std::path::PathBuf;

pub const PARKED_FILE: &str = "gateway.parked";

/// Whether `dir` (an open profile directory) holds the marker. An entry that cannot be
/// inspected (EACCES) counts as absent: the marker only ever keeps a gateway down.
pub fn is_parked_in(fs: &dyn Fs, dir: &Dir) -> bool {
    fs.lstat(dir, OsStr::new(PARKED_FILE)).is_ok()
}

/// The marker's path when the named profile `profile` is parked; `None` for `default` (the
/// marker is ignored there), for a profile without one, or one whose directory is gone.
pub fn marker(ctx: &Ctx, profile: &str) -> Option<PathBuf> {
    if profile == DEFAULT_PROFILE {
        return None;
    }
    let dir = open_profile_dir(ctx, profile).ok().flatten()?;
    is_parked_in(ctx.fs, &dir).then(|| dir.child(OsStr::new(PARKED_FILE)))
}

/// Whether the root profile carries a marker (which means nothing: the caller warns).
pub fn default_marker(fs: &dyn Fs, home: &Dir) -> Option<PathBuf> {
    is_parked_in(fs, home).then(|| home.child(OsStr::new(PARKED_FILE)))
}

/// `start`'s first step, as upstream's: remove the marker so nothing keeps the slot down any
/// more. Returns the path removed, `None` when the profile was not parked. A marker that
/// cannot be removed (a directory, a read-only volume) is an error naming it and the fix.
pub fn unpark(ctx: &Ctx, profile: &str) -> Result<Option<PathBuf>, Problem> {
    if profile == DEFAULT_PROFILE {
        return Ok(None);
    }
    let Some(dir) = open_profile_dir(ctx, profile)? else { return Ok(None) };
    if !is_parked_in(ctx.fs, &dir) {
        return Ok(None);
    }
    let path = dir.child(OsStr::new(PARKED_FILE));
    match ctx.fs.unlink(&dir, OsStr::new(PARKED_FILE)) {
        Ok(()) => Ok(Some(path)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => {
            let why = format!(
                "parks gateway-{profile} (hermes-agent's gateway.parked marker) and could not be removed: {e}; remove it (`rm -r {}`) to unpark the profile, then start it again",
                path.display()
            );
            Err(Problem::Unusable { path, why })
        }
    }
}

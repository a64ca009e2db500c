//! `register P [--start]` (root): render the slot from the validated name, publish it
//! atomically (down unless `--start`), and ask s6-svscan to pick it up. Refuses a duplicate, a
//! profile that is not on the volume, and a slot the scanner could not supervise.

use super::{capacity, open_profile_dir, open_scandir, Error};
use crate::config::Config;
use crate::discovery::MARKER;
use crate::profile_name::{slot_name, DEFAULT_PROFILE};
use crate::s6::svscan::{self, Rescan};
use crate::safe_fs::Fs;
use crate::slot;
use std::ffi::OsStr;
use std::io;

pub fn register(fs: &dyn Fs, cfg: &Config, profile: &str, start: bool) -> Result<Rescan, Error> {
    let scandir = open_scandir(fs, cfg)?;
    let name = slot_name(profile);
    match fs.lstat(&scandir, OsStr::new(&name)) {
        Ok(_) => {
            return Err(Error::AlreadyRegistered { profile: profile.into(), path: scandir.child(OsStr::new(&name)).display().to_string() })
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(Error::io(scandir.child(OsStr::new(&name)), "inspect", e)),
    }
    require_profile(fs, cfg, profile)?;
    let usage = capacity::usage(fs, &scandir, cfg.max_services).map_err(|e| Error::io(&cfg.scandir, "list", e))?;
    if !usage.fits(capacity::PER_PROFILE) {
        return Err(Error::Capacity { used: usage.used, needed: capacity::PER_PROFILE, max: usage.max });
    }
    slot::publish(fs, cfg, &scandir, profile, start).map_err(|e| Error::io(scandir.child(OsStr::new(&name)), "publish", e))?;
    svscan::rescan(fs, &scandir, false).map_err(|e| Error::io(scandir.child(OsStr::new(".s6-svscan/control")), "write", e))
}

/// A named profile must exist on the volume as a real directory holding `SOUL.md`.
pub fn require_profile(fs: &dyn Fs, cfg: &Config, profile: &str) -> Result<(), Error> {
    if profile == DEFAULT_PROFILE {
        return Ok(());
    }
    let path = cfg.home.join("profiles").join(profile);
    let missing = || Error::NoProfile { profile: profile.into(), path: path.display().to_string() };
    let dir = open_profile_dir(fs, cfg, profile).map_err(|_| missing())?.ok_or_else(missing)?;
    fs.lstat(&dir, OsStr::new(MARKER)).map_err(|_| missing())?;
    Ok(())
}

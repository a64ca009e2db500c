//! Profiles on the volume, as the unprivileged user creates and deletes them. The slot side is
//! the registrar's (root); this module only touches the user's own tree, through `safe_fs`.

use crate::config::Config;
use crate::discovery::{MARKER, PROFILES_DIR};
use crate::lifecycle::{self, Error};
use crate::profile_name;
use crate::s6::{status, svc};
use crate::safe_fs::{remove_tree, Fs};
use std::ffi::OsStr;
use std::io;
use std::time::Duration;

/// Names `hermes profile create` refuses: they collide with the root profile or read like
/// system accounts.
pub const RESERVED: [&str; 6] = ["hermes", "default", "test", "tmp", "root", "sudo"];

pub const DEFAULT_SOUL: &str = "You are Hermes Agent, an intelligent AI assistant created by Nous Research.\n";

/// Create `$HERMES_HOME/profiles/<name>/` with a `SOUL.md`. Does not register the slot.
pub fn create(fs: &dyn Fs, cfg: &Config, name: &str) -> Result<std::path::PathBuf, Error> {
    profile_name::validate(name).map_err(Error::InvalidName)?;
    if RESERVED.contains(&name) {
        return Err(Error::Io {
            path: name.into(),
            error: io::Error::new(io::ErrorKind::InvalidInput, format!("profile name '{name}' is reserved; choose another")),
        });
    }
    let home = fs.open_root(&cfg.home).map_err(|e| Error::io(&cfg.home, "open", e))?;
    match fs.mkdir(&home, OsStr::new(PROFILES_DIR), 0o755) {
        Err(e) if e.kind() != io::ErrorKind::AlreadyExists => return Err(Error::io(home.child(OsStr::new(PROFILES_DIR)), "create", e)),
        _ => {}
    }
    let profiles = fs.open_dir(&home, OsStr::new(PROFILES_DIR)).map_err(|e| Error::io(home.child(OsStr::new(PROFILES_DIR)), "open", e))?;
    let path = profiles.child(OsStr::new(name));
    match fs.mkdir(&profiles, OsStr::new(name), 0o755) {
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
            return Err(Error::Io { path: path.display().to_string(), error: io::Error::new(e.kind(), "profile already exists") })
        }
        other => other.map_err(|e| Error::io(&path, "create", e))?,
    }
    let dir = fs.open_dir(&profiles, OsStr::new(name)).map_err(|e| Error::io(&path, "open", e))?;
    fs.create_file(&dir, OsStr::new(MARKER), DEFAULT_SOUL.as_bytes(), 0o644).map_err(|e| Error::io(path.join(MARKER), "write", e))?;
    Ok(path)
}

/// Stop the profile's gateway (bounded wait), then delete its directory. The slot is left to
/// the registrar.
pub fn delete(fs: &dyn Fs, cfg: &Config, name: &str) -> Result<(), Error> {
    profile_name::validate(name).map_err(Error::InvalidName)?;
    if name == profile_name::DEFAULT_PROFILE {
        return Err(Error::Io {
            path: cfg.home.display().to_string(),
            error: io::Error::new(io::ErrorKind::InvalidInput, "the root profile cannot be deleted"),
        });
    }
    if let Ok(scandir) = lifecycle::open_scandir(fs, cfg) {
        if let Ok(slot) = lifecycle::open_slot(fs, cfg, &scandir, name) {
            if svc::send(fs, &slot, b"d").is_ok() {
                lifecycle::wait_until(Duration::from_secs(10), || {
                    matches!(status::read(fs, &slot), Ok(Some(st)) if !st.is_up() && !st.finishing)
                });
            }
        }
    }
    let home = fs.open_root(&cfg.home).map_err(|e| Error::io(&cfg.home, "open", e))?;
    let profiles = fs.open_dir(&home, OsStr::new(PROFILES_DIR)).map_err(|e| Error::io(home.child(OsStr::new(PROFILES_DIR)), "open", e))?;
    let path = profiles.child(OsStr::new(name));
    fs.lstat(&profiles, OsStr::new(name))
        .map_err(|_| Error::Io { path: path.display().to_string(), error: io::Error::new(io::ErrorKind::NotFound, "no such profile") })?;
    remove_tree(fs, &profiles, OsStr::new(name)).map_err(|e| Error::io(&path, "remove", e))
}

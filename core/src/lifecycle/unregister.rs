//! `unregister P` (root): take the gateway down, wait until it is really down (finish done),
//! move the slot out of the scanner's sight, have s6-svscan stop its supervisors (`-an`),
//! then delete it. Idempotent: an absent slot is success.

use super::{open_scandir, wait_until, Error};
use crate::config::Config;
use crate::profile_name::slot_name;
use crate::s6::{status, svc, svscan};
use crate::safe_fs::{remove_tree, Fs, RenameMode};
use std::ffi::{OsStr, OsString};
use std::io;
use std::time::Duration;

/// How long to wait for the gateway to go down, and then for its supervisors to exit.
pub const DOWN_WAIT: Duration = Duration::from_secs(10);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unregistered {
    Removed,
    WasAbsent,
}

pub fn unregister(fs: &dyn Fs, cfg: &Config, profile: &str) -> Result<Unregistered, Error> {
    let scandir = open_scandir(fs, cfg)?;
    let name = OsString::from(slot_name(profile));
    let slot_path = scandir.child(&name);
    let slot = match fs.open_dir(&scandir, &name) {
        Ok(d) => Some(d),
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Unregistered::WasAbsent),
        // A non-directory at the name (planted link): nothing is supervised through it here;
        // just remove the entry.
        Err(e) if matches!(e.raw_os_error(), Some(nix::libc::ELOOP) | Some(nix::libc::ENOTDIR)) => None,
        Err(e) => return Err(Error::io(&slot_path, "open", e)),
    };
    if let Some(slot) = &slot {
        if status::supervisor_alive(fs, slot).unwrap_or(false) {
            // Down, and make the supervisor exit once the service is down.
            let _ = svc::send(fs, slot, b"dx");
            let log = fs.open_dir(slot, OsStr::new("log")).ok();
            wait_until(DOWN_WAIT, || matches!(status::read(fs, slot), Ok(Some(st)) if st.pid == 0 && !st.finishing));
            if let Some(log) = &log {
                let _ = svc::send(fs, log, b"dx");
            }
        }
    }
    // Out of the scanner's sight first, so a concurrent scan cannot restart anything.
    let mut aside = OsString::from(".");
    aside.push(&name);
    // ".tmp" in the name: a pass interrupted here leaves a leftover the boot sweep removes.
    aside.push(format!(".tmp.removing-{}", std::process::id()));
    fs.rename(&scandir, &name, &scandir, &aside, RenameMode::NoReplace).map_err(|e| Error::io(&slot_path, "move aside", e))?;
    let _ = svscan::rescan(fs, &scandir, true);
    if let Ok(old) = fs.open_dir(&scandir, &aside) {
        let log = fs.open_dir(&old, OsStr::new("log")).ok();
        wait_until(DOWN_WAIT, || {
            !status::supervisor_alive(fs, &old).unwrap_or(false)
                && log.as_ref().is_none_or(|l| !status::supervisor_alive(fs, l).unwrap_or(false))
        });
    }
    remove_tree(fs, &scandir, &aside).map_err(|e| Error::io(scandir.child(&aside), "remove", e))?;
    Ok(Unregistered::Removed)
}

//! `stop P`: write the planned-stop marker for the supervised pid (if up), want the gateway
//! down (`s6-svc -d`: SIGTERM + SIGCONT), then record `desired_state=stopped`.

use super::{desired, marker, open_scandir, open_slot, Error};
use crate::config::Config;
use crate::s6::{status, svc};
use crate::safe_fs::Fs;

pub fn stop(fs: &dyn Fs, cfg: &Config, profile: &str) -> Result<desired::Written, Error> {
    let scandir = open_scandir(fs, cfg)?;
    let slot = open_slot(fs, cfg, &scandir, profile)?;
    if let Ok(Some(st)) = status::read(fs, &slot) {
        if st.is_up() {
            // Best effort: without the marker the gateway treats the stop as a crash and
            // restarts, which is safe; the stop itself must not fail over it.
            let _ = marker::write(fs, cfg, profile, st.pid);
        }
    }
    svc::send(fs, &slot, b"d").map_err(|e| Error::svc(profile, "-d", e))?;
    desired::write(fs, cfg, profile, desired::Desired::Stopped)
}

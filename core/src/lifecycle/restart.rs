//! `restart P`: SIGTERM the gateway (`s6-svc -t`) and let s6 start it again (an unmarked
//! SIGTERM makes the gateway exit non-zero, so its finish does not park it). A gateway that
//! is down (stopped, parked by finish 125, crashed) is simply started. Records `running`.

use super::{desired, open_scandir, open_slot, Error};
use crate::config::Config;
use crate::s6::{status, svc};
use crate::safe_fs::Fs;

pub fn restart(fs: &dyn Fs, cfg: &Config, profile: &str) -> Result<desired::Written, Error> {
    let scandir = open_scandir(fs, cfg)?;
    let slot = open_slot(fs, cfg, &scandir, profile)?;
    let up = matches!(status::read(fs, &slot), Ok(Some(st)) if st.is_up());
    // `u` before `t`: a service that is up but wanted down would otherwise not come back.
    let cmds: &[u8] = if up { b"ut" } else { b"u" };
    svc::send(fs, &slot, cmds).map_err(|e| Error::svc(profile, "-t", e))?;
    desired::write(fs, cfg, profile, desired::Desired::Running)
}

//! `start P`: want the gateway up (`s6-svc -u`), then record `desired_state=running`.

use super::{desired, open_scandir, open_slot, Error};
use crate::config::Config;
use crate::s6::svc;
use crate::safe_fs::Fs;

pub fn start(fs: &dyn Fs, cfg: &Config, profile: &str) -> Result<desired::Written, Error> {
    let scandir = open_scandir(fs, cfg)?;
    let slot = open_slot(fs, cfg, &scandir, profile)?;
    svc::send(fs, &slot, b"u").map_err(|e| Error::svc(profile, "-u", e))?;
    desired::write(fs, cfg, profile, desired::Desired::Running)
}

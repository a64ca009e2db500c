//! `health`: what a container probe asks. Live: the scanner runs and the registrar is up, so
//! the container can still supervise and register. Ready: live, and every gateway wanted
//! running is up and ready (it said so: see [`crate::liveness`]), or is down for a reason the
//! crash policy or its configuration accounts for (quarantined, backing off, parked, a
//! configuration error). A gateway still starting, one between two restarts, one s6 cannot
//! start, one left out for capacity, or a wanted slot missing is not ready.

use super::status::{self, Standing};
use crate::ctx::Ctx;
use crate::problem::Problem;
use crate::s6::{svscan, svstat};

/// The static service that is the registrar, under the scandir.
pub const REGISTRAR_SERVICE: &str = "registrar";

#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct Health {
    pub live: bool,
    pub ready: bool,
    /// What makes it not live or not ready, in words.
    pub problems: Vec<String>,
    /// Wanted gateways that are down for an accounted reason: `profile: state`.
    pub accounted: Vec<String>,
}

fn check_live(ctx: &Ctx, h: &mut Health) -> Result<(), Problem> {
    let scandir = ctx.open_scandir()?;
    if svscan::running(ctx.fs, &scandir) == Some(false) {
        h.problems.push(format!("s6-svscan is not running on {}", ctx.cfg.scandir.display()));
    }
    // The static service is a link into /run/s6/services: followed, as the scanner does.
    let path = ctx.cfg.scandir.join(REGISTRAR_SERVICE);
    match ctx.fs.open_root(&path).map_err(|e| e.to_string()).and_then(|d| svstat::read(ctx.fs, &d).map_err(|e| e.to_string())) {
        Ok(Some(st)) if st.is_up() => {}
        Ok(Some(_)) => h.problems.push(format!("the registrar ({}) is down", path.display())),
        Ok(None) => h.problems.push(format!("the registrar ({}) is not supervised", path.display())),
        Err(e) => h
            .problems
            .push(format!("cannot read the registrar's status at {}: {e} (run the probe as the container's user)", path.display())),
    }
    h.live = h.problems.is_empty();
    Ok(())
}

/// Liveness only, or liveness and readiness.
pub fn check(ctx: &Ctx, readiness: bool) -> Result<Health, Problem> {
    let mut h = Health::default();
    check_live(ctx, &mut h)?;
    if !readiness {
        return Ok(h);
    }
    let r = status::status(ctx, None)?;
    for p in &r.profiles {
        match p.standing() {
            Standing::AsWanted => {}
            Standing::Accounted => h.accounted.push(format!("{}: {}", p.profile, p.state)),
            Standing::Failing => h.problems.push(format!("{} is wanted running but is {}: {}", p.profile, p.state, p.explanation)),
        }
    }
    h.ready = h.problems.is_empty();
    Ok(h)
}

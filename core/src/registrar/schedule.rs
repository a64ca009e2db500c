//! The registrar's side of the crash policy: it is the policy's clock. From a profile's
//! record it knows when something is due (a backed-off gateway to restart, a quarantined one
//! to probe, a run to confirm as healthy), and when that time comes it acts under the
//! profile's lock, after reading the record and the wanted state again: an operator's `stop`
//! always wins.

use crate::boot::plan::{starts, Container};
use crate::ctx::Ctx;
use crate::fs::Dir;
use crate::lifecycle::lock;
use crate::name::slot_name;
use crate::name::DEFAULT_PROFILE;
use crate::policy::{on_scheduled_start, on_stable, Knobs};
use crate::problem::Problem;
use crate::s6::svc;
use crate::s6::svstat;
use crate::volume::open_profile_dir;
use crate::volume::policy_record::{self as record, PolicyState, Record};
use crate::volume::state::{read_wanted, Wanted};
use std::ffi::OsStr;
use std::time::Duration;

/// How soon a profile whose lock was busy is looked at again.
const BUSY_RETRY: Duration = Duration::from_secs(1);

/// What a record asks of the clock: the Unix time something is due, if anything.
pub fn due(rec: &Record, k: &Knobs) -> Option<f64> {
    match rec.state {
        PolicyState::BackingOff | PolicyState::Quarantined => rec.next_start,
        PolicyState::Probing | PolicyState::Restarting => Some(rec.running_since + k.stable_after.as_secs_f64()),
        _ => None,
    }
}

fn wanted(ctx: &Ctx, profile: &str) -> Option<Wanted> {
    let dir = open_profile_dir(ctx, profile).ok()??;
    read_wanted(ctx.fs, &dir).ok()?
}

/// What the clock did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Acted {
    /// A backed-off gateway was started again.
    Restarted,
    /// A quarantined gateway was started as a probe.
    Probing,
    /// A run stayed up for the stable window: the crash count (and any quarantine) is cleared.
    Recovered,
}

impl Acted {
    pub fn as_str(self) -> &'static str {
        match self {
            Acted::Restarted => "restarted after its backoff",
            Acted::Probing => "started as a probe after its quarantine",
            Acted::Recovered => "stable again: crash count and quarantine cleared",
        }
    }
}

/// Do what is due for `profile` now, if anything: what was done, and the next time something
/// will be due.
/// Never waits: the user can hold its profiles' locks or keep their supervisors away, and the
/// registrar serves everyone; a profile that cannot be acted on now is looked at again shortly.
pub fn act(ctx: &Ctx, scandir: &Dir, profile: &str, container: &Container) -> Result<(Option<Acted>, Option<f64>), Problem> {
    let k = &ctx.cfg.policy;
    let Ok(slot) = ctx.fs.open_dir(scandir, OsStr::new(&slot_name(profile))) else { return Ok((None, None)) };
    let retry = || Ok((None, Some(crate::clock::unix_secs_f64(ctx.clock.now()) + BUSY_RETRY.as_secs_f64())));
    let Ok(_held) = lock::hold(ctx, &slot, Duration::ZERO) else { return retry() };
    let rec = record::read(ctx, profile);
    let now = crate::clock::unix_secs_f64(ctx.clock.now());
    let Some(at) = due(&rec, k) else { return Ok((None, None)) };
    if at > now {
        return Ok((None, Some(at)));
    }
    let status = svstat::read(ctx.fs, &slot).ok().flatten();
    let (acted, next) = match rec.state {
        PolicyState::BackingOff | PolicyState::Quarantined => {
            // Only what a boot pass would start: not a gateway the operator stopped meanwhile,
            // nor a named one while the root gateway serves every profile (multiplexing).
            if !starts(profile == DEFAULT_PROFILE, wanted(ctx, profile).as_ref(), container) {
                return Ok((None, None));
            }
            // Nor one parked by its `gateway.parked` marker: unparking is an operator's act.
            if crate::volume::parked::marker(ctx, profile).is_some() {
                return Ok((None, None));
            }
            match svc::send(ctx.fs, &slot, b"u") {
                Ok(()) => {}
                Err(e) if e.code == svc::NOT_LISTENING => return retry(),
                Err(e) => return Err(Problem::Svc { service: slot_name(profile), command: "-u".into(), code: e.code, message: e.message }),
            }
            let acted = if rec.state == PolicyState::Quarantined { Acted::Probing } else { Acted::Restarted };
            (acted, on_scheduled_start(&rec, now))
        }
        _ => match on_stable(&rec, now, k) {
            Some(r) if status.is_some_and(|s| s.is_up()) => (Acted::Recovered, r),
            // Not up (it died; finish recorded that) or not yet stable.
            _ => return Ok((None, None)),
        },
    };
    record::write(ctx, profile, &next)?;
    Ok((Some(acted), due(&next, k)))
}

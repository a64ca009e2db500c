//! The runtime half: one file per verb (register, unregister, start, stop, restart, status),
//! sharing the slot lookup and the `--all` loop here.
//!
//! start/stop/restart are run by the unprivileged user: they write only the supervisors'
//! control FIFOs and the user's own volume. register/unregister write the root-owned
//! scandir and therefore run as root, either directly or through the registrar that the
//! user rings.

pub mod all;
pub mod finish;
pub mod fold;
pub mod health;
pub(crate) mod lock;
pub mod profile;
pub mod register;
pub mod restart;
pub(crate) mod settle;
pub mod start;
pub mod status;
pub mod stop;
pub mod unregister;
pub mod usage;

use crate::clock::wait_until;
use crate::ctx::Ctx;
use crate::fs::{Dir, Kind};
use crate::name::{self, slot_name, SLOT_PREFIX};
use crate::policy::PolicyState;
use crate::problem::Problem;
use crate::s6::{svc, svstat};
use crate::volume::desired::{self, Written};
use crate::volume::state::Wanted;
use std::ffi::OsStr;
use std::io;
use std::time::Duration;

/// The slot directory of a profile, or `NotRegistered` (with a hint when the caller seems to
/// have typed a slot name for a profile name).
pub fn open_slot(ctx: &Ctx, scandir: &Dir, profile: &str) -> Result<Dir, Problem> {
    let name = slot_name(profile);
    match ctx.fs.open_dir(scandir, OsStr::new(&name)) {
        Ok(d) => Ok(d),
        Err(e) if e.kind() == io::ErrorKind::NotFound || matches!(e.raw_os_error(), Some(nix::libc::ELOOP) | Some(nix::libc::ENOTDIR)) => {
            let hint = profile
                .strip_prefix(SLOT_PREFIX)
                .filter(|bare| ctx.fs.lstat(scandir, OsStr::new(&slot_name(bare))).is_ok())
                .map(|bare| format!("profile names are given without the `{SLOT_PREFIX}` prefix: did you mean '{bare}'?"));
            Err(Problem::NotRegistered { profile: profile.to_string(), hint })
        }
        Err(e) => Err(ctx.problem(scandir.child(OsStr::new(&name)), "open", e)),
    }
}

/// Profile names of every `gateway-*` directory in the scandir, sorted.
pub fn registered(ctx: &Ctx, scandir: &Dir) -> Result<Vec<String>, Problem> {
    let entries = ctx.fs.list(scandir).map_err(|e| ctx.problem(scandir.path(), "list", e))?;
    let mut v: Vec<String> = entries
        .into_iter()
        .filter(|(_, k)| *k == Kind::Dir)
        .filter_map(|(n, _)| n.to_str().and_then(|s| s.strip_prefix(SLOT_PREFIX)).map(String::from))
        .filter(|p| name::validate(p).is_ok())
        .collect();
    v.sort();
    Ok(v)
}

/// Whether a command watches what its gateway does after it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wait {
    /// Return once s6 was told and the wanted state recorded.
    No,
    /// Start/restart: until up and still up after this long; stop: until down.
    Settle(Duration),
}

/// The default settle window of `start` and `restart`.
pub const SETTLE: Duration = Duration::from_secs(1);

/// The longest settle window `--wait` takes: a gateway is either up by then or it is not.
pub const MAX_SETTLE: Duration = Duration::from_secs(3600);

impl Wait {
    /// From `--wait SECONDS` and `--no-wait` (the command line keeps them exclusive).
    pub fn from_flags(seconds: Option<f64>, no_wait: bool) -> Result<Wait, Problem> {
        if no_wait {
            return Ok(Wait::No);
        }
        match seconds {
            None => Ok(Wait::Settle(SETTLE)),
            Some(s) if s.is_finite() && (0.0..=MAX_SETTLE.as_secs_f64()).contains(&s) => Ok(Wait::Settle(Duration::from_secs_f64(s))),
            Some(s) => Err(Problem::usage(format!("--wait takes seconds from 0 to {}, not {s}", MAX_SETTLE.as_secs()))),
        }
    }
}

/// A command told s6 what to do (and recorded it): what watching it needs.
#[derive(Debug)]
pub struct Asked {
    pub profile: String,
    pub slot: Dir,
    /// The gateway's pid before the command, when it was up.
    pub old_pid: Option<u64>,
    /// The wanted state's record; a failure is reported once s6's side is confirmed.
    pub written: Result<Written, Problem>,
    /// What the crash policy held and the command cleared.
    pub cleared: Option<PolicyState>,
    /// The profile's operation lock, held until the command's outcome is known.
    pub operation: Option<crate::fs::FileLock>,
    /// Unix time of the operator's intent (just before s6 was told): a finish that decided
    /// "stay down" for a death before it must not undo it.
    pub at: f64,
    /// The `gateway.parked` marker the command removed first (start, restart), if any.
    pub unparked: Option<std::path::PathBuf>,
    /// The gateway that serves the profile when it is not its own (multiplexing: `default`,
    /// [`fold`]); then `slot` is that gateway's.
    pub served_by: Option<String>,
}

impl Asked {
    /// The profile whose gateway is watched: the one that serves this profile.
    fn watched(&self) -> &str {
        self.served_by.as_deref().unwrap_or(&self.profile)
    }
}

/// What a command did, as its user is told.
#[derive(Debug)]
pub struct Done {
    pub profile: String,
    /// The gateway's pid once it was seen up (start, restart).
    pub pid: Option<u64>,
    /// It said it was ready before the settle window (start, restart).
    pub ready: bool,
    pub written: Written,
    pub cleared: Option<PolicyState>,
    /// How it went, when there is something to say ("killed after not stopping on SIGTERM").
    pub note: Option<String>,
    /// The `gateway.parked` marker removed to start it (as hermes-agent's own start does).
    pub unparked: Option<std::path::PathBuf>,
    /// Under multiplexing, the gateway that serves the profile (`pid` and `ready` are its);
    /// the profile's own slot stays down.
    pub served_by: Option<String>,
}

impl Asked {
    fn done(self, pid: Option<u64>, note: Option<String>) -> Result<Done, Problem> {
        Ok(Done {
            profile: self.profile,
            pid,
            ready: false,
            written: self.written?,
            cleared: self.cleared,
            note,
            unparked: self.unparked,
            served_by: self.served_by,
        })
    }
}

/// Watch a started gateway until it is up and has stayed up for the settle window.
pub fn confirm_up(ctx: &Ctx, asked: Asked, wait: Wait) -> Result<Done, Problem> {
    let Wait::Settle(window) = wait else { return asked.done(None, None) };
    let mut settled = settle::until_stable(ctx, &asked.slot, asked.old_pid, window);
    if settled == settle::Settled::WantedDown && asked.served_by.is_none() && reassert_up(ctx, &asked) {
        settled = settle::until_stable(ctx, &asked.slot, asked.old_pid, window);
    }
    if settled == settle::Settled::WantedDown {
        settled = match svstat::read(ctx.fs, &asked.slot).ok().flatten() {
            Some(st) if svstat::died(ctx.fs, &asked.slot) => settle::Settled::Died { how: settle::describe_end(&st) },
            _ => settle::Settled::NotUp,
        };
    }
    match settled {
        settle::Settled::Up { pid, ready } => asked.done(Some(pid), None).map(|d| Done { ready, ..d }),
        settle::Settled::NotReady { pid, waited } => Err(Problem::Timeout {
            what: format!(
                "gateway-{} to become ready (up as pid {pid}, not ready after {} s; see `hermes-reconcile status {}` and its log {})",
                asked.watched(),
                waited.as_secs(),
                asked.watched(),
                crate::volume::gateway_logs::log_dir(&ctx.cfg.home, asked.watched()).display()
            ),
        }),
        settle::Settled::Died { how } => {
            // What the crash policy made of the death is known once the finish is done.
            settle::until_finished(ctx, &asked.slot, settle::FINISH_WAIT);
            let watched = asked.watched().to_string();
            let st = ctx.open_scandir().map(|scandir| status::of(ctx, &scandir, &watched));
            Err(Problem::DidNotStayUp {
                restarts: svstat::deaths(ctx.fs, &asked.slot),
                now: st.map(|st| format!("{}: {}", st.state, st.explanation)).unwrap_or_else(|_| "unknown".into()),
                log: crate::volume::gateway_logs::log_dir(&ctx.cfg.home, &watched),
                profile: watched,
                how,
                cleared: asked.cleared.map(PolicyState::as_str),
            })
        }
        settle::Settled::NotUp | settle::Settled::WantedDown => Err(Problem::Timeout {
            what: format!(
                "gateway-{} to come up (s6 was told; it is still not running after {} s){}",
                asked.watched(),
                settle::UP_WAIT.as_secs(),
                asked.cleared.map(|c| format!("; this command had cleared the crash policy's hold ({})", c.as_str())).unwrap_or_default()
            ),
        }),
    }
}

/// A start's `u` can reach s6 while the finish of an earlier death runs; when that finish
/// then answers "stay down" (a backoff decided from the record as it was before the start
/// cleared it), s6 forgets the `u`. The operator's intent is newer than that decision, so it
/// wins: under the profile's lock, if the gateway is still wanted `running`, nothing else
/// told s6 `d` since (a stop records `stopped` under the lock), and the policy's last recorded
/// death is older than the start, clear the policy again and tell s6 `u` again. Whether it did.
fn reassert_up(ctx: &Ctx, asked: &Asked) -> bool {
    let Ok(_held) = lock::hold(ctx, &asked.slot, lock::WAIT) else { return false };
    let quiet_down = svstat::read(ctx.fs, &asked.slot).ok().flatten().is_some_and(|st| !st.is_up() && !st.want_up && !st.finishing);
    let rec = crate::volume::policy_record::read(ctx, &asked.profile);
    let older = rec.last_exit.is_none_or(|e| e.at < asked.at);
    if !quiet_down || !older || desired::read(ctx, &asked.profile) != Some(Wanted::Running) {
        return false;
    }
    if crate::volume::policy_record::exists(ctx, &asked.profile) {
        let fresh = crate::policy::on_operator_start(&rec, unix_now(ctx));
        if crate::volume::policy_record::write(ctx, &asked.profile, &fresh).is_err() {
            return false;
        }
    }
    if control(ctx, &asked.slot, &asked.profile, "-u", b"u").is_err() {
        return false;
    }
    settle::until_acknowledged(ctx, &asked.slot, true);
    true
}

/// Watch a stopped gateway until it is down.
pub fn confirm_down(ctx: &Ctx, asked: Asked, wait: Wait) -> Result<Done, Problem> {
    if wait == Wait::No {
        return asked.done(None, None);
    }
    let limit = Duration::from_millis(crate::slot::STOP_GRACE_MS) + Duration::from_secs(3);
    match settle::until_down(ctx, &asked.slot, limit) {
        Some(_) if asked.old_pid.is_none() => asked.done(None, Some("it was not running".into())),
        Some(st) if st.signal() == Some(nix::libc::SIGKILL) => asked.done(
            None,
            Some(format!(
                "it did not stop on SIGTERM within {} s and was killed (SIGKILL, with its process group)",
                crate::slot::STOP_GRACE_MS / 1000
            )),
        ),
        Some(st) => asked.done(None, Some(settle::describe_end(&st))),
        None => Err(Problem::Timeout { what: format!("gateway-{} to go down", asked.profile) }),
    }
}

/// Record the wanted state after s6 acted: if that fails, say that the action happened.
fn record_wanted(ctx: &Ctx, profile: &str, wanted: &Wanted, done: &str) -> Result<Written, Problem> {
    desired::write(ctx, profile, wanted).map_err(|p| match p {
        Problem::Io { path, error, .. } => Problem::NotRecorded { done: done.to_string(), path, error },
        Problem::Permission { path, .. } => {
            Problem::NotRecorded { done: done.to_string(), path, error: io::Error::from(io::ErrorKind::PermissionDenied) }
        }
        other => other,
    })
}

fn unix_now(ctx: &Ctx) -> f64 {
    crate::clock::unix_secs_f64(ctx.clock.now())
}

/// How long a command waits for the supervisor of a slot that was just published.
pub const SUPERVISOR_WAIT: Duration = Duration::from_secs(3);

/// Send control bytes to a slot's supervisor; a failure reads like `s6-svc <command>`'s. A
/// slot just published (by a boot pass, `register`, the registrar) may not have its
/// supervisor yet: that is waited for, briefly, instead of failing with "not listening".
pub fn control(ctx: &Ctx, slot: &Dir, profile: &str, command: &str, bytes: &[u8]) -> Result<(), Problem> {
    let fail =
        |e: svc::SvcError| Problem::Svc { service: slot_name(profile), command: command.to_string(), code: e.code, message: e.message };
    match svc::send(ctx.fs, slot, bytes) {
        Err(e) if e.code == svc::NOT_LISTENING => {
            if wait_until(ctx.clock, SUPERVISOR_WAIT, Duration::from_millis(10), || svstat::supervisor_alive(ctx.fs, slot).unwrap_or(false))
            {
                svc::send(ctx.fs, slot, bytes).map_err(fail)
            } else {
                Err(fail(e))
            }
        }
        other => other.map_err(fail),
    }
}

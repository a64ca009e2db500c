//! The registrar: a root daemon (`hermes-reconcile watch`, an s6 service in the image) that
//! keeps the scandir's slots converged with the profiles on the volume, whatever created or
//! removed them (the CLI, the host, an import, a restore). The unprivileged user cannot write
//! the scandir; it rings the [`doorbell`] and waits, so root renders every slot from a
//! validated name and the user never authors anything root runs.
//!
//! What it does for a profile P, each time it looks ([`Registrar::converge`]):
//! - P is on the volume (its directory holds `SOUL.md`) and has no slot: publish one, wanting
//!   the gateway up exactly when the boot pass would (the wanted state on the volume), so a
//!   profile that comes back after a teardown gets back what it had;
//! - P has a slot but its directory is gone: a deletion, acted on only when confirmed: seen
//!   gone again after [`DELETE_GRACE`], with `profiles/` itself present and readable. A
//!   directory left without `SOUL.md` (an `rm -rf` that failed halfway) counts as gone, after
//!   the same grace; a missing or unreadable `profiles/`, a restore in progress, a `SOUL.md`
//!   rewritten within the grace: nothing is torn down;
//! - the teardown ([`crate::slot::teardown`]) never blocks the loop and never orphans a
//!   gateway.
//!
//! - root mode: what root owns in P (a `docker exec` as root wrote it) becomes the
//!   configured user's ([`take_over`]), bounded, never through a link or a hard link.
//!
//! It looks when the volume changes (inotify, see [`daemon`]), when rung, and every
//! [`RESYNC`] as a safety net; a look at one profile reads its directory entry and `SOUL.md`
//! (and its state file only to register it), never the whole volume.

pub mod daemon;
pub mod doorbell;
pub(crate) mod notice;
pub(crate) mod parking;
pub mod schedule;
pub mod take_over;
mod volume_watch;

use crate::boot::plan::{fold, starts, Container};
use crate::ctx::Ctx;
use crate::fs::{Dir, Kind};
use crate::guard::pace;
use crate::lifecycle::register::add_slot;
use crate::lifecycle::registered;
use crate::name::{self, slot_name, DEFAULT_PROFILE};
use crate::policy;
use crate::problem::Problem;
use crate::s6::capacity::{self, Usage};
use crate::s6::svscan;
use crate::slot::teardown::{self, Progress, Teardown};
use crate::slot::trust;
use crate::volume::state::read_prior_state;
use crate::volume::{MARKER, PROFILES_DIR};
use std::collections::{BTreeMap, BTreeSet};
use std::ffi::OsStr;
use std::io;
use std::time::{Duration, Instant};

/// How long a profile directory must stay gone before its slot is torn down.
pub const DELETE_GRACE: Duration = Duration::from_secs(2);
/// The safety resync: whatever inotify could not say (a full queue, a missed watch) is
/// caught within this.
pub const RESYNC: Duration = Duration::from_secs(60);
/// How long the CLI waits for the registrar after ringing (a deletion takes the grace plus
/// the teardown, at most the slot's stop grace and a few polls).
pub const CLIENT_WAIT: Duration = Duration::from_secs(15);

/// The user's side: ring for `profile` and wait until its slot is supervised (`present`) or
/// gone.
pub fn request(ctx: &Ctx, profile: &str, present: bool) -> Result<(), Problem> {
    doorbell::ring(ctx, Some(profile))?;
    doorbell::wait_for_slot(ctx, profile, present, CLIENT_WAIT)
}

/// What one look changed.
#[derive(Debug, Default, Clone, serde::Serialize)]
pub struct Converged {
    /// Slots published: (profile, gateway wanted up).
    pub added: Vec<(String, bool)>,
    /// Slots whose teardown finished.
    pub removed: Vec<String>,
    /// Slots found not to be ours (see [`crate::slot::trust`]), by name in the scandir
    /// (log-safe), with why: disarmed and taken down; a profile on the volume gets ours once
    /// that is done.
    pub foreign: Vec<(String, String)>,
    /// Deletions seen and waiting for confirmation.
    pub pending: Vec<String>,
    /// What the crash policy's schedule did, by profile (a delayed restart, a probe, a run
    /// confirmed healthy).
    pub policy: Vec<(String, String)>,
    /// Root-owned entries given to the configured user, by profile.
    pub taken_over: Vec<TakenOver>,
    /// Profiles whose `gateway.parked` marker appeared: slot kept down (and whether their
    /// gateway was wanted up until then).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub parked: Vec<(String, bool)>,
    /// Profiles whose marker went: (profile, started again).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub unparked: Vec<(String, bool)>,
    /// Multiplexing: named profiles registered wanting running, whose intent started the root
    /// gateway instead (the fold).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub folded: Vec<String>,
    pub errors: Vec<String>,
    /// What the crash policy has scheduled later (profile, Unix time): filled by a one-shot
    /// pass (`watch --once`), which leaves it to the running registrar.
    pub scheduled: Vec<(String, f64)>,
}

/// One profile's take-over of root-made entries.
#[derive(Debug, Default, Clone, serde::Serialize)]
pub struct TakenOver {
    pub profile: String,
    /// Entries re-owned.
    pub entries: usize,
    /// Root-owned files left because they have another hard link (maybe outside the volume).
    pub hard_linked: usize,
    /// The walk stopped at its bound: more may be left for the next look.
    pub truncated: bool,
}

impl Converged {
    pub fn is_empty(&self) -> bool {
        self.added.is_empty()
            && self.removed.is_empty()
            && self.foreign.is_empty()
            && self.pending.is_empty()
            && self.policy.is_empty()
            && self.taken_over.is_empty()
            && self.parked.is_empty()
            && self.unparked.is_empty()
            && self.folded.is_empty()
            && self.errors.is_empty()
    }
    /// Add what a later look changed.
    pub fn absorb(&mut self, other: Converged) {
        self.added.extend(other.added);
        self.removed.extend(other.removed);
        self.foreign.extend(other.foreign);
        self.pending.extend(other.pending);
        self.policy.extend(other.policy);
        self.taken_over.extend(other.taken_over);
        self.parked.extend(other.parked);
        self.unparked.extend(other.unparked);
        self.folded.extend(other.folded);
        self.errors.extend(other.errors);
        self.scheduled.extend(other.scheduled);
    }
}

/// Which profiles to look at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scope {
    Profiles(BTreeSet<String>),
    Everything,
}

/// What the volume says about one profile.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum OnVolume {
    /// A directory with `SOUL.md` (or the root profile).
    Profile,
    /// A directory without `SOUL.md`: not a profile; a deletion once confirmed after the grace.
    DirOnly,
    /// No directory: a deletion, if `profiles/` can be trusted.
    Gone,
    /// Nothing can be concluded (`profiles/` missing, unreadable, a link; an I/O error).
    Unknown,
}

/// The registrar's memory between looks: deletions waiting for confirmation and teardowns
/// in progress. Everything else is read from disk each time.
pub struct Registrar<'a> {
    ctx: Ctx<'a>,
    container: Container,
    pending: BTreeMap<String, Instant>,
    teardowns: Vec<Teardown>,
    next_resync: Instant,
    /// The crash policy's schedule: when something is due for a profile (Unix time).
    due: BTreeMap<String, f64>,
    /// Profiles seen parked (`gateway.parked`): when the marker goes, their gateway comes back.
    parked: BTreeSet<String>,
    /// Each profile's memory limit, read from its config.yaml when the profile is looked at
    /// (a change applies at the next look: an event, a ring, the resync).
    limits: BTreeMap<String, Option<u64>>,
    /// The next memory check.
    next_guard: Instant,
    /// Gateways asked to restart for their memory at the last check, by pid.
    memory_asked: BTreeMap<String, u64>,
    /// Slots may be queued by the boot pace: the pacer looks every [`pace::POLL`].
    pacing: bool,
    /// Slots the pacer need not read again while it paces (see [`pace::release`]).
    settled: BTreeSet<String>,
}

impl<'a> Registrar<'a> {
    /// A registrar for this configuration; refuses to exist without the right to write the
    /// scandir.
    pub fn new(ctx: Ctx<'a>, container: Container) -> Result<Registrar<'a>, Problem> {
        let scandir = ctx.open_scandir()?;
        ctx.require_authority(
            &scandir,
            "the registrar",
            "it runs as root (the image's `registrar` service); as the hermes user, ring it: `hermes-reconcile request <profile>`",
        )?;
        let now = ctx.clock.instant();
        Ok(Registrar {
            ctx,
            container,
            pending: BTreeMap::new(),
            teardowns: Vec::new(),
            next_resync: now + RESYNC,
            due: BTreeMap::new(),
            limits: BTreeMap::new(),
            next_guard: now + ctx.cfg.memory_check,
            memory_asked: BTreeMap::new(),
            pacing: true,
            settled: BTreeSet::new(),
            parked: BTreeSet::new(),
        })
    }

    pub fn ctx(&self) -> &Ctx<'a> {
        &self.ctx
    }

    /// Nothing waiting: no deletion to confirm, no teardown in progress.
    pub fn idle(&self) -> bool {
        self.pending.is_empty() && self.teardowns.is_empty()
    }

    /// What the crash policy has scheduled, by profile (Unix times).
    pub fn schedule(&self) -> &BTreeMap<String, f64> {
        &self.due
    }

    fn unix_now(&self) -> f64 {
        crate::clock::unix_secs_f64(self.ctx.clock.now())
    }

    /// Learn from `profile`'s policy record what is due for it, if anything.
    fn refresh_due(&mut self, profile: &str) {
        let due = if policy::record::exists(&self.ctx, profile) {
            schedule::due(&policy::record::read(&self.ctx, profile), &self.ctx.cfg.policy)
        } else {
            None
        };
        match due {
            Some(t) => self.due.insert(profile.to_string(), t),
            None => self.due.remove(profile),
        };
    }

    /// Do what the crash policy has due now.
    fn run_schedule(&mut self, scandir: &Dir) -> Converged {
        let mut out = Converged::default();
        let now = self.unix_now();
        let ready: Vec<String> = self.due.iter().filter(|(_, t)| **t <= now).map(|(p, _)| p.clone()).collect();
        for p in ready {
            match schedule::act(&self.ctx, scandir, &p, &self.container) {
                Ok((acted, next)) => {
                    match next {
                        Some(t) => self.due.insert(p.clone(), t),
                        None => self.due.remove(&p),
                    };
                    if let Some(a) = acted {
                        out.policy.push((p.clone(), a.as_str().to_string()));
                    }
                }
                Err(e) => {
                    // Tried again at the next look (a ring, an event, the resync).
                    self.due.remove(&p);
                    out.errors.push(e.to_string());
                }
            }
        }
        out
    }

    fn on_volume(&self, profiles: &Option<Dir>, profile: &str) -> OnVolume {
        if profile == DEFAULT_PROFILE {
            return OnVolume::Profile;
        }
        let fs = self.ctx.fs;
        let dir = match profiles {
            Some(d) => d,
            // Missing or not to be trusted: nothing about the profile can be said.
            None => return OnVolume::Unknown,
        };
        // Tombstoned (`profiles/.deleted/<P>`): deleted, whatever is left at its name.
        if crate::volume::tombstone::is_tombstoned(fs, dir, profile) {
            return OnVolume::Gone;
        }
        match fs.lstat(dir, OsStr::new(profile)) {
            Ok(m) if m.kind == Kind::Dir => {}
            // A link or a file where a profile was: not a profile, and root does not follow it.
            Ok(_) => return OnVolume::Gone,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return OnVolume::Gone,
            Err(_) => return OnVolume::Unknown,
        }
        let Ok(pd) = fs.open_dir(dir, OsStr::new(profile)) else { return OnVolume::Unknown };
        match fs.lstat(&pd, OsStr::new(MARKER)) {
            Ok(_) => OnVolume::Profile,
            Err(e) if e.kind() == io::ErrorKind::NotFound => OnVolume::DirOnly,
            Err(_) => OnVolume::Unknown,
        }
    }

    /// `profiles/` if it exists and can be trusted (not a link, a directory, readable); `None`
    /// otherwise, and then no profile is judged gone.
    fn open_profiles(&self, home: &Dir) -> Option<Dir> {
        let fs = self.ctx.fs;
        match fs.lstat(home, OsStr::new(PROFILES_DIR)) {
            Ok(m) if m.kind == Kind::Dir => fs.open_dir(home, OsStr::new(PROFILES_DIR)).ok(),
            _ => None,
        }
    }

    /// Every name worth a look: the valid directory names under `profiles/`, every registered
    /// slot, and the root profile.
    fn everything(&self, scandir: &Dir, profiles: &Option<Dir>) -> Result<BTreeSet<String>, Problem> {
        let mut names: BTreeSet<String> = registered(&self.ctx, scandir)?.into_iter().collect();
        names.insert(DEFAULT_PROFILE.to_string());
        if let Some(p) = profiles {
            for (n, k) in self.ctx.fs.list(p).unwrap_or_default() {
                if let Some(n) = n.to_str().filter(|n| k == Kind::Dir && name::validate(n).is_ok() && *n != DEFAULT_PROFILE) {
                    names.insert(n.to_string());
                }
            }
        }
        Ok(names)
    }

    /// Look at `scope` now and act: publish missing slots (one capacity count and one rescan
    /// for the whole look), record or confirm deletions, start teardowns.
    pub fn converge(&mut self, scope: &Scope) -> Converged {
        let mut out = Converged::default();
        if self.container.dashboard {
            return out;
        }
        let ctx = self.ctx;
        let scandir = match ctx.open_scandir() {
            Ok(d) => d,
            Err(e) => {
                out.errors.push(e.to_string());
                return out;
            }
        };
        let home = match ctx.open_home() {
            Ok(h) => h,
            // No volume (not mounted yet?): never tear slots down over it.
            Err(e) => {
                out.errors.push(ctx.problem(&ctx.cfg.home, "open", e).to_string());
                return out;
            }
        };
        let profiles = self.open_profiles(&home);
        let names = match scope {
            Scope::Everything => match self.everything(&scandir, &profiles) {
                Ok(n) => n,
                Err(e) => {
                    out.errors.push(e.to_string());
                    return out;
                }
            },
            Scope::Profiles(p) => p.iter().filter(|n| name::validate(n).is_ok()).cloned().collect(),
        };
        let now = ctx.clock.instant();
        let mut usage: Option<Usage> = None;
        let mut published = false;
        let mut fold_root = false;
        let mut tore = false;
        if let Scope::Everything = scope {
            tore |= self.take_down_misnamed(&scandir, &mut out);
        }
        let mut on_volume = Vec::new();
        for p in &names {
            let has_slot = ctx.fs.lstat(&scandir, OsStr::new(&slot_name(p))).is_ok();
            // A slot that is not ours is never kept, whatever the volume says: taken down now
            // (no grace: it is not a gateway of ours to protect); the profile, if it is on the
            // volume, gets ours when that is done (see `tick`).
            if has_slot && !self.teardowns.iter().any(|t| t.profile == *p) {
                if let Ok(Some(why)) = trust::foreign(ctx.fs, ctx.cfg, &scandir, OsStr::new(&slot_name(p)), ctx.fs.euid()) {
                    self.pending.remove(p);
                    tore |= self.take_down_foreign(&scandir, p, why, &mut out);
                    continue;
                }
            }
            let here = self.on_volume(&profiles, p);
            if here == OnVolume::Profile {
                on_volume.push(p.clone());
            }
            match (here, has_slot) {
                (OnVolume::Profile, false) => {
                    self.pending.remove(p);
                    if self.teardowns.iter().any(|t| t.profile == *p) {
                        continue; // its old slot is still going; the next look adds it
                    }
                    let usage = usage
                        .get_or_insert_with(|| capacity::usage(&ctx, &scandir).unwrap_or(Usage { used: 0, max: ctx.cfg.max_services }));
                    match self.add(&scandir, &home, &profiles, p, usage) {
                        Ok((start, folds)) => {
                            out.added.push((p.clone(), start));
                            published = true;
                            if folds {
                                out.folded.push(p.clone());
                                fold_root = true;
                            }
                        }
                        Err(e) => out.errors.push(e.to_string()),
                    }
                }
                (OnVolume::Profile, true) => {
                    self.pending.remove(p);
                    self.follow_marker(&scandir, &profiles, p, &mut out);
                }
                (OnVolume::Unknown, _) => {
                    self.pending.remove(p);
                }
                // A directory without SOUL.md (an `rm -rf` that failed halfway, a profile
                // emptied) is no profile: confirmed like a deletion, after the same grace, so
                // a SOUL.md rewritten in place (removed, then written again) tears nothing down.
                (OnVolume::Gone | OnVolume::DirOnly, true) => match self.pending.get(p) {
                    None => {
                        self.pending.insert(p.clone(), now);
                        out.pending.push(p.clone());
                    }
                    Some(&since) if now.saturating_duration_since(since) >= DELETE_GRACE => {
                        self.pending.remove(p);
                        match teardown::begin(&ctx, &scandir, p) {
                            Ok(Some(t)) => {
                                self.teardowns.push(t);
                                tore = true;
                            }
                            Ok(None) => {}
                            Err(e) => out.errors.push(e.to_string()),
                        }
                    }
                    Some(_) => {}
                },
                (OnVolume::Gone | OnVolume::DirOnly, false) => {
                    self.pending.remove(p);
                }
            }
        }
        if published && !tore {
            if let Err(e) = svscan::rescan(ctx.fs, &scandir, false) {
                out.errors.push(ctx.problem(&ctx.cfg.scandir, "ask s6-svscan to rescan", e).to_string());
            }
        }
        if fold_root {
            if let Err(e) = parking::start_root_for_fold(&ctx, &scandir) {
                out.errors.push(e.to_string());
            }
        }
        if let Scope::Everything = scope {
            self.next_resync = now + RESYNC;
            self.pick_up_leftovers(&scandir);
        }
        for p in &names {
            self.refresh_due(p);
            match crate::guard::memory::profile_setting(&ctx, p) {
                (own, None) => {
                    self.limits.insert(p.clone(), own.unwrap_or(ctx.cfg.memory_limit));
                }
                (_, Some(why)) => {
                    self.limits.insert(p.clone(), ctx.cfg.memory_limit);
                    out.errors.push(format!("{why}; the container's limit applies"));
                }
            }
        }
        if take_over::active(&ctx) {
            out.absorb(self.take_over(&on_volume));
        }
        out.absorb(self.run_schedule(&scandir));
        out.absorb(self.progress_and_readd(&scandir));
        // Whatever changed may have queued slots (a boot pass, a rescan): the pacer looks.
        self.pacing = true;
        out.absorb(self.pace(&scandir));
        out
    }

    /// Release slots the boot pace queued, while fewer than K gateways are starting.
    fn pace(&mut self, scandir: &Dir) -> Converged {
        let mut out = Converged::default();
        if !self.pacing {
            return out;
        }
        let p = pace::release(&self.ctx, scandir, self.ctx.cfg.boot_pace, &self.container, &mut self.settled);
        self.pacing = p.queued > 0;
        if !self.pacing {
            self.settled.clear();
        }
        out.policy.extend(p.released.into_iter().map(|r| (r, format!("started by the boot pace ({} still queued)", p.queued))));
        out.errors.extend(p.errors);
        out
    }

    /// [`Registrar::progress`], then a look at each profile whose old slot just went: one
    /// that is (still, or again) on the volume gets its new slot now (a foreign slot's
    /// profile above all: its gateway starts again under ours).
    fn progress_and_readd(&mut self, scandir: &Dir) -> Converged {
        let mut out = self.progress(scandir);
        let again: BTreeSet<String> = out.removed.iter().cloned().collect();
        if !again.is_empty() {
            out.absorb(self.converge(&Scope::Profiles(again)));
        }
        out
    }

    /// Follow a named profile's `gateway.parked` marker on its live slot: down when it
    /// appears, back up (if still wanted) when it goes.
    fn follow_marker(&mut self, scandir: &Dir, profiles: &Option<Dir>, profile: &str, out: &mut Converged) {
        if profile == DEFAULT_PROFILE {
            return;
        }
        let Some(pd) = profiles else { return };
        let Ok(dir) = self.ctx.fs.open_dir(pd, OsStr::new(profile)) else { return };
        let parked = crate::volume::parked::is_parked_in(self.ctx.fs, &dir);
        let known = self.parked.contains(profile);
        let result = match (parked, known) {
            (true, false) => parking::park(&self.ctx, scandir, profile).map(|was| {
                self.parked.insert(profile.to_string());
                out.parked.push((profile.to_string(), was));
            }),
            (false, true) => parking::unpark(&self.ctx, scandir, profile, &self.container).map(|started| {
                self.parked.remove(profile);
                out.unparked.push((profile.to_string(), started));
            }),
            _ => Ok(()),
        };
        if let Err(e) = result {
            out.errors.push(e.to_string());
        }
    }

    /// Publish `profile`'s slot, wanting its gateway up when the volume says so. Returns that,
    /// and whether its running intent folds into the root gateway (multiplexing).
    fn add(
        &mut self,
        scandir: &Dir,
        home: &Dir,
        profiles: &Option<Dir>,
        profile: &str,
        usage: &mut Usage,
    ) -> Result<(bool, bool), Problem> {
        let ctx = &self.ctx;
        let dir = if profile == DEFAULT_PROFILE {
            ctx.fs.open_dir(home, OsStr::new(".")).ok()
        } else if let Some(p) = profiles {
            ctx.fs.open_dir(p, OsStr::new(profile)).ok()
        } else {
            None
        };
        let prior = dir.as_ref().map(|d| read_prior_state(ctx.fs, d)).unwrap_or_default();
        // Held down by the crash policy: published down; the schedule starts it in time.
        let held = dir.as_ref().and_then(|d| policy::record::read_in(ctx.fs, d)).and_then(|r| r.hold()).is_some();
        // Parked (`gateway.parked`): published down, and remembered, so that the marker's
        // removal brings it back.
        let parked = profile != DEFAULT_PROFILE && dir.as_ref().is_some_and(|d| crate::volume::parked::is_parked_in(ctx.fs, d));
        let start = starts(profile == DEFAULT_PROFILE, prior.value.as_ref(), &self.container) && !held && !parked;
        let folds = profile != DEFAULT_PROFILE && !fold(&self.container, [(profile, prior.value.as_ref(), parked)]).is_empty();
        add_slot(ctx, scandir, home, profile, start, usage)?;
        if parked {
            self.parked.insert(profile.to_string());
        }
        Ok((start, folds))
    }

    /// Give what root owns in these profiles to the configured user; the last take-over is
    /// recorded for `status`.
    fn take_over(&self, profiles: &[String]) -> Converged {
        let mut out = Converged::default();
        let mut last = None;
        for p in profiles {
            match take_over::profile(&self.ctx, p) {
                // Reported when something changed (what is left alone would be said at every look).
                Ok(Some(a)) if a.changed > 0 => {
                    last = Some(take_over::TakeOver { profile: p.clone(), entries: a.changed, at: self.unix_now() });
                    out.taken_over.push(TakenOver {
                        profile: p.clone(),
                        entries: a.changed,
                        hard_linked: a.hard_linked.len(),
                        truncated: a.truncated,
                    });
                }
                Ok(_) => {}
                Err(e) => out.errors.push(e.to_string()),
            }
        }
        if let Some(t) = last {
            if let Err(e) = take_over::record(&self.ctx, &t) {
                out.errors.push(e.to_string());
            }
        }
        out
    }

    /// Disarm a slot that is not ours and start its teardown. Whether one started.
    fn take_down_foreign(&mut self, scandir: &Dir, profile: &str, why: String, out: &mut Converged) -> bool {
        let ctx = self.ctx;
        let name = slot_name(profile);
        out.foreign.push((crate::escape::log_value(name.as_bytes()), why));
        if let Err(e) = trust::disarm(ctx.fs, scandir, OsStr::new(&name)) {
            out.errors.push(ctx.problem(scandir.child(OsStr::new(&name)), "disarm the foreign slot", e).to_string());
        }
        match teardown::begin(&ctx, scandir, profile) {
            Ok(Some(t)) => {
                self.teardowns.push(t);
                true
            }
            Ok(None) => false,
            Err(e) => {
                out.errors.push(e.to_string());
                false
            }
        }
    }

    /// `gateway-*` entries whose name is no profile name (so not ours) or that are not
    /// directories: taken down without following anything. Whether a teardown started.
    fn take_down_misnamed(&mut self, scandir: &Dir, out: &mut Converged) -> bool {
        let mut tore = false;
        for (n, kind) in self.ctx.fs.list(scandir).unwrap_or_default() {
            let Some(p) = n.to_str().and_then(|n| n.strip_prefix(name::SLOT_PREFIX)) else { continue };
            if crate::slot::is_staging_leftover(&n) || self.teardowns.iter().any(|t| t.profile == p) {
                continue;
            }
            let why = match (name::validate(p), kind) {
                (Err(_), _) => "its name is not a profile name",
                (Ok(()), Kind::Dir) => continue,
                (Ok(()), _) => "it is not a directory",
            };
            tore |= self.take_down_foreign(scandir, p, why.to_string(), out);
        }
        tore
    }

    /// Teardowns a killed registrar (or CLI) left behind are finished, not forgotten.
    fn pick_up_leftovers(&mut self, scandir: &Dir) {
        for aside in teardown::leftovers(&self.ctx, scandir) {
            if !self.teardowns.iter().any(|t| t.aside == aside) {
                self.teardowns.push(teardown::resume(&self.ctx, &aside));
            }
        }
    }

    fn progress(&mut self, scandir: &Dir) -> Converged {
        let mut out = Converged::default();
        let ctx = self.ctx;
        self.teardowns.retain_mut(|t| match teardown::poll(&ctx, scandir, t) {
            Progress::Waiting => true,
            Progress::Done => {
                out.removed.push(t.profile.clone());
                false
            }
            Progress::Stuck(p) => {
                // Left for the next resync's sweep to try again.
                out.errors.push(p.to_string());
                false
            }
        });
        out
    }

    /// Compare every running gateway's memory with its limit, and restart those over it.
    fn guard(&mut self) -> Converged {
        let mut out = Converged::default();
        let ctx = self.ctx;
        self.next_guard = ctx.clock.instant() + ctx.cfg.memory_check;
        let Ok(scandir) = ctx.open_scandir() else { return out };
        let slots: Vec<(String, Dir)> = registered(&ctx, &scandir)
            .unwrap_or_default()
            .into_iter()
            .filter_map(|p| ctx.fs.open_dir(&scandir, OsStr::new(&slot_name(&p))).ok().map(|d| (p, d)))
            .collect();
        let limits = &self.limits;
        let limit = |p: &str| limits.get(p).copied().unwrap_or(ctx.cfg.memory_limit);
        let (acted, errors) = crate::guard::memory::check(&ctx, &slots, &limit, &mut self.memory_asked);
        out.policy.extend(acted.iter().map(|a| (a.profile.clone(), a.describe())));
        out.errors.extend(errors);
        out
    }

    /// What is due now: confirmations of deletions, teardown steps, the safety resync.
    pub fn tick(&mut self) -> Converged {
        let now = self.ctx.clock.instant();
        if now >= self.next_guard {
            let mut out = self.guard();
            out.absorb(self.tick_rest(now));
            return out;
        }
        self.tick_rest(now)
    }

    fn tick_rest(&mut self, now: Instant) -> Converged {
        let mut paced = Converged::default();
        if self.pacing {
            if let Ok(scandir) = self.ctx.open_scandir() {
                paced = self.pace(&scandir);
            }
        }
        let mut out = self.tick_after_pace(now);
        out.absorb(paced);
        out
    }

    fn tick_after_pace(&mut self, now: Instant) -> Converged {
        if now >= self.next_resync {
            return self.converge(&Scope::Everything);
        }
        let due: BTreeSet<String> =
            self.pending.iter().filter(|(_, &t)| now.saturating_duration_since(t) >= DELETE_GRACE).map(|(p, _)| p.clone()).collect();
        let mut out = if due.is_empty() { Converged::default() } else { self.converge(&Scope::Profiles(due)) };
        if !self.due.is_empty() {
            if let Ok(scandir) = self.ctx.open_scandir() {
                out.absorb(self.run_schedule(&scandir));
            }
        }
        if !self.teardowns.is_empty() {
            if let Ok(scandir) = self.ctx.open_scandir() {
                // A profile that came back while its old slot was going gets its new one now.
                out.absorb(self.progress_and_readd(&scandir));
            }
        }
        out
    }

    /// When [`Registrar::tick`] next has something to do.
    pub fn next_deadline(&self) -> Instant {
        let mut at = self.next_resync.min(self.next_guard);
        if self.pacing {
            at = at.min(self.ctx.clock.instant() + pace::POLL);
        }
        for t in self.pending.values() {
            at = at.min(*t + DELETE_GRACE);
        }
        if !self.teardowns.is_empty() {
            at = at.min(teardown::next_poll(&self.ctx));
        }
        if let Some(first) = self.due.values().copied().reduce(f64::min) {
            let wait = (first - self.unix_now()).max(0.0);
            at = at.min(self.ctx.clock.instant() + Duration::from_secs_f64(wait.min(RESYNC.as_secs_f64())));
        }
        at
    }
}

//! `status [P]`: per profile, what the operator wants (from the volume) next to what s6 says
//! and what the crash policy holds, as one word (`state`) and a sentence a person can act on
//! (`explanation`).

use super::registered;
use super::settle;
use crate::clock::{from_unix_secs, human_duration, rfc3339};
use crate::ctx::Ctx;
use crate::exit_policy::ExitClass;
use crate::fs::Dir;
use crate::name::{slot_name, DEFAULT_PROFILE};
use crate::problem::Problem;
use crate::registrar::take_over::{self, TakeOver};
use crate::s6::capacity;
use crate::s6::svscan;
use crate::s6::svstat::{self, Status};
use crate::volume::discovery::{self, Candidate};
use crate::volume::gateway_logs;
use crate::volume::open_profile_dir;
use crate::volume::policy_record::{self as record, PolicyState, Record};
use crate::volume::state::{read_wanted, Wanted};
use std::collections::BTreeSet;
use std::ffi::OsStr;

#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct ProfileStatus {
    pub profile: String,
    /// `desired_state` from the profile's state file, else its effective state.
    pub wanted: Option<Wanted>,
    pub registered: bool,
    pub supervised: bool,
    pub up: bool,
    pub pid: Option<u64>,
    /// The last up/down transition, RFC 3339 (UTC).
    pub since: Option<String>,
    /// Seconds since that transition.
    pub since_secs: Option<i64>,
    /// Deaths since the slot's supervisor started (s6's death tally).
    pub restarts: Option<usize>,
    pub exit_code: Option<i32>,
    pub signal: Option<i32>,
    /// What the running gateway costs: resident memory and CPU (like `pm2 ls`).
    pub usage: Option<super::usage::Usage>,
    /// The memory limit that applies to the gateway, bytes (`null`: none); see
    /// [`crate::guard::memory`].
    pub memory_limit: Option<u64>,
    /// What the supervisor knew of the last death beyond its exit: `memory` (restarted over
    /// its limit) or `oom` (the kernel's OOM killer).
    pub last_cause: Option<&'static str>,
    /// Up and ready: s6's readiness, which the slot's bridge gives once the gateway says it is
    /// ready (a slot without `notification-fd`, from an older release, is ready when up).
    pub ready: bool,
    /// Since when it is ready, RFC 3339 (UTC).
    pub ready_since: Option<String>,
    /// Why the slot's watcher killed the last run, if it did: `hung` or `start-timeout`.
    pub killed: Option<&'static str>,
    /// No `down` file: s6 starts it when its supervisor starts.
    pub normally_up: bool,
    /// Waiting for the boot pace to start it (see [`crate::guard::pace`]): since when, RFC 3339.
    pub queued_since: Option<String>,
    pub want_up: bool,
    /// What the gateway is doing, in one word: running, starting (up, not ready yet), stopping, restarting,
    /// backing-off, quarantined, probing, parked, config-error, stopped, not-restored,
    /// unsupervised, not-registered.
    /// The verdict: what `status`'s exit code and `health` both judge by.
    pub state: Verdict,
    /// The same verdict in the words of earlier versions (`crashed` for restarting,
    /// `operator-stopped` for stopped); kept for scripts that read it.
    pub reason: Reason,
    /// The verdict in a sentence a person can act on.
    pub explanation: String,
    /// When the crash policy will start the gateway again, RFC 3339 (UTC).
    pub next_start: Option<String>,
    /// The crash policy's record, when it has one.
    pub policy: Option<PolicyView>,
    /// The gateway's log directory.
    pub log: String,
    /// Why the slot is not ours (someone else published it, or it was tampered with; see
    /// `slot::trust`): the boot pass and the registrar replace such a slot, so this says one
    /// could not be, or has not been yet. Absent when it is ours or could not be checked.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub foreign: Option<String>,
    /// The `gateway.parked` marker that keeps this named profile's slot down (see
    /// `volume::parked`), when there is one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub parked_by: Option<String>,
    /// Multiplexing: the profile whose gateway serves this one (`default`); its own slot
    /// stays down.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub served_by: Option<String>,
    /// Its API server port, as its slot was rendered with (see `volume::ports`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub port: Option<PortView>,
}

/// What `status` shows of a profile's API server port.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct PortView {
    pub port: u16,
    /// `assigned` (given to the gateway as `API_SERVER_PORT`), or where the profile set its
    /// own: `.env`, `config.yaml`, `container` (the default profile only).
    pub source: &'static str,
    /// Other profiles set to the same port: only one of the gateways can listen on it.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub shared_with: Vec<String>,
}

/// Multiplexing, as `status` reports it: one root gateway serves every profile on the
/// volume but the parked ones.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Multiplexing {
    /// The profiles gateway-default serves, `default` first.
    pub serves: Vec<String>,
}

/// The crash policy's word in `status`: its own state, or `stopped` once the operator's stop
/// overrides what it held.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PolicyWord {
    Holds(PolicyState),
    Stopped,
}

impl PolicyWord {
    pub fn as_str(self) -> &'static str {
        match self {
            PolicyWord::Holds(s) => s.as_str(),
            PolicyWord::Stopped => "stopped",
        }
    }
}

impl serde::Serialize for PolicyWord {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

/// A verdict named the way earlier versions named it (`reason` in `status --json`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reason(pub Verdict);

impl Reason {
    pub fn as_str(self) -> &'static str {
        self.0.legacy()
    }
}

impl serde::Serialize for Reason {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl PartialEq<&str> for Reason {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

impl serde::Serialize for Verdict {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.state())
    }
}

impl std::fmt::Display for Verdict {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.state())
    }
}

impl PartialEq<&str> for Verdict {
    fn eq(&self, other: &&str) -> bool {
        self.state() == *other
    }
}

/// What `status` shows of a crash-policy record.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct PolicyView {
    pub state: PolicyWord,
    /// Crashes in a row since the last healthy run.
    pub consecutive_crashes: u32,
    /// Crashes inside the quarantine window.
    pub recent_crashes: usize,
    /// Failed probes in this quarantine.
    pub failed_probes: u32,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct StatusReport {
    pub profiles: Vec<ProfileStatus>,
    pub capacity: Option<capacity::Usage>,
    /// Whether an s6-svscan runs on the scandir (nothing is supervised otherwise); `null`
    /// when that cannot be told (only root can look, and no slot is supervised to show it).
    pub scanner_running: Option<bool>,
    pub scandir: String,
    /// How to raise the scanner's limit, when usage is near it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub capacity_hint: Option<String>,
    /// What the registrar says of itself (e.g. that its inotify budget is spent).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub registrar_notices: Vec<String>,
    /// The registrar's last take-over of root-made entries (root mode), if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_take_over: Option<TakeOver>,
    /// Present when multiplexing is on: what the root gateway serves.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub multiplexing: Option<Multiplexing>,
    /// Profiles set to the same API server port, each pair in a sentence naming both.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub port_collisions: Vec<String>,
}

/// How a gateway stands against what is wanted of it, judged once from its verdict: `status`
/// of everything exits 0 only when every one is [`Standing::AsWanted`], and `health` is ready
/// only when none is [`Standing::Failing`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Standing {
    /// Running if wanted running; anything if wanted anything else.
    AsWanted,
    /// Wanted running and down for a reason the crash policy or its configuration accounts
    /// for (quarantined, backing off, parked by its own clean exit, a configuration error).
    Accounted,
    /// Wanted running and down for no accounted reason.
    Failing,
}

impl ProfileStatus {
    pub fn standing(&self) -> Standing {
        if self.wanted != Some(Wanted::Running) || (self.up && self.ready) || self.state == Verdict::Served {
            return Standing::AsWanted;
        }
        match self.state {
            Verdict::Quarantined | Verdict::BackingOff | Verdict::Parked | Verdict::ParkedByMarker | Verdict::ConfigError => {
                Standing::Accounted
            }
            _ => Standing::Failing,
        }
    }

    /// As wanted: running if wanted running, anything else otherwise (what `status` without a
    /// profile exits 0 for).
    pub fn as_wanted(&self) -> bool {
        self.standing() == Standing::AsWanted
    }
}

/// Every profile (on the volume or registered), or just `only`: then nothing but that profile
/// and the scandir entry are read.
pub fn status(ctx: &Ctx, only: Option<&str>) -> Result<StatusReport, Problem> {
    let scandir = ctx.open_scandir()?;
    // Read only where it can change the answer (not for the root profile alone).
    let multiplex = only != Some(DEFAULT_PROFILE) && crate::volume::multiplex::enabled(ctx);
    if let Some(p) = only {
        let on_volume = crate::volume::profile_exists(ctx, p).unwrap_or(false);
        let mut ps = of(ctx, &scandir, p);
        if !ps.registered && !on_volume {
            return Err(Problem::NotRegistered { profile: p.to_string(), hint: None });
        }
        if multiplex {
            served(&mut ps, of(ctx, &scandir, DEFAULT_PROFILE).up);
        }
        let scanner_running = scanner_running(ctx, &scandir, std::slice::from_ref(&ps));
        let mut profiles = vec![ps];
        let port_collisions = add_ports(ctx, &mut profiles);
        return Ok(StatusReport {
            profiles,
            capacity: None,
            scanner_running,
            scandir: ctx.cfg.scandir.display().to_string(),
            capacity_hint: None,
            registrar_notices: crate::registrar::notice::read_all(ctx),
            last_take_over: take_over::last(ctx).filter(|t| t.profile == p),
            multiplexing: None,
            port_collisions,
        });
    }
    let home = ctx.open_home().ok();
    let snap = discovery::scan_home(ctx.fs, home.as_ref(), None, false);
    let mut names: BTreeSet<String> = BTreeSet::from([DEFAULT_PROFILE.to_string()]);
    for c in &snap.named {
        if let Candidate::Profile { name, .. } = c {
            names.insert(name.clone());
        }
    }
    names.extend(registered(ctx, &scandir)?);
    let mut profiles: Vec<ProfileStatus> = names.iter().map(|p| of(ctx, &scandir, p)).collect();
    let mut multiplexing = None;
    if multiplex {
        let on_volume: BTreeSet<&str> = snap
            .named
            .iter()
            .filter_map(|c| match c {
                Candidate::Profile { name, .. } => Some(name.as_str()),
                Candidate::Skipped { .. } => None,
            })
            .collect();
        let mut serves = vec![DEFAULT_PROFILE.to_string()];
        let root_up = profiles.iter().any(|ps| ps.profile == DEFAULT_PROFILE && ps.up);
        for ps in profiles.iter_mut().filter(|ps| on_volume.contains(ps.profile.as_str())) {
            served(ps, root_up);
            if ps.served_by.is_some() {
                serves.push(ps.profile.clone());
            }
        }
        multiplexing = Some(Multiplexing { serves });
    }
    let port_collisions = add_ports(ctx, &mut profiles);
    let capacity = capacity::usage(ctx, &scandir).ok();
    let capacity_hint = capacity.filter(|c| c.near_limit()).map(|_| capacity::how_to_raise(ctx));
    Ok(StatusReport {
        scanner_running: scanner_running(ctx, &scandir, &profiles),
        profiles,
        capacity,
        scandir: ctx.cfg.scandir.display().to_string(),
        capacity_hint,
        registrar_notices: crate::registrar::notice::read_all(ctx),
        last_take_over: take_over::last(ctx),
        multiplexing,
        port_collisions,
    })
}

/// Multiplexing: a named profile that is not parked is served by the root gateway while that
/// runs (`root_up`); its own slot stays down, which is then as wanted, not a gateway that
/// failed to come back. With the root gateway down, nothing serves it: a profile wanted
/// running is then down, and says which gateway to start.
fn served(ps: &mut ProfileStatus, root_up: bool) {
    if ps.profile == DEFAULT_PROFILE || ps.parked_by.is_some() {
        return;
    }
    if !root_up {
        if !ps.up && ps.wanted == Some(Wanted::Running) {
            ps.explanation = format!(
                "not served: multiplexing is on, so gateway-default serves every profile, and gateway-default is down (gateway-{p} stays down); start it: hermes -p {p} gateway start",
                p = ps.profile
            );
        }
        return;
    }
    ps.served_by = Some(DEFAULT_PROFILE.to_string());
    if !ps.up && matches!(ps.state, Verdict::NotRestored | Verdict::Stopped | Verdict::HeldDown | Verdict::Parked) {
        ps.state = Verdict::Served;
        ps.reason = Reason(Verdict::Served);
        ps.explanation = format!(
            "served by gateway-default: multiplexing is on (GATEWAY_MULTIPLEX_PROFILES or multiplex_profiles in config.yaml), so one root gateway serves every profile and gateway-{} stays down",
            ps.profile
        );
    }
}

/// Each profile's port from the record its slot was rendered from (one read for all), and
/// the collisions it holds, each naming both profiles.
fn add_ports(ctx: &Ctx, profiles: &mut [ProfileStatus]) -> Vec<String> {
    use crate::volume::ports;
    let Ok(home) = ctx.open_home() else { return Vec::new() };
    let record = ports::read_record(ctx.fs, &home);
    for ps in profiles.iter_mut() {
        ps.port = record.get(&ps.profile).map(|p| PortView {
            port: p.port,
            source: p.source.as_str(),
            shared_with: ports::sharing(&record, &ps.profile),
        });
    }
    let shown: BTreeSet<&str> = profiles.iter().map(|p| p.profile.as_str()).collect();
    ports::collisions(&record)
        .iter()
        .filter(|(_, a, b)| shown.contains(a.as_str()) || shown.contains(b.as_str()))
        .map(|c| ports::collision_warning(&record, c))
        .collect()
}

/// Whether the scanner runs: asked directly where this process may look, else told by any
/// supervised slot (a supervisor outlives its scanner only briefly).
fn scanner_running(ctx: &Ctx, scandir: &Dir, profiles: &[ProfileStatus]) -> Option<bool> {
    svscan::running(ctx.fs, scandir).or_else(|| profiles.iter().any(|p| p.supervised).then_some(true))
}

/// What the volume says of a profile: its wanted state and its crash-policy record, read
/// under one identity switch.
fn on_volume(ctx: &Ctx, profile: &str) -> (Option<Wanted>, Option<record::Record>) {
    let Some(dir) = open_profile_dir(ctx, profile).ok().flatten() else { return (None, None) };
    let _held = ctx.fs.hold_identity(&dir).ok();
    let wanted = read_wanted(ctx.fs, &dir).ok().flatten();
    (wanted, record::read_now(ctx, &dir))
}

/// One profile's status, its slot looked up in `scandir`.
pub fn of(ctx: &Ctx, scandir: &Dir, profile: &str) -> ProfileStatus {
    let fs = ctx.fs;
    let (wanted, rec) = on_volume(ctx, profile);
    let mut ps = ProfileStatus {
        profile: profile.to_string(),
        wanted,
        registered: false,
        supervised: false,
        up: false,
        pid: None,
        since: None,
        since_secs: None,
        restarts: None,
        exit_code: None,
        signal: None,
        usage: None,
        memory_limit: None,
        last_cause: rec.as_ref().and_then(|r| r.last_exit).and_then(|e| e.cause).map(|c| c.as_str()),
        ready: false,
        ready_since: None,
        killed: rec.as_ref().and_then(|r| r.last_exit).and_then(|e| e.killed).map(|k| k.as_str()),
        normally_up: false,
        queued_since: None,
        want_up: false,
        state: Verdict::NotRegistered,
        reason: Reason(Verdict::NotRegistered),
        explanation: String::new(),
        next_start: rec.as_ref().filter(|r| r.holds_down()).and_then(|r| r.next_start).map(|t| rfc3339(from_unix_secs(t))),
        policy: rec.as_ref().map(|r| PolicyView {
            state: PolicyWord::Holds(r.state),
            consecutive_crashes: r.consecutive,
            recent_crashes: r.crashes.len(),
            failed_probes: r.probes,
        }),
        log: gateway_logs::log_dir(&ctx.cfg.home, profile).display().to_string(),
        foreign: None,
        port: None,
        parked_by: crate::volume::parked::marker(ctx, profile).map(|p| p.display().to_string()),
        served_by: None,
    };
    let slot = fs.open_dir(scandir, OsStr::new(&slot_name(profile))).ok();
    let st = slot.as_ref().and_then(|slot| {
        ps.registered = true;
        ps.normally_up = fs.lstat(slot, OsStr::new("down")).is_err();
        ps.supervised = svstat::supervisor_alive(fs, slot).unwrap_or(false);
        ps.supervised.then(|| svstat::read(fs, slot).ok().flatten()).flatten()
    });
    let died = match (&slot, &st) {
        (Some(slot), Some(st)) => {
            let now = crate::clock::unix_secs(ctx.clock.now()) as i64;
            ps.up = st.is_up();
            ps.pid = st.is_up().then_some(st.pid);
            ps.usage = ps.pid.and_then(|pid| super::usage::of(ctx, pid));
            ps.memory_limit = crate::guard::memory::limit_for(ctx, profile);
            ps.since = Some(rfc3339(from_unix_secs(st.since as f64)));
            ps.since_secs = Some((now - st.since).max(0));
            ps.want_up = st.want_up;
            // The bridge speaks through notification-fd; a slot without one cannot be told.
            let notifies = fs.lstat(slot, OsStr::new("notification-fd")).is_ok();
            ps.ready = st.is_up() && (st.ready || !notifies);
            let ready_at = if notifies { st.ready_since } else { st.since };
            ps.ready_since = ps.ready.then(|| rfc3339(from_unix_secs(ready_at as f64)));
            let deaths = svstat::deaths(fs, slot);
            ps.restarts = Some(deaths);
            // Before the first death the wait status is just zeroes, not an exit code.
            if deaths > 0 {
                ps.exit_code = st.exit_code();
                ps.signal = st.signal();
            }
            deaths > 0
        }
        _ => false,
    };
    let mut verdict = verdict(ps.registered, st.as_ref(), died, ps.wanted.as_ref(), rec.as_ref());
    if verdict == Verdict::Running && !ps.ready {
        verdict = Verdict::Starting;
    }
    // Down, not wanted up by s6, and marked by the boot pace: queued, unless the operator has
    // stopped it meanwhile (the pacer then drops the mark).
    let queued = slot.as_ref().and_then(|s| crate::guard::pace::queued_since(ctx, s));
    if let (Some(at), Some(s)) = (queued, st.as_ref()) {
        if !s.is_up() && !s.want_up && !matches!(verdict, Verdict::Stopped) {
            verdict = Verdict::Queued;
            ps.queued_since = Some(rfc3339(from_unix_secs(at)));
        }
    }
    // s6 restarts a dead gateway a second after its finish; down, wanted up and no finish
    // running for longer than that means it could not start one (s6 tries again only after 60 s).
    if verdict == Verdict::Restarting && st.as_ref().is_some_and(|s| !s.finishing) && ps.since_secs.is_some_and(|s| s >= SPAWN_STUCK_SECS) {
        verdict = Verdict::SpawnFailed;
    }
    // A named profile's `gateway.parked` marker explains a slot that is down and wanted down.
    if ps.parked_by.is_some() && st.as_ref().is_some_and(|s| !s.is_up() && !s.want_up) {
        verdict = Verdict::ParkedByMarker;
    }
    ps.state = verdict;
    ps.reason = Reason(verdict);
    // The policy's schedule is pending only while the policy holds the gateway: once the
    // operator stopped it (or anything else wins), no backoff's end or probe will start it,
    // so no next start is shown, and the policy's word is the operator's.
    if !matches!(verdict, Verdict::BackingOff | Verdict::Quarantined) {
        ps.next_start = None;
        if let (Some(view), Some(r)) = (ps.policy.as_mut(), rec.as_ref()) {
            if r.holds_down() && verdict == Verdict::Stopped {
                view.state = PolicyWord::Stopped;
            }
        }
    }
    // Only a gateway that keeps dying may be short of tasks: read the cgroup then only.
    let tasks = if matches!(verdict, Verdict::Restarting | Verdict::BackingOff | Verdict::Quarantined | Verdict::SpawnFailed) {
        tasks(ctx.fs)
    } else {
        None
    };
    ps.explanation = explain(verdict, &ps, rec.as_ref(), ctx.clock.now(), tasks);
    if ps.registered {
        // Slots are rendered by the scandir's owner (root in the container).
        let owner = fs.lstat(scandir, OsStr::new(".")).map(|m| m.uid).unwrap_or(0);
        ps.foreign = crate::slot::trust::foreign(fs, ctx.cfg, scandir, OsStr::new(&slot_name(profile)), owner).ok().flatten();
        if let Some(why) = &ps.foreign {
            ps.explanation = format!(
                "{} is not ours: not published by hermes-s6 or tampered with ({why}); root's s6-supervise must not run it: the boot pass (`hermes-reconcile` as root) or the registrar replaces it with ours; {}",
                scandir.child(OsStr::new(&slot_name(profile))).display(),
                ps.explanation
            );
        }
    }
    // A gateway that cannot fork its threads dies of it (an abort, a failed spawn): say so.
    if matches!(verdict, Verdict::Restarting | Verdict::BackingOff | Verdict::Quarantined) {
        if let Some(t) = tasks.filter(|t| t.refused > 0) {
            ps.explanation.push_str(&format!(
                "; the container's task limit has refused {} fork(s) ({} tasks, {}): a likely cause",
                t.refused,
                t.current,
                t.max.map_or("no limit now".to_string(), |m| format!("pids.max {m}"))
            ));
        }
    }
    ps
}

/// How long down-and-wanted-up (no finish running) means s6 cannot start the gateway: it
/// restarts a dead one a second after its finish.
const SPAWN_STUCK_SECS: i64 = 3;

/// The container's task accounting (cgroup v2, else v1's pids controller).
#[derive(Clone, Copy)]
struct Tasks {
    current: u64,
    /// `None`: no limit.
    max: Option<u64>,
    /// How many times a fork was refused for the limit (`pids.events`' `max`).
    refused: u64,
}

/// The container's task accounting (cgroup v2, else v1's pids controller), read through the
/// file-system seam, each file capped.
fn tasks(fs: &dyn crate::fs::Fs) -> Option<Tasks> {
    ["/sys/fs/cgroup", "/sys/fs/cgroup/pids"].iter().find_map(|d| {
        let dir = fs.open_root(std::path::Path::new(d)).ok()?;
        let read = |f: &str| match fs.read_capped(&dir, OsStr::new(f), 4096) {
            Ok(crate::fs::Capped::Data(b)) => String::from_utf8(b).ok(),
            _ => None,
        };
        let current = read("pids.current")?.trim().parse().ok()?;
        let max = read("pids.max")?.trim().parse().ok();
        let refused = read("pids.events")
            .and_then(|e| e.lines().find_map(|l| l.strip_prefix("max ").and_then(|n| n.trim().parse().ok())))
            .unwrap_or(0);
        Some(Tasks { current, max, refused })
    })
}

/// What a gateway is doing, as `status` names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    NotRegistered,
    Unsupervised,
    Running,
    /// Up and wanted up, not ready yet.
    Starting,
    Probing,
    Stopping,
    Restarting,
    /// Wanted up and down for longer than s6's restart delay: s6 cannot start it.
    SpawnFailed,
    BackingOff,
    Quarantined,
    ConfigError,
    Stopped,
    NotRestored,
    Parked,
    /// Wanted running, and down because s6 was told so outside the lifecycle (`s6-svc -d`
    /// by hand): nothing on the volume accounts for it.
    HeldDown,
    /// Down, kept down by the profile's `gateway.parked` marker.
    ParkedByMarker,
    /// Multiplexing: down, served by the root gateway.
    Served,
    /// Wanted running, waiting for the boot pace to start it.
    Queued,
}

impl Verdict {
    pub fn state(self) -> &'static str {
        match self {
            Verdict::NotRegistered => "not-registered",
            Verdict::Unsupervised => "unsupervised",
            Verdict::Running => "running",
            Verdict::Starting => "starting",
            Verdict::Probing => "probing",
            Verdict::Stopping => "stopping",
            Verdict::Restarting => "restarting",
            Verdict::SpawnFailed => "spawn-failed",
            Verdict::BackingOff => "backing-off",
            Verdict::Quarantined => "quarantined",
            Verdict::ConfigError => "config-error",
            Verdict::Stopped => "stopped",
            Verdict::NotRestored => "not-restored",
            Verdict::Parked => "parked",
            Verdict::HeldDown => "held-down",
            Verdict::ParkedByMarker => "parked",
            Verdict::Served => "served-by-default",
            Verdict::Queued => "queued",
        }
    }

    /// The verdict in the words of earlier versions.
    pub fn legacy(self) -> &'static str {
        match self {
            Verdict::Probing => "running",
            Verdict::Restarting | Verdict::SpawnFailed => "crashed",
            Verdict::Stopped => "operator-stopped",
            Verdict::ParkedByMarker => "parked-marker",
            other => other.state(),
        }
    }
}

/// The verdict. Order matters: the most specific explanation wins, and an operator's `stop`
/// wins over the crash policy.
pub fn verdict(registered: bool, st: Option<&Status>, died: bool, wanted: Option<&Wanted>, rec: Option<&Record>) -> Verdict {
    if !registered {
        return Verdict::NotRegistered;
    }
    let Some(st) = st else { return Verdict::Unsupervised };
    let policy = rec.map(|r| r.state);
    if st.is_up() {
        return match (st.want_up, policy) {
            (false, _) => Verdict::Stopping,
            (true, Some(PolicyState::Probing)) => Verdict::Probing,
            (true, _) => Verdict::Running,
        };
    }
    if st.want_up {
        return Verdict::Restarting; // down but wanted up: between restarts, or finish still running
    }
    if wanted == Some(&Wanted::Stopped) {
        return Verdict::Stopped;
    }
    match policy {
        Some(PolicyState::Quarantined) => return Verdict::Quarantined,
        Some(PolicyState::BackingOff) => return Verdict::BackingOff,
        _ => {}
    }
    if died && st.signal().is_none() && ExitClass::of(st.exit_code()) == ExitClass::ConfigError {
        return Verdict::ConfigError;
    }
    if !died {
        return Verdict::NotRestored; // registered down at boot and never started since
    }
    // Parked is what the policy's finish recorded for a clean exit; without a record (a
    // finish that could not write it) a clean exit reads the same. Anything else that left a
    // gateway wanted running down and s6 not wanting it up was a `d` sent by hand.
    let clean = st.signal().is_none() && ExitClass::of(st.exit_code()) == ExitClass::Finished;
    match policy {
        Some(PolicyState::Finished) => Verdict::Parked,
        None if clean => Verdict::Parked,
        _ if wanted == Some(&Wanted::Running) => Verdict::HeldDown,
        _ => Verdict::Parked,
    }
}

fn last_exit(code: Option<i32>, signal: Option<i32>) -> Option<String> {
    match (code, signal) {
        (_, Some(sig)) => Some(format!("killed by signal {sig} ({})", settle::signal_name(sig))),
        (Some(c), None) => Some(format!("exit {c}")),
        _ => None,
    }
}

fn explain(v: Verdict, ps: &ProfileStatus, rec: Option<&Record>, now: std::time::SystemTime, tasks: Option<Tasks>) -> String {
    let p = &ps.profile;
    // s6's own record of the last death first: the policy's file is the user's to edit. It
    // speaks only for deaths before this supervisor (a container restart ago).
    let exit = last_exit(ps.exit_code, ps.signal).or_else(|| rec.and_then(|r| r.last_exit).and_then(|e| last_exit(e.code, e.signal)));
    let cause = match ps.last_cause {
        Some("memory") => " (restarted over its memory limit)",
        Some("oom") => " (killed by the kernel's OOM killer)",
        _ => "",
    };
    let exit = match (ps.killed, exit) {
        (Some(k), e) => Some(format!("{k}: killed by its watcher{}", e.map(|e| format!(", {e}")).unwrap_or_default())),
        (None, e) => e,
    };
    let exit_part = exit.as_deref().map(|e| format!(", last {e}{cause}")).unwrap_or_default();
    let next = rec.and_then(|r| r.next_start).map(|t| {
        let wait = t - crate::clock::unix_secs_f64(now);
        if wait > 0.0 {
            format!("{} (in {})", rfc3339(from_unix_secs(t)), human_duration(wait))
        } else {
            format!("{} (due now)", rfc3339(from_unix_secs(t)))
        }
    });
    let restarts = match ps.restarts {
        Some(n) if n > 0 => format!("; died {n} time(s) since its supervisor started"),
        _ => String::new(),
    };
    match v {
        Verdict::NotRegistered => format!("no s6 slot: the registrar adds one for a profile on the volume, or run `hermes-reconcile register {p}` as root"),
        Verdict::Unsupervised => "its slot exists but no s6-supervise runs it yet: s6-svscan has not rescanned (see `s6-svscanctl -a`)".into(),
        Verdict::Running => {
            let last = match (ps.last_cause, ps.restarts) {
                (Some(_), Some(n)) if n > 0 => format!("; last death{cause}"),
                _ => String::new(),
            };
            let mem = match (ps.usage, ps.memory_limit) {
                (Some(u), Some(l)) => format!("; memory {} of its limit {}", super::usage::human_bytes(u.rss_bytes), super::usage::human_bytes(l)),
                _ => String::new(),
            };
            let ready = ps.ready_since.as_deref().map(|t| format!(", ready since {t}")).unwrap_or_default();
            match ps.since_secs {
                Some(up) => format!("up for {}{ready}{restarts}{last}{mem}", human_duration(up as f64)),
                None => format!("up{ready}{mem}"),
            }
        }
        Verdict::Starting => format!(
            "up for {}, not ready yet: ready once the gateway says so (READY=1, or its state file says running); killed as start-timeout if not ready within HERMES_GATEWAY_START_TIMEOUT (default 120 s){exit_part}{restarts}",
            human_duration(ps.since_secs.unwrap_or(0) as f64)
        ),
        Verdict::Probing => format!("started as a probe after a quarantine; clears it if it stays up{restarts}"),
        Verdict::Stopping => "asked to stop; still running (s6 kills it once its grace ends)".into(),
        Verdict::Restarting => format!("crashed{exit_part}; s6 restarts it within a second{restarts}"),
        Verdict::SpawnFailed => {
            let limit = |t: &Tasks| t.max.map_or("no limit now".to_string(), |m| format!("pids.max {m}"));
            let why = match tasks {
                Some(t) if t.refused > 0 || t.max.is_some_and(|m| t.current * 10 >= m * 9) => format!(
                    "the container's task limit: forks were refused {} time(s) ({} tasks, {}); raise docker's --pids-limit or the pod's pids limit (each gateway needs its own tasks plus 4: two s6-supervise, its s6-log and its watcher)",
                    t.refused,
                    t.current,
                    limit(&t)
                ),
                Some(t) => format!("a failed fork or exec ({} tasks, {}; memory?)", t.current, limit(&t)),
                None => "a failed fork or exec (a task or memory limit?)".into(),
            };
            // s6-supervise waits 60 s after a failed fork (10 s after a failed exec of ./run)
            // before it tries again; a `u` makes it try at once.
            format!(
                "s6 has not been able to start it for {} (it tries again within 60 s; `hermes -p {} gateway start` tries now): {why}",
                human_duration(ps.since_secs.unwrap_or(0) as f64),
                ps.profile
            )
        }
        Verdict::BackingOff => {
            let n = rec.map(|r| r.consecutive).unwrap_or(0);
            format!("backing off after {n} crash(es) in a row{exit_part}; next start at {}", next.unwrap_or_else(|| "-".into()))
        }
        Verdict::Quarantined => {
            let r = rec.expect("a quarantine has a record");
            let span = match (r.crashes.first(), r.crashes.last()) {
                (Some(a), Some(b)) if r.crashes.len() > 1 => format!(" in {}", human_duration(b - a)),
                _ => String::new(),
            };
            let probes = if r.probes > 0 { format!(" and {} failed probe(s)", r.probes) } else { String::new() };
            format!(
                "quarantined after {} crashes{span}{probes}{exit_part}; next probe at {}; `hermes -p {p} gateway start` clears it now",
                r.crashes.len(),
                next.unwrap_or_else(|| "-".into())
            )
        }
        Verdict::ConfigError => format!("exited 78 (configuration error): not restarted; fix its configuration, then `hermes -p {p} gateway start`"),
        Verdict::Stopped => match rec.filter(|r| r.holds_down()) {
            Some(r) => format!(
                "stopped by the operator; stays down until started (the crash policy's {} is cancelled: no {} will start it; `hermes -p {p} gateway start` starts it and clears the policy)",
                if r.state == PolicyState::Quarantined { "quarantine" } else { "backoff" },
                if r.state == PolicyState::Quarantined { "probe" } else { "backoff's end" },
            ),
            None => "stopped by the operator; stays down until started".into(),
        },
        Verdict::NotRestored => match ps.wanted.as_ref() {
            Some(w) => format!("registered down at boot (its last wanted state was {})", w.as_str()),
            None => "registered down at boot (no wanted state recorded)".into(),
        },
        Verdict::Parked => format!("exited on its own{exit_part}; not restarted until started"),
        Verdict::Queued => format!(
            "queued by the boot pace since {}: started when one of the gateways starting before it is ready or its start timeout passes (HERMES_GATEWAY_BOOT_PACE; `hermes -p {p} gateway start` starts it now)",
            ps.queued_since.as_deref().unwrap_or("-")
        ),
        Verdict::HeldDown => format!(
            "wanted running, but s6 was told to keep it down outside hermes (`s6-svc -d`){exit_part}; `hermes -p {p} gateway start` brings it back"
        ),
        Verdict::ParkedByMarker => format!(
            "parked by {} (hermes-agent's marker: installed, not served); its slot stays down whatever its wanted state; `hermes -p {p} gateway start` removes the marker and starts it",
            ps.parked_by.as_deref().unwrap_or("gateway.parked")
        ),
        Verdict::Served => format!("served by gateway-default (multiplexing); gateway-{p} stays down"),
    }
}

//! The boot pass: read the volume, decide, then act at the edge. Replaces upstream's
//! `python -m hermes_cli.container_boot`.
//!
//! Order of effects: sweep staging leftovers; seed the legacy root state if planned; per
//! profile (default first, then sorted names) sweep stale runtime files and publish the slot;
//! write the boot log; ask s6-svscan to rescan. A problem with one profile never stops the
//! others.

pub mod plan;

use crate::ctx::Ctx;
use crate::escape::log_value;
use crate::fs::Dir;
use crate::name::slot_name;
use crate::problem::Problem;
use crate::registrar::doorbell;
use crate::s6::capacity;
use crate::s6::svscan::{self, Rescan};
use crate::slot::teardown::{self, Progress};
use crate::slot::{self, Live, Published};
use crate::volume::state::STATE_FILE;
use crate::volume::{boot_log, discovery, gateway_logs, ports};
use plan::{Action, Container, Decision, Plan};
use std::collections::HashSet;
use std::ffi::OsStr;
use std::io;
use std::time::Duration;

#[derive(Debug, Clone)]
pub struct Options {
    pub dry_run: bool,
    pub rotate_bytes: u64,
    /// The pass's timestamp; `None` means now.
    pub timestamp: Option<String>,
    /// How long the pass waits, after its rescan, for the slots it published to be
    /// supervised (so a command right after it finds a listening supervisor).
    pub supervise_wait: Duration,
}

impl Default for Options {
    fn default() -> Self {
        Options { dry_run: false, rotate_bytes: boot_log::ROTATE_BYTES, timestamp: None, supervise_wait: Duration::from_secs(10) }
    }
}

fn as_messages<S: serde::Serializer>(v: &[Problem], s: S) -> Result<S::Ok, S::Error> {
    s.collect_seq(v.iter().map(|p| p.to_string()))
}

#[derive(Debug, serde::Serialize)]
pub struct PassReport {
    pub entries: Vec<Decision>,
    pub dashboard_skip: bool,
    pub dry_run: bool,
    pub migrated_legacy_state: bool,
    /// Staging leftovers removed from the scandir.
    pub swept_staging: Vec<String>,
    /// `None` on a dry run.
    pub rescan: Option<Rescan>,
    /// Things the operator should know that did not stop anything.
    pub warnings: Vec<String>,
    /// Things that went wrong; a non-empty list makes the exit code 1.
    #[serde(serialize_with = "as_messages")]
    pub errors: Vec<Problem>,
    /// Published slots no supervisor held when the pass stopped waiting.
    pub unsupervised: Vec<String>,
}

/// Read the home and the scandir's room, and decide; with the profiles that had a
/// crash-policy record when the home was read (the only ones whose record a start has to
/// touch). Touches nothing unless `sweep` (stale runtime files of the profiles that get a
/// slot are removed while their directories are open).
fn survey_with_records(ctx: &Ctx, container: &Container, sweep: bool) -> (Plan, Vec<String>, HashSet<String>) {
    if container.dashboard {
        return (plan::decide(&discovery::Snapshot::empty(), container, None), Vec::new(), HashSet::new());
    }
    let (home, home_error) = match ctx.open_home() {
        Ok(d) => (Some(d), None),
        Err(e) => (
            None,
            Some(format!(
                "could not open HERMES_HOME {}: {e}; only the default slot is registered and no boot log is written (create the directory or pass --home)",
                ctx.cfg.home.display()
            )),
        ),
    };
    let snap = discovery::scan_home(ctx.fs, home.as_ref(), home_error.clone(), sweep);
    let mut warnings: Vec<String> = home_error.into_iter().collect();
    warnings.extend(snap.warnings.iter().cloned());
    for c in &snap.named {
        if let discovery::Candidate::Skipped { detail, .. } = c {
            warnings.push(format!("skipped: {detail}"));
        }
    }
    let room = ctx.open_scandir().ok().and_then(|s| capacity::room_for_gateways(ctx, &s).ok());
    let plan = plan::decide(&snap, container, room);
    let mut with_record: HashSet<String> = snap
        .named
        .iter()
        .filter_map(|c| match c {
            discovery::Candidate::Profile { name, facts } if facts.policy.is_some() => Some(name.clone()),
            _ => None,
        })
        .collect();
    if snap.default.policy.is_some() {
        with_record.insert(crate::name::DEFAULT_PROFILE.to_string());
    }
    if !plan.folded.is_empty() {
        warnings.push(format!(
            "multiplexing: {} want(s) running; one root gateway serves every profile, so gateway-default is started in their place (action=registered reason=folded) and their own slots stay down",
            plan.folded.join(", ")
        ));
    }
    if plan.over_capacity > 0 {
        warnings.push(format!(
            "{} profile(s) not published (action=skipped reason=capacity): the scanner supervises at most {} services, {} are kept for other services, and each profile needs 2; {}",
            plan.over_capacity,
            ctx.cfg.max_services,
            ctx.cfg.reserved_services,
            capacity::how_to_raise(ctx)
        ));
    }
    (plan, warnings, with_record)
}

pub fn run(ctx: &Ctx, container: &Container, opts: &Options) -> Result<PassReport, Problem> {
    let fs = ctx.fs;
    let (plan, warnings, with_record) = survey_with_records(ctx, container, !opts.dry_run);
    let mut report = PassReport {
        entries: plan.entries.clone(),
        dashboard_skip: plan.dashboard_skip,
        dry_run: opts.dry_run,
        migrated_legacy_state: false,
        swept_staging: Vec::new(),
        rescan: None,
        warnings,
        errors: Vec::new(),
        unsupervised: Vec::new(),
    };
    if plan.dashboard_skip || opts.dry_run {
        return Ok(report);
    }
    let scandir = ctx.open_scandir()?;
    ctx.require_authority(
        &scandir,
        "the boot pass",
        "run it as root, as the image's cont-init does (`hermes-reconcile plan` shows what it would do, as any user)",
    )?;
    match slot::sweep_staging(fs, &scandir) {
        Ok(swept) => {
            report.swept_staging = swept.removed.iter().map(|n| n.to_string_lossy().into_owned()).collect();
            for (n, e) in swept.failed {
                report.errors.push(ctx.problem(scandir.child(&n), "remove the staging leftover", e));
            }
        }
        Err(e) => report.errors.push(ctx.problem(&ctx.cfg.scandir, "list", e)),
    }
    let home = ctx.open_home().ok();
    if plan.migrate_legacy {
        if let Some(home) = &home {
            match seed_legacy_state(ctx, home) {
                Ok(()) => report.migrated_legacy_state = true,
                Err(e) => report.warnings.push(format!(
                    "could not seed {} for the legacy `gateway run` command: {e}",
                    home.child(OsStr::new(STATE_FILE)).display()
                )),
            }
        }
    }
    let ports = home.as_ref().map(|h| assign_ports(ctx, h, &report.entries, &mut report.warnings)).unwrap_or_default();
    // Opened once: walking down to it again for every profile was a third of the pass's
    // identity switches.
    let log_parent = home.as_ref().map(|h| gateway_logs::LogParent::open(ctx, h).map_err(|e| e.to_string()));
    let mut replaced_any = false;
    let mut published = Vec::new();
    // Boot pacing: the first K gateways to start get their slot up; the rest are published
    // down and queued for the registrar to release as these become ready (see guard::pace).
    let mut started_fresh = 0usize;
    // Without it every file is created anew: slower on a disk, the same slots.
    let common = slot::Common::prepare(fs, ctx.cfg, &scandir).ok();
    for entry in report.entries.iter_mut().filter(|e| e.wants_slot()) {
        let wanted = entry.action == Action::Started;
        let slot_path = scandir.child(OsStr::new(&slot_name(&entry.profile)));
        match &log_parent {
            Some(Ok(parent)) => {
                if let Err(e) = parent.prepare(ctx, &entry.profile) {
                    report.warnings.push(e.to_string());
                }
            }
            Some(Err(e)) => report.warnings.push(e.clone()),
            None => {}
        }
        let port = ports.get(&entry.profile).and_then(ports::Port::injected);
        let live = slot::inspect(fs, ctx.cfg, &scandir, &entry.profile, port).unwrap_or(Live::Absent);
        let fresh = !matches!(live, Live::Supervised { unchanged: true, .. } | Live::Supervised { up: true, .. });
        let queued = wanted && fresh && ctx.cfg.boot_pace > 0 && started_fresh >= ctx.cfg.boot_pace;
        started_fresh += usize::from(wanted && fresh && !queued);
        let start = wanted && !queued;
        let mut foreign = false;
        let outcome = match live {
            // Left alone: only its `down` file is brought in line with the plan.
            Live::Supervised { unchanged: true, .. } => {
                entry.reason.get_or_insert_with(|| "unchanged".into());
                slot::set_down(fs, &scandir, &entry.profile, start).map(|()| None)
            }
            Live::Supervised { unchanged: false, up: true } => {
                entry.reason = Some("changed-live".into());
                report.warnings.push(format!(
                    "{} is live with files that differ from what would be rendered now; left as it is: to apply, stop the gateway (hermes -p {p} gateway stop), run the boot pass again, then start it",
                    slot_path.display(),
                    p = entry.profile
                ));
                Ok(None)
            }
            // Replaced only once its supervisors are gone: never two for one profile.
            Live::Supervised { unchanged: false, up: false } => retire(ctx, &scandir, &entry.profile)
                .map_err(|p| io::Error::other(p.to_string()))
                .and_then(|()| slot::publish_with(fs, ctx.cfg, &scandir, &entry.profile, start, port, common.as_ref()).map(Some))
                .inspect(|_| entry.reason = Some("replaced".into())),
            // Never kept, live or not: disarmed, its supervisors gone, then ours in its place
            // (its gateway, if it ran, starts again under ours when it is wanted running).
            Live::Foreign { why, supervised } => {
                let replaced = replace_foreign(ctx, &scandir, &entry.profile, supervised)
                    .map_err(|p| io::Error::other(p.to_string()))
                    .and_then(|()| slot::publish_with(fs, ctx.cfg, &scandir, &entry.profile, start, port, common.as_ref()).map(Some));
                let said = if replaced.is_ok() { "replaced by one rendered here" } else { "it could not be replaced (see the error)" };
                report
                    .warnings
                    .push(format!("{} is not ours: not published by hermes-s6 or tampered with ({why}); {said}", slot_path.display()));
                entry.reason = Some(if replaced.is_ok() { "foreign-replaced" } else { "foreign" }.into());
                foreign = true;
                replaced
            }
            Live::Absent | Live::NotDir | Live::Unsupervised => {
                slot::publish_with(fs, ctx.cfg, &scandir, &entry.profile, start, port, common.as_ref()).map(Some)
            }
        };
        if queued && matches!(outcome, Ok(Some(_))) {
            let marked =
                fs.open_dir(&scandir, OsStr::new(&slot_name(&entry.profile))).and_then(|slot| crate::guard::pace::queue(ctx, &slot));
            match marked {
                Ok(()) => entry.reason = Some("queued".into()),
                // Started now rather than never: an unmarked down slot is nobody's to release.
                Err(e) => {
                    report.warnings.push(format!("could not queue {} ({e}); started at once", slot_path.display()));
                    let _ = slot::set_down(fs, &scandir, &entry.profile, true);
                }
            }
        }
        if start && outcome.is_ok() && with_record.contains(&entry.profile) {
            // The run starts now, not when the last container ran it: a crash soon after
            // this boot is not mistaken for the end of a long healthy run.
            crate::volume::policy_record::note_started(ctx, &entry.profile);
        }
        match outcome {
            Ok(None) => {}
            Ok(Some(p)) => {
                replaced_any |= p != Published::New;
                published.push(entry.profile.clone());
            }
            Err(e) => {
                report.errors.push(ctx.problem(&slot_path, "publish slot", e));
                entry.action = Action::Failed;
                if !foreign {
                    entry.reason = Some("publish-error".into());
                }
            }
        }
    }
    if common.is_some() {
        slot::Common::remove(fs, &scandir);
    }
    let kept: HashSet<String> = report.entries.iter().filter(|e| e.wants_slot()).map(|e| e.profile.clone()).collect();
    remove_foreign_orphans(ctx, &scandir, &kept, &mut report);
    if let Some(home) = &home {
        let ts = opts.timestamp.clone().unwrap_or_else(|| boot_log::timestamp(ctx.clock.now()));
        let text: String = report.entries.iter().map(|e| log_line(&ts, e)).collect();
        match boot_log::append(ctx, home, &text, opts.rotate_bytes) {
            Ok(warning) => report.warnings.extend(warning),
            Err(e) => report.warnings.push(e.to_string()),
        }
    }
    // Pruning is only needed when a slot was swapped: an old supervisor must go.
    match svscan::rescan(fs, &scandir, replaced_any) {
        Ok(r) => {
            report.rescan = Some(r);
            if r == Rescan::Sent {
                report.unsupervised = wait_supervised(ctx, &scandir, published, opts.supervise_wait);
                if !report.unsupervised.is_empty() {
                    report.warnings.push(format!(
                        "{} published slot(s) not supervised after {} s: {} (see s6-svscan's output)",
                        report.unsupervised.len(),
                        opts.supervise_wait.as_secs(),
                        report.unsupervised.join(", ")
                    ));
                }
            }
        }
        Err(e) => report.errors.push(Problem::Io {
            path: scandir.child(OsStr::new(svscan::CONTROL_DIR)),
            action: format!("ask s6-svscan to rescan (run `s6-svscanctl -a {}`) through", ctx.cfg.scandir.display()),
            error: e,
        }),
    }
    Ok(report)
}

/// Every profile that gets a slot gets its API server port (see [`ports`]): its own, else the
/// one recorded for it, else a free one; the record is rewritten when that changed anything,
/// and each collision of two profiles' own ports is a warning naming both.
fn assign_ports(ctx: &Ctx, home: &Dir, entries: &[Decision], warnings: &mut Vec<String>) -> ports::Record {
    let fs = ctx.fs;
    let old = ports::read_record(fs, home);
    let profiles_dir = fs.open_dir(home, OsStr::new(crate::volume::PROFILES_DIR)).ok();
    let _held = fs.hold_identity(home).ok();
    let mut wanted = Vec::new();
    for e in entries.iter().filter(|e| e.wants_slot()) {
        let default = e.profile == crate::name::DEFAULT_PROFILE;
        let dir = if default { None } else { profiles_dir.as_ref().and_then(|p| fs.open_dir(p, OsStr::new(&e.profile)).ok()) };
        let (own, why) = ports::own_port(fs, dir.as_ref().unwrap_or(home), default.then_some(&ctx.cfg.container_env.api));
        warnings.extend(why.into_iter().map(|w| format!("port of '{}': {w}; its port is assigned", e.profile)));
        wanted.push((e.profile.clone(), own));
    }
    let record = ports::assign(&wanted, &old);
    for c in ports::collisions(&record) {
        warnings.push(ports::collision_warning(&record, &c));
    }
    if record != old {
        if let Err(e) = ports::write_record(fs, home, &record) {
            warnings.push(format!(
                "could not record the gateways' ports in {}: {e}; they are assigned again at the next boot",
                home.child(OsStr::new(ports::RECORD_FILE)).display()
            ));
        }
    }
    record
}

/// Make a foreign slot harmless (see [`slot::trust::disarm`]) and, when a supervisor holds
/// it, take it out of the scanner's hands; its gateway is stopped with it.
fn replace_foreign(ctx: &Ctx, scandir: &Dir, profile: &str, supervised: bool) -> Result<(), Problem> {
    let name = slot_name(profile);
    let path = scandir.child(OsStr::new(&name));
    slot::trust::disarm(ctx.fs, scandir, OsStr::new(&name)).map_err(|e| ctx.problem(&path, "disarm the foreign slot", e))?;
    if supervised {
        retire(ctx, scandir, profile)?;
    }
    Ok(())
}

/// Every other `gateway-*` entry: one that is not ours (or whose name is no profile name, so
/// it cannot be ours) is torn down without following anything. Ours with no profile are left
/// to the registrar, which confirms a deletion before acting on it.
fn remove_foreign_orphans(ctx: &Ctx, scandir: &Dir, kept: &HashSet<String>, report: &mut PassReport) {
    let Ok(entries) = ctx.fs.list(scandir) else { return };
    let mut names: Vec<_> =
        entries.into_iter().map(|(n, _)| n).filter(|n| n.as_encoded_bytes().starts_with(crate::name::SLOT_PREFIX.as_bytes())).collect();
    names.sort();
    for name in names {
        let shown = log_value(name.as_encoded_bytes());
        let Some(profile) = name.to_str().and_then(|n| n.strip_prefix(crate::name::SLOT_PREFIX)) else {
            report
                .warnings
                .push(format!("{shown} in {} has a name that is not UTF-8: left as it is; remove it", ctx.cfg.scandir.display()));
            continue;
        };
        if kept.contains(profile) || slot::is_staging_leftover(&name) {
            continue;
        }
        let why = if crate::name::validate(profile).is_err() {
            Some("its name is not a profile name".to_string())
        } else {
            match slot::trust::foreign(ctx.fs, ctx.cfg, scandir, &name, ctx.fs.euid()) {
                Ok(w) => w,
                Err(_) => continue,
            }
        };
        let Some(why) = why else { continue };
        // Torn down whether or not a supervisor holds it: the directory goes either way.
        match replace_foreign(ctx, scandir, profile, true) {
            Ok(()) => report.warnings.push(format!(
                "{}/{shown} is not ours: not published by hermes-s6 or tampered with ({why}), and no profile of that name is published here; taken down",
                ctx.cfg.scandir.display(),
            )),
            Err(p) => report.errors.push(p),
        }
    }
}

/// Take a supervised slot whose gateway is down out of the scanner's hands entirely (its
/// supervisors exit, its directory goes), so a new one can be published in its place.
fn retire(ctx: &Ctx, scandir: &Dir, profile: &str) -> Result<(), Problem> {
    let Some(mut t) = teardown::begin(ctx, scandir, profile)? else { return Ok(()) };
    loop {
        match teardown::poll(ctx, scandir, &mut t) {
            Progress::Done => return Ok(()),
            Progress::Stuck(p) => return Err(p),
            Progress::Waiting => ctx.clock.sleep(Duration::from_millis(10)),
        }
    }
}

/// Wait (up to `limit`) until s6-svscan has a supervisor on each of `profiles`' slots; the
/// ones still without one.
fn wait_supervised(ctx: &Ctx, scandir: &Dir, mut profiles: Vec<String>, limit: Duration) -> Vec<String> {
    crate::clock::wait_until(ctx.clock, limit, Duration::from_millis(10), || {
        profiles.retain(|p| !doorbell::supervised(ctx, scandir, p));
        profiles.is_empty()
    });
    profiles
}

/// One boot-log line: `<ts> profile=<p> prior_state=<s> action=<a> prior_exit=<e>`, plus
/// ` reason=<r>` for skipped and failed entries. Every value is already log-safe.
pub fn log_line(ts: &str, e: &Decision) -> String {
    let mut line = format!(
        "{ts} profile={} prior_state={} action={} prior_exit={}",
        e.profile,
        e.prior_state.as_deref().unwrap_or("None"),
        e.action.as_str(),
        e.prior_exit.as_str()
    );
    if let Some(r) = &e.reason {
        line.push_str(" reason=");
        line.push_str(r);
    }
    line.push('\n');
    line
}

/// The stdout line upstream prints per action (no `prior_exit`).
pub fn stdout_line(e: &Decision) -> String {
    let mut line =
        format!("reconcile: profile={} prior_state={} action={}", e.profile, e.prior_state.as_deref().unwrap_or("None"), e.action.as_str());
    if let Some(r) = &e.reason {
        line.push_str(" reason=");
        line.push_str(r);
    }
    line
}

/// The legacy `gateway run` container command meant "run the root gateway": record that as
/// the root profile's wanted state once, so later boots follow the state file alone.
fn seed_legacy_state(ctx: &Ctx, home: &Dir) -> io::Result<()> {
    let now = crate::clock::unix_secs(ctx.clock.now());
    let body = format!(
        "{{\"gateway_state\": \"running\", \"desired_state\": \"running\", \"timestamp\": {now}, \"migrated_from\": \"legacy-container-cmd\"}}\n"
    );
    // Created exclusively, as the volume's owner: an existing state file (or anything planted
    // there) always wins.
    ctx.fs.create_file(home, OsStr::new(STATE_FILE), body.as_bytes(), 0o644)
}

//! The boot pass: read the volume, decide, then act at the edge. Replaces upstream's
//! `python -m hermes_cli.container_boot`.
//!
//! Order of effects: sweep staging leftovers; seed the legacy root state if planned; per
//! profile (default first, then sorted names) sweep stale runtime files and publish the slot;
//! write the boot log; ask s6-svscan to rescan. A problem with one profile never stops the
//! others.

use crate::boot_log;
use crate::config::Config;
use crate::discovery;
use crate::plan::{self, Action, Container, Entry, Plan};
use crate::s6::svscan::{self, Rescan};
use crate::safe_fs::{self, Dir, Fs};
use crate::slot::{self, Published};
use crate::state::STATE_FILE;
use std::ffi::OsStr;
use std::io;

pub use crate::discovery::STALE_RUNTIME_FILES;

#[derive(Debug, Clone)]
pub struct Options {
    pub dry_run: bool,
    pub rotate_bytes: u64,
    /// The pass's timestamp; `None` means now.
    pub timestamp: Option<String>,
}

impl Default for Options {
    fn default() -> Self {
        Options { dry_run: false, rotate_bytes: boot_log::ROTATE_BYTES, timestamp: None }
    }
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct Report {
    pub entries: Vec<Entry>,
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
    pub errors: Vec<String>,
}

/// Errors that stop the pass before it does anything.
#[derive(Debug)]
pub enum Fatal {
    Scandir(String),
}

impl std::fmt::Display for Fatal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Fatal::Scandir(m) => f.write_str(m),
        }
    }
}

/// Read the home and decide. Touches nothing unless `sweep` (stale runtime files of the
/// profiles that get a slot are removed while their directories are open).
pub fn plan(fs: &dyn Fs, cfg: &Config, container: &Container, sweep: bool) -> (Plan, Vec<String>) {
    if container.dashboard {
        return (plan::make(&discovery::Snapshot::empty(), container), Vec::new());
    }
    let (home, home_error) = open_home(fs, cfg);
    let snap = discovery::scan_home(fs, home.as_ref(), home_error.clone(), sweep);
    let mut warnings = Vec::new();
    if let Some(e) = home_error {
        warnings.push(e);
    }
    warnings.extend(snap.warnings.iter().cloned());
    for c in &snap.named {
        if let discovery::Candidate::Skipped { detail, .. } = c {
            warnings.push(format!("skipped: {detail}"));
        }
    }
    (plan::make(&snap, container), warnings)
}

fn open_home(fs: &dyn Fs, cfg: &Config) -> (Option<Dir>, Option<String>) {
    match fs.open_root(&cfg.home) {
        Ok(d) => (Some(d), None),
        Err(e) => (
            None,
            Some(format!(
                "could not open HERMES_HOME {}: {e}; only the default slot is registered and no boot log is written (create the directory or pass --home)",
                cfg.home.display()
            )),
        ),
    }
}

pub fn run(fs: &dyn Fs, cfg: &Config, container: &Container, opts: &Options) -> Result<Report, Fatal> {
    let (plan, warnings) = plan(fs, cfg, container, !opts.dry_run);
    let mut report = Report {
        entries: plan.entries.clone(),
        dashboard_skip: plan.dashboard_skip,
        dry_run: opts.dry_run,
        migrated_legacy_state: false,
        swept_staging: Vec::new(),
        rescan: None,
        warnings,
        errors: Vec::new(),
    };
    if plan.dashboard_skip || opts.dry_run {
        return Ok(report);
    }
    let scandir = fs.open_root(&cfg.scandir).map_err(|e| {
        Fatal::Scandir(format!(
            "cannot open the scan directory {}: {e} (is s6-svscan's scandir there? pass --scandir or set S6_PROFILE_GATEWAY_SCANDIR)",
            cfg.scandir.display()
        ))
    })?;
    match slot::sweep_staging(fs, &scandir) {
        Ok(swept) => {
            report.swept_staging = swept.removed.iter().map(|n| n.to_string_lossy().into_owned()).collect();
            for (n, e) in swept.failed {
                report.errors.push(format!("could not remove staging leftover {}: {e}", scandir.child(&n).display()));
            }
        }
        Err(e) => report.errors.push(format!("could not list {}: {e}", cfg.scandir.display())),
    }
    let home = fs.open_root(&cfg.home).ok();
    if plan.migrate_legacy {
        if let Some(home) = &home {
            match seed_legacy_state(fs, home, (cfg.uid, cfg.gid)) {
                Ok(()) => report.migrated_legacy_state = true,
                Err(e) => report.warnings.push(format!(
                    "could not seed {} for the legacy `gateway run` command: {e}",
                    home.child(OsStr::new(STATE_FILE)).display()
                )),
            }
        }
    }
    let mut replaced_any = false;
    for entry in report.entries.iter_mut().filter(|e| e.wants_slot()) {
        match slot::publish(fs, cfg, &scandir, &entry.profile, entry.action == Action::Started) {
            Ok(Published::New) => {}
            Ok(Published::Replaced | Published::ReplacedNonDir) => replaced_any = true,
            Err(e) => {
                report.errors.push(format!(
                    "could not publish slot {}: {e}",
                    scandir.child(OsStr::new(&crate::profile_name::slot_name(&entry.profile))).display()
                ));
                entry.action = Action::Failed;
                entry.reason = Some("publish-error".into());
            }
        }
    }
    if let Some(home) = &home {
        let ts = opts.timestamp.clone().unwrap_or_else(boot_log::timestamp_now);
        let text: String = report.entries.iter().map(|e| log_line(&ts, e)).collect();
        if let Err(e) = boot_log::append(fs, home, &text, (cfg.uid, cfg.gid), opts.rotate_bytes) {
            report.warnings.push(e);
        }
    }
    // Pruning is only needed when a live slot was swapped: its old supervisor must go.
    match svscan::rescan(fs, &scandir, replaced_any) {
        Ok(r) => report.rescan = Some(r),
        Err(e) => report.errors.push(format!(
            "could not ask s6-svscan to rescan {}: {e} (run `s6-svscanctl -a {}`)",
            cfg.scandir.display(),
            cfg.scandir.display()
        )),
    }
    Ok(report)
}

/// One boot-log line: `<ts> profile=<p> prior_state=<s> action=<a> prior_exit=<e>`, plus
/// ` reason=<r>` for skipped and failed entries. Every value is already log-safe.
pub fn log_line(ts: &str, e: &Entry) -> String {
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
pub fn stdout_line(e: &Entry) -> String {
    let mut line = format!(
        "reconcile: profile={} prior_state={} action={}",
        e.profile,
        e.prior_state.as_deref().unwrap_or("None"),
        e.action.as_str()
    );
    if let Some(r) = &e.reason {
        line.push_str(" reason=");
        line.push_str(r);
    }
    line
}

/// The legacy `gateway run` container command meant "run the root gateway": record that as
/// the root profile's wanted state once, so later boots follow the state file alone.
fn seed_legacy_state(fs: &dyn Fs, home: &Dir, owner: (u32, u32)) -> io::Result<()> {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let body = format!(
        "{{\"gateway_state\": \"running\", \"desired_state\": \"running\", \"timestamp\": {now}, \"migrated_from\": \"legacy-container-cmd\"}}\n"
    );
    // Created exclusively: an existing state file (or anything planted there) always wins.
    fs.create_file(home, OsStr::new(STATE_FILE), body.as_bytes(), 0o644)?;
    safe_fs::chown_best_effort(fs, home, OsStr::new(STATE_FILE), owner.0, owner.1)
}

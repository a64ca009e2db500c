//! Taking a slot down for good, without leaving anything behind: the slot is moved out of the
//! scanner's sight (a dot-name, so nothing restarts it), its supervisors are told to stop the
//! gateway and its logger and then to exit, the scanner is asked to prune, and the directory
//! goes once both supervisors are gone. A gateway that ignores SIGTERM is killed with its
//! process group: first by s6 itself (the slot's `timeout-kill`), then by this module as a
//! backstop. Every step is non-blocking: [`poll`] is called until it says done, by the CLI in
//! a loop and by the registrar from its timers, so neither ever blocks on one gateway.
//! A teardown interrupted anywhere (the process killed) leaves a `.gateway-<P>.tmp.removing-*`
//! directory that [`leftovers`] finds and [`resume`] finishes.

use crate::ctx::Ctx;
use crate::fs::{remove_tree, Dir, RenameMode};
use crate::name::slot_name;
use crate::problem::Problem;
use crate::s6::{svc, svscan, svstat};
use std::ffi::{OsStr, OsString};
use std::io;
use std::time::{Duration, Instant};

/// When the backstop SIGKILLs the process groups (the slot's own `timeout-kill` is earlier).
pub const KILL_AFTER: Duration = Duration::from_secs(7);
/// When the logger is told to stop even though its gateway's supervisor is still there.
pub const LOGGER_AFTER: Duration = Duration::from_secs(1);
/// When a teardown is reported stuck (it is retried by the next sweep).
pub const GIVE_UP_AFTER: Duration = Duration::from_secs(30);
const MARK: &str = ".tmp.removing-";

/// Whether a scandir entry is a teardown's directory (`.gateway-<P>.tmp.removing-*`): only
/// the teardown removes it, once its supervisors are gone ([`leftovers`], [`resume`]).
pub fn is_aside(name: &OsStr) -> bool {
    name.to_str().is_some_and(|s| s.starts_with(".gateway-") && s.contains(MARK))
}

#[derive(Debug)]
pub struct Teardown {
    pub profile: String,
    /// The slot's name out of the scanner's sight.
    pub aside: OsString,
    started: Instant,
    gateway_told: bool,
    logger_told: bool,
    killed: bool,
}

#[derive(Debug)]
pub enum Progress {
    Waiting,
    Done,
    Stuck(Problem),
}

fn aside_name(profile: &str) -> OsString {
    static N: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    OsString::from(format!(".{}{MARK}{}-{n}", slot_name(profile), std::process::id()))
}

/// Whether a teardown of `profile`'s slot is still under way: its directory is aside, and
/// goes only once both its supervisors are gone.
pub fn under_way(ctx: &Ctx, scandir: &Dir, profile: &str) -> bool {
    ctx.fs.list(scandir).is_ok_and(|l| l.iter().any(|(n, _)| is_aside(n) && profile_of(n).as_deref() == Some(profile)))
}

/// The profile a leftover aside name belongs to.
fn profile_of(aside: &OsStr) -> Option<String> {
    let s = aside.to_str()?.strip_prefix(".gateway-")?;
    Some(s[..s.find(MARK)?].to_string())
}

/// Start tearing down `profile`'s slot. `Ok(None)` when there was no slot; a non-directory at
/// the slot's name (a planted link) is unlinked, never followed.
pub fn begin(ctx: &Ctx, scandir: &Dir, profile: &str) -> Result<Option<Teardown>, Problem> {
    let fs = ctx.fs;
    let name = OsString::from(slot_name(profile));
    let path = scandir.child(&name);
    match fs.lstat(scandir, &name) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(ctx.problem(&path, "inspect", e)),
        Ok(m) if m.kind != crate::fs::Kind::Dir => {
            fs.unlink(scandir, &name).map_err(|e| ctx.problem(&path, "remove", e))?;
            return Ok(None);
        }
        Ok(_) => {}
    }
    let aside = aside_name(profile);
    // Out of the scanner's sight first, so no scan can restart anything.
    fs.rename(scandir, &name, scandir, &aside, RenameMode::NoReplace).map_err(|e| ctx.problem(&path, "move aside", e))?;
    let mut t = resume(ctx, &aside);
    t.profile = profile.to_string();
    let _ = poll(ctx, scandir, &mut t);
    Ok(Some(t))
}

/// Pick up a teardown left by an interrupted process.
pub fn resume(ctx: &Ctx, aside: &OsStr) -> Teardown {
    Teardown {
        profile: profile_of(aside).unwrap_or_default(),
        aside: aside.to_os_string(),
        started: ctx.clock.instant(),
        gateway_told: false,
        logger_told: false,
        killed: false,
    }
}

/// The `.removing-*` directories in the scandir.
pub fn leftovers(ctx: &Ctx, scandir: &Dir) -> Vec<OsString> {
    let mut v: Vec<OsString> = ctx.fs.list(scandir).unwrap_or_default().into_iter().map(|(n, _)| n).filter(|n| is_aside(n)).collect();
    v.sort();
    v
}

/// Send control bytes to the supervisor of `aside/<sub>` (`""` or `"log"`), if one listens.
fn tell(ctx: &Ctx, scandir: &Dir, aside: &OsStr, sub: &str, bytes: &[u8]) {
    let Ok(slot) = ctx.fs.open_dir(scandir, aside) else { return };
    let target = if sub.is_empty() { Ok(slot) } else { ctx.fs.open_dir(&slot, OsStr::new(sub)) };
    if let Ok(d) = target {
        let _ = svc::send(ctx.fs, &d, bytes);
    }
}

fn alive(ctx: &Ctx, scandir: &Dir, aside: &OsStr, sub: &str) -> bool {
    let Ok(slot) = ctx.fs.open_dir(scandir, aside) else { return false };
    let d = if sub.is_empty() { Ok(slot) } else { ctx.fs.open_dir(&slot, OsStr::new(sub)) };
    d.is_ok_and(|d| svstat::supervisor_alive(ctx.fs, &d).unwrap_or(false))
}

/// One step: tell the gateway's supervisor to take it down and exit (its `timeout-kill`
/// SIGKILLs the process group past the grace); remove the directory once both supervisors
/// are gone; tell the logger to stop once its gateway is; past [`KILL_AFTER`], kill.
pub fn poll(ctx: &Ctx, scandir: &Dir, t: &mut Teardown) -> Progress {
    if !t.gateway_told {
        tell(ctx, scandir, &t.aside, "", b"dx");
        // The scanner forgets what it no longer sees, so it respawns nothing (and without one
        // listening, the direct command suffices).
        let _ = svscan::rescan(ctx.fs, scandir, true);
        t.gateway_told = true;
    }
    let elapsed = ctx.clock.instant().saturating_duration_since(t.started);
    let gateway = alive(ctx, scandir, &t.aside, "");
    let logger = alive(ctx, scandir, &t.aside, "log");
    if !gateway && !logger {
        return match remove_tree(ctx.fs, scandir, &t.aside) {
            Ok(()) => Progress::Done,
            Err(e) => Progress::Stuck(ctx.problem(scandir.child(&t.aside), "remove", e)),
        };
    }
    if logger && !t.logger_told && (!gateway || elapsed >= LOGGER_AFTER) {
        // s6-log ends on SIGTERM after writing what it has; its supervisor then exits.
        tell(ctx, scandir, &t.aside, "log", b"dx");
        t.logger_told = true;
    }
    if elapsed >= KILL_AFTER && !t.killed {
        // The down command again (its timeout-kill covers the process group), SIGKILL to the
        // process (`k`), to its group where the supervisor knows `K` (s6 2.15; 2.11 ignores
        // it), and exit when down.
        for sub in ["", "log"] {
            tell(ctx, scandir, &t.aside, sub, b"dkKx");
        }
        t.killed = true;
    }
    if elapsed >= GIVE_UP_AFTER {
        return Progress::Stuck(Problem::Timeout {
            what: format!(
                "the supervisors of {} to exit (gateway {}, logger {})",
                scandir.child(&t.aside).display(),
                if gateway { "alive" } else { "gone" },
                if logger { "alive" } else { "gone" }
            ),
        });
    }
    Progress::Waiting
}

/// The next moment [`poll`] has something new to do.
pub fn next_poll(ctx: &Ctx) -> Instant {
    ctx.clock.instant() + Duration::from_millis(50)
}

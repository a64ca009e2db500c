//! The facade: a [`Gateways`] handle over a context, whose methods are the verbs, and the reports they return; every module below it is the crate's own.
//!
//! The command layer (`cli/`) reaches the library only through here and the base vocabulary
//! beside it (`ctx`, `config`, `problem`, `name`, `clock`, `fs`, `escape`, `agent_files`):
//! a release build of it compiles without the `internals` feature, which alone opens the
//! modules below (tests, the simulator's suites and the benches look inside).
//!
//! A verb that acts on one gateway takes a [`Profile`], a name validated once where it entered;
//! the ones s6 or the slot's own scripts call (`finish`, the bridge) take what s6 passes and
//! validate it themselves, because they must answer whatever arrives.

use crate::boot;
use crate::config::Config;
use crate::ctx::Ctx;
use crate::lifecycle::{self, all, health, profile, restart, start, status, stop, unregister};
use crate::name::Profile;
use crate::problem::Problem;
use crate::registrar::{self, daemon};
use crate::s6::svscan;
use crate::volume::{self, adopt, gateway_logs};
use std::ffi::OsString;
use std::path::{Path, PathBuf};

pub use crate::boot::plan::Container;
pub use crate::boot::{stdout_line as boot_line, Options as BootOptions, PassReport};
pub use crate::env_dump::Dumped;
pub use crate::lifecycle::all::AllResults;
pub use crate::lifecycle::health::Health;
pub use crate::lifecycle::profile::{Deleted, Remover};
pub use crate::lifecycle::status::{PolicyView, PolicyWord, PortView, ProfileStatus, Reason, Standing, StatusReport, Verdict};
pub use crate::lifecycle::unregister::Unregistered;
pub use crate::lifecycle::usage::{human_bytes, Usage};
pub use crate::lifecycle::{Done, Wait, MAX_SETTLE, SETTLE};
pub use crate::liveness::bridge::{watcher_main as bridge_watcher, Options as BridgeOptions};
pub use crate::liveness::{Knobs as LivenessKnobs, NOTIFICATION_FD};
pub use crate::registrar::take_over::TakeOver;
pub use crate::registrar::{Converged, Registrar, Scope, DELETE_GRACE};
pub use crate::s6::svscan::Rescan;
pub use crate::trusted::unsafe_path_entry;
pub use crate::volume::adopt::Adopted;
pub use crate::volume::container::no_supervise_env;
pub use crate::volume::desired::Written;
pub use crate::volume::gateway_logs::Cursor as LogCursor;

/// The runtime verbs that act on one slot or, with `--all`, on every registered one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verb {
    Start,
    Stop,
    Restart,
}

/// The library's door: built from a context, it does what the command line asks.
#[derive(Clone, Copy)]
pub struct Gateways<'a> {
    ctx: Ctx<'a>,
}

impl<'a> Gateways<'a> {
    pub fn new(ctx: Ctx<'a>) -> Gateways<'a> {
        Gateways { ctx }
    }

    /// The context it acts with (its seams and configuration).
    pub fn ctx(&self) -> Ctx<'a> {
        self.ctx
    }

    pub fn config(&self) -> &'a Config {
        self.ctx.cfg
    }

    // The boot pass.

    /// What the container is (dashboard, legacy `gateway run`, multiplexing), read once, and a
    /// warning about it when its settings disagree.
    pub fn container(&self) -> (Container, Option<String>) {
        Container::observe(&self.ctx)
    }

    /// The boot pass: rebuild every slot from the volume, start what was wanted running.
    pub fn boot(&self, container: &Container, opts: &BootOptions) -> Result<PassReport, Problem> {
        boot::run(&self.ctx, container, opts)
    }

    // Slots (root: they write the scandir).

    pub fn register(&self, p: &Profile, start: bool) -> Result<Rescan, Problem> {
        lifecycle::register::register(&self.ctx, p, start)
    }

    pub fn unregister(&self, p: &Profile, force: bool) -> Result<Unregistered, Problem> {
        unregister::unregister(&self.ctx, p, force)
    }

    /// The profiles that have a slot, sorted.
    pub fn registered(&self) -> Result<Vec<String>, Problem> {
        let scandir = self.ctx.open_scandir()?;
        lifecycle::registered(&self.ctx, &scandir)
    }

    /// The user's side of the registrar: ring for `p` and wait until its slot is supervised
    /// (`present`) or gone.
    pub fn request(&self, p: &Profile, present: bool) -> Result<(), Problem> {
        registrar::request(&self.ctx, p, present)
    }

    /// The registrar, for this container.
    pub fn registrar(&self, container: Container) -> Result<Registrar<'a>, Problem> {
        Registrar::new(self.ctx, container)
    }

    /// Run the registrar until SIGTERM: `report` after each look that changed something,
    /// `ready` once it listens.
    pub fn watch(&self, reg: &mut Registrar, report: impl FnMut(&Converged), ready: impl FnOnce()) -> Result<(), Problem> {
        daemon::run(reg, report, ready)
    }

    // The runtime verbs (the user: control FIFOs and the user's own volume).

    /// One verb on one gateway: tell s6 (and record the wanted state), then watch as `wait` says.
    pub fn one(&self, verb: Verb, p: &Profile, wait: Wait) -> Result<Done, Problem> {
        match verb {
            Verb::Start => start::start(&self.ctx, p, wait),
            Verb::Stop => stop::stop(&self.ctx, p, wait),
            Verb::Restart => restart::restart(&self.ctx, p, wait),
        }
    }

    pub fn start(&self, p: &Profile, wait: Wait) -> Result<Done, Problem> {
        self.one(Verb::Start, p, wait)
    }

    pub fn stop(&self, p: &Profile, wait: Wait) -> Result<Done, Problem> {
        self.one(Verb::Stop, p, wait)
    }

    pub fn restart(&self, p: &Profile, wait: Wait) -> Result<Done, Problem> {
        self.one(Verb::Restart, p, wait)
    }

    /// `hermes`'s start, self-healing: a profile on the volume without a slot (created from
    /// outside, or while the registrar was down) gets one from the registrar (`registered` is
    /// told), then starts.
    pub fn start_registering(&self, p: &Profile, wait: Wait, registered: impl FnOnce()) -> Result<Done, Problem> {
        match start::start(&self.ctx, p, wait) {
            // This profile's slot missing, not another's (the root's, under multiplexing).
            Err(Problem::NotRegistered { profile, .. }) if profile == p.as_str() && volume::require_profile(&self.ctx, p).is_ok() => {
                registrar::request(&self.ctx, p, true)?;
                registered();
                start::start(&self.ctx, p, wait)
            }
            other => other,
        }
    }

    /// One verb on every registered slot (`restart`: every one wanted running), going on past
    /// failures; gateways that start are paced like a boot (`HERMES_GATEWAY_BOOT_PACE`).
    pub fn all(&self, verb: Verb, wait: Wait) -> Result<AllResults, Problem> {
        let ctx = &self.ctx;
        match verb {
            Verb::Start => all::for_all_paced(ctx, ctx.cfg.boot_pace, start::ask, |c, a| lifecycle::confirm_up(c, a, wait)),
            // The running ones: a gateway the operator stopped stays stopped.
            Verb::Restart => {
                all::for_those_paced(ctx, ctx.cfg.boot_pace, all::wanted_running, restart::ask, |c, a| lifecycle::confirm_up(c, a, wait))
            }
            Verb::Stop => all::for_all(ctx, stop::ask, |c, a| stop::confirm(c, a, wait)),
        }
    }

    // Reports.

    /// Every gateway's state (or `only`'s), with the crash policy's view and the container's.
    pub fn status(&self, only: Option<&Profile>) -> Result<StatusReport, Problem> {
        status::status(&self.ctx, only.map(|p| p.as_str()))
    }

    /// Whether an s6-svscan supervises the scandir (so `gateway run` hands over to it).
    pub fn supervising(&self) -> bool {
        svscan::supervising(&self.ctx)
    }

    /// The container probe: live (the supervision tree can act) and, with `readiness`, ready.
    pub fn health(&self, readiness: bool) -> Result<Health, Problem> {
        health::check(&self.ctx, readiness)
    }

    /// Where `p`'s gateway log is kept, and whether it exists yet.
    pub fn log_dir(&self, p: &Profile) -> Result<(PathBuf, bool), Problem> {
        Ok((gateway_logs::log_dir(&self.ctx.cfg.home, p), gateway_logs::open_log_dir(&self.ctx, p)?.is_some()))
    }

    /// The last `n` lines of `p`'s gateway log.
    pub fn log_tail(&self, p: &Profile, n: usize) -> Result<Vec<String>, Problem> {
        gateway_logs::tail(&self.ctx, p, n)
    }

    /// Where the log ends now, to follow it from.
    pub fn log_end(&self, p: &Profile) -> Result<LogCursor, Problem> {
        gateway_logs::end(&self.ctx, p)
    }

    /// What was written since `at`, and where that leaves the reader.
    pub fn log_read_new(&self, p: &Profile, at: LogCursor) -> Result<(Vec<u8>, LogCursor), Problem> {
        gateway_logs::read_new(&self.ctx, p, at)
    }

    // Profiles on the volume.

    pub fn profile_exists(&self, p: &str) -> bool {
        volume::profile_exists(&self.ctx, p).unwrap_or(false)
    }

    pub fn profile_path(&self, p: &Profile) -> PathBuf {
        volume::profile_path(&self.ctx.cfg.home, p)
    }

    /// Refuse, before anything runs, a name `profile create` may not take.
    pub fn check_new_name(&self, name: &str) -> Result<Profile, Problem> {
        profile::check_new_name(name)?;
        Ok(Profile::new(name)?)
    }

    /// Make the profile's directory as the volume's owner (when hermes-agent is not there to).
    pub fn create_profile(&self, p: &Profile) -> Result<PathBuf, Problem> {
        profile::create(&self.ctx, p)
    }

    /// Whether a registrar (or s6 itself) is there to give a new profile its slot.
    pub fn registrar_listens(&self) -> bool {
        profile::registrar_listens(&self.ctx)
    }

    /// Delete a profile: its gateway stopped through the lifecycle, its directory removed (by
    /// `remover`), its slot and (unless `keep_logs`) its log.
    pub fn delete_profile(&self, p: &Profile, remover: Remover, keep_logs: bool) -> Result<Deleted, Problem> {
        profile::delete(&self.ctx, p, remover, keep_logs)
    }

    // What s6 and the image's stages call.

    /// The crash policy's verdict on a death, as the exit code s6's `finish` gives (0 restart,
    /// 125 stay down); it always answers.
    pub fn finish(&self, profile: &str, code: i32, signal: i32, pid: Option<u64>) -> i32 {
        lifecycle::finish::finish(&self.ctx, profile, code, signal, pid, &self.ctx.cfg.policy)
    }

    /// Take over a volume populated under another uid (root).
    pub fn adopt_volume(&self) -> Result<Option<Adopted>, Problem> {
        adopt::adopt(&self.ctx)
    }

    /// Let the user control the image's static services (upstream's 015-supervise-perms).
    pub fn static_perms(&self, root: &Path, skip: &[String]) -> Result<Vec<String>, Problem> {
        crate::slot::static_services::apply(&self.ctx, root, skip)
    }

    /// Write `vars` into `dir`, one file per variable, for `with-contenv`.
    pub fn dump_env(&self, dir: &Path, vars: impl IntoIterator<Item = (OsString, OsString)>) -> Result<Dumped, Problem> {
        let (Some(parent), Some(name)) = (dir.parent(), dir.file_name()) else {
            return Err(Problem::usage(format!("{} is not a directory path with a parent", dir.display())));
        };
        let p = self.ctx.fs.open_root(parent).map_err(|e| self.ctx.problem(parent, "open", e))?;
        crate::env_dump::dump(self.ctx.fs, &p, name, vars).map_err(|e| self.ctx.problem(dir, "write the environment into", e))
    }
}

/// A slot's `run`: the readiness and liveness bridge, exec'ing the gateway in its place. It
/// returns only when the gateway cannot be exec'd.
pub fn bridge(o: BridgeOptions) -> std::io::Error {
    crate::liveness::bridge::run(o)
}

//! What every operation is given: the system seams (file system, clock) and the configuration.

use crate::clock::Clock;
use crate::config::Config;
use crate::fs::{Dir, Fs};
use crate::problem::Problem;
use std::io;
use std::path::Path;

#[derive(Clone, Copy)]
pub struct Ctx<'a> {
    pub fs: &'a dyn Fs,
    pub clock: &'a dyn Clock,
    pub cfg: &'a Config,
}

impl<'a> Ctx<'a> {
    pub fn new(fs: &'a dyn Fs, clock: &'a dyn Clock, cfg: &'a Config) -> Ctx<'a> {
        Ctx { fs, clock, cfg }
    }

    /// An I/O failure as a [`Problem`]; a permission one names the identity it was done
    /// with: the volume owner's for a path in the volume (root acts there as the owner), this
    /// process's otherwise.
    pub fn problem(&self, path: impl AsRef<Path>, action: &str, e: io::Error) -> Problem {
        let euid = self.fs.euid();
        let uid = if euid == 0 && path.as_ref().starts_with(&self.cfg.home) { self.cfg.uid } else { euid };
        Problem::io(path, action, e, uid)
    }

    /// The scan directory, or the problem that makes every runtime command exit 3.
    pub fn open_scandir(&self) -> Result<Dir, Problem> {
        self.fs.open_root(&self.cfg.scandir).map_err(|error| Problem::Scandir { path: self.cfg.scandir.clone(), error })
    }

    /// `$HERMES_HOME`, entered with the volume owner's identity.
    pub fn open_home(&self) -> io::Result<Dir> {
        self.fs.open_volume(&self.cfg.home, self.cfg.owner())
    }

    /// Refuse a root-side verb before its first side effect when this process may not write the
    /// scandir, and say what the user should run instead.
    pub fn require_authority(&self, scandir: &Dir, what: &str, instead: &str) -> Result<(), Problem> {
        if self.owns_scandir(scandir) {
            Ok(())
        } else {
            Err(Problem::NeedsRoot { what: what.to_string(), path: scandir.path().to_path_buf(), instead: instead.to_string() })
        }
    }

    /// Refuse, before any side effect, a verb only root may run (it changes owners).
    pub fn require_root(&self, what: &str, path: &Path, instead: &str) -> Result<(), Problem> {
        if self.fs.euid() == 0 {
            Ok(())
        } else {
            Err(Problem::NeedsRoot { what: what.to_string(), path: path.to_path_buf(), instead: instead.to_string() })
        }
    }

    /// Whether this process may write the root-owned scandir: root, or (a container run with
    /// `--user`) the scandir's own owner.
    pub fn owns_scandir(&self, scandir: &Dir) -> bool {
        let euid = self.fs.euid();
        euid == 0 || self.fs.lstat(scandir, std::ffi::OsStr::new(".")).is_ok_and(|m| m.uid == euid)
    }
}

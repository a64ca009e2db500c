//! inotify on the volume: the home (for `profiles/` coming and going), `profiles/` (profile
//! directories created, removed, renamed) and every profile directory (`SOUL.md`); and on the
//! scandir, for `gateway-*` slots someone else publishes (checked and, if not ours, replaced). Watches
//! are added through `/proc/self/fd/<n>` of directories opened without following links, and
//! never follow a link themselves, so a link planted in the volume cannot point them elsewhere.
//! Events say only which profile to look at; what to do is decided by reading the volume.
//!
//! Watches are bounded. inotify's limit is per uid (`fs.inotify.max_user_watches`), and
//! without a user namespace the container's root is the host's root: one watch per directory
//! the hermes user makes under `profiles/` would let it exhaust the limit for every root
//! process on the host. So at most [`budget`] watches are held (the scanner's capacity in
//! services, which is twice the profiles it can supervise, and never more than a quarter of
//! the host's limit); real profiles (with `SOUL.md`) are watched first, and beyond the budget
//! the registrar's periodic resync is what sees a change (said in its log and in `status`).

use super::Scope;
use crate::fs::Dir;
use crate::name::{self, DEFAULT_PROFILE};
use crate::volume::policy_record::RECORD_FILE;
use crate::volume::{MARKER, PROFILES_DIR};
use nix::sys::inotify::{AddWatchFlags, InitFlags, Inotify, WatchDescriptor};
use std::collections::{BTreeSet, HashMap};
use std::ffi::OsStr;
use std::io;
use std::os::fd::{AsFd, BorrowedFd};

#[derive(Debug, Clone, PartialEq, Eq)]
enum Watched {
    Home,
    Profiles,
    Profile(String),
    /// The scandir (root's): a `gateway-*` entry someone else made there is looked at at once.
    Scandir,
}

pub struct VolumeWatch {
    ino: Inotify,
    watches: HashMap<WatchDescriptor, Watched>,
    /// The most watches held at once.
    budget: usize,
    /// The volume's owner: a watch root is refused on a private directory is added as them.
    owner: Option<crate::fs::Ident>,
    /// A watch could not be added (the budget, or the user's watch limit): only the resync
    /// covers what it would have seen.
    pub degraded: Option<String>,
    /// Any entry created in a profile directory (the home for `default`) is a reason to look
    /// at that profile: the registrar takes over what root made there (root mode).
    pub any_entry: bool,
}

/// Fewest watches whatever the limits say: the home, `profiles/` and a few profiles.
const MIN_BUDGET: usize = 16;

/// How many watches the registrar may hold: the scanner's capacity in services (each
/// profile needs two, so twice the profiles it can supervise), at most a quarter of the
/// host's per-uid limit (`host_limit`, from `/proc/sys/fs/inotify/max_user_watches`) so
/// root's other programs keep the rest.
pub fn budget(max_services: usize, host_limit: Option<usize>) -> usize {
    let share = host_limit.map_or(usize::MAX, |l| l / 4);
    max_services.min(share).max(MIN_BUDGET)
}

/// The host's per-uid inotify watch limit, when it can be read.
pub fn host_limit() -> Option<usize> {
    std::fs::read_to_string("/proc/sys/fs/inotify/max_user_watches").ok()?.trim().parse().ok()
}

fn entries() -> AddWatchFlags {
    AddWatchFlags::IN_CREATE | AddWatchFlags::IN_DELETE | AddWatchFlags::IN_MOVED_FROM | AddWatchFlags::IN_MOVED_TO
}

/// An entry that appeared (made here or moved in).
fn arrived() -> AddWatchFlags {
    AddWatchFlags::IN_CREATE | AddWatchFlags::IN_MOVED_TO
}

/// A `/proc/self/fd/<n>` path is itself a (magic) link to the directory we opened: it is
/// followed. Below it, a profile's name is never followed.
fn guard(path: &std::path::Path) -> AddWatchFlags {
    if path.parent().is_some_and(|p| p.ends_with("fd")) {
        AddWatchFlags::IN_ONLYDIR
    } else {
        AddWatchFlags::IN_ONLYDIR | AddWatchFlags::IN_DONT_FOLLOW
    }
}

impl VolumeWatch {
    pub fn new(budget: usize) -> io::Result<VolumeWatch> {
        let ino = Inotify::init(InitFlags::IN_NONBLOCK | InitFlags::IN_CLOEXEC).map_err(io::Error::from)?;
        Ok(VolumeWatch { ino, watches: HashMap::new(), budget: budget.max(2), owner: None, degraded: None, any_entry: false })
    }

    pub fn fd(&self) -> BorrowedFd<'_> {
        self.ino.as_fd()
    }

    fn add(&mut self, path: &std::path::Path, mask: AddWatchFlags, what: Watched) {
        if matches!(what, Watched::Profile(_)) && self.watches.len() + 1 > self.budget {
            if self.degraded.is_none() {
                self.degraded = Some(format!(
                    "the registrar's inotify budget of {} watches is spent (more directories under profiles/ than the scanner can supervise); changes in the profiles beyond it are seen by the resync every {} s",
                    self.budget,
                    super::RESYNC.as_secs()
                ));
            }
            return;
        }
        let ino = &self.ino;
        let added = crate::fs::lookup(self.owner, || ino.add_watch(path, mask | guard(path)).map_err(io::Error::from));
        match added {
            Ok(wd) => {
                self.watches.insert(wd, what);
            }
            Err(e) => {
                if self.degraded.is_none() {
                    let fix = if e.raw_os_error() == Some(nix::libc::ENOSPC) { " (raise fs.inotify.max_user_watches)" } else { "" };
                    self.degraded = Some(format!("cannot watch {what:?} ({e}); changes there are seen by the resync only{fix}"));
                }
            }
        }
    }

    /// (Re)establish every watch: the home, `profiles/`, and each valid profile directory.
    pub fn watch_all(&mut self, fs: &dyn crate::fs::Fs, home: &Dir) {
        self.owner = home.ident();
        let volume: Vec<WatchDescriptor> = self.watches.iter().filter(|(_, w)| **w != Watched::Scandir).map(|(wd, _)| *wd).collect();
        for wd in volume {
            self.watches.remove(&wd);
            let _ = self.ino.rm_watch(wd);
        }
        self.degraded = None;
        self.add(&home.proc_path(), entries(), Watched::Home);
        let Ok(profiles) = fs.open_dir(home, OsStr::new(PROFILES_DIR)) else { return };
        let base = profiles.proc_path();
        self.add(&base, entries() | AddWatchFlags::IN_DELETE_SELF | AddWatchFlags::IN_MOVE_SELF, Watched::Profiles);
        let mut dirs: Vec<(bool, String)> = fs
            .list(&profiles)
            .unwrap_or_default()
            .into_iter()
            .filter_map(|(n, k)| {
                n.into_string().ok().filter(|n| k == crate::fs::Kind::Dir && name::validate(n).is_ok() && n != DEFAULT_PROFILE)
            })
            .map(|n| (false, n))
            .collect();
        // Real profiles first, when not all of them fit.
        if dirs.len() + self.watches.len() > self.budget {
            for (real, n) in &mut dirs {
                *real = fs.open_dir(&profiles, OsStr::new(n.as_str())).is_ok_and(|d| fs.lstat(&d, OsStr::new(MARKER)).is_ok());
            }
            dirs.sort_by_key(|(real, _)| !*real);
        }
        for (_, n) in dirs {
            self.add(&base.join(&n), entries(), Watched::Profile(n));
        }
    }

    /// Watch the scandir for slots appearing (made, or renamed into place), whoever made them.
    pub fn watch_scandir(&mut self, scandir: &Dir) {
        if !self.watches.values().any(|w| *w == Watched::Scandir) {
            self.add(&scandir.proc_path(), AddWatchFlags::IN_CREATE | AddWatchFlags::IN_MOVED_TO, Watched::Scandir);
        }
    }

    /// Watch one (new) profile directory under `profiles`.
    fn watch_profile(&mut self, fs: &dyn crate::fs::Fs, home: &Dir, name: &str) {
        if self.watches.values().any(|w| *w == Watched::Profile(name.to_string())) {
            return;
        }
        if let Ok(profiles) = fs.open_dir(home, OsStr::new(PROFILES_DIR)) {
            self.add(&profiles.proc_path().join(name), entries(), Watched::Profile(name.to_string()));
        }
    }

    /// Read what happened: which profiles to look at (or everything), re-watching as needed.
    pub fn read(&mut self, fs: &dyn crate::fs::Fs, home: Option<&Dir>) -> Scope {
        let mut names = BTreeSet::new();
        let mut everything = false;
        let mut rewatch = false;
        while let Ok(events) = self.ino.read_events() {
            if events.is_empty() {
                break;
            }
            for ev in events {
                if ev.mask.contains(AddWatchFlags::IN_Q_OVERFLOW) {
                    everything = true;
                    rewatch = true;
                    continue;
                }
                let Some(what) = self.watches.get(&ev.wd).cloned() else { continue };
                if ev.mask.contains(AddWatchFlags::IN_IGNORED) {
                    self.watches.remove(&ev.wd);
                }
                let name = ev.name.as_ref().and_then(|n| n.to_str()).map(str::to_string);
                match what {
                    Watched::Home if name.as_deref() == Some(PROFILES_DIR) => {
                        everything = true;
                        rewatch = true;
                    }
                    Watched::Home if name.as_deref() == Some(RECORD_FILE) => {
                        names.insert(DEFAULT_PROFILE.to_string());
                    }
                    Watched::Home if self.any_entry && name.is_some() && ev.mask.intersects(arrived()) => {
                        names.insert(DEFAULT_PROFILE.to_string());
                    }
                    Watched::Home => {}
                    Watched::Profiles if ev.mask.intersects(AddWatchFlags::IN_DELETE_SELF | AddWatchFlags::IN_MOVE_SELF) => {
                        everything = true;
                        rewatch = true;
                    }
                    // Tombstones came or went (`profiles/.deleted`): any profile may be gone.
                    Watched::Profiles if name.as_deref() == Some(crate::volume::tombstone::DELETED_DIR) => everything = true,
                    Watched::Profiles => {
                        if let Some(n) = name.filter(|n| name::validate(n).is_ok()) {
                            if ev.mask.intersects(AddWatchFlags::IN_CREATE | AddWatchFlags::IN_MOVED_TO) {
                                if let Some(h) = home {
                                    self.watch_profile(fs, h, &n);
                                }
                            }
                            names.insert(n);
                        }
                    }
                    Watched::Scandir => match name.as_deref().and_then(|n| n.strip_prefix(name::SLOT_PREFIX)) {
                        Some(p) if name::validate(p).is_ok() => {
                            names.insert(p.to_string());
                        }
                        // Not a profile's name: only a full look sweeps those.
                        Some(_) => everything = true,
                        None => {}
                    },
                    Watched::Profile(p) => {
                        let arrived = self.any_entry && ev.mask.intersects(arrived());
                        let parked = name.as_deref() == Some(crate::volume::parked::PARKED_FILE);
                        if arrived
                            || parked
                            || name.as_deref() == Some(MARKER)
                            || name.as_deref() == Some(RECORD_FILE)
                            || ev.mask.intersects(AddWatchFlags::IN_DELETE_SELF | AddWatchFlags::IN_MOVE_SELF)
                        {
                            names.insert(p);
                        }
                    }
                }
            }
        }
        if rewatch {
            if let Some(h) = home {
                self.watch_all(fs, h);
            }
        }
        if everything {
            Scope::Everything
        } else {
            Scope::Profiles(names)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fs::{Fs, RealFs};

    #[test]
    fn the_budget_is_the_scanners_capacity_within_a_quarter_of_the_hosts_limit() {
        assert_eq!(budget(10_000, Some(8192)), 2048);
        assert_eq!(budget(500, Some(1_000_000)), 500);
        assert_eq!(budget(500, None), 500);
        assert_eq!(budget(4, Some(8)), MIN_BUDGET);
    }

    #[test]
    fn beyond_the_budget_real_profiles_are_watched_first_and_it_says_so() {
        let tmp = tempfile::tempdir().unwrap();
        let profiles = tmp.path().join("profiles");
        for i in 0..60 {
            std::fs::create_dir_all(profiles.join(format!("junk-{i:02}"))).unwrap();
        }
        for p in ["zeta", "alpha"] {
            std::fs::create_dir(profiles.join(p)).unwrap();
            std::fs::write(profiles.join(p).join(MARKER), "").unwrap();
        }
        let home = RealFs.open_root(tmp.path()).unwrap();
        let mut w = VolumeWatch::new(10).unwrap();
        w.watch_all(&RealFs, &home);
        assert_eq!(w.watches.len(), 10);
        for p in ["zeta", "alpha"] {
            assert!(w.watches.values().any(|x| *x == Watched::Profile(p.into())), "{p} is not watched");
        }
        assert!(w.degraded.as_deref().is_some_and(|d| d.contains("budget of 10")));
    }

    /// A file a root command drops into a profile (or the home) is a reason to look at that
    /// profile when the registrar takes over root-made entries, and only then.
    #[test]
    fn a_new_entry_in_a_profile_names_it_when_taking_over() {
        for any_entry in [false, true] {
            let tmp = tempfile::tempdir().unwrap();
            std::fs::create_dir_all(tmp.path().join("profiles/coder")).unwrap();
            let home = RealFs.open_root(tmp.path()).unwrap();
            let mut w = VolumeWatch::new(64).unwrap();
            w.any_entry = any_entry;
            w.watch_all(&RealFs, &home);
            std::fs::write(tmp.path().join("profiles/coder/.env"), "K=1").unwrap();
            std::fs::write(tmp.path().join(".env"), "K=1").unwrap();
            let want: BTreeSet<String> =
                if any_entry { ["coder".to_string(), DEFAULT_PROFILE.to_string()].into() } else { BTreeSet::new() };
            assert_eq!(w.read(&RealFs, Some(&home)), Scope::Profiles(want), "any_entry={any_entry}");
        }
    }
}

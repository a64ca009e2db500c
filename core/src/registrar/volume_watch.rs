//! inotify on the volume: the home (for `profiles/` coming and going), `profiles/` (profile
//! directories created, removed, renamed) and every profile directory (`SOUL.md`); and on the
//! scandir, for `gateway-*` slots someone else publishes (checked and, if not ours, replaced). Watches
//! are added through `/proc/self/fd/<n>` of directories opened without following links, and
//! never follow a link themselves, so a link planted in the volume cannot point them elsewhere.
//! Events say only which profile to look at; what to do is decided by reading the volume.

use super::Scope;
use crate::fs::Dir;
use crate::name::{self, DEFAULT_PROFILE};
use crate::policy::record::RECORD_FILE;
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
    /// A watch could not be added (e.g. the user's watch limit): only the resync covers it.
    pub degraded: Option<String>,
}

fn entries() -> AddWatchFlags {
    AddWatchFlags::IN_CREATE | AddWatchFlags::IN_DELETE | AddWatchFlags::IN_MOVED_FROM | AddWatchFlags::IN_MOVED_TO
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
    pub fn new() -> io::Result<VolumeWatch> {
        let ino = Inotify::init(InitFlags::IN_NONBLOCK | InitFlags::IN_CLOEXEC).map_err(io::Error::from)?;
        Ok(VolumeWatch { ino, watches: HashMap::new(), degraded: None })
    }

    pub fn fd(&self) -> BorrowedFd<'_> {
        self.ino.as_fd()
    }

    fn add(&mut self, path: &std::path::Path, mask: AddWatchFlags, what: Watched) {
        match self.ino.add_watch(path, mask | guard(path)) {
            Ok(wd) => {
                self.watches.insert(wd, what);
            }
            Err(e) => {
                if self.degraded.is_none() {
                    self.degraded = Some(format!(
                        "cannot watch {what:?} ({e}); changes there are seen by the resync only (raise fs.inotify.max_user_watches)"
                    ));
                }
            }
        }
    }

    /// (Re)establish every watch: the home, `profiles/`, and each valid profile directory.
    pub fn watch_all(&mut self, fs: &dyn crate::fs::Fs, home: &Dir) {
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
        for (n, k) in fs.list(&profiles).unwrap_or_default() {
            if let Some(n) = n.to_str().filter(|n| k == crate::fs::Kind::Dir && name::validate(n).is_ok() && *n != DEFAULT_PROFILE) {
                self.add(&base.join(n), entries(), Watched::Profile(n.to_string()));
            }
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
                    Watched::Home => {}
                    Watched::Profiles if ev.mask.intersects(AddWatchFlags::IN_DELETE_SELF | AddWatchFlags::IN_MOVE_SELF) => {
                        everything = true;
                        rewatch = true;
                    }
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
                        if name.as_deref() == Some(MARKER) || name.as_deref() == Some(RECORD_FILE) || ev.mask.intersects(AddWatchFlags::IN_DELETE_SELF | AddWatchFlags::IN_MOVE_SELF) {
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

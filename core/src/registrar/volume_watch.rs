//! inotify on the volume: the home (for `profiles/` coming and going), `profiles/` (profile
//! directories created, removed, renamed) and every profile directory (`SOUL.md`). Watches
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
}

pub struct VolumeWatch {
    ino: Inotify,
    watches: HashMap<WatchDescriptor, Watched>,
    /// A watch could not be added (e.g. the user's watch limit): only the resync covers it.
    pub degraded: Option<String>,
    /// Any entry created in a profile directory (the home for `default`) is a reason to look
    /// at that profile: the registrar takes over what root made there (root mode).
    pub any_entry: bool,
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
    pub fn new() -> io::Result<VolumeWatch> {
        let ino = Inotify::init(InitFlags::IN_NONBLOCK | InitFlags::IN_CLOEXEC).map_err(io::Error::from)?;
        Ok(VolumeWatch { ino, watches: HashMap::new(), degraded: None, any_entry: false })
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
        for wd in self.watches.drain().map(|(wd, _)| wd).collect::<Vec<_>>() {
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
                    Watched::Profile(p) => {
                        let arrived = self.any_entry && ev.mask.intersects(arrived());
                        if arrived || name.as_deref() == Some(MARKER) || name.as_deref() == Some(RECORD_FILE) || ev.mask.intersects(AddWatchFlags::IN_DELETE_SELF | AddWatchFlags::IN_MOVE_SELF) {
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

    /// A file a root command drops into a profile (or the home) is a reason to look at that
    /// profile when the registrar takes over root-made entries, and only then.
    #[test]
    fn a_new_entry_in_a_profile_names_it_when_taking_over() {
        for any_entry in [false, true] {
            let tmp = tempfile::tempdir().unwrap();
            std::fs::create_dir_all(tmp.path().join("profiles/coder")).unwrap();
            let home = RealFs.open_root(tmp.path()).unwrap();
            let mut w = VolumeWatch::new().unwrap();
            w.any_entry = any_entry;
            w.watch_all(&RealFs, &home);
            std::fs::write(tmp.path().join("profiles/coder/.env"), "K=1").unwrap();
            std::fs::write(tmp.path().join(".env"), "K=1").unwrap();
            let want: BTreeSet<String> = if any_entry { ["coder".to_string(), DEFAULT_PROFILE.to_string()].into() } else { BTreeSet::new() };
            assert_eq!(w.read(&RealFs, Some(&home)), Scope::Profiles(want), "any_entry={any_entry}");
        }
    }
}

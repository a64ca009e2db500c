//! Programs root runs by name from a rendered script (`s6-applyuidgid` before it drops
//! privileges, `hermes-reconcile` in every `finish`) are written into the script as absolute
//! paths found at render time, and only where nobody but root can change them: a directory on
//! `PATH` that the hermes user can write (a deployment's `/opt/hermes/bin`, say) would
//! otherwise let it choose what root runs at every gateway death.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

/// Whether `path` (resolved) and every directory above it belong to root and are writable by
/// no one else: then only root can change what runs there.
pub fn only_root_can_change(path: &Path) -> bool {
    let Ok(real) = std::fs::canonicalize(path) else { return false };
    let safe = |p: &Path| std::fs::metadata(p).is_ok_and(|m| m.uid() == 0 && m.mode() & 0o022 == 0);
    safe(&real) && real.ancestors().skip(1).all(safe)
}

fn executable(path: &Path) -> bool {
    std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.mode() & 0o111 != 0)
}

/// The first `name` on `path_var` that is executable and that only root can change.
pub fn find(name: &str, path_var: Option<&str>) -> Option<PathBuf> {
    path_var?
        .split(':')
        .filter(|dir| dir.starts_with('/'))
        .map(|dir| Path::new(dir).join(name))
        .find(|p| executable(p) && only_root_can_change(p))
}

/// Why root must not search `entry` (one entry of `PATH`) for programs, or `None` when only
/// root can change what is found there. Refused: an empty or relative entry (the current
/// directory decides), and a directory that anyone but root could fill or swap: one not
/// owned by root, or writable by its group or others, or below a directory like that (a
/// sticky directory such as `/tmp` is fine *above* the entry, since only root may then
/// rename root's child), or reached through a link that is not root's. An entry that does
/// not exist is fine only if nobody but root could create it. Anything that cannot be
/// checked is refused too.
pub fn unsafe_path_entry(entry: &str) -> Option<String> {
    if entry.is_empty() {
        return Some("it is empty, which means the current directory".into());
    }
    if !entry.starts_with('/') {
        return Some("it is relative, so the current directory decides what it names".into());
    }
    let mut hops = 0;
    walk(Path::new(entry), &mut hops).err()
}

fn walk(path: &Path, hops: &mut u32) -> Result<(), String> {
    use std::path::Component;
    let comps: Vec<Component> = path.components().collect();
    let mut at = PathBuf::from("/");
    check_dir(&at, &std::fs::symlink_metadata(&at).map_err(|e| format!("/ cannot be checked ({e})"))?, comps.len() <= 1)?;
    for (i, c) in comps.iter().enumerate() {
        let last = i + 1 == comps.len();
        let name = match c {
            Component::Normal(n) => n,
            Component::ParentDir => {
                at.pop();
                continue;
            }
            _ => continue,
        };
        let next = at.join(name);
        let m = match std::fs::symlink_metadata(&next) {
            Ok(m) => m,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                // Missing: harmless only if nobody but root may create it.
                let parent = std::fs::symlink_metadata(&at).map_err(|e| format!("{} cannot be checked ({e})", at.display()))?;
                if parent.mode() & 0o022 != 0 {
                    return Err(format!(
                        "{} does not exist, and {} (mode {:o}) lets users other than root create it",
                        next.display(),
                        at.display(),
                        parent.mode() & 0o7777
                    ));
                }
                return Ok(());
            }
            Err(e) => return Err(format!("{} cannot be checked ({e})", next.display())),
        };
        if m.file_type().is_symlink() {
            if m.uid() != 0 {
                return Err(format!("it goes through {}, a link owned by uid {}", next.display(), m.uid()));
            }
            *hops += 1;
            if *hops > 40 {
                return Err("it cannot be checked: too many links".into());
            }
            let target = std::fs::read_link(&next).map_err(|e| format!("{} cannot be checked ({e})", next.display()))?;
            let mut rest = at.join(target);
            for c in &comps[i + 1..] {
                rest.push(c.as_os_str());
            }
            return walk(&rest, hops);
        }
        check_dir(&next, &m, last)?;
        at = next;
    }
    Ok(())
}

/// A directory on the way to a PATH entry (`last`: the entry itself) is root's and only root
/// may add to it; above the entry, a sticky directory others may write is fine.
fn check_dir(dir: &Path, m: &std::fs::Metadata, last: bool) -> Result<(), String> {
    if m.uid() != 0 {
        return Err(format!("{} belongs to uid {}", dir.display(), m.uid()));
    }
    let open = m.mode() & 0o022 != 0;
    let sticky = m.mode() & 0o1000 != 0;
    if open && (last || !sticky) {
        return Err(format!("{} is writable by users other than root (mode {:o})", dir.display(), m.mode() & 0o7777));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn a_program_in_a_directory_others_can_write_is_never_chosen() {
        let t = tempfile::tempdir().unwrap();
        let open = t.path().join("open");
        std::fs::create_dir(&open).unwrap();
        std::fs::set_permissions(&open, std::fs::Permissions::from_mode(0o777)).unwrap();
        let planted = open.join("s6-applyuidgid");
        std::fs::write(&planted, "#!/bin/sh\n").unwrap();
        std::fs::set_permissions(&planted, std::fs::Permissions::from_mode(0o755)).unwrap();
        let path = format!("{}:/usr/bin:/bin", open.display());
        assert!(!only_root_can_change(&planted));
        assert_ne!(find("s6-applyuidgid", Some(&path)).as_deref(), Some(planted.as_path()));
        assert_eq!(find("sh", Some("relative/dir")), None, "relative PATH entries are skipped");
    }

    #[test]
    fn system_directories_are_trusted() {
        assert!(find("sh", Some("/usr/bin:/bin")).is_some(), "/bin/sh is root's on every Debian");
        assert!(find("no-such-program-anywhere", Some("/usr/bin")).is_none());
    }

    #[test]
    fn a_path_entry_others_could_fill_is_named_and_system_ones_pass() {
        for ok in ["/usr/bin", "/bin", "/usr/local/bin", "/no-such-dir-anywhere/bin", "/usr/../usr/bin"] {
            assert_eq!(unsafe_path_entry(ok), None, "{ok}");
        }
        assert!(unsafe_path_entry("").unwrap().contains("empty"));
        assert!(unsafe_path_entry("bin").unwrap().contains("relative"));
        assert!(
            unsafe_path_entry("/tmp").unwrap().contains("writable by users other than root"),
            "sticky is not enough for the entry itself"
        );
        let missing = unsafe_path_entry("/tmp/no-such-dir-here").unwrap();
        assert!(missing.contains("does not exist") && missing.contains("/tmp"), "{missing}");

        let t = tempfile::tempdir().unwrap();
        let open = t.path().join("open");
        std::fs::create_dir(&open).unwrap();
        std::fs::set_permissions(&open, std::fs::Permissions::from_mode(0o777)).unwrap();
        let why = unsafe_path_entry(open.to_str().unwrap()).unwrap();
        assert!(why.contains(&open.display().to_string()), "{why}");
        // The user's own directory (here: chowned to it when this runs as root).
        let users = t.path().join("users");
        std::fs::create_dir(&users).unwrap();
        if nix::unistd::geteuid().is_root() {
            std::os::unix::fs::chown(&users, Some(10000), Some(10000)).unwrap();
        }
        let why = unsafe_path_entry(users.to_str().unwrap()).unwrap();
        assert!(why.contains("belongs to uid"), "{why}");
        // Below a directory others can write, and through a link into one.
        assert!(unsafe_path_entry(open.join("sub").to_str().unwrap()).is_some());
        let link = t.path().join("link");
        std::os::unix::fs::symlink(&open, &link).unwrap();
        assert!(unsafe_path_entry(link.to_str().unwrap()).is_some());
        if nix::unistd::geteuid().is_root() {
            let good = t.path().join("good");
            std::os::unix::fs::symlink("/usr/bin", &good).unwrap();
            assert_eq!(unsafe_path_entry(good.to_str().unwrap()), None, "a root link to a root directory");
        }
    }
}

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
}

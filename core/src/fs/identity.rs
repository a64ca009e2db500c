//! Acting in the user's volume with the user's file-system identity.
//!
//! `setfsuid`/`setfsgid` change only the identity the kernel checks file access against, and
//! only for the calling thread; when the fsuid leaves 0 the kernel also clears the file
//! capabilities (`CAP_DAC_OVERRIDE`, `CAP_FOWNER`, `CAP_CHOWN`…) from the effective set. So an
//! operation done under an [`AsUser`] guard can open, create, rename and remove exactly what
//! the user could: a link or a hard link the user planted towards a root file leads nowhere,
//! whatever `fs.protected_hardlinks` says, and whatever it creates is the user's.

use super::Ident;
use std::io;
use std::sync::Once;

fn setfsuid(uid: u32) -> u32 {
    // SAFETY: plain system call; the raw form (not glibc's) keeps the change per thread.
    unsafe { nix::libc::syscall(nix::libc::SYS_setfsuid, uid as nix::libc::c_long) as u32 }
}

fn setfsgid(gid: u32) -> u32 {
    // SAFETY: as above.
    unsafe { nix::libc::syscall(nix::libc::SYS_setfsgid, gid as nix::libc::c_long) as u32 }
}

/// `setfsuid(-1)` changes nothing and returns the current value: the only way to read it.
fn current() -> (u32, u32) {
    (setfsuid(u32::MAX), setfsgid(u32::MAX))
}

/// Root's supplementary groups would still count for file access under another fsuid, so a
/// root process that is about to act as the user drops them once. Root never needs them.
fn drop_supplementary_groups() -> io::Result<()> {
    static ONCE: Once = Once::new();
    let mut result = Ok(());
    ONCE.call_once(|| {
        if nix::unistd::getgroups().map(|g| !g.is_empty()).unwrap_or(true) {
            result = nix::unistd::setgroups(&[]).map_err(io::Error::from);
        }
    });
    result
}

/// While alive, this thread's file-system identity is the user's; dropping it restores the
/// previous one. A no-op when the process is not root (the kernel already checks its own
/// identity) or when `ident` is `None`.
pub struct AsUser {
    restore: Option<(u32, u32)>,
}

impl AsUser {
    pub fn enter(ident: Option<Ident>) -> io::Result<AsUser> {
        let Some(id) = ident else { return Ok(AsUser { restore: None }) };
        if !nix::unistd::geteuid().is_root() {
            return Ok(AsUser { restore: None });
        }
        drop_supplementary_groups()?;
        let before = current();
        // gid first: once the fsuid is not 0, setfsgid would no longer be permitted.
        setfsgid(id.gid);
        setfsuid(id.uid);
        let guard = AsUser { restore: Some(before) };
        // Fail closed: an identity that did not take would mean acting as root.
        if current() != (id.uid, id.gid) {
            return Err(io::Error::new(io::ErrorKind::PermissionDenied, format!("could not take file-system identity {}:{}", id.uid, id.gid)));
        }
        Ok(guard)
    }
}

impl Drop for AsUser {
    fn drop(&mut self) {
        if let Some((uid, gid)) = self.restore {
            setfsuid(uid);
            setfsgid(gid);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    #[ignore = "needs root"]
    fn identity_is_taken_and_given_back() {
        assert!(nix::unistd::geteuid().is_root(), "run as root");
        let before = current();
        {
            let _g = AsUser::enter(Some(Ident { uid: 10000, gid: 10000 })).unwrap();
            assert_eq!(current(), (10000, 10000));
        }
        assert_eq!(current(), before);
    }
}

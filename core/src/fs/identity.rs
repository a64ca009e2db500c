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

use std::cell::Cell;

thread_local! {
    /// The identity this thread's file-system ids are switched to (`None`: the process's own).
    static ACTIVE: Cell<Option<Ident>> = const { Cell::new(None) };
}

/// Make `ident` (`None`: the process's own ids, its effective uid and gid) this thread's
/// file-system identity.
fn switch_to(ident: Option<Ident>) -> io::Result<()> {
    if ACTIVE.with(Cell::get).is_none() {
        drop_supplementary_groups()?;
    }
    let Some(id) = ident else {
        // The process's own ids, not whatever this thread had: a thread started while its
        // creator held the user's identity inherits that identity, and comes back from it
        // here. Giving back can only fail towards less privilege.
        setfsuid(nix::unistd::geteuid().as_raw());
        setfsgid(nix::unistd::getegid().as_raw());
        ACTIVE.with(|a| a.set(None));
        return Ok(());
    };
    setfsgid(id.gid);
    setfsuid(id.uid);
    // Fail closed, at every switch: an identity that did not take (a root process without
    // CAP_SETUID/CAP_SETGID) would mean acting as root in the user's tree.
    if current() != (id.uid, id.gid) {
        let _ = switch_to(None);
        return Err(io::Error::new(io::ErrorKind::PermissionDenied, format!("could not take file-system identity {}:{}", id.uid, id.gid)));
    }
    ACTIVE.with(|a| a.set(ident));
    Ok(())
}

/// While alive, this thread's file-system identity is the one asked for (`None`: the
/// process's own); dropping it restores the previous one. Asking for the identity already in
/// effect costs nothing, so a caller can hold one guard across a run of operations in the
/// same directory and each operation's own guard is then free. Taking the user's identity is
/// a no-op when the process is not root (the kernel already checks its own identity).
pub struct AsUser {
    restore: Option<Option<Ident>>,
}

impl AsUser {
    /// For an operation that opens content or changes the tree below a directory of identity
    /// `ident`.
    pub fn enter(ident: Option<Ident>) -> io::Result<AsUser> {
        let active = ACTIVE.with(Cell::get);
        if active == ident || (ident.is_some() && !nix::unistd::geteuid().is_root()) {
            return Ok(AsUser { restore: None });
        }
        switch_to(ident)?;
        Ok(AsUser { restore: Some(active) })
    }

    /// For a metadata-only operation (entering a directory, listing names, `lstat`), which runs
    /// as the process unless a held guard switched this thread: then it runs with the
    /// directory's identity like any other operation.
    pub fn enter_lookup(ident: Option<Ident>) -> io::Result<AsUser> {
        if ACTIVE.with(Cell::get).is_none() {
            return Ok(AsUser { restore: None });
        }
        AsUser::enter(ident)
    }
}

impl Drop for AsUser {
    fn drop(&mut self) {
        if let Some(previous) = self.restore {
            // Back to root can only fail towards less privilege; back to the user (after a
            // root operation under a hold) is checked like any switch, and a failure leaves
            // the record saying root, so the next volume operation switches (and checks) again.
            if switch_to(previous).is_err() {
                ACTIVE.with(|a| a.set(None));
            }
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

    #[test]
    #[ignore = "needs root"]
    fn a_held_identity_makes_its_own_operations_free_and_still_gives_root_operations_root() {
        assert!(nix::unistd::geteuid().is_root(), "run as root");
        let user = Some(Ident { uid: 10000, gid: 10000 });
        let before = current();
        assert!(AsUser::enter_lookup(user).unwrap().restore.is_none(), "no guard held: lookups run as the process");
        {
            let held = AsUser::enter(user).unwrap();
            assert!(held.restore.is_some());
            {
                let inner = AsUser::enter(user).unwrap();
                assert!(inner.restore.is_none(), "the identity in effect costs nothing");
                assert_eq!(current(), (10000, 10000));
            }
            assert_eq!(current(), (10000, 10000), "an inner guard leaves the held identity");
            {
                let _root = AsUser::enter(None).unwrap();
                assert_eq!(current(), before, "a root operation under a held user guard runs as root");
            }
            {
                let _lookup = AsUser::enter_lookup(None).unwrap();
                assert_eq!(current(), before, "so does a root lookup");
            }
            assert_eq!(current(), (10000, 10000));
            // A thread started under the hold inherits the user's ids; its first switch gives
            // it the process's own back, never the user's as "its own".
            std::thread::scope(|s| {
                s.spawn(|| {
                    assert_eq!(current(), (10000, 10000), "inherited");
                    drop(AsUser::enter(user).unwrap());
                    assert_eq!(current(), before, "back to the process's own ids");
                });
            });
            drop(held);
        }
        assert_eq!(current(), before);
    }
}

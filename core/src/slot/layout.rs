//! What a slot is made of: its files' names and modes, and the timings s6 is given. Rendering
//! (`render`), publishing (`publish`), trusting (`trust`) and locking
//! (`crate::lifecycle::lock`) all read the layout from here.

/// `s6-svperms -G`'s modes: the group may search `supervise/` and write `control`.
pub const SUPERVISE_MODE: u32 = 0o710;
pub const CONTROL_MODE: u32 = 0o620;
/// The same for a slot nobody else controls (rendered by an unprivileged pass).
pub const PRIVATE_SUPERVISE_MODE: u32 = 0o700;
pub const PRIVATE_CONTROL_MODE: u32 = 0o600;
pub const SCRIPT_MODE: u32 = 0o755;
pub const DATA_MODE: u32 = 0o644;
pub const SLOT_DIR_MODE: u32 = 0o755;
pub const DATA_DIR: &str = "data";
/// The per-profile lock every lifecycle operation on the profile holds (see
/// [`crate::lifecycle::lock`]): root's, openable (hence lockable) by the hermes group.
pub const LOCK_FILE: &str = "data/lock";
/// How long a gateway has between SIGTERM and SIGKILL (of its whole process group) when it is
/// stopped: s6-supervise's `timeout-kill`, so no gateway that ignores SIGTERM outlives a stop,
/// a teardown or a container stop (Docker's own grace is 10 s).
pub const STOP_GRACE_MS: u64 = 5000;

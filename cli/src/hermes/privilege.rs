//! Who the `hermes` front runs as. Run as root (e.g. `docker exec <c> hermes …`) it drops to
//! the hermes user first, unless HERMES_DOCKER_EXEC_AS_ROOT is set (and hermes-agent's own CLI
//! always drops); before anything, it refuses a PATH the hermes user could use to choose what
//! root runs (docs/security.md, attack 24). PATH is read here, not in `Config`: it is this
//! process's own search path, checked before any configuration is read.

use crate::upstream;
use hermes_core::config::Config;
use hermes_core::problem::Problem;

/// `docker exec` runs as root; the user's commands must not, or root does the user's work.
/// `HERMES_DOCKER_EXEC_AS_ROOT=1` keeps root for this front's own verbs only.
pub fn drop_root(cfg: &Config) -> Result<(), Problem> {
    if cfg.container_env.exec_as_root {
        return Ok(());
    }
    drop_root_always(cfg)
}

/// Become the hermes user. hermes-agent's own CLI always runs so, whatever
/// `HERMES_DOCKER_EXEC_AS_ROOT` says: it loads the volume's `.env` and plugins, which are
/// the user's to write (docs/security.md, attack 27).
pub fn drop_root_always(cfg: &Config) -> Result<(), Problem> {
    if !nix::unistd::geteuid().is_root() {
        return Ok(());
    }
    // The gateways' ids, as the boot pass renders them: HERMES_UID/HERMES_GID, else the user.
    upstream::become_user(cfg.uid, cfg.gid).map_err(|(what, e)| {
        Problem::usage(format!("cannot drop root to uid {} ({what}: {e}); set HERMES_DOCKER_EXEC_AS_ROOT=1 to stay root", cfg.uid))
    })?;
    std::env::set_var("HOME", &cfg.home);
    Ok(())
}

/// The PATH the image sets: every entry root's and writable by root only.
const SAFE_PATH: &str = "/command:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// Run as root, refuse a PATH with an entry anyone but root could fill (a directory the hermes
/// user owns or can write, one below such a directory, an empty or relative entry, one that
/// cannot be checked). This front runs its own programs by absolute path, but a PATH like that
/// already chose which `hermes` root ran, and chooses what root's next command runs: say so
/// before doing anything, rather than work under it. Unprivileged, PATH is the caller's own.
pub fn refuse_unsafe_path() -> Result<(), Problem> {
    if !nix::unistd::geteuid().is_root() {
        return Ok(());
    }
    let Some(path) = std::env::var_os("PATH") else { return Ok(()) };
    let refuse = |entry: &str, why: &str| {
        Problem::usage(format!(
            "refusing to run as root with PATH entry {entry:?}: {why}, so a program planted there would run as root; \
             remove it from PATH (e.g. `docker exec -e PATH={SAFE_PATH} <container> /usr/local/bin/hermes …`) \
             or make it root's and writable by root only"
        ))
    };
    let Some(path) = path.to_str() else { return Err(refuse(&path.to_string_lossy(), "it is not valid UTF-8 and cannot be checked")) };
    for entry in path.split(':') {
        if let Some(why) = hermes_core::gateways::unsafe_path_entry(entry) {
            return Err(refuse(entry, &why));
        }
    }
    Ok(())
}

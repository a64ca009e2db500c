//! What a gateway's exit means, in one place: the rendered `finish` script, `status`, the
//! crash policy and the simulator's tests all read exits through this.
//!
//! - exit 0: the gateway finished on purpose (an operator stop it saw the marker of, a clean
//!   shutdown): not restarted;
//! - exit 78 (`EX_CONFIG`): its configuration is wrong; a restart cannot fix it: parked;
//! - exit 75 (`EX_TEMPFAIL`): "restart me" (hermes-agent's `/restart` under a supervisor, a
//!   transient refusal): restarted with the policy's backoff, never parked, never counted
//!   toward a quarantine;
//! - anything else, or death by a signal: a crash, restarted;
//! - killed by the slot's watcher (see [`crate::liveness`]), whatever the exit status:
//!   `hung` (it stopped proving it was alive) or `start-timeout` (not ready in time), each
//!   restarted and counted like a crash;
//! - restarted by the registrar over its memory limit (`memory`) or killed by the kernel's OOM
//!   killer (`oom`), see [`crate::guard`]: restarted and counted like a crash.

/// A deliberate, clean end.
pub const FINISHED: i32 = 0;
/// `EX_CONFIG` from sysexits.h: the gateway refused its configuration.
pub const CONFIG_ERROR: i32 = 78;
/// `EX_TEMPFAIL` from sysexits.h: the gateway asks its supervisor to start it again.
pub const RESTART_ME: i32 = 75;
/// What a `finish` script exits with to tell s6-supervise "do not restart" (s6 calls it a
/// permanent failure; the service is left down, wanted down).
pub const S6_PERMANENT_FAILURE: i32 = 125;
/// What s6 passes to `finish` as the exit code of a run killed by a signal.
pub const S6_SIGNALLED: i32 = 256;

/// Why a gateway died when the supervisor knows more than its exit says: it restarted it for
/// its memory, or the kernel's OOM killer took it. Counted by the crash policy like a crash
/// (restarted with backoff, quarantined when it repeats), and named by `status`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Cause {
    /// Over its memory limit: the registrar restarted it (SIGTERM through s6).
    Memory,
    /// SIGKILLed while the cgroup's OOM-kill counter moved: the kernel's OOM killer.
    Oom,
}

impl Cause {
    pub fn as_str(self) -> &'static str {
        match self {
            Cause::Memory => "memory",
            Cause::Oom => "oom",
        }
    }

    /// Its exit class.
    pub fn class(self) -> ExitClass {
        match self {
            Cause::Memory => ExitClass::Memory,
            Cause::Oom => ExitClass::Oom,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ExitClass {
    Finished,
    ConfigError,
    /// Exit 75: asked to be started again.
    Restart,
    Crash,
    /// Killed by its watcher: it stopped proving it was alive.
    Hung,
    /// Killed by its watcher: not ready within the start timeout.
    StartTimeout,
    /// Restarted by the registrar over its memory limit.
    Memory,
    /// Killed by the kernel's OOM killer.
    Oom,
}

impl ExitClass {
    /// From an exit code, or `None` when the run was killed by a signal.
    pub fn of(code: Option<i32>) -> ExitClass {
        match code {
            Some(FINISHED) => ExitClass::Finished,
            Some(CONFIG_ERROR) => ExitClass::ConfigError,
            Some(RESTART_ME) => ExitClass::Restart,
            _ => ExitClass::Crash,
        }
    }

    /// From the first argument s6 gives `finish` (`256` for a signal): what the simulator's
    /// finish hooks classify with (the library's own finish keeps the signal too, [`Self::of_death`]).
    #[cfg(any(test, feature = "internals"))]
    pub fn of_finish_arg(code: i32) -> ExitClass {
        ExitClass::of((code != S6_SIGNALLED).then_some(code))
    }

    /// A death the watcher caused, else what the exit code says.
    pub fn of_death(code: Option<i32>, killed: Option<crate::liveness::Killed>) -> ExitClass {
        match killed {
            Some(crate::liveness::Killed::Hung) => ExitClass::Hung,
            Some(crate::liveness::Killed::StartTimeout) => ExitClass::StartTimeout,
            None => ExitClass::of(code),
        }
    }

    /// Whether s6 should start the gateway again by itself.
    pub fn restarts(self) -> bool {
        matches!(
            self,
            ExitClass::Crash | ExitClass::Restart | ExitClass::Hung | ExitClass::StartTimeout | ExitClass::Memory | ExitClass::Oom
        )
    }

    /// Whether it counts toward a quarantine.
    pub fn is_crash(self) -> bool {
        matches!(self, ExitClass::Crash | ExitClass::Hung | ExitClass::StartTimeout | ExitClass::Memory | ExitClass::Oom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_contract_with_the_finish_script() {
        assert_eq!(ExitClass::of_finish_arg(0), ExitClass::Finished);
        assert_eq!(ExitClass::of_finish_arg(78), ExitClass::ConfigError);
        for code in [1, 2, 137, 255, 256] {
            assert_eq!(ExitClass::of_finish_arg(code), ExitClass::Crash, "{code}");
        }
        assert_eq!(ExitClass::of_finish_arg(75), ExitClass::Restart);
        use crate::liveness::Killed;
        assert_eq!(ExitClass::of_death(Some(0), Some(Killed::Hung)), ExitClass::Hung, "a watcher's kill is never a clean exit");
        assert_eq!(ExitClass::of_death(None, Some(Killed::StartTimeout)), ExitClass::StartTimeout);
        assert!(
            ExitClass::Hung.restarts()
                && ExitClass::StartTimeout.restarts()
                && ExitClass::Hung.is_crash()
                && !ExitClass::Restart.is_crash()
        );
        assert!(
            !ExitClass::Finished.restarts()
                && !ExitClass::ConfigError.restarts()
                && ExitClass::Crash.restarts()
                && ExitClass::Restart.restarts()
        );
    }
}

//! The crash policy's settings: read with the rest of the configuration (the policy itself,
//! in `crate::policy`, decides with them).

use std::time::Duration;

/// The policy's settings (environment: `HERMES_CRASH_*`, see [`crate::config::ENV_VARS`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Knobs {
    pub backoff_initial: Duration,
    pub backoff_max: Duration,
    /// A run up this long is healthy: the crash count starts again.
    pub stable_after: Duration,
    pub crash_limit: usize,
    pub crash_window: Duration,
    pub cooldown: Duration,
    pub cooldown_max: Duration,
}

impl Default for Knobs {
    fn default() -> Self {
        Knobs {
            backoff_initial: Duration::from_secs(1),
            backoff_max: Duration::from_secs(60),
            stable_after: Duration::from_secs(60),
            crash_limit: 5,
            crash_window: Duration::from_secs(300),
            cooldown: Duration::from_secs(600),
            cooldown_max: Duration::from_secs(6 * 3600),
        }
    }
}

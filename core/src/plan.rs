//! The pure decision of a boot pass: `plan = f(snapshot, container facts)`. What `plan` and
//! `--dry-run` print, and what the property tests check.

use crate::discovery::{Candidate, Snapshot};
use crate::escape::log_value;
use crate::profile_name::DEFAULT_PROFILE;
use crate::state::{PriorExit, AUTOSTART_STATE};

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    /// Slot published without `down`: the gateway comes up.
    Started,
    /// Slot published with `down`: supervised, startable, not started.
    Registered,
    /// No slot (see `reason`).
    Skipped,
    /// A slot was wanted but could not be published (see the pass's errors).
    Failed,
}

impl Action {
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Started => "started",
            Action::Registered => "registered",
            Action::Skipped => "skipped",
            Action::Failed => "failed",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Entry {
    /// The profile name (for skipped entries, the directory name made log-safe).
    pub profile: String,
    /// The effective prior state, made log-safe; `None` when there was none.
    pub prior_state: Option<String>,
    pub action: Action,
    pub prior_exit: PriorExit,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

impl Entry {
    pub fn wants_slot(&self) -> bool {
        matches!(self.action, Action::Started | Action::Registered)
    }
}

/// Facts about the container that are not on the volume.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Container {
    /// The container's command is `dashboard`: no gateways at all.
    pub dashboard: bool,
    /// The command is the legacy `gateway run` and opting out was not requested.
    pub legacy_gateway_run: bool,
    /// One root gateway serves every profile: named slots stay down.
    pub multiplex: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Plan {
    pub entries: Vec<Entry>,
    /// Seed the root profile's state as `running` (legacy `gateway run` command, no state file).
    pub migrate_legacy: bool,
    /// Dashboard container: the pass does nothing at all.
    pub dashboard_skip: bool,
}

fn safe(v: &Option<String>) -> Option<String> {
    v.as_ref().map(|s| log_value(s.as_bytes()))
}

pub fn make(snap: &Snapshot, c: &Container) -> Plan {
    if c.dashboard {
        return Plan { entries: Vec::new(), migrate_legacy: false, dashboard_skip: true };
    }
    let migrate_legacy = c.legacy_gateway_run && snap.home_error.is_none() && !snap.default.prior.file_present;
    let default_prior = if migrate_legacy { Some(AUTOSTART_STATE.to_string()) } else { snap.default.prior.value.clone() };
    let mut entries = vec![Entry {
        profile: DEFAULT_PROFILE.to_string(),
        action: if default_prior.as_deref() == Some(AUTOSTART_STATE) { Action::Started } else { Action::Registered },
        prior_state: safe(&default_prior),
        prior_exit: snap.default.prior_exit,
        reason: None,
    }];
    for cand in &snap.named {
        entries.push(match cand {
            Candidate::Profile { name, facts } => Entry {
                profile: name.clone(),
                prior_state: safe(&facts.prior.value),
                action: if facts.prior.autostarts() && !c.multiplex { Action::Started } else { Action::Registered },
                prior_exit: facts.prior_exit,
                reason: None,
            },
            Candidate::Skipped { display, reason, .. } => Entry {
                profile: display.clone(),
                prior_state: None,
                action: Action::Skipped,
                prior_exit: PriorExit::Unknown,
                reason: Some(reason.as_str().to_string()),
            },
        });
    }
    Plan { entries, migrate_legacy, dashboard_skip: false }
}

//! The pure decision of a boot pass: `plan = f(snapshot, container facts)`. What `plan` and
//! `--dry-run` print, and what the property tests check.

use crate::escape::log_value;
use crate::name::DEFAULT_PROFILE;
use crate::s6::capacity::PER_PROFILE;
use crate::volume::discovery::{Candidate, Facts, Snapshot};
use crate::volume::state::{PriorExit, Wanted};

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
pub struct Decision {
    /// The profile name (for skipped entries, the directory name made log-safe).
    pub profile: String,
    /// The effective prior state, made log-safe; `None` when there was none.
    pub prior_state: Option<String>,
    pub action: Action,
    pub prior_exit: PriorExit,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

impl Decision {
    pub fn wants_slot(&self) -> bool {
        matches!(self.action, Action::Started | Action::Registered)
    }
}

pub use crate::volume::container::Container;

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Plan {
    pub entries: Vec<Decision>,
    /// Seed the root profile's state as `running` (legacy `gateway run` command, no state file).
    pub migrate_legacy: bool,
    /// Dashboard container: the pass does nothing at all.
    pub dashboard_skip: bool,
    /// Profiles not published because the scanner has no room for them.
    pub over_capacity: usize,
    /// Multiplexing: the named profiles whose running intent started the root gateway
    /// instead of their own (upstream's fold); empty otherwise.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub folded: Vec<String>,
}

fn safe(v: &Option<Wanted>) -> Option<String> {
    v.as_ref().map(|s| log_value(s.as_str().as_bytes()))
}

/// Whether a profile's slot is published wanting its gateway up: only a `running` wanted
/// state starts one, and multiplexing keeps the named ones down (the root gateway serves
/// them). The boot pass and the registrar both decide with this.
pub fn starts(is_default: bool, prior: Option<&Wanted>, c: &Container) -> bool {
    prior.is_some_and(Wanted::autostarts) && (is_default || !c.multiplex)
}

/// Upstream's fold (newer hermes-agent's `fold_named_slot_intent`): under multiplexing a
/// named slot never starts from its own intent (a started named slot would be a second
/// gateway serving the same profiles); its `running` intent goes to the root gateway, which
/// serves it. The named profiles folded, sorted: those wanting running and not parked (a
/// parked profile is not served, so its intent starts nothing). The boot pass and the
/// registrar both decide with this.
pub fn fold<'a>(c: &Container, named: impl IntoIterator<Item = (&'a str, Option<&'a Wanted>, bool)>) -> Vec<String> {
    if !c.multiplex {
        return Vec::new();
    }
    let mut folded: Vec<String> = named
        .into_iter()
        .filter(|(_, prior, parked)| !parked && prior.is_some_and(|w| w.autostarts()))
        .map(|(n, _, _)| n.to_string())
        .collect();
    folded.sort();
    folded
}

/// The whole decision of a pass, from what the volume said, what the container is, and how
/// many services the gateways may take (`room`; `None` when unknown: no limit applied). The
/// default slot comes first, then names in order; a profile whose slot does not fit is
/// skipped with `reason=capacity`.
pub fn decide(snap: &Snapshot, c: &Container, room: Option<usize>) -> Plan {
    let mut plan = decide_unbounded(snap, c);
    if let Some(mut left) = room {
        for e in plan.entries.iter_mut().filter(|e| e.wants_slot()) {
            if left >= PER_PROFILE {
                left -= PER_PROFILE;
            } else {
                e.action = Action::Skipped;
                e.reason = Some("capacity".into());
                plan.over_capacity += 1;
            }
        }
    }
    plan
}

/// A gateway the crash policy holds down (quarantined, backing off) is registered down even
/// when wanted running: a container restart does not replay its crash loop. The registrar
/// starts it when its time comes.
fn start_or_hold(starts: bool, facts: &Facts) -> (Action, Option<String>) {
    // A parked profile's slot stays down whatever its state reads (see `volume::parked`).
    if facts.parked {
        return (Action::Registered, Some("parked".into()));
    }
    match facts.policy.flatten() {
        Some(hold) if starts => (Action::Registered, Some(hold.state.as_str().to_string())),
        _ if starts => (Action::Started, None),
        _ => (Action::Registered, None),
    }
}

fn decide_unbounded(snap: &Snapshot, c: &Container) -> Plan {
    if c.dashboard {
        return Plan { entries: Vec::new(), migrate_legacy: false, dashboard_skip: true, over_capacity: 0, folded: Vec::new() };
    }
    let migrate_legacy = c.legacy_gateway_run && snap.home_error.is_none() && !snap.default.prior.file_present;
    let default_prior = if migrate_legacy { Some(Wanted::Running) } else { snap.default.prior.value.clone() };
    let folded = fold(
        c,
        snap.named.iter().filter_map(|cand| match cand {
            Candidate::Profile { name, facts } => Some((name.as_str(), facts.prior.value.as_ref(), facts.parked)),
            Candidate::Skipped { .. } => None,
        }),
    );
    let (action, mut reason) = start_or_hold(starts(true, default_prior.as_ref(), c) || !folded.is_empty(), &snap.default);
    if reason.is_none() && !folded.is_empty() {
        reason = Some("folded".into());
    }
    let mut entries = vec![Decision {
        profile: DEFAULT_PROFILE.to_string(),
        action,
        prior_state: safe(&default_prior),
        prior_exit: snap.default.prior_exit,
        reason,
    }];
    for cand in &snap.named {
        entries.push(match cand {
            Candidate::Profile { name, facts } => {
                let (action, mut reason) = start_or_hold(starts(false, facts.prior.value.as_ref(), c), facts);
                if reason.is_none() && folded.contains(name) {
                    reason = Some("folded".into());
                }
                Decision { profile: name.clone(), prior_state: safe(&facts.prior.value), action, prior_exit: facts.prior_exit, reason }
            }
            Candidate::Skipped { display, reason, .. } => Decision {
                profile: display.clone(),
                prior_state: None,
                action: Action::Skipped,
                prior_exit: PriorExit::Unknown,
                reason: Some(reason.as_str().to_string()),
            },
        });
    }
    Plan { entries, migrate_legacy, dashboard_skip: false, over_capacity: 0, folded }
}

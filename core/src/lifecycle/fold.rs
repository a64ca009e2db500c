//! The fold for the verbs that start: under multiplexing, `start P` (and `restart P`) of a named profile records P's running intent and brings up the root gateway, which serves P; P's own slot stays down.
//!
//! One root gateway serves every profile when multiplexing is on; a gateway of P's own beside
//! it would be a second poller on P's platforms, and hermes-agent's gateway refuses to run so
//! (it exits 1 while the multiplexer runs: under s6, a crash loop into quarantine). The boot
//! pass and the registrar decide the same way ([`crate::boot::plan::fold`]); this is that
//! decision for the operator's own command, so the next boot agrees with it.

use super::{control, lock, open_slot, record_wanted, settle, unix_now, Asked};
use crate::ctx::Ctx;
use crate::fs::Dir;
use crate::name::{slot_name, DEFAULT_PROFILE};
use crate::policy::{self, record, PolicyState};
use crate::problem::Problem;
use crate::s6::svstat;
use crate::volume::state::Wanted;
use std::ffi::OsStr;

/// Whether multiplexing is on: one root gateway serves every profile.
pub fn multiplexing(ctx: &Ctx) -> bool {
    crate::volume::multiplex::enabled(ctx)
}

/// Whether a start of `profile` folds into the root gateway.
pub fn applies(ctx: &Ctx, profile: &str) -> bool {
    profile != DEFAULT_PROFILE && multiplexing(ctx)
}

/// Under multiplexing, the gateway that serves a named `profile` while it is wanted up (the
/// root's), if any.
pub fn served_by(ctx: &Ctx, scandir: &Dir, profile: &str) -> Option<String> {
    if !applies(ctx, profile) {
        return None;
    }
    let root = ctx.fs.open_dir(scandir, OsStr::new(&slot_name(DEFAULT_PROFILE))).ok()?;
    svstat::wanted_up(ctx.fs, &root).then(|| DEFAULT_PROFILE.to_string())
}

/// What an operator's start does to a profile's crash-policy record: whatever it held is
/// cleared (an operator start always wins); what that was.
fn clear_hold(ctx: &Ctx, profile: &str, now: f64) -> Result<Option<PolicyState>, Problem> {
    let rec = record::read(ctx, profile);
    if record::exists(ctx, profile) {
        record::write(ctx, profile, &policy::on_operator_start(&rec, now))?;
    }
    Ok(rec.holds_down().then_some(rec.state))
}

/// gateway-default's slot, or why a fold cannot use it (a missing root slot is the boot
/// pass's or the registrar's to make, not something `profile create` could).
fn open_root(ctx: &Ctx, scandir: &Dir) -> Result<Dir, Problem> {
    match open_slot(ctx, scandir, DEFAULT_PROFILE) {
        Err(Problem::NotRegistered { .. }) => Err(Problem::Unusable {
            path: scandir.child(OsStr::new(&slot_name(DEFAULT_PROFILE))),
            why: "does not exist, and under multiplexing gateway-default serves every profile: the boot pass or the registrar makes its slot (restart the container, or as root: hermes-reconcile register default)".into(),
        }),
        other => other,
    }
}

/// Under `profile`'s operation lock (its slot must be registered, as for any start): make sure
/// the root gateway is wanted up (an operator's start of a profile it serves clears what the
/// crash policy held on it, as any operator start does; a root already wanted up is not
/// waited for), then, under the profile's own lock, unpark it, clear its own crash-policy
/// hold and record its running intent. What is watched after is the root gateway.
pub fn ask(ctx: &Ctx, profile: &str) -> Result<Asked, Problem> {
    let scandir = ctx.open_scandir()?;
    let own = open_slot(ctx, &scandir, profile)?;
    let operation = lock::operation(ctx, &own, lock::OPERATION_WAIT)?;
    let root = open_root(ctx, &scandir)?;
    let now = unix_now(ctx);
    let mut root_cleared = None;
    if !svstat::wanted_up(ctx.fs, &root) {
        // The root's own locks after the profile's: every command takes a profile's lock
        // first and the root's last, so two folds, or a fold and a command on the root,
        // cannot deadlock.
        let _root_operation = lock::operation(ctx, &root, lock::OPERATION_WAIT)?;
        let _quiet = lock::hold_when_quiet(ctx, &root, lock::QUIET_WAIT)?;
        if !svstat::wanted_up(ctx.fs, &root) {
            root_cleared = clear_hold(ctx, DEFAULT_PROFILE, now)?;
            control(ctx, &root, DEFAULT_PROFILE, "-u", b"u")?;
            settle::until_acknowledged(ctx, &root, true);
        }
    }
    let _held = lock::hold_when_quiet(ctx, &own, lock::QUIET_WAIT)?;
    let unparked = crate::volume::parked::unpark(ctx, profile)?;
    let cleared = clear_hold(ctx, profile, now)?.or(root_cleared);
    let written = record_wanted(ctx, profile, &Wanted::Running, "gateway-default serves the profile");
    Ok(Asked {
        profile: profile.to_string(),
        slot: root,
        old_pid: None,
        written,
        cleared,
        operation,
        at: now,
        unparked,
        served_by: Some(DEFAULT_PROFILE.to_string()),
    })
}

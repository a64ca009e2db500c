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
use crate::policy::{self, record};
use crate::problem::Problem;
use crate::s6::svstat;
use crate::volume::state::Wanted;

/// Whether a start of `profile` folds into the root gateway.
pub fn applies(ctx: &Ctx, profile: &str) -> bool {
    profile != DEFAULT_PROFILE && crate::volume::multiplex::enabled(ctx)
}

/// Under multiplexing, the gateway that serves a named `profile` while it is wanted up (the
/// root's), if any.
pub fn served_by(ctx: &Ctx, scandir: &Dir, profile: &str) -> Option<String> {
    if !applies(ctx, profile) {
        return None;
    }
    let root = ctx.fs.open_dir(scandir, std::ffi::OsStr::new(&slot_name(DEFAULT_PROFILE))).ok()?;
    svstat::read(ctx.fs, &root).ok().flatten().filter(|st| st.want_up).map(|_| DEFAULT_PROFILE.to_string())
}

/// Under `profile`'s operation lock (its slot must be registered, as for any start): unpark
/// it, make sure the root gateway is wanted up (an operator's start of a profile it serves
/// clears what the crash policy held on it, as any operator start does), then record P's
/// running intent. What is watched after is the root gateway.
pub fn ask(ctx: &Ctx, profile: &str, done: &str) -> Result<Asked, Problem> {
    let scandir = ctx.open_scandir()?;
    let own = open_slot(ctx, &scandir, profile)?;
    let operation = lock::operation(ctx, &own, lock::OPERATION_WAIT)?;
    let unparked = crate::volume::parked::unpark(ctx, profile)?;
    let root = open_slot(ctx, &scandir, DEFAULT_PROFILE)?;
    // The root's own lock after the profile's: every command takes a profile's lock first and
    // the root's last, so two folds, or a fold and a command on the root, cannot deadlock.
    let _root_operation = lock::operation(ctx, &root, lock::OPERATION_WAIT)?;
    let _quiet = lock::hold_when_quiet(ctx, &root, lock::QUIET_WAIT)?;
    let now = unix_now(ctx);
    let wanted_up = svstat::read(ctx.fs, &root).ok().flatten().is_some_and(|st| st.want_up);
    let mut cleared = None;
    if !wanted_up {
        let rec = record::read(ctx, DEFAULT_PROFILE);
        cleared = rec.holds_down().then_some(rec.state);
        if record::exists(ctx, DEFAULT_PROFILE) {
            record::write(ctx, DEFAULT_PROFILE, &policy::on_operator_start(&rec, now))?;
        }
        control(ctx, &root, DEFAULT_PROFILE, "-u", b"u")?;
        settle::until_acknowledged(ctx, &root, true);
    }
    let written = record_wanted(ctx, profile, &Wanted::Running, done);
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

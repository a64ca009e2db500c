//! The command layer: both binaries, `hermes-reconcile` (root's and the user's tool: the boot
//! pass, the lifecycle verbs, the registrar) and `hermes` (the image's front for upstream's
//! CLI), over `hermes_core`. Arguments are parsed once ([`args`], and each binary's tree in
//! [`reconcile`] and [`hermes`]); each verb is one file in [`verbs`]; everything a person or a
//! program reads is printed by [`out`] (and the status table by [`table`]). The binaries in
//! `src/bin/` only call `main` here.

pub mod args;
pub mod hermes;
pub mod out;
pub mod reconcile;
pub mod table;
pub mod upstream;
pub mod verbs;

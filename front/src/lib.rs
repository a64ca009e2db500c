//! The image's user-facing side: the `hermes` command (its clap definitions in [`cli`], what
//! each command does in [`commands`], profile create/delete in [`profile`]) and the reference
//! gateway it runs in place of hermes-agent's real one ([`gateway`]).

pub mod cli;
pub mod commands;
pub mod gateway;
pub mod profile;
pub mod upstream;

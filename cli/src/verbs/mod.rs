//! One file per verb, for both binaries. Each takes the resolved context, its parsed
//! arguments and where its output goes ([`crate::out::Out`]), does its work through the
//! library, prints its result, and returns the exit code (or the problem, which the binary
//! prints). A verb both binaries have (start, stop, restart, status) is one file.

pub mod adopt;
pub mod boot;
pub mod common;
pub mod dashboard;
pub mod dump_env;
pub mod finish;
pub mod generate;
pub mod health;
pub mod install;
pub mod list;
pub mod logs;
pub mod profile;
pub mod register;
pub mod request;
pub mod restart;
pub mod run_gateway;
pub mod start;
pub mod static_perms;
pub mod status;
pub mod stop;
pub mod unregister;
pub mod watch;

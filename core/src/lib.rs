//! hermes-s6 core: rebuilds and manages the s6 service slots of hermes-agent's per-profile
//! gateways. The binary `hermes-reconcile` is a thin shell over this library.
//!
//! Layout: [`discovery`] reads the volume into plain data, [`plan`] decides, [`boot`] applies
//! the decision through [`safe_fs`] (the only way any code here touches a file) and the
//! [`s6`] client.

pub mod boot;
pub mod boot_log;
pub mod config;
pub mod container_argv;
pub mod lifecycle;
pub mod discovery;
pub mod escape;
pub mod multiplex;
pub mod plan;
pub mod profile;
pub mod profile_name;
pub mod render;
pub mod s6;
pub mod safe_fs;
pub mod slot;
pub mod state;

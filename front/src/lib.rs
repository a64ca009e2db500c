//! The reference gateway (`hermes-gateway`, in [`gateway`]): what a slot runs in place of
//! hermes-agent's real one in the tests (and the image's dashboard service). The `hermes`
//! command itself is the command layer's (the `cli` crate).

pub mod gateway;

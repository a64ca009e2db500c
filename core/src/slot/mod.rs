//! One service slot in the scandir: its files ([`render`]), how it is built and published
//! ([`publish`]), and the permission model shared with the static services
//! ([`static_services`]).

pub mod publish;
pub mod render;
pub mod static_services;
pub mod teardown;

pub use publish::*;

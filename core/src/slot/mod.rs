//! One service slot in the scandir: what it is made of ([`layout`]), its files ([`render`]), how it is built and published
//! ([`publish`]), whether one found in the scandir is ours ([`trust`]), and the permission model shared with the static services
//! ([`static_services`]).

pub(crate) mod env;
pub(crate) mod layout;
pub(crate) mod publish;
pub mod render;
pub mod static_services;
pub(crate) mod teardown;
pub mod trust;

pub use publish::*;

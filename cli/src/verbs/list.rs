//! `list`: the registered slots.

use crate::out::{self, Out};
use hermes_core::problem::{exit, Problem};
use hermes_core::Gateways;

pub fn run(g: &Gateways, out: Out) -> Result<u8, Problem> {
    let v = g.registered()?;
    if out.json {
        out::json(&serde_json::json!(v));
    } else {
        v.iter().for_each(|p| println!("{p}"));
    }
    Ok(exit::OK)
}

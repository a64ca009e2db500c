//! `list`: the registered slots.

use crate::out::{self, Out};
use hermes_core::ctx::Ctx;
use hermes_core::lifecycle::registered;
use hermes_core::problem::{exit, Problem};

pub fn run(ctx: &Ctx, out: Out) -> Result<u8, Problem> {
    let scandir = ctx.open_scandir()?;
    let v = registered(ctx, &scandir)?;
    if out.json {
        out::json(&serde_json::json!(v));
    } else {
        v.iter().for_each(|p| println!("{p}"));
    }
    Ok(exit::OK)
}

//! `hermes gateway install|uninstall`: under s6 there is no service to install or remove;
//! upstream's own words for that (its host message, "not needed inside a Docker container",
//! is wrong in this image).

use hermes_core::problem::{exit, Problem};

pub fn install() -> Result<u8, Problem> {
    println!("Per-profile gateways are auto-registered when you create a profile.\n");
    println!("  hermes profile create <name>     # creates the s6 service slot");
    println!("  hermes -p <name> gateway start   # bring it up via s6");
    println!("  hermes status                    # see currently-supervised gateways");
    Ok(exit::OK)
}

pub fn uninstall() -> Result<u8, Problem> {
    println!("Per-profile gateways are auto-unregistered when you delete the profile.\n");
    println!("  hermes profile delete <name>     # tears down the s6 service slot");
    println!("  hermes -p <name> gateway stop    # stop without deleting the profile");
    Ok(exit::OK)
}

//! The boot pass (`hermes-reconcile`, `boot`) and its dry run (`plan`, `boot --dry-run`).

use crate::args::RenderArgs;
use crate::out::{self, Out};
use clap::Args;
use hermes_core::config::Config;
use hermes_core::gateways::{boot_line, BootOptions, PassReport, Rescan};
use hermes_core::problem::{exit, Problem};
use hermes_core::Gateways;

#[derive(Args, Debug)]
pub struct BootArgs {
    /// Decide and print, but change nothing on disk (same as `plan`)
    #[arg(long)]
    pub dry_run: bool,
    #[command(flatten)]
    pub render: RenderArgs,
}

#[derive(Args, Debug)]
pub struct PlanArgs {
    #[command(flatten)]
    pub render: RenderArgs,
}

pub fn boot(g: &Gateways, dry_run: bool, out: Out) -> Result<u8, Problem> {
    let (container, mx_warning) = g.container();
    let opts = BootOptions { dry_run, ..BootOptions::default() };
    let mut report = g.boot(&container, &opts)?;
    report.warnings.extend(mx_warning);
    if out.json {
        out::json(&serde_json::to_value(&report).expect("the report serialises"));
    } else {
        print(&report, g.config());
    }
    Ok(if report.errors.is_empty() { exit::OK } else { exit::FAILED })
}

fn print(report: &PassReport, cfg: &Config) {
    if report.dashboard_skip {
        println!("reconcile: skipping (dashboard container \u{2014} does not need per-profile gateways)");
        return;
    }
    for w in &report.warnings {
        eprintln!("reconcile: warning: {w}");
    }
    for e in &report.entries {
        println!("{}", boot_line(e));
    }
    if report.dry_run {
        eprintln!("reconcile: dry run: nothing was changed");
    }
    for s in &report.swept_staging {
        eprintln!("reconcile: removed staging leftover {}", cfg.scandir.join(s).display());
    }
    if report.rescan == Some(Rescan::NoScanner) {
        eprintln!("reconcile: no s6-svscan is listening on {}; the slots will be picked up when it starts", cfg.scandir.display());
    }
    for e in &report.errors {
        eprintln!("reconcile: error: {e}");
    }
}

//! s6-svscan supervises at most `-c` (2.11) / `-C` (2.15) service directories, loggers
//! included; the next one is refused with "too many services" and silently never starts.
//! Count before registering instead of finding out later.

use crate::ctx::Ctx;
use crate::fs::{Dir, Kind};
use std::ffi::OsStr;
use std::io;

/// Services a profile slot adds: the gateway and its logger.
pub const PER_PROFILE: usize = 2;
/// Warn when usage passes this fraction of the limit.
pub const WARN_RATIO: f64 = 0.9;

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct Usage {
    pub used: usize,
    pub max: usize,
}

impl Usage {
    pub fn fits(&self, more: usize) -> bool {
        self.used + more <= self.max
    }
    pub fn near_limit(&self) -> bool {
        self.used as f64 >= self.max as f64 * WARN_RATIO
    }
}

/// Count what s6-svscan would supervise: every non-dot entry that is a directory (links to
/// directories count; the scanner follows them), plus one for each `log/` subdirectory.
pub fn usage(ctx: &Ctx, scandir: &Dir) -> io::Result<Usage> {
    let (gateways, others) = split(ctx, scandir)?;
    Ok(Usage { used: gateways + others, max: ctx.cfg.max_services })
}

/// How many services the gateways' slots may take in all: the limit, less what the other
/// services use or the reserve, whichever is more (so static services installed after the
/// boot pass still fit).
pub fn room_for_gateways(ctx: &Ctx, scandir: &Dir) -> io::Result<usize> {
    let (_, others) = split(ctx, scandir)?;
    Ok(ctx.cfg.max_services.saturating_sub(others.max(ctx.cfg.reserved_services)))
}

/// The services the scanner supervises, split into gateway slots and the others.
fn split(ctx: &Ctx, scandir: &Dir) -> io::Result<(usize, usize)> {
    let fs = ctx.fs;
    let (mut gateways, mut others) = (0, 0);
    for (name, kind) in fs.list(scandir)? {
        if name.to_string_lossy().starts_with('.') {
            continue;
        }
        let is_dir = match kind {
            Kind::Dir => true,
            Kind::Symlink => fs.stat(scandir, &name).is_ok_and(|m| m.kind == Kind::Dir),
            _ => false,
        };
        if !is_dir {
            continue;
        }
        let count = if name.to_string_lossy().starts_with(crate::name::SLOT_PREFIX) { &mut gateways } else { &mut others };
        *count += 1;
        // The scanner follows a linked service directory, and so does this look inside it.
        let has_log = match kind {
            Kind::Dir => fs.open_dir(scandir, &name).and_then(|d| fs.stat(&d, OsStr::new("log"))),
            _ => fs.stat(scandir, &name).and_then(|_| {
                let linked = fs.open_root(&scandir.child(&name))?;
                fs.stat(&linked, OsStr::new("log"))
            }),
        }
        .is_ok_and(|m| m.kind == Kind::Dir);
        if has_log {
            *count += 1;
        }
    }
    Ok((gateways, others))
}

/// How to raise the scanner's limit, in the words of the s6 in use: `-c` up to 2.14, `-C`
/// from 2.15 (read off the running s6-svscan's command line, else both are named).
pub fn how_to_raise(ctx: &Ctx) -> String {
    let fs = ctx.fs;
    let argv = fs
        .open_root(&ctx.cfg.proc_root)
        .and_then(|p| fs.open_dir(&p, OsStr::new("1")))
        .and_then(|d| fs.read_capped(&d, OsStr::new("cmdline"), 4096))
        .ok()
        .and_then(|c| match c {
            crate::fs::Capped::Data(d) => Some(d),
            _ => None,
        })
        .unwrap_or_default();
    let args: Vec<&[u8]> = argv.split(|&b| b == 0).collect();
    let is_svscan = args.first().is_some_and(|a| a.ends_with(b"s6-svscan"));
    let flag = match (is_svscan, args.iter().any(|a| a.starts_with(b"-C")), args.iter().any(|a| a.starts_with(b"-c"))) {
        (true, true, _) => "s6-svscan -C N",
        (true, false, true) => "s6-svscan -c N",
        _ => "s6-svscan -c N (s6 up to 2.14) or -C N (s6 2.15 and later)",
    };
    format!("raise the scanner's limit ({flag}; in this image, HERMES_S6_MAX_SERVICES, which /init passes on) and tell the tools (--max-services / HERMES_S6_MAX_SERVICES)")
}

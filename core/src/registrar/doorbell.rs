//! The registrar's doorbell: a FIFO the unprivileged user writes profile names into, one per
//! line, to have root converge those profiles now. It is the privilege boundary: the FIFO is
//! `root:hermes 0620` in a root-owned directory, and what arrives is only ever read as a list
//! of names to look at; every slot is rendered from the volume and a validated name, never
//! from the bytes. A line that is not a valid name (or an empty one) asks for a full resync.

use crate::clock::wait_until;
use crate::ctx::Ctx;
use crate::fs::{Dir, FifoReader, Kind};
use crate::name::{self, slot_name};
use crate::problem::Problem;
use crate::s6::svstat;
use std::collections::BTreeSet;
use std::ffi::OsStr;
use std::io;
use std::path::Path;
use std::time::Duration;

/// How much one wake-up reads; a flood beyond it waits for the next.
const READ_CAP: usize = 64 * 1024;

fn split(path: &Path) -> (&Path, &OsStr) {
    (path.parent().unwrap_or(Path::new("/")), path.file_name().unwrap_or(OsStr::new("registrar")))
}

/// Create (or take over) the doorbell and open it for reading.
pub fn open(ctx: &Ctx) -> Result<FifoReader, Problem> {
    let fs = ctx.fs;
    let path = &ctx.cfg.registrar_fifo;
    let (dir, name) = split(path);
    let (grand, dir_name) = split(dir);
    let top = fs.open_root(grand).map_err(|e| ctx.problem(grand, "open", e))?;
    match fs.mkdir(&top, dir_name, 0o755) {
        Err(e) if e.kind() != io::ErrorKind::AlreadyExists => return Err(ctx.problem(dir, "create", e)),
        _ => {}
    }
    let d: Dir = fs.open_dir(&top, dir_name).map_err(|e| ctx.problem(dir, "open", e))?;
    // Root chowns and chmods the FIFO by name in this directory: it must be a directory only
    // root can change, not one the user made first (a writable /run, a stale one).
    if fs.euid() == 0 {
        let m = fs.lstat(&d, OsStr::new(".")).map_err(|e| ctx.problem(dir, "inspect", e))?;
        if m.uid != 0 || m.mode & 0o022 != 0 {
            return Err(Problem::Unusable {
                path: dir.to_path_buf(),
                why: format!(
                    "belongs to uid {} with mode {:o}: the registrar's doorbell must be in a directory only root can change; remove it",
                    m.uid, m.mode
                ),
            });
        }
    }
    match fs.lstat(&d, name) {
        Ok(m) if m.kind == Kind::Fifo => {}
        Ok(_) => fs.unlink(&d, name).map_err(|e| ctx.problem(path, "replace", e))?,
        Err(_) => {}
    }
    match fs.mkfifo(&d, name, 0o620) {
        Err(e) if e.kind() != io::ErrorKind::AlreadyExists => return Err(ctx.problem(path, "mkfifo", e)),
        _ => {}
    }
    if fs.euid() == 0 {
        fs.chown(&d, name, 0, ctx.cfg.gid).map_err(|e| ctx.problem(path, "chown", e))?;
    }
    fs.chmod(&d, name, 0o620).map_err(|e| ctx.problem(path, "chmod", e))?;
    fs.open_fifo(&d, name).map_err(|e| ctx.problem(path, "open", e))
}

/// What the rings since the last read ask for.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Rung {
    pub profiles: BTreeSet<String>,
    pub everything: bool,
}

/// Reads rings, keeping a line cut between two reads for the next.
#[derive(Debug, Default)]
pub struct Rings {
    partial: Vec<u8>,
}

impl Rings {
    pub fn read(&mut self, fifo: &FifoReader) -> Rung {
        let bytes = fifo.drain(READ_CAP).unwrap_or_default();
        self.parse(&bytes)
    }

    fn parse(&mut self, bytes: &[u8]) -> Rung {
        self.partial.extend_from_slice(bytes);
        let mut rung = Rung::default();
        while let Some(i) = self.partial.iter().position(|&b| b == b'\n') {
            let line: Vec<u8> = self.partial.drain(..=i).collect();
            match std::str::from_utf8(&line[..i]).ok().map(str::trim).filter(|n| name::validate(n).is_ok()) {
                Some(n) => {
                    rung.profiles.insert(n.to_string());
                }
                None => rung.everything = true,
            }
        }
        // An unterminated fragment longer than any name is garbage, and asks for a resync.
        if self.partial.len() > name::MAX_LEN + 1 {
            self.partial.clear();
            rung.everything = true;
        }
        rung
    }
}

/// Client side: ring for `profile` (or for everything).
pub fn ring(ctx: &Ctx, profile: Option<&str>) -> Result<(), Problem> {
    let path = &ctx.cfg.registrar_fifo;
    let no_registrar = || {
        Problem::Io {
        path: path.clone(),
        action: "ring the registrar at".into(),
        error: io::Error::new(
            io::ErrorKind::NotConnected,
            "no registrar is listening (the `hermes-reconcile watch` service is not running); start it, or run `hermes-reconcile register <profile>` as root",
        ),
    }
    };
    let (dir, name) = split(path);
    let d = ctx.fs.open_root(dir).map_err(|_| no_registrar())?;
    let line = format!("{}\n", profile.unwrap_or(""));
    match ctx.fs.write_fifo(&d, name, line.as_bytes()) {
        Ok(()) => Ok(()),
        // The FIFO is full: rings are already pending and the registrar resyncs on overflow.
        Err(e) if e.raw_os_error() == Some(nix::libc::EAGAIN) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::NotFound || e.raw_os_error() == Some(nix::libc::ENXIO) => Err(no_registrar()),
        Err(e) => Err(ctx.problem(path, "write", e)),
    }
}

/// Whether `profile`'s slot exists and s6-supervise holds both it and its logger, each
/// with its status written (s6-supervise takes its lock before it writes the first status:
/// until then `s6-svstat` fails).
pub fn supervised(ctx: &Ctx, scandir: &Dir, profile: &str) -> bool {
    let alive = |d: &Dir| svstat::supervisor_alive(ctx.fs, d).unwrap_or(false) && svstat::read(ctx.fs, d).is_ok_and(|s| s.is_some());
    ctx.fs
        .open_dir(scandir, OsStr::new(&slot_name(profile)))
        .is_ok_and(|slot| alive(&slot) && ctx.fs.open_dir(&slot, OsStr::new("log")).is_ok_and(|log| alive(&log)))
}

/// Client side: wait until `profile`'s slot is supervised (`present`) or gone.
pub fn wait_for_slot(ctx: &Ctx, profile: &str, present: bool, limit: Duration) -> Result<(), Problem> {
    let scandir = ctx.open_scandir()?;
    let name = slot_name(profile);
    // Gone means torn down: no slot, and no supervisor of it left (its teardown's directory
    // goes last), so a caller returning on "gone" leaves nothing of the gateway running.
    let there = || {
        if present {
            supervised(ctx, &scandir, profile)
        } else {
            ctx.fs.lstat(&scandir, OsStr::new(&name)).is_ok() || crate::slot::teardown::under_way(ctx, &scandir, profile)
        }
    };
    if wait_until(ctx.clock, limit, Duration::from_millis(2), || there() == present) {
        Ok(())
    } else {
        Err(Problem::Timeout {
            what: format!(
                "the registrar to {} {} (is the `hermes-reconcile watch` service up? see its log)",
                if present { "create and supervise" } else { "remove" },
                scandir.child(OsStr::new(&name)).display()
            ),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rings_are_names_per_line_and_anything_else_asks_for_everything() {
        let mut r = Rings::default();
        assert_eq!(r.parse(b"coder\nwri"), Rung { profiles: BTreeSet::from(["coder".to_string()]), everything: false });
        assert_eq!(r.parse(b"ter\n"), Rung { profiles: BTreeSet::from(["writer".to_string()]), everything: false });
        assert!(r.parse(b"\n").everything);
        assert!(r.parse(b"../../etc\n").everything);
        assert!(r.parse(b"Bad Name\n").everything);
        let flood = vec![b'x'; 1000];
        assert!(r.parse(&flood).everything, "an endless line is dropped");
        assert_eq!(r.parse(b"a\n").profiles, BTreeSet::from(["a".to_string()]), "and reading goes on after it");
    }
}

//! The floor: the irreducible work of a boot pass, and nothing else. It reads the home
//! (list profiles, read each state file), makes the gateways' log parent, records the ports,
//! publishes each slot (staging dir; `down` and the files every slot shares linked from one
//! copy; the other rendered files of `render::files`; `supervise/` and its `control` FIFO for
//! both supervisors, root's with the hermes group; one rename), sweeps the
//! two stale runtime files and writes the log lines, producing exactly the tree
//! `hermes-reconcile` produces (the benchmark checks), with the fewest system calls and no
//! safety checks (no file-system identity switch, no link refusal), validation or reporting.
//!
//! Usage: hermes-floor HOME SCANDIR UID GID

use hermes_core::config::Config;
use hermes_core::slot::render;
use nix::fcntl::{openat, OFlag};
use nix::sys::stat::{mkdirat, Mode};
use nix::unistd::{close, fchownat, mkfifoat, write, Gid, Uid};
use std::os::fd::{AsRawFd, BorrowedFd, RawFd};

fn m(bits: u32) -> Mode {
    Mode::from_bits_truncate(bits)
}

fn file(dir: RawFd, name: &str, data: &[u8], mode: u32) {
    if data.is_empty() {
        // An empty file is one system call.
        nix::sys::stat::mknodat(Some(dir), name, nix::sys::stat::SFlag::S_IFREG, m(mode), 0).unwrap();
        return;
    }
    let fd = openat(Some(dir), name, OFlag::O_WRONLY | OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_CLOEXEC, m(mode)).unwrap();
    write(unsafe { BorrowedFd::borrow_raw(fd) }, data).unwrap();
    close(fd).unwrap();
}

fn main() {
    let a: Vec<String> = std::env::args().collect();
    let (home, scandir) = (a[1].clone(), a[2].clone());
    let (uid, gid) = (Uid::from_raw(a[3].parse().unwrap()), Gid::from_raw(a[4].parse().unwrap()));
    nix::sys::stat::umask(Mode::empty());
    // What the pass finds on this machine: execline's `cd`, entered after the drop.
    let execline_cd = hermes_core::trusted::find("cd", Some(hermes_core::config::EXECLINE_DIRS)).map(|p| p.to_string_lossy().into_owned());
    let cfg = Config { home: home.clone().into(), scandir: scandir.clone().into(), execline_cd, ..Config::default() };
    let at = nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW;
    let dfl = OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC;

    // Read the home.
    let home_fd = nix::fcntl::open(home.as_str(), dfl, Mode::empty()).unwrap();
    let mut wanted: Vec<(String, bool)> = Vec::new();
    let mut buf = vec![0u8; 4096];
    let mut read_state = |dir: RawFd| -> bool {
        match openat(Some(dir), "gateway_state.json", OFlag::O_RDONLY | OFlag::O_CLOEXEC, Mode::empty()) {
            Ok(fd) => {
                let n = nix::unistd::read(fd, &mut buf).unwrap_or(0);
                close(fd).unwrap();
                match serde_json::from_slice::<serde_json::Value>(&buf[..n]) {
                    Ok(serde_json::Value::Object(m)) => hermes_core::volume::state::effective_state(&m).is_some_and(|w| w.autostarts()),
                    _ => false,
                }
            }
            Err(_) => false,
        }
    };
    wanted.push(("default".into(), read_state(home_fd)));
    let pfd = openat(Some(home_fd), "profiles", dfl, Mode::empty()).unwrap();
    let mut names: Vec<String> = nix::dir::Dir::openat(Some(home_fd), "profiles", dfl, Mode::empty())
        .unwrap()
        .iter()
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| !n.starts_with('.'))
        .collect();
    names.sort();
    for n in names {
        let d = openat(Some(pfd), n.as_str(), dfl, Mode::empty()).unwrap();
        wanted.push((n, read_state(d)));
        // Sweep the two stale runtime files.
        let _ = nix::unistd::unlinkat(Some(d), "gateway.pid", nix::unistd::UnlinkatFlags::NoRemoveDir);
        let _ = nix::unistd::unlinkat(Some(d), "processes.json", nix::unistd::UnlinkatFlags::NoRemoveDir);
        close(d).unwrap();
    }
    let _ = nix::unistd::unlinkat(Some(home_fd), "gateway.pid", nix::unistd::UnlinkatFlags::NoRemoveDir);
    let _ = nix::unistd::unlinkat(Some(home_fd), "processes.json", nix::unistd::UnlinkatFlags::NoRemoveDir);

    // Log directories, the user's.
    let _ = mkdirat(Some(home_fd), "logs", m(0o755));
    let _ = fchownat(Some(home_fd), "logs", Some(uid), Some(gid), at);
    let _ = mkdirat(Some(home_fd), "logs/gateways", m(0o755));
    let _ = fchownat(Some(home_fd), "logs/gateways", Some(uid), Some(gid), at);
    // Each profile's own directory is its logger's to make (s6-log does), not the pass's.

    // Ports: none of these profiles sets its own, so all are assigned; one record written.
    let ports = hermes_core::volume::ports::assign(&wanted.iter().map(|(p, _)| (p.clone(), None)).collect::<Vec<_>>(), &Default::default());
    let record = hermes_core::volume::ports::record_text(&ports);
    file(home_fd, hermes_core::volume::ports::RECORD_FILE, record.as_bytes(), 0o644);
    let _ = fchownat(Some(home_fd), hermes_core::volume::ports::RECORD_FILE, Some(uid), Some(gid), at);

    // Publish.
    let sd = nix::fcntl::open(scandir.as_str(), dfl, Mode::empty()).unwrap();
    let privilege = render::Privilege::DropTo { uid: uid.as_raw(), gid: gid.as_raw() };
    // One copy of what every slot has the same, linked into each.
    let common = hermes_core::slot::COMMON_DIR;
    mkdirat(Some(sd), common, m(0o700)).unwrap();
    let cd = openat(Some(sd), common, dfl, Mode::empty()).unwrap();
    for f in render::files(&cfg, "default", privilege, None).into_iter().filter(|f| render::SHARED.contains(&f.path)) {
        file(cd, f.path, &f.data, f.mode);
    }
    file(cd, "down", b"", 0o644);
    let link = |name: &str, st| nix::unistd::linkat(Some(cd), name, Some(st), name, nix::fcntl::AtFlags::empty()).unwrap();
    for (p, start) in &wanted {
        let staging = format!(".gateway-{p}.tmp");
        mkdirat(Some(sd), staging.as_str(), m(0o755)).unwrap();
        let st = openat(Some(sd), staging.as_str(), dfl, Mode::empty()).unwrap();
        if !start {
            link("down", st);
        }
        mkdirat(Some(st), "log", m(0o755)).unwrap();
        for f in render::files(&cfg, p, privilege, ports.get(p).and_then(|x| x.injected())) {
            if render::SHARED.contains(&f.path) {
                link(f.path, st);
            } else {
                file(st, f.path, &f.data, f.mode);
            }
        }
        mkdirat(Some(st), "data", m(0o755)).unwrap();
        file(st, "data/lock", b"", 0o640);
        fchownat(Some(st), "data/lock", Some(Uid::from_raw(0)), Some(gid), at).unwrap();
        for base in ["", "log/"] {
            let sup = format!("{base}supervise");
            let ctl = format!("{sup}/control");
            mkdirat(Some(st), sup.as_str(), m(0o710)).unwrap();
            mkfifoat(Some(st), ctl.as_str(), m(0o620)).unwrap();
            fchownat(Some(st), ctl.as_str(), Some(Uid::from_raw(0)), Some(gid), at).unwrap();
            fchownat(Some(st), sup.as_str(), Some(Uid::from_raw(0)), Some(gid), at).unwrap();
        }
        close(st).unwrap();
        nix::fcntl::renameat(Some(sd), staging.as_str(), Some(sd), format!("gateway-{p}").as_str()).unwrap();
    }

    for name in render::SHARED.iter().chain(&["down"]) {
        let _ = nix::unistd::unlinkat(Some(cd), *name, nix::unistd::UnlinkatFlags::NoRemoveDir);
    }
    close(cd).unwrap();
    let _ = nix::unistd::unlinkat(Some(sd), common, nix::unistd::UnlinkatFlags::RemoveDir);

    // One line per profile in the boot log.
    let lf =
        openat(Some(home_fd), "logs/container-boot.log", OFlag::O_WRONLY | OFlag::O_CREAT | OFlag::O_APPEND | OFlag::O_CLOEXEC, m(0o644))
            .unwrap();
    // The user's file, as everything in the volume.
    nix::unistd::fchown(lf, Some(uid), Some(gid)).unwrap();
    let mut text = String::new();
    for (p, start) in &wanted {
        text.push_str(&format!(
            "ts profile={p} prior_state=x action={} prior_exit=unknown\n",
            if *start { "started" } else { "registered" }
        ));
    }
    write(unsafe { BorrowedFd::borrow_raw(lf) }, text.as_bytes()).unwrap();
    let _ = (home_fd.as_raw_fd(), pfd);
}

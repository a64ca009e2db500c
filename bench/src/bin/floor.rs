//! The floor: the irreducible work of a boot pass, and nothing else. It reads the home
//! (list profiles, read each state file) and publishes each slot the upstream way (staging
//! dir; `type`, `run`, `finish`, `log/run`; `down`; the supervise skeleton of both
//! supervisors with its owner and the setgid bit of the event dirs; one rename), sweeps the
//! two stale runtime files and writes the log lines, producing exactly the tree
//! `hermes-reconcile` produces (the benchmark checks), with the fewest system calls and no
//! safety checks, validation or reporting.
//!
//! Usage: hermes-floor HOME SCANDIR UID GID

use hermes_core::config::Config;
use hermes_core::render;
use nix::fcntl::{openat, OFlag};
use nix::sys::stat::{fchmodat, mkdirat, FchmodatFlags, Mode};
use nix::unistd::{close, fchownat, mkfifoat, write, Gid, Uid};
use std::os::fd::{AsRawFd, BorrowedFd, RawFd};

fn m(bits: u32) -> Mode {
    Mode::from_bits_truncate(bits)
}

fn file(dir: RawFd, name: &str, data: &[u8], mode: u32) {
    let fd = openat(Some(dir), name, OFlag::O_WRONLY | OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_CLOEXEC, m(mode)).unwrap();
    if !data.is_empty() {
        write(unsafe { BorrowedFd::borrow_raw(fd) }, data).unwrap();
    }
    close(fd).unwrap();
}

fn main() {
    let a: Vec<String> = std::env::args().collect();
    let (home, scandir) = (a[1].clone(), a[2].clone());
    let (uid, gid) = (Uid::from_raw(a[3].parse().unwrap()), Gid::from_raw(a[4].parse().unwrap()));
    nix::sys::stat::umask(Mode::empty());
    let cfg = Config { home: home.clone().into(), scandir: scandir.clone().into(), ..Config::default() };
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
                    Ok(serde_json::Value::Object(m)) => hermes_core::state::effective_state(&m).as_deref() == Some("running"),
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

    // Publish.
    let sd = nix::fcntl::open(scandir.as_str(), dfl, Mode::empty()).unwrap();
    let finish = render::finish_script(&cfg);
    for (p, start) in &wanted {
        let staging = format!(".gateway-{p}.tmp");
        mkdirat(Some(sd), staging.as_str(), m(0o755)).unwrap();
        let st = openat(Some(sd), staging.as_str(), dfl, Mode::empty()).unwrap();
        file(st, "type", render::TYPE.as_bytes(), 0o644);
        file(st, "run", render::run_script(&cfg, p).as_bytes(), 0o755);
        file(st, "finish", finish.as_bytes(), 0o755);
        if !start {
            file(st, "down", b"", 0o644);
        }
        mkdirat(Some(st), "log", m(0o755)).unwrap();
        file(st, "log/run", render::log_run_script(&cfg, p).as_bytes(), 0o755);
        for base in ["", "log/"] {
            for (name, fifo, setgid) in [("event", false, true), ("supervise/event", false, true), ("supervise/control", true, false)] {
                let path = format!("{base}{name}");
                if fifo {
                    mkfifoat(Some(st), path.as_str(), m(0o660)).unwrap();
                } else {
                    mkdirat(Some(st), path.as_str(), m(0o730)).unwrap();
                }
                fchownat(Some(st), path.as_str(), Some(uid), Some(gid), at).unwrap();
                if setgid {
                    fchmodat(Some(st), path.as_str(), m(0o3730), FchmodatFlags::FollowSymlink).unwrap();
                }
                if name == "event" {
                    mkdirat(Some(st), format!("{base}supervise").as_str(), m(0o755)).unwrap();
                }
            }
            fchownat(Some(st), format!("{base}supervise").as_str(), Some(uid), Some(gid), at).unwrap();
        }
        close(st).unwrap();
        nix::fcntl::renameat(Some(sd), staging.as_str(), Some(sd), format!("gateway-{p}").as_str()).unwrap();
    }

    // One line per profile in the boot log.
    let _ = mkdirat(Some(home_fd), "logs", m(0o755));
    let lf = openat(Some(home_fd), "logs/container-boot.log", OFlag::O_WRONLY | OFlag::O_CREAT | OFlag::O_APPEND | OFlag::O_CLOEXEC, m(0o644)).unwrap();
    let mut text = String::new();
    for (p, start) in &wanted {
        text.push_str(&format!("ts profile={p} prior_state=x action={} prior_exit=unknown\n", if *start { "started" } else { "registered" }));
    }
    write(unsafe { BorrowedFd::borrow_raw(lf) }, text.as_bytes()).unwrap();
    let _ = (home_fd.as_raw_fd(), pfd);
}

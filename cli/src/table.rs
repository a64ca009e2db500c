//! The `status` table both binaries print: one row per gateway, a sentence for each one that
//! needs attention, then the scanner's room and the registrar's notices. What the report says
//! (and its explanations) is core's (`hermes_core::gateways::StatusReport`); how it is laid out for
//! a person is this module's. Every value from the volume goes through `escape::terminal`.

use hermes_core::clock::{from_unix_secs, rfc3339};
use hermes_core::escape::terminal;
use hermes_core::gateways::{human_bytes, ProfileStatus, StatusReport, Verdict};

/// The widest a wanted state is shown in the table (the JSON has it whole).
const WANTED_CELL: usize = 24;

/// A volume value in a table cell: escaped, at most [`WANTED_CELL`] characters.
fn cell(v: &str) -> String {
    let e = terminal(v);
    match e.char_indices().nth(WANTED_CELL) {
        Some((i, _)) => format!("{}...", &e[..i]),
        None => e.into_owned(),
    }
}

/// The MEM cell: the gateway's resident memory, and its limit when it has one.
fn mem_cell(p: &ProfileStatus) -> String {
    let rss = p.usage.map(|u| human_bytes(u.rss_bytes)).unwrap_or_else(|| "-".into());
    match p.memory_limit {
        Some(l) if p.up => format!("{rss}/{}", human_bytes(l)),
        _ => rss,
    }
}

/// The human table `status` prints: one row per profile, then a sentence for each one that
/// needs attention (every one when a single profile was asked for), then the scanner's room.
pub fn render_table(r: &StatusReport) -> String {
    use std::fmt::Write;
    let mut out = String::new();
    // The name and wanted-state columns fit their longest value (names run to 64 bytes).
    let wp = r.profiles.iter().map(|p| p.profile.len()).chain([7]).max().unwrap_or(7);
    // A wanted state is the user's text: escaped, and cut to a column's width.
    let wanted: Vec<String> = r.profiles.iter().map(|p| p.wanted.as_ref().map_or("-".into(), |w| cell(w.as_str()))).collect();
    let ww = wanted.iter().map(|w| w.chars().count()).chain([7]).max().unwrap_or(7);
    let wm = r.profiles.iter().map(|p| mem_cell(p).len()).chain([7]).max().unwrap_or(7);
    let row = |out: &mut String, cols: [&str; 12]| {
        let _ = writeln!(
            out,
            "{:<wp$} {:<ww$} {:<4} {:<5} {:<8} {:>wm$} {:>6} {:<20} {:>8} {:<13} {:>5} {}",
            cols[0], cols[1], cols[2], cols[3], cols[4], cols[5], cols[6], cols[7], cols[8], cols[9], cols[10], cols[11]
        );
    };
    row(&mut out, ["PROFILE", "WANTED", "S6", "READY", "PID", "MEM", "CPU", "SINCE", "RESTARTS", "LAST EXIT", "PORT", "STATE"]);
    for (p, wanted) in r.profiles.iter().zip(&wanted) {
        let last = match (p.killed, p.exit_code, p.signal) {
            (Some(k), _, _) => k.to_string(),
            (_, _, Some(s)) => format!("signal {s}"),
            (_, Some(c), _) => format!("exit {c}"),
            _ => "-".into(),
        };
        let s6 = if !p.registered || !p.supervised {
            "-"
        } else if p.up {
            "up"
        } else {
            "down"
        };
        row(
            &mut out,
            [
                &terminal(&p.profile),
                wanted,
                s6,
                if !p.up {
                    "-"
                } else if p.ready {
                    "yes"
                } else {
                    "no"
                },
                &p.pid.map(|x| x.to_string()).unwrap_or_else(|| "-".into()),
                &mem_cell(p),
                &p.usage.map(|u| format!("{:.1}%", u.cpu_percent)).unwrap_or_else(|| "-".into()),
                p.since.as_deref().unwrap_or("-"),
                &p.restarts.map(|x| x.to_string()).unwrap_or_else(|| "-".into()),
                &last,
                &p.port.as_ref().map(|x| x.port.to_string()).unwrap_or_else(|| "-".into()),
                p.state.state(),
            ],
        );
    }
    let single = r.profiles.len() == 1 && r.capacity.is_none();
    let notes: Vec<&ProfileStatus> = r.profiles.iter().filter(|p| single || p.state != Verdict::Running || p.foreign.is_some()).collect();
    if !notes.is_empty() {
        out.push('\n');
    }
    for p in notes {
        let _ = writeln!(out, "{}: {}", terminal(&p.profile), terminal(&p.explanation));
        if single {
            let _ = writeln!(out, "log: {}", terminal(&p.log));
        }
    }
    if let Some(t) = &r.last_take_over {
        let _ = writeln!(
            out,
            "\nthe registrar gave {} root-owned entries in profile {} to the hermes user at {} (a root command wrote the volume)",
            t.entries,
            t.profile,
            rfc3339(from_unix_secs(t.at))
        );
    }
    let registered = r.profiles.iter().any(|p| p.registered);
    if r.scanner_running == Some(false) {
        let _ = writeln!(out, "\ns6-svscan is not running on {}: nothing is supervised", r.scandir);
    } else if r.scanner_running.is_none() && registered {
        let _ = writeln!(out, "\nno slot is supervised: s6-svscan does not seem to run on {}", r.scandir);
    } else if let Some(c) = r.capacity {
        let _ = writeln!(out, "\nservices: {} of {} the scanner can supervise", c.used, c.max);
        if let Some(h) = &r.capacity_hint {
            let _ = writeln!(out, "near the limit: {h}");
        }
    }
    for n in &r.registrar_notices {
        let _ = writeln!(out, "registrar: {}", terminal(n));
    }
    if let Some(m) = &r.multiplexing {
        if r.profiles.iter().any(|p| p.profile == "default" && p.up) {
            let _ = writeln!(out, "\nmultiplexing: gateway-default serves {}; named slots stay down", terminal(&m.serves.join(", ")));
        } else {
            let _ = writeln!(
                out,
                "\nmultiplexing: gateway-default serves every profile, and it is down: none is served; named slots stay down"
            );
        }
    }
    for c in &r.port_collisions {
        let _ = writeln!(out, "warning: {}", terminal(c));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use hermes_core::gateways::TakeOver;

    fn report() -> StatusReport {
        StatusReport {
            profiles: Vec::new(),
            capacity: None,
            scanner_running: Some(true),
            scandir: "/run/service".into(),
            capacity_hint: None,
            registrar_notices: vec!["inotify budget spent".into()],
            last_take_over: Some(TakeOver { profile: "coder".into(), entries: 4, at: 0.0 }),
            multiplexing: None,
            port_collisions: vec!["profiles 'a' (.env) and 'b' (config.yaml) both set API server port 9000".into()],
        }
    }

    #[test]
    fn a_port_collision_is_a_warning_naming_both() {
        let t = render_table(&report());
        assert!(t.contains("warning: profiles 'a' (.env) and 'b' (config.yaml) both set API server port 9000"), "{t}");
        assert!(t.starts_with("PROFILE ") && t.contains(" PORT STATE"), "{t}");
    }

    #[test]
    fn the_last_take_over_is_told() {
        let t = render_table(&report());
        assert!(t.contains("gave 4 root-owned entries in profile coder"), "{t}");
        assert!(t.contains("registrar: inotify budget spent"), "{t}");
    }
}

//! Benchmark 5, `docker restart` of the image with 500 profiles (250 wanted running, the image's
//! stand-in gateway) until every wanted gateway is up, against the same image with 0 profiles,
//! and the same 500 with `/run` on a tmpfs, in rotating order. Timed on the host from issuing
//! `docker restart` until one `docker exec` running a shell loop has seen `s6-svstat -o up` say
//! `true` for each wanted slot, one after the other.

use crate::report::{Figure, Section, Unit};
use crate::util::{self, Env, Stats};
use std::fmt::Write as _;
use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

pub const NAME: &str = "docker";

/// Containers and volumes to remove even when the benchmark dies half-way.
pub static LEFT: Mutex<Vec<(String, String)>> = Mutex::new(Vec::new());

pub fn cleanup() {
    for (c, v) in LEFT.lock().map(|mut l| std::mem::take(&mut *l)).unwrap_or_default() {
        let _ = util::quiet(Command::new("docker").args(["rm", "-f", &c]));
        let _ = util::quiet(Command::new("docker").args(["volume", "rm", &v]));
    }
}

/// `docker ARGS…`: its stdout, or what it said when it failed.
pub fn docker(args: &[&str]) -> Result<String, String> {
    let out = Command::new("docker").args(args).stdin(Stdio::null()).output().map_err(|e| format!("docker: {e}"))?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
    } else {
        Err(format!(
            "docker {}: {}{}",
            args.join(" "),
            String::from_utf8_lossy(&out.stdout).trim(),
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

/// Shell functions the gateway benchmarks run inside the container: `ready P` (s6 says up and
/// ready: the readiness bridge sets that only once the state file says `running` for this very
/// process), `running P` (the gateway's state file says `running` for the pid s6 runs, not a
/// file left by an earlier run: after a container restart pids start over), `now` (ns).
pub const GATEWAY_SH: &str = r#"ready() { [ "$(s6-svstat -o up,ready /run/service/gateway-$1 2>/dev/null)" = "true true" ]; }
running() {
  pid=$(s6-svstat -o pid /run/service/gateway-$1 2>/dev/null)
  [ "${pid:-0}" -gt 0 ] || return 1
  f=/opt/data/profiles/$1/gateway_state.json
  grep -Eq "\"pid\": ?$pid[,}]" "$f" 2>/dev/null && grep -Eq '"gateway_state": ?"running"' "$f"
}
now() { date +%s%N; }
"#;

/// A container of the image on a volume of its own, booted until its registrar is up; removed
/// with its volume when dropped (and by [`cleanup`] if the benchmark dies first).
pub struct Booted {
    pub name: String,
}

impl Booted {
    pub fn up(image: &str, tag: &str, env: &[&str]) -> Result<Booted, String> {
        let name = format!("hermes-bench-{}-{tag}", std::process::id());
        let vol = format!("{name}-data");
        LEFT.lock().unwrap().push((name.clone(), vol.clone()));
        docker(&["volume", "create", &vol])?;
        let mount = format!("{vol}:/opt/data");
        let mut args = vec!["run", "-d", "--name", name.as_str(), "-v", mount.as_str(), "--tmpfs", "/run:exec,mode=755"];
        for e in env {
            args.extend(["-e", e]);
        }
        args.push(image);
        docker(&args)?;
        let b = Booted { name };
        b.wait_registrar()?;
        Ok(b)
    }

    /// `sh -c SCRIPT` as `user` inside, with [`GATEWAY_SH`]'s functions defined.
    pub fn sh(&self, user: &str, script: &str) -> Result<String, String> {
        docker(&["exec", "-u", user, &self.name, "sh", "-c", &format!("{GATEWAY_SH}{script}")])
    }

    /// Until s6 says the registrar is up (a minute at most).
    pub fn wait_registrar(&self) -> Result<(), String> {
        util::wait_for(Duration::from_secs(60), Duration::from_millis(200), || {
            self.sh("root", "[ \"$(s6-svstat -o up /run/service/registrar)\" = true ]").is_ok()
        })
        .map(|_| ())
        .ok_or_else(|| format!("{} did not boot", self.name))
    }
}

impl Drop for Booted {
    fn drop(&mut self) {
        let _ = util::quiet(Command::new("docker").args(["rm", "-f", &self.name]));
        let _ = util::quiet(Command::new("docker").args(["volume", "rm", &format!("{}-data", self.name)]));
    }
}

/// The loop run inside the container: `$@` are the wanted profiles, each asked with
/// `s6-svstat -o up` until it says `true` (every 50 ms), one after the other, so the loop costs
/// one process at a time while the container boots, not one per pending slot per round.
const WAIT_UP: &str = r#"end=$(($(date +%s) + 90))
for p in "$@"; do
  until [ "$(s6-svstat -o up /run/service/gateway-$p 2>/dev/null)" = true ]; do
    [ "$(date +%s)" -gt "$end" ] && { echo "not up: $p" >&2; exit 2; }
    sleep 0.05
  done
done"#;

struct Container {
    name: String,
    wanted: Vec<String>,
}

impl Container {
    fn create(image: &str, tag: &str, profiles: usize, run_opts: &[&str]) -> Result<Container, String> {
        let name = format!("hermes-bench-{}-{tag}", std::process::id());
        let vol = format!("{name}-data");
        LEFT.lock().unwrap().push((name.clone(), vol.clone()));
        docker(&["volume", "create", &vol])?;
        let mount = format!("{vol}:/opt/data");
        let mut args = vec!["run", "-d", "--name", name.as_str(), "-v", mount.as_str()];
        args.extend_from_slice(run_opts);
        // 250 of hermes-agent's real gateways would need 20 GB and minutes of CPU: this
        // measures the supervision, with the stand-in (real-gateway measures the real one).
        args.extend_from_slice(&["-e", "HERMES_S6_GATEWAY_PROGRAM=/usr/local/bin/hermes-gateway"]);
        args.push(image);
        docker(&args)?;
        // Profiles p00000..: every other one wanted running (its last state `running`); each its
        // own port, so no two gateways collide on a hashed one.
        let populate = format!(
            "set -e; i=0; while [ $i -lt {profiles} ]; do p=$(printf 'p%05d' $i); d=/opt/data/profiles/$p; mkdir -p $d; \
             echo persona >$d/SOUL.md; echo $((30000 + i)) >$d/gateway.port; \
             if [ $((i % 2)) = 0 ]; then echo '{{\"gateway_state\":\"running\"}}' >$d/gateway_state.json; fi; i=$((i + 1)); done"
        );
        let b = Container { name: name.clone(), wanted: (0..profiles).filter(|i| i % 2 == 0).map(util::profile_name).collect() };
        // Wait for the first boot to be done before touching the volume.
        b.wait_up(&[])?;
        docker(&["exec", "-u", "hermes", &name, "sh", "-c", &populate])?;
        Ok(b)
    }

    fn wait_up(&self, wanted: &[String]) -> Result<(), String> {
        let t = Instant::now();
        loop {
            let mut args = vec!["exec", self.name.as_str(), "sh", "-c", WAIT_UP, "wait-up"];
            args.extend(wanted.iter().map(String::as_str));
            match docker(&args) {
                Ok(_) => return Ok(()),
                // Not running yet (between the restart's stop and start): ask again.
                Err(e) if !e.contains("not up:") && t.elapsed() < Duration::from_secs(120) => std::thread::sleep(Duration::from_millis(20)),
                Err(e) => return Err(e),
            }
        }
    }

    /// One timed restart: ms from issuing `docker restart` until every wanted gateway is up,
    /// and its parts by Docker's own clock (the same machine's): until the old container had
    /// stopped (`State.FinishedAt`), until the new one started (`State.StartedAt`), the rest.
    fn restart(&self) -> Result<Timing, String> {
        let issued = chrono::Utc::now();
        let t = Instant::now();
        docker(&["restart", &self.name])?;
        self.wait_up(&self.wanted)?;
        let total = t.elapsed().as_secs_f64() * 1000.0;
        let at = |field: &str| -> Option<f64> {
            let s = docker(&["inspect", "-f", &format!("{{{{.State.{field}}}}}"), &self.name]).ok()?;
            let d = chrono::DateTime::parse_from_rfc3339(&s).ok()?;
            Some((d.with_timezone(&chrono::Utc) - issued).num_microseconds()? as f64 / 1000.0)
        };
        Ok(Timing { total, stopped: at("FinishedAt"), started: at("StartedAt") })
    }
}

struct Timing {
    total: f64,
    /// ms from issuing the restart until the old container had stopped, and until the new one
    /// had started.
    stopped: Option<f64>,
    started: Option<f64>,
}

pub fn run(env: &Env, image: &str) -> Section {
    let title = "`docker restart` with 500 profiles, 250 wanted running";
    if !util::have("docker") {
        return Section::skipped(NAME, title, "no docker command");
    }
    if docker(&["image", "inspect", image]).is_err() {
        return Section::skipped(NAME, title, &format!("no image {image} (build it: `HERMES_S6_IMAGE={image} scripts/build-image`)"));
    }
    println!("\n== {NAME}: docker restart of {image} with 500 profiles against 0 (load {})", util::loadavg());
    let result = (|| -> Result<Section, String> {
        // (label, profiles, docker run options)
        let kinds: [(&str, usize, &[&str]); 3] =
            [("500 profiles", 500, &[]), ("0 profiles", 0, &[]), ("500, /run on tmpfs", 500, &["--tmpfs", "/run:rw,exec,mode=755"])];
        let boxes: Vec<Container> = kinds
            .iter()
            .enumerate()
            .map(|(i, (_, n, opts))| Container::create(image, &format!("{i}"), *n, opts))
            .collect::<Result<_, _>>()?;
        // A first restart of each, untimed: the boot pass registers what was populated.
        for b in &boxes {
            b.restart()?;
        }
        let runs = env.runs.clamp(3, 5);
        let mut total = vec![Stats::default(); 3];
        // [kind] × [stop, gap until started, started until all up].
        let mut parts = vec![vec![Stats::default(); 3]; 3];
        let mut failures: Vec<Vec<String>> = vec![Vec::new(); 3];
        for i in 0..runs {
            for k in 0..3 {
                let j = (i + k) % 3;
                let r = match boxes[j].restart() {
                    Ok(r) => r,
                    // A restart after which some wanted gateway never came up: counted, and
                    // the container's own words kept for the report.
                    Err(e) if e.contains("not up:") => {
                        let stuck = e.rsplit("not up:").next().unwrap_or("").trim().to_string();
                        let why =
                            docker(&["exec", &boxes[j].name, "s6-svstat", &format!("/run/service/gateway-{stuck}")]).unwrap_or_default();
                        let logs = Command::new("docker")
                            .args(["logs", "--tail", "20000", &boxes[j].name])
                            .output()
                            .map(|o| format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr)))
                            .unwrap_or_default();
                        let mut errors: Vec<&str> = logs.lines().filter(|l| l.contains("fatal") || l.contains("warning")).collect();
                        errors.sort();
                        errors.dedup();
                        errors.truncate(3);
                        println!("  run {i} {:<19} FAILED: gateway-{stuck} not up after 90 s ({why}); {}", kinds[j].0, errors.join(" | "));
                        failures[j].push(format!(
                            "gateway-{stuck}: `{why}`; s6 said: {}",
                            errors.iter().map(|l| format!("`{l}`")).collect::<Vec<_>>().join(", ")
                        ));
                        // Start the next run from a container that is up again.
                        boxes[j].restart().ok();
                        continue;
                    }
                    Err(e) => return Err(e),
                };
                println!(
                    "  run {i} {:<19} {:>8.0} ms (old one stopped after {}, new one started after {})",
                    kinds[j].0,
                    r.total,
                    r.stopped.map_or("?".into(), |v| format!("{v:.0} ms")),
                    r.started.map_or("?".into(), |v| format!("{v:.0} ms"))
                );
                if let (Some(st), Some(sa)) = (r.stopped, r.started) {
                    parts[j][0].push(st);
                    parts[j][1].push(sa - st);
                    parts[j][2].push(r.total - sa);
                }
                total[j].push(r.total);
            }
        }
        let mut sec = Section::new(NAME, title);
        sec.para(&format!(
            "Containers of `{image}` (`CMD []`, s6-svscan as PID 1, the image's reference gateway): one with \
             500 profiles on its volume (every other one's last state `running`, each with its own port), \
             one with none (the baseline: what `docker restart` and a `docker exec` cost here), and, to show \
             what the container's file system costs, one with 500 profiles and `--tmpfs /run:rw,exec,mode=755`. \
             Timed from issuing `docker restart` on the host until one `docker exec` running a shell loop \
             has seen `s6-svstat -o up` say `true` for each of the 250 wanted slots, one after the other. \
             Includes Docker's stop of the old container (SIGTERM to s6-svscan, every gateway stopped) and \
             its start. Rotating order, after one untimed restart of each. Storage driver here: {}.",
            docker(&["info", "-f", "{{.Driver}}"]).unwrap_or_else(|_| "unknown".into())
        ));
        let md = &mut sec.markdown;
        let _ = writeln!(md, "| median of {runs}, by Docker's clock | {} | {} | {} |", kinds[0].0, kinds[1].0, kinds[2].0);
        let _ = writeln!(md, "|---|---:|---:|---:|");
        for (i, what) in [
            "issued until the old container had stopped (`State.FinishedAt`)",
            "then until the new one had started (`State.StartedAt`)",
            "then until every wanted gateway was up, as the exec loop saw it",
        ]
        .iter()
        .enumerate()
        {
            let _ = writeln!(
                md,
                "| {what} | {:.0} ms | {:.0} ms | {:.0} ms |",
                parts[0][i].median(),
                parts[1][i].median(),
                parts[2][i].median()
            );
        }
        let _ = writeln!(md, "| total | {:.0} ms | {:.0} ms | {:.0} ms |", total[0].median(), total[1].median(), total[2].median());
        let _ = writeln!(
            md,
            "| restarts after which some wanted gateway was not up within 90 s | {} | {} | {} |\n",
            failures[0].len(),
            failures[1].len(),
            failures[2].len()
        );
        for (k, f) in failures.iter().enumerate() {
            for why in f {
                let _ = writeln!(md, "- {}: {why}", kinds[k].0);
            }
        }
        if failures.iter().any(|f| !f.is_empty()) {
            let _ = writeln!(md);
        }
        sec.figures.push(
            Figure::new(NAME, "`docker restart`, 500 profiles: until 250 up", Unit::Ms, total[0].clone())
                .against("same image, 0 profiles", total[1].clone()),
        );
        sec.figures.push(
            Figure::new(NAME, "the same, `/run` on tmpfs", Unit::Ms, total[2].clone()).against("same image, 0 profiles", total[1].clone()),
        );
        Ok(sec)
    })();
    cleanup();
    result.unwrap_or_else(|e| Section::skipped(NAME, title, &format!("failed: {e}")))
}

//! hermes-agent's real gateway in the image, against the stand-in (`hermes-gateway`) in the same
//! image, each in a container of its own with 5 profiles, alternating: one gateway's
//! `gateway start` until its state file says `running` for the pid s6 runs (stopped again and
//! past s6's respawn throttle between runs), all 5 started at once until every one says so,
//! each gateway's RSS and PSS, and the container's CPU while the 5 sit idle. Also the image's
//! size, by layer. Timed inside the container (one `docker exec` per measurement), so
//! `docker exec`'s own cost is not counted.

use crate::docker::{docker, Booted};
use crate::report::{Figure, Section, Unit};
use crate::util::{self, Env, Stats};
use std::fmt::Write as _;
use std::time::Duration;

pub const NAME: &str = "real-gateway";

/// What this benchmark does not time, said once where its figures are.
const BUILD_NOTE: &str = "Layers, bottom up: the debootstrap base with python3 (160 MB), hermes-agent's venv (193 MB), our three binaries (4.5 MB). Build time, timed by hand, not by this benchmark (2026-12-04, this machine): `scripts/build-image` with a cold cargo target and no Docker cache took 3 min 13 s (the release build about 2 min, the pip install of 61 wheels in its own stage about 40 s); after a change to our code only, about 1 min (the venv stage is cached).";

const PROFILES: [&str; 5] = ["p1", "p2", "p3", "p4", "p5"];

/// Five profiles made by hermes-agent's own `profile create`, in a booted container.
struct Box5 {
    c: Booted,
}

impl Box5 {
    fn up(image: &str, tag: &str, env: &[&str]) -> Result<Box5, String> {
        let c = Booted::up(image, tag, env)?;
        for p in PROFILES {
            c.sh("hermes", &format!("hermes profile create {p} --no-alias >/dev/null"))?;
        }
        Ok(Box5 { c })
    }

    fn sh(&self, user: &str, script: &str) -> Result<String, String> {
        self.c.sh(user, script)
    }

    /// Milliseconds from `gateway start` of `profiles` until every one says running.
    fn start_until_running(&self, profiles: &[&str]) -> Result<f64, String> {
        let list = profiles.join(" ");
        let out = self.sh(
            "hermes",
            &format!(
                "t=$(now); for p in {list}; do hermes -p $p gateway start --no-wait >/dev/null || exit 2; done
                 end=$(($(date +%s) + 120))
                 for p in {list}; do until running $p; do [ $(date +%s) -gt $end ] && exit 3; sleep 0.02; done; done
                 echo $(( ($(now) - t) / 1000 ))"
            ),
        )?;
        out.parse::<f64>().map(|us| us / 1000.0).map_err(|_| format!("not a time: {out}"))
    }

    fn stop(&self, profiles: &[&str]) -> Result<(), String> {
        for p in profiles {
            self.sh("hermes", &format!("hermes -p {p} gateway stop >/dev/null"))?;
        }
        std::thread::sleep(Duration::from_millis(1100)); // past s6-supervise's respawn throttle
        Ok(())
    }

    /// Each running gateway's (RSS, PSS) in MB, from its `smaps_rollup` (readable by its uid).
    fn memory(&self) -> Result<Vec<(f64, f64)>, String> {
        let out = self.sh(
            "hermes",
            "for p in p1 p2 p3 p4 p5; do pid=$(s6-svstat -o pid /run/service/gateway-$p)
               awk '/^Rss:/{r=$2} /^Pss:/{s=$2} END{print r, s}' /proc/$pid/smaps_rollup; done",
        )?;
        Ok(out
            .lines()
            .filter_map(|l| {
                let mut it = l.split_whitespace().filter_map(|v| v.parse::<f64>().ok());
                Some((it.next()? / 1024.0, it.next()? / 1024.0))
            })
            .collect())
    }

    /// The container's CPU over `secs` seconds, in percent of one core (its cgroup's CPU usage).
    fn idle_cpu(&self, secs: u64) -> Result<f64, String> {
        // cgroup v2's usage_usec, else v1's cpuacct.usage (nanoseconds).
        let out = self.sh(
            "root",
            &format!(
                "u() {{ if [ -r /sys/fs/cgroup/cpu.stat ]; then awk '/^usage_usec/{{print $2}}' /sys/fs/cgroup/cpu.stat; \
                 else echo $(( $(cat /sys/fs/cgroup/cpuacct/cpuacct.usage) / 1000 )); fi; }}
                 a=$(u); sleep {secs}; b=$(u); [ -n \"$a\" ] && [ -n \"$b\" ] || exit 4; echo $((b - a))"
            ),
        )?;
        out.parse::<f64>().map(|us| us / (secs as f64 * 1e6) * 100.0).map_err(|_| format!("not a CPU time: {out}"))
    }
}

pub fn run(env: &Env, image: &str) -> Section {
    let mut sec = Section::new(NAME, "hermes-agent's real gateway in the image, against the stand-in");
    println!("\n== {NAME}: hermes-agent 0.19.0's gateway against the stand-in, 5 profiles each (load {})", util::loadavg());
    let boxes = (|| -> Result<(Box5, Box5), String> {
        Ok((Box5::up(image, "real", &[])?, Box5::up(image, "stand-in", &["HERMES_S6_GATEWAY_PROGRAM=/usr/local/bin/hermes-gateway"])?))
    })();
    let (real, stand_in) = match boxes {
        Ok(b) => b,
        Err(e) => return Section::skipped(NAME, "real gateway", &e),
    };
    let (mut one_r, mut one_s, mut all_r, mut all_s) = (Stats::default(), Stats::default(), Stats::default(), Stats::default());
    let runs = env.runs.clamp(3, 5);
    let mut errors = Vec::new();
    for i in 0..runs {
        let order: [&Box5; 2] = if i % 2 == 0 { [&real, &stand_in] } else { [&stand_in, &real] };
        for b in order {
            let (one, all) = if std::ptr::eq(b, &real) { (&mut one_r, &mut all_r) } else { (&mut one_s, &mut all_s) };
            match b.start_until_running(&["p1"]).and_then(|t| b.stop(&["p1"]).map(|()| t)) {
                Ok(t) => one.push(t),
                Err(e) => errors.push(e),
            }
            match b.start_until_running(&PROFILES).and_then(|t| b.stop(&PROFILES).map(|()| t)) {
                Ok(t) => all.push(t),
                Err(e) => errors.push(e),
            }
        }
    }
    // Both sets up again, settled, for memory and idle CPU.
    let (mut rss_r, mut pss_r, mut rss_s, mut pss_s, mut cpu_r, mut cpu_s) =
        (Stats::default(), Stats::default(), Stats::default(), Stats::default(), Stats::default(), Stats::default());
    for (b, rss, pss, cpu) in [(&real, &mut rss_r, &mut pss_r, &mut cpu_r), (&stand_in, &mut rss_s, &mut pss_s, &mut cpu_s)] {
        if let Err(e) = b.start_until_running(&PROFILES) {
            errors.push(e);
            continue;
        }
        std::thread::sleep(Duration::from_secs(5));
        match b.memory() {
            Ok(m) => m.iter().for_each(|(r, p)| {
                rss.push(*r);
                pss.push(*p);
            }),
            Err(e) => errors.push(e),
        }
        for _ in 0..3 {
            match b.idle_cpu(10) {
                Ok(c) => cpu.push(c),
                Err(e) => errors.push(e),
            }
        }
    }
    let size = docker(&["image", "inspect", "-f", "{{.Size}}", image]).ok().and_then(|s| s.parse::<f64>().ok()).unwrap_or(f64::NAN) / 1e6;
    let layers = docker(&["history", "--format", "{{.Size}}\t{{.CreatedBy}}", image]).unwrap_or_default();
    println!(
        "  one: {:.2} s vs {:.2} s; five at once: {:.2} s vs {:.2} s; RSS {:.0} MB vs {:.0} MB; PSS {:.0} MB vs {:.0} MB; idle CPU {:.2} % vs {:.2} %; image {size:.0} MB",
        one_r.median() / 1000.0,
        one_s.median() / 1000.0,
        all_r.median() / 1000.0,
        all_s.median() / 1000.0,
        rss_r.median(),
        rss_s.median(),
        pss_r.median(),
        pss_s.median(),
        cpu_r.median(),
        cpu_s.median()
    );
    sec.para(&format!(
        "Two containers of `{image}` with `/run` on tmpfs and 5 profiles each (made by `hermes profile create`, i.e. hermes-agent's own create): \
         one runs the image's default, hermes-agent's `gateway run --replace`; the other the stand-in \
         (`HERMES_S6_GATEWAY_PROGRAM=/usr/local/bin/hermes-gateway`). Alternating, {runs} runs each: `hermes -p p1 gateway start --no-wait` \
         until `gateway_state.json` says `running` with the pid `s6-svstat` gives, then stopped; the same for all 5 at once. Then \
         all 5 up, 5 s to settle, each gateway's `Rss`/`Pss` from `/proc/<pid>/smaps_rollup`, and the container's CPU \
         (its cgroup's CPU usage) over 3 × 10 s."
    ));
    let mut t = String::new();
    let _ = writeln!(t, "| | hermes-agent 0.19.0 | stand-in |\n|---|---:|---:|");
    let mb = |s: &Stats| format!("{:.0} MB (n={})", s.median(), s.len());
    let _ = writeln!(t, "| RSS per gateway | {} | {} |", mb(&rss_r), mb(&rss_s));
    let _ = writeln!(t, "| PSS per gateway | {} | {} |", mb(&pss_r), mb(&pss_s));
    let _ = writeln!(t, "| 5 × RSS | {:.0} MB | {:.0} MB |", rss_r.median() * 5.0, rss_s.median() * 5.0);
    let _ = writeln!(t, "| idle CPU, container with 5 gateways | {:.2} % of a core | {:.2} % of a core |", cpu_r.median(), cpu_s.median());
    sec.para(&t);
    sec.para(&format!(
        "The image: {size:.0} MB (`docker image inspect`), by layer (`docker history`):\n\n```\n{}\n```",
        layers.lines().filter(|l| !l.starts_with("0B")).map(|l| l.chars().take(100).collect::<String>()).collect::<Vec<_>>().join("\n")
    ));
    sec.para(BUILD_NOTE);
    if !errors.is_empty() {
        sec.para(&format!("Errors during the run: {}", errors.join("; ")));
    }
    sec.figures
        .push(Figure::new(NAME, "one gateway: `gateway start` until it says running", Unit::Ms, one_r).against("the stand-in", one_s));
    sec.figures.push(Figure::new(NAME, "5 gateways at once: until every one says running", Unit::Ms, all_r).against("the stand-in", all_s));
    sec.figures.push(Figure::new(NAME, "idle CPU of the container with 5 gateways", Unit::PctCore, cpu_r).against("the stand-in", cpu_s));
    sec
}

//! Boot pacing with hermes-agent's real gateway in the image: N wanted gateways after a
//! container restart, started all at once (`HERMES_GATEWAY_BOOT_PACE=0`, upstream's and the
//! earlier behaviour) against paced (the default: K = the container's CPUs), side by side in
//! one run. Two containers per N, only one running at a time; each measurement is a
//! `docker stop` then `docker start` (what `docker restart` does), timed inside the container
//! from PID 1's start until s6 says each gateway is ready (the readiness bridge: its state file
//! says `running` for this very process).

use crate::docker::{docker, Booted};
use crate::report::{Figure, Section, Unit};
use crate::util::{self, Env, Stats};
use std::fmt::Write as _;

pub const NAME: &str = "pacing";

/// CPU one 0.19.0 gateway spends from exec to `running` when alone (issue 21's measurement
/// on this machine): the floor is N of those spread over the cores.
const CPU_PER_START_S: f64 = 1.04;

fn names(n: usize) -> Vec<String> {
    (1..=n).map(|i| format!("p{i}")).collect()
}

struct Boxed {
    c: Booted,
    n: usize,
}

impl Boxed {
    fn sh(&self, user: &str, script: &str) -> Result<String, String> {
        self.c.sh(user, script)
    }

    /// A container of `image` with `n` profiles, each wanted running, all running once; then
    /// stopped.
    fn make(image: &str, tag: &str, n: usize, pace: &str) -> Result<Boxed, String> {
        let b = Boxed { c: Booted::up(image, tag, &[&format!("HERMES_GATEWAY_BOOT_PACE={pace}")])?, n };
        // One profile made by hermes-agent's own `profile create`, copied for the others.
        b.sh("hermes", "hermes profile create p1 --no-alias >/dev/null")?;
        let list = names(n).join(" ");
        b.sh("hermes", &format!("for p in {list}; do [ $p = p1 ] || cp -a /opt/data/profiles/p1 /opt/data/profiles/$p; done"))?;
        b.sh(
            "hermes",
            &format!(
                "for p in {list}; do until [ -d /run/service/gateway-$p ]; do sleep 0.1; done; hermes -p $p gateway start --no-wait >/dev/null || exit 2; done
                 end=$(($(date +%s) + 300))
                 for p in {list}; do until running $p; do [ $(date +%s) -gt $end ] && exit 3; sleep 0.2; done; done"
            ),
        )?;
        docker(&["stop", &b.c.name])?;
        Ok(b)
    }

    /// Start the container; (first ready, all ready) in ms from PID 1's start, and the
    /// gateways' total RSS in MB once all are ready. Stopped again after.
    fn boot(&self) -> Result<(f64, f64, f64), String> {
        docker(&["start", &self.c.name])?;
        let list = names(self.n).join(" ");
        let out = self.sh(
            "root",
            &format!(
                "up() {{ awk '{{printf \"%d\", $1 * 100}}' /proc/uptime; }}
                 t0=$(awk '{{print $22}}' /proc/1/stat)
                 left=\"{list}\"; first=; last=; end=$(( $(up) + 30000 ))
                 while [ -n \"$left\" ]; do
                   next=
                   for p in $left; do
                     if ready $p; then t=$(up); [ -z \"$first\" ] && first=$t; last=$t; else next=\"$next $p\"; fi
                   done
                   left=$next
                   [ $(up) -gt $end ] && exit 3
                   [ -n \"$left\" ] && sleep 0.1
                 done
                 rss=0
                 for p in {list}; do pid=$(s6-svstat -o pid /run/service/gateway-$p)
                   r=$(awk '{{print $2}}' /proc/$pid/statm); rss=$((rss + ${{r:-0}} * 4)); done
                 echo $(( (first - t0) * 10 )) $(( (last - t0) * 10 )) $((rss / 1024))"
            ),
        );
        let _ = docker(&["stop", &self.c.name]);
        let out = out?;
        let v: Vec<f64> = out.split_whitespace().filter_map(|x| x.parse().ok()).collect();
        match v[..] {
            [first, all, rss] => Ok((first, all, rss)),
            _ => Err(format!("not a measurement: {out}")),
        }
    }
}

#[derive(Default)]
struct Mode {
    first: Stats,
    all: Stats,
    rss: Stats,
}

pub fn run(env: &Env, image: &str, sizes: &[usize]) -> Section {
    let mut sec = Section::new(NAME, "Boot pacing with hermes-agent's real gateway: all at once against paced");
    let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
    let runs = env.runs.clamp(1, 3);
    println!(
        "\n== {NAME}: N gateways after a container restart, all at once against paced (K = {} and {cores}), {runs} run(s) each (load {})",
        cores + 1,
        util::loadavg()
    );
    let mut table = String::new();
    let _ = writeln!(table, "| N | mode | first ready | all ready | floor | all / floor | memory |\n|---:|---|---:|---:|---:|---:|---:|");
    let mut errors = Vec::new();
    let mut lone = Stats::default();
    for &n in sizes {
        // All at once, the default pace (K = the CPUs plus one), and K = the CPUs.
        let paces = [
            ("all at once".to_string(), "0".to_string()),
            (format!("paced, K={} (default)", cores + 1), String::new()),
            (format!("paced, K={cores}"), cores.to_string()),
        ];
        let boxes: Result<Vec<Boxed>, String> =
            paces.iter().enumerate().map(|(i, (_, k))| Boxed::make(image, &format!("m{i}n{n}"), n, k)).collect();
        let boxes = match boxes {
            Ok(b) => b,
            Err(e) => {
                errors.push(format!("N={n}: {e}"));
                continue;
            }
        };
        let mut modes: Vec<Mode> = paces.iter().map(|_| Mode::default()).collect();
        for i in 0..runs {
            // Each run in another order: whatever the machine does meanwhile spreads over all.
            for j in 0..boxes.len() {
                let m = (i + j) % boxes.len();
                match boxes[m].boot() {
                    Ok((first, all, rss)) => {
                        println!(
                            "  N={n} {}: first ready {:.2} s, all ready {:.2} s, {rss:.0} MB (load {})",
                            paces[m].0,
                            first / 1000.0,
                            all / 1000.0,
                            util::loadavg()
                        );
                        modes[m].first.push(first);
                        modes[m].all.push(all);
                        modes[m].rss.push(rss);
                    }
                    Err(e) => errors.push(format!("N={n}: {e}")),
                }
            }
        }
        if n == 1 {
            lone = modes[0].all.clone();
        }
        let floor = n as f64 * CPU_PER_START_S / cores as f64;
        for ((label, _), m) in paces.iter().zip(&modes) {
            let all = m.all.median() / 1000.0;
            let _ = writeln!(
                table,
                "| {n} | {label} | {:.2} s | {all:.2} s | {floor:.2} s | {:.2} | {:.0} MB |",
                m.first.median() / 1000.0,
                all / floor,
                m.rss.median()
            );
        }
        let (at_once, paced) = (&modes[0], &modes[1]);
        sec.figures.push(
            Figure::new(NAME, format!("N={n}: first gateway ready after a restart, paced"), Unit::Ms, paced.first.clone())
                .against("all at once", at_once.first.clone()),
        );
        sec.figures.push(
            Figure::new(NAME, format!("N={n}: every gateway ready after a restart, paced"), Unit::Ms, paced.all.clone())
                .against("all at once", at_once.all.clone()),
        );
    }
    sec.para(&format!(
        "Per N, two containers of `{image}` with `/run` on tmpfs and N profiles (one made by hermes-agent's `hermes profile create`, \
         copied for the others), each wanted running: one with `HERMES_GATEWAY_BOOT_PACE=0` (all at once, as before and as upstream), \
         one with the default (K = the CPUs plus one, {} here), one with K = the CPUs. Only one runs at a time; each measurement is `docker stop` then `docker start` \
         (what `docker restart` does), timed inside the container from PID 1's start until s6 says each gateway is ready \
         (`s6-svstat -o up,ready`: the readiness bridge marks it once `gateway_state.json` says `running` for that very process; polled every 100 ms); memory is the gateways' summed RSS once all are ready. Median of {runs} run(s), \
         alternating. The floor is N × {CPU_PER_START_S} s (the CPU one gateway takes from exec to running alone, issue 21's measurement) \
         over {cores} cores.",
        cores + 1
    ));
    sec.para(&table);
    if lone.len() > 0 {
        sec.para(&format!("One gateway alone: ready {:.2} s after PID 1 started.", lone.median() / 1000.0));
    }
    if !errors.is_empty() {
        sec.para(&format!("Errors during the run: {}", errors.join("; ")));
    }
    sec
}

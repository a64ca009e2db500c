//! Lifecycle latency: `hermes-reconcile start P` of a stopped gateway until s6 says it is up,
//! against `s6-svc -u` of the same slot (s6's own spawn time), alternating, under a real
//! s6-svscan with 1000 profiles.

use crate::report::{Figure, Section, Target, Unit};
use crate::s6::{self, Fleet};
use crate::util::{self, Env, Stats};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

pub const NAME: &str = "start";

pub fn run(env: &Env, fleet: &Fleet) -> Section {
    let n = fleet.n;
    let mut sec = Section::new(NAME, format!("`start` of a stopped gateway, {n} profiles"));
    println!("\n== {NAME}: start → up against s6-svc -u → up (load {})", util::loadavg());
    let p = "p00001";
    let slot = fleet.slot(p);
    let time_to_up = |cmd: &mut Command| -> f64 {
        let t = Instant::now();
        cmd.stdout(Stdio::null()).stderr(Stdio::null()).status().unwrap();
        while !s6::up(&slot) {
            std::hint::spin_loop();
            if t.elapsed() > Duration::from_secs(5) {
                break;
            }
        }
        t.elapsed().as_secs_f64() * 1000.0
    };
    let down = || {
        util::quiet(Command::new("s6-svc").arg("-d").arg(&slot));
        util::wait_for(Duration::from_secs(5), Duration::from_millis(5), || !s6::up(&slot));
        std::thread::sleep(Duration::from_millis(1100)); // past s6-supervise's respawn throttle
    };
    let (mut ours, mut svc) = (Stats::default(), Stats::default());
    let runs = env.runs.max(9);
    for i in 0..runs {
        let order: [u8; 2] = if i % 2 == 0 { [0, 1] } else { [1, 0] };
        for w in order {
            match w {
                0 => ours.push(time_to_up(&mut fleet.reconcile(&["start", p]))),
                _ => svc.push(time_to_up(Command::new("s6-svc").arg("-u").arg(&slot))),
            }
            down();
        }
    }
    println!("  start → up {:.2} ms; s6-svc -u → up {:.2} ms (+{:.2} ms)", ours.median(), svc.median(), ours.median() - svc.median());
    sec.para(
        "`hermes-reconcile start p00001` (a whole process: it writes `desired_state` and sends `u`) until \
         `supervise/status` says up, against `s6-svc -u` of the same slot until up; stopped again and past \
         the 1 s respawn throttle between runs.",
    );
    sec.figures.push(
        Figure::new(NAME, "`start` of a stopped gateway until s6 says up", Unit::Ms, ours)
            .against("`s6-svc -u`", svc)
            .target(Target::Beyond(20.0)),
    );
    sec
}

//! The core's clock seam on the simulator's time, shared by the suites that drive the core
//! against the virtual world.

use hermes_core::clock::Clock;
use hermes_sim::s6sim::virtual_world::{VirtualTime, VirtualWorld};
use std::cell::RefCell;
use std::rc::Rc;
use std::time::{Duration, Instant, SystemTime};

/// Reads the virtual time. A clock with the world attached lets a command's waits (for s6 to
/// take in what it was told, for a gateway to come up) move that world; one without (a
/// finish hook, running inside the world) must never wait, and panics if it does.
pub struct SimClock {
    pub time: VirtualTime,
    pub world: Option<Rc<RefCell<VirtualWorld>>>,
}

impl SimClock {
    #[allow(dead_code)] // not every suite runs finish hooks
    pub fn inside(time: VirtualTime) -> SimClock {
        SimClock { time, world: None }
    }

    pub fn stepping(world: &Rc<RefCell<VirtualWorld>>) -> SimClock {
        SimClock { time: world.borrow().time(), world: Some(world.clone()) }
    }
}

impl Clock for SimClock {
    fn now(&self) -> SystemTime {
        self.time.wall()
    }
    fn instant(&self) -> Instant {
        self.time.instant()
    }
    fn sleep(&self, d: Duration) {
        match &self.world {
            Some(w) => w.try_borrow_mut().expect("a wait from inside the virtual world (a finish, a script) would deadlock it").advance(d),
            None => panic!("something waited {d:?} inside the virtual world: a finish must never block"),
        }
    }
}

/// Run an operator's command on a world that moves while the command waits; the world back.
#[allow(dead_code)] // not every suite issues commands
pub fn operate<T>(w: VirtualWorld, cfg: &hermes_core::config::Config, f: impl FnOnce(&hermes_core::ctx::Ctx) -> T) -> (VirtualWorld, T) {
    let cell = Rc::new(RefCell::new(w));
    let clock = SimClock::stepping(&cell);
    let out = f(&hermes_core::ctx::Ctx::new(&hermes_core::fs::RealFs, &clock, cfg));
    drop(clock);
    let w = Rc::try_unwrap(cell).ok().expect("the command let go of the world").into_inner();
    (w, out)
}

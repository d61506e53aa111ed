//! Clock steps (issue 6), on the state machine's injected clock: this machine's clock is never
//! changed. Backoff delays are monotonic deadlines, so a wall-clock jump either way changes no
//! delay; the restart window is over wall time (it persists in state.json), and a step back
//! cannot erase it nor freeze it longer than one `--window`.

use std::time::{Duration, Instant, SystemTime};

use restartd::base::exit::ProcessEnd;
use restartd::supervise::machine::{Action, Input, Machine, Now, Outcome, Settings};
use restartd::supervise::policy::{Backoff, ExitRules, RestartPolicy};
use restartd::supervise::window::RestartWindow;

const SEC: Duration = Duration::from_secs(1);
const HOUR: Duration = Duration::from_secs(3600);

fn machine(max: Option<u32>) -> Machine {
    let settings = Settings {
        policy: RestartPolicy::Always,
        rules: ExitRules::default(),
        backoff: Backoff {
            delay: SEC,
            factor: 2.0,
            max_delay: Duration::from_secs(60),
            jitter: 0.0,
        },
        min_uptime: Duration::from_secs(10),
        stop_signal: nix::libc::SIGTERM,
        stop_timeout: Duration::from_secs(5),
        notify: false,
        max_runtime: None,
        max_runtime_jitter: Duration::ZERO,
        health: false,
        ready_timeout: None,
    };
    Machine::new(
        settings,
        RestartWindow::new(Duration::from_secs(300), max),
        0,
    )
}

/// Two clocks that the test moves independently.
struct Clock {
    mono: Instant,
    wall: SystemTime,
}

impl Clock {
    fn now(&self) -> Now {
        Now {
            mono: self.mono,
            wall: self.wall,
        }
    }
    /// Time passes: both clocks move.
    fn pass(&mut self, d: Duration) {
        self.mono += d;
        self.wall += d;
    }
}

fn spawned(m: &mut Machine, clock: &Clock, actions: Vec<Action>, pid: i32) {
    assert!(
        actions.iter().any(|a| matches!(a, Action::Spawn { .. })),
        "{actions:?}"
    );
    m.handle(Input::Spawned { pid, jitter: 0.0 }, clock.now());
}

fn crash(m: &mut Machine, clock: &Clock) -> Outcome {
    let actions = m.handle(
        Input::ChildEnded {
            end: ProcessEnd::Exited(1),
            leftovers: false,
            jitter: 0.5,
            oom: None,
        },
        clock.now(),
    );
    actions
        .into_iter()
        .find_map(|a| match a {
            Action::Ended(r) => Some(r.outcome),
            _ => None,
        })
        .expect("an Ended action")
}

fn spawns(actions: &[Action]) -> bool {
    actions.iter().any(|a| matches!(a, Action::Spawn { .. }))
}

#[test]
fn backoff_waits_its_delay_in_monotonic_time_whatever_the_wall_clock_does() {
    for step in [-1i64, 1] {
        let mut clock = Clock {
            mono: Instant::now(),
            wall: SystemTime::now(),
        };
        let mut m = machine(None);
        let first = m.start(clock.now());
        spawned(&mut m, &clock, first, 100);
        clock.pass(SEC);
        let crashed_at = clock.mono;
        assert!(matches!(crash(&mut m, &clock), Outcome::Restart { delay, .. } if delay == SEC));
        assert_eq!(m.deadline(), Some(crashed_at + SEC));
        // The wall clock jumps a day, back or forward, during the backoff.
        let day = 24 * HOUR;
        clock.wall = if step < 0 {
            clock.wall - day
        } else {
            clock.wall + day
        };
        assert_eq!(m.deadline(), Some(crashed_at + SEC), "step {step}");
        clock.mono += Duration::from_millis(999);
        assert!(!spawns(&m.handle(Input::Tick, clock.now())), "step {step}");
        clock.mono += Duration::from_millis(1);
        let actions = m.handle(Input::Tick, clock.now());
        assert!(spawns(&actions), "step {step}: restarted on time");
        spawned(&mut m, &clock, actions, 101);
        // The next delay is still the doubled one: the streak survived the step.
        clock.pass(SEC);
        assert!(
            matches!(crash(&mut m, &clock), Outcome::Restart { delay, .. } if delay == 2 * SEC),
            "step {step}"
        );
    }
}

#[test]
fn a_wall_clock_step_back_neither_erases_nor_freezes_the_window() {
    let mut clock = Clock {
        mono: Instant::now(),
        wall: SystemTime::now(),
    };
    let mut m = machine(Some(2));
    let first = m.start(clock.now());
    spawned(&mut m, &clock, first, 100);
    // Two crashes and restarts: the window (2 in 300 s) is full.
    for pid in [101, 102] {
        clock.pass(SEC);
        assert!(matches!(crash(&mut m, &clock), Outcome::Restart { .. }));
        clock.mono = m.deadline().unwrap();
        let actions = m.handle(Input::Tick, clock.now());
        spawned(&mut m, &clock, actions, pid);
    }
    // The wall clock steps back an hour: the restarts now look like they are in the future.
    clock.wall -= HOUR;
    clock.pass(SEC);
    assert!(
        matches!(
            crash(&mut m, &clock),
            Outcome::GiveUp {
                count: 2,
                max: 2,
                ..
            }
        ),
        "the window still counts both restarts after the step back"
    );
    // And they count as made at the step, so they leave the window one --window later, not
    // an hour later.
    let mut w = m.window().clone();
    assert_eq!(w.count(clock.wall + Duration::from_secs(299)), 2);
    assert_eq!(w.count(clock.wall + Duration::from_secs(300)), 0);
}

#[test]
fn a_wall_clock_step_forward_ages_the_window_as_wall_time_says() {
    let mut clock = Clock {
        mono: Instant::now(),
        wall: SystemTime::now(),
    };
    let mut m = machine(Some(1));
    let first = m.start(clock.now());
    spawned(&mut m, &clock, first, 100);
    clock.pass(SEC);
    assert!(matches!(
        crash(&mut m, &clock),
        Outcome::Restart { n: 1, .. }
    ));
    clock.mono = m.deadline().unwrap();
    let actions = m.handle(Input::Tick, clock.now());
    spawned(&mut m, &clock, actions, 101);
    // Within the window: full.
    clock.pass(SEC);
    let mut w = m.window().clone();
    assert!(w.full(clock.wall));
    // A step forward past the window: the restart is old by the wall clock the window is kept
    // in (and persisted with), so one more restart is allowed, with the streak's backoff.
    clock.wall += HOUR;
    match crash(&mut m, &clock) {
        Outcome::Restart { n: 1, delay, .. } => assert_eq!(delay, 2 * SEC),
        other => panic!("expected restart 1 of a fresh window, got {other:?}"),
    }
}

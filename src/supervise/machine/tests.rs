//! Scenario tests of the machine on a virtual clock (quinn's `Pair::step`).
use super::*;
use crate::base::exit::ProcessEnd;
use crate::supervise::policy::{Backoff, ExitRules, RestartPolicy};
use nix::libc::{SIGABRT, SIGINT, SIGTERM};
use std::time::Duration;

const SEC: Duration = Duration::from_secs(1);

fn settings(policy: RestartPolicy) -> Settings {
    Settings {
        policy,
        rules: ExitRules::default(),
        backoff: Backoff {
            delay: SEC,
            factor: 2.0,
            max_delay: Duration::from_secs(60),
            jitter: 0.0,
        },
        min_uptime: Duration::from_secs(10),
        stop_signal: SIGTERM,
        stop_timeout: Duration::from_secs(5),
        notify: false,
        max_runtime: None,
        max_runtime_jitter: Duration::ZERO,
        health: false,
        ready_timeout: None,
        sockets: false,
    }
}

/// A machine and a virtual clock (quinn's `Pair::step`).
struct Sim {
    m: Machine,
    t0: Now,
    at: Duration,
    next_pid: i32,
    /// The jitter sample every `Spawned` carries.
    spawn_jitter: f64,
    /// Why the next reload switch is refused (`Switched`), if it is.
    refuse_switch: Option<String>,
}

impl Sim {
    fn new(settings: Settings, max: Option<u32>) -> Sim {
        let t0 = Now::read();
        let window = RestartWindow::new(Duration::from_secs(300), max);
        Sim {
            m: Machine::new(settings, window, 0),
            t0,
            at: Duration::ZERO,
            next_pid: 100,
            spawn_jitter: 0.0,
            refuse_switch: None,
        }
    }
    fn now(&self) -> Now {
        Now {
            mono: self.t0.mono + self.at,
            wall: self.t0.wall + self.at,
        }
    }
    /// Feeds `input`; answers every `Spawn` with `Spawned` and every switch of the sockets with
    /// `Switched`, like the event loop.
    fn feed(&mut self, input: Input) -> Vec<Action> {
        let now = self.now();
        let actions = self.m.handle(input, now);
        self.answer_spawns(actions)
    }
    fn answer_spawns(&mut self, actions: Vec<Action>) -> Vec<Action> {
        let mut out = Vec::new();
        for a in actions {
            let spawned = matches!(a, Action::Spawn { .. });
            let switched = a == Action::Sockets(Sockets::ToNew);
            out.push(a);
            if switched {
                let now = self.now();
                let refused = self.refuse_switch.take();
                let more = self.m.handle(Input::Switched { refused }, now);
                out.extend(self.answer_spawns(more));
            }
            if spawned {
                self.next_pid += 1;
                let now = self.now();
                let spawned = Input::Spawned {
                    pid: self.next_pid,
                    jitter: self.spawn_jitter,
                };
                let more = self.m.handle(spawned, now);
                out.extend(more);
            }
        }
        out
    }
    fn start(&mut self) -> Vec<Action> {
        let now = self.now();
        let actions = self.m.start(now);
        self.answer_spawns(actions)
    }
    fn advance(&mut self, d: Duration) {
        self.at += d;
    }
    /// Advances to the machine's deadline and ticks.
    fn step(&mut self) -> Vec<Action> {
        let deadline = self.m.deadline().expect("a deadline");
        self.at = deadline - self.t0.mono;
        self.feed(Input::Tick)
    }
    fn end(&mut self, end: ProcessEnd) -> Vec<Action> {
        self.feed(Input::ChildEnded {
            end,
            leftovers: false,
            jitter: 0.5,
            oom: None,
        })
    }
}

fn report(actions: &[Action]) -> &EndReport {
    actions
        .iter()
        .find_map(|a| match a {
            Action::Ended(r) => Some(r),
            _ => None,
        })
        .expect("an Ended action")
}

fn delay_of(actions: &[Action]) -> Duration {
    match report(actions).outcome {
        Outcome::Restart { delay, .. } => delay,
        other => panic!("expected a restart, got {other:?}"),
    }
}

const CRASH: ProcessEnd = ProcessEnd::Exited(1);

#[test]
fn crash_crash_long_run_crash_resets_the_delay() {
    let mut sim = Sim::new(settings(RestartPolicy::OnFailure), Some(10));
    sim.start();
    assert_eq!(delay_of(&sim.end(CRASH)), SEC);
    sim.step();
    assert_eq!(delay_of(&sim.end(CRASH)), 2 * SEC);
    sim.step();
    sim.advance(Duration::from_secs(10));
    assert_eq!(delay_of(&sim.end(CRASH)), SEC);
}

#[test]
fn backoff_ends_in_a_spawn_at_the_deadline_not_before() {
    let mut sim = Sim::new(settings(RestartPolicy::Always), None);
    sim.start();
    sim.end(CRASH);
    assert_eq!(sim.m.status(), Status::Backoff);
    sim.advance(Duration::from_millis(999));
    assert!(!sim
        .feed(Input::Tick)
        .iter()
        .any(|a| matches!(a, Action::Spawn { .. })));
    let actions = sim.step();
    assert_eq!(actions[0], Action::Spawn { restarts: 1 });
    assert_eq!(sim.m.status(), Status::Running);
    assert_eq!(sim.m.restarts_total(), 1);
}

#[test]
fn max_restarts_reached_gives_up_with_the_child_status() {
    let mut sim = Sim::new(settings(RestartPolicy::Always), Some(2));
    sim.start();
    for _ in 0..2 {
        sim.end(CRASH);
        sim.step();
    }
    let actions = sim.end(ProcessEnd::Signaled {
        signal: SIGABRT,
        core_dumped: true,
    });
    let r = report(&actions);
    assert!(r.crash);
    assert_eq!(r.outcome.action(), "give-up");
    assert_eq!(r.restarts, 2);
    assert_eq!(actions.last(), Some(&Action::Exit(134)));
    assert_eq!(sim.m.status(), Status::GaveUp);
}

#[test]
fn the_window_forgets_old_restarts() {
    let mut s = settings(RestartPolicy::Always);
    s.backoff.delay = Duration::ZERO;
    let mut sim = Sim::new(s, Some(1));
    sim.start();
    let actions = sim.end(CRASH);
    assert!(
        matches!(actions.last(), Some(Action::SaveState)),
        "{actions:?}"
    );
    sim.advance(Duration::from_secs(301));
    let actions = sim.end(CRASH);
    assert!(actions.iter().any(|a| matches!(a, Action::Spawn { .. })));
}

#[test]
fn max_restarts_zero_never_restarts() {
    let mut sim = Sim::new(settings(RestartPolicy::Always), Some(0));
    sim.start();
    let actions = sim.end(CRASH);
    assert_eq!(report(&actions).outcome.action(), "give-up");
    assert_eq!(actions.last(), Some(&Action::Exit(1)));
}

#[test]
fn clean_exit_under_on_failure_exits_without_a_crash_record() {
    let mut sim = Sim::new(settings(RestartPolicy::OnFailure), None);
    sim.start();
    let actions = sim.end(ProcessEnd::Exited(0));
    assert!(!report(&actions).crash);
    assert_eq!(actions.last(), Some(&Action::Exit(0)));
    assert_eq!(sim.m.status(), Status::Exited);
}

#[test]
fn crash_record_comes_before_spawn_and_exit() {
    let mut s = settings(RestartPolicy::Always);
    s.backoff.delay = Duration::ZERO;
    let mut sim = Sim::new(s, Some(1));
    sim.start();
    for _ in 0..2 {
        let actions = sim.end(CRASH);
        let ended = actions
            .iter()
            .position(|a| matches!(a, Action::Ended(_)))
            .unwrap();
        let acted = actions
            .iter()
            .position(|a| matches!(a, Action::Spawn { .. } | Action::Exit(_)))
            .unwrap();
        assert!(ended < acted, "{actions:?}");
    }
}

#[test]
fn spawn_failure_is_not_retried() {
    let mut sim = Sim::new(settings(RestartPolicy::Always), None);
    let now = sim.now();
    sim.m.start(now);
    let actions = sim.feed(Input::SpawnFailed {
        failure: SpawnError::NotFound,
        error: "No such file or directory (os error 2)".into(),
        jitter: 0.5,
    });
    assert_eq!(report(&actions).reason, Reason::SpawnFailed);
    assert_eq!(actions.last(), Some(&Action::Exit(127)));
    let mut sim = Sim::new(settings(RestartPolicy::Always), None);
    let now = sim.now();
    sim.m.start(now);
    let actions = sim.feed(Input::SpawnFailed {
        failure: SpawnError::NotExecutable,
        error: "Permission denied (os error 13)".into(),
        jitter: 0.5,
    });
    assert_eq!(actions.last(), Some(&Action::Exit(126)));
}

#[test]
fn requested_restart_is_no_crash_and_costs_no_backoff() {
    let mut sim = Sim::new(settings(RestartPolicy::OnFailure), Some(1));
    sim.start();
    let actions = sim.feed(Input::Request(Request::Restart));
    assert_eq!(actions[0], Action::Reply(Reply::Ok));
    assert_eq!(actions[1], Action::SignalAll(SIGTERM));
    let actions = sim.end(ProcessEnd::Signaled {
        signal: SIGTERM,
        core_dumped: false,
    });
    assert!(!report(&actions).crash);
    assert!(actions.contains(&Action::Spawn { restarts: 1 }));
    assert_eq!(sim.m.window.clone().count(sim.now().wall), 0);
    assert_eq!(sim.m.status(), Status::Running);
}

#[test]
fn leftovers_delay_the_restart_until_gone_or_killed() {
    let mut s = settings(RestartPolicy::Always);
    s.backoff.delay = Duration::ZERO;
    let mut sim = Sim::new(s, None);
    sim.start();
    let actions = sim.feed(Input::ChildEnded {
        end: CRASH,
        leftovers: true,
        jitter: 0.5,
        oom: None,
    });
    assert!(actions.contains(&Action::SignalAll(SIGTERM)));
    assert!(!actions.iter().any(|a| matches!(a, Action::Spawn { .. })));
    // The leftovers ignore SIGTERM: SIGKILL at the stop timeout.
    assert_eq!(sim.step(), vec![Action::SignalAll(SIGKILL)]);
    let actions = sim.feed(Input::Leftovers { alive: false });
    assert_eq!(
        actions[..2],
        [Action::Release, Action::Spawn { restarts: 1 }]
    );
}

#[test]
fn leftovers_are_cleaned_before_exit() {
    let mut sim = Sim::new(settings(RestartPolicy::No), None);
    sim.start();
    let actions = sim.feed(Input::ChildEnded {
        end: CRASH,
        leftovers: true,
        jitter: 0.5,
        oom: None,
    });
    assert!(!actions.iter().any(|a| matches!(a, Action::Exit(_))));
    assert_eq!(
        sim.feed(Input::Leftovers { alive: false }),
        vec![Action::Release, Action::SaveState, Action::Exit(1)]
    );
}

#[test]
fn an_unhealthy_child_is_stopped_recorded_and_restarted_by_policy() {
    let mut sim = Sim::new(settings(RestartPolicy::OnFailure), Some(5));
    sim.start();
    let actions = sim.feed(Input::Unhealthy {
        detail: "exit 1: connection refused".into(),
    });
    assert_eq!(actions[0], Action::SignalAll(SIGTERM));
    assert_eq!(sim.m.status(), Status::Stopping);
    // It dies of SIGTERM, which would be clean; the cause is restartd's reason.
    let actions = sim.end(ProcessEnd::Signaled {
        signal: SIGTERM,
        core_dumped: false,
    });
    let r = report(&actions);
    assert!(r.crash);
    assert_eq!(r.reason, Reason::Unhealthy);
    assert_eq!(r.detail.as_deref(), Some("exit 1: connection refused"));
    assert_eq!(r.outcome.action(), "restart");
    assert_eq!(sim.m.last_exit().unwrap().reason, Reason::Unhealthy);
}

#[test]
fn the_policy_table_decides_after_a_failure_stop() {
    // on-abort does not restart unhealthy or watchdog ends; on-watchdog restarts only those.
    for (policy, input, restarts) in [
        (
            RestartPolicy::OnAbort,
            Input::Unhealthy { detail: "x".into() },
            false,
        ),
        (
            RestartPolicy::OnWatchdog,
            Input::OverMemory { detail: "x".into() },
            false,
        ),
        (
            RestartPolicy::OnWatchdog,
            Input::WatchdogMissed { detail: "x".into() },
            true,
        ),
        (
            RestartPolicy::OnAbnormal,
            Input::OverMemory { detail: "x".into() },
            true,
        ),
        (
            RestartPolicy::No,
            Input::WatchdogMissed { detail: "x".into() },
            false,
        ),
    ] {
        let mut sim = Sim::new(settings(policy), Some(5));
        sim.start();
        sim.feed(input.clone());
        let actions = sim.end(ProcessEnd::Exited(0));
        let r = report(&actions);
        assert_eq!(
            r.outcome.action() == "restart",
            restarts,
            "{policy:?} {input:?}"
        );
        assert!(r.crash);
        if !restarts {
            assert_eq!(
                actions.last(),
                Some(&Action::Exit(0)),
                "the child's own status"
            );
        }
    }
}

#[test]
fn failures_are_ignored_unless_the_child_runs() {
    let mut sim = Sim::new(settings(RestartPolicy::Always), Some(5));
    sim.start();
    sim.feed(Input::Signal { signal: SIGTERM });
    assert_eq!(sim.feed(Input::Unhealthy { detail: "x".into() }), vec![]);
    let actions = sim.end(ProcessEnd::Exited(0));
    assert_eq!(actions.last(), Some(&Action::Exit(0)));
}

#[test]
fn forwarded_signals_reach_only_a_live_child() {
    let mut sim = Sim::new(settings(RestartPolicy::Always), None);
    sim.start();
    assert_eq!(
        sim.feed(Input::Signal { signal: 1 }),
        vec![Action::SignalGroup(1)]
    );
    sim.end(CRASH);
    assert_eq!(sim.feed(Input::Signal { signal: 1 }), vec![]);
}

#[test]
fn no_deadline_while_the_child_runs_quietly() {
    let mut sim = Sim::new(settings(RestartPolicy::Always), Some(5));
    sim.start();
    assert_eq!(sim.m.deadline(), None);
}

/// Builds the machine in each status and feeds it every kind of input: nothing panics, and
/// what cannot happen is reported, not acted on.
#[test]
fn every_status_handles_every_input() {
    let inputs = || {
        vec![
            Input::Spawned {
                pid: 7,
                jitter: 0.0,
            },
            Input::SpawnFailed {
                failure: SpawnError::Passing,
                error: "x".into(),
                jitter: 0.5,
            },
            Input::ChildEnded {
                end: CRASH,
                leftovers: false,
                jitter: 0.3,
                oom: None,
            },
            Input::ChildEnded {
                end: ProcessEnd::Exited(0),
                leftovers: true,
                jitter: 0.3,
                oom: None,
            },
            Input::Leftovers { alive: false },
            Input::Signal { signal: SIGTERM },
            Input::Request(Request::Restart),
            Input::Signal { signal: 1 },
            Input::Signal {
                signal: nix::libc::SIGTSTP,
            },
            Input::Request(Request::Reset { crashes: false }),
            Input::Request(Request::Reset { crashes: true }),
            Input::Request(Request::Stop),
            Input::Request(Request::Signal(1)),
            Input::Leftovers { alive: true },
            Input::Ready,
            Input::RestartReset,
            Input::Unhealthy { detail: "x".into() },
            Input::OverMemory { detail: "x".into() },
            Input::WatchdogMissed { detail: "x".into() },
            Input::Tick,
        ]
    };
    type Setup = fn(&mut Sim);
    let setups: Vec<(&str, Setup)> = vec![
        ("starting", |s| {
            let now = s.now();
            s.m.start(now);
        }),
        ("running", |s| {
            s.start();
        }),
        ("backoff", |s| {
            s.start();
            s.end(CRASH);
        }),
        ("stopping", |s| {
            s.start();
            s.feed(Input::Signal { signal: SIGTERM });
        }),
        ("restarting", |s| {
            s.start();
            s.feed(Input::Request(Request::Restart));
        }),
        ("stopped", |s| {
            s.start();
            s.feed(Input::Signal { signal: SIGTERM });
            s.end(CRASH);
        }),
        ("exited", |s| {
            s.start();
            s.end(ProcessEnd::Exited(0));
        }),
        ("gave-up", |s| {
            s.start();
            s.m.window = RestartWindow::new(Duration::from_secs(60), Some(0));
            s.end(CRASH);
        }),
    ];
    for policy in [RestartPolicy::OnFailure, RestartPolicy::Always] {
        for (name, setup) in &setups {
            for input in inputs() {
                let mut sim = Sim::new(settings(policy), Some(3));
                setup(&mut sim);
                sim.advance(Duration::from_secs(100));
                let actions = sim.feed(input.clone());
                let _ = sim.m.deadline();
                for a in &actions {
                    if let Action::Unexpected(msg) = a {
                        assert!(msg.starts_with("ignored"), "{name}: {msg}");
                    }
                }
            }
        }
    }
}

mod abandon;
mod decisions;
mod max_runtime;
mod readiness;
mod reload;
mod stopping;
mod watchdog;

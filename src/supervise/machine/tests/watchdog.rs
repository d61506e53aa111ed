//! The watchdog (SPEC §5): SIGABRT, then the stop sequence.

use super::*;

/// SPEC §5: SIGABRT, then the stop sequence. Before the review (issue 17, point 5) a child that
/// survived the SIGABRT got SIGKILL at the timeout, never the stop signal.
#[test]
fn a_missed_watchdog_aborts_the_child_then_runs_the_stop_sequence() {
    let mut sim = Sim::new(settings(RestartPolicy::OnWatchdog), Some(5));
    sim.start();
    let actions = sim.feed(Input::WatchdogMissed {
        detail: "no WATCHDOG=1 for 1s".into(),
    });
    assert_eq!(actions[0], Action::SignalChild(nix::libc::SIGABRT));
    assert_eq!(
        sim.m.deadline(),
        Some(sim.now().mono + Duration::from_secs(5))
    );
    assert_eq!(sim.step(), vec![Action::SignalAll(SIGTERM)]);
    assert_eq!(
        sim.m.deadline(),
        Some(sim.now().mono + Duration::from_secs(5))
    );
    assert_eq!(sim.step(), vec![Action::SignalAll(SIGKILL)]);
    let actions = sim.end(ProcessEnd::Signaled {
        signal: SIGKILL,
        core_dumped: false,
    });
    assert_eq!(report(&actions).reason, Reason::Watchdog);
    assert_eq!(report(&actions).outcome.action(), "restart");
}

/// A child that dies of the watchdog's SIGABRT gets no stop signal; what it left does.
#[test]
fn a_child_that_dies_of_the_watchdogs_abort_is_a_watchdog_crash() {
    let mut sim = Sim::new(settings(RestartPolicy::OnWatchdog), Some(5));
    sim.start();
    sim.feed(Input::WatchdogMissed {
        detail: "no WATCHDOG=1 for 1s".into(),
    });
    let actions = sim.feed(Input::ChildEnded {
        end: ProcessEnd::Signaled {
            signal: SIGABRT,
            core_dumped: true,
        },
        leftovers: true,
        jitter: 0.5,
        oom: None,
    });
    assert_eq!(report(&actions).reason, Reason::Watchdog);
    assert!(actions.contains(&Action::SignalAll(SIGTERM)));
}

/// A stop request while the watchdog's SIGABRT is pending: the stop signal goes out now, the
/// deadline stands, and the watchdog failure is still recorded.
#[test]
fn a_stop_request_after_the_watchdogs_abort_sends_the_stop_signal() {
    let mut sim = Sim::new(settings(RestartPolicy::OnWatchdog), Some(5));
    sim.start();
    sim.feed(Input::WatchdogMissed {
        detail: "no WATCHDOG=1 for 1s".into(),
    });
    let deadline = sim.m.deadline();
    let actions = sim.feed(Input::Signal { signal: SIGINT });
    assert_eq!(actions[0], Action::SignalAll(SIGINT));
    assert_eq!(sim.m.deadline(), deadline);
    let actions = sim.end(ProcessEnd::Exited(0));
    assert_eq!(report(&actions).reason, Reason::Watchdog);
    assert_eq!(actions.last(), Some(&Action::Exit(0)));
}

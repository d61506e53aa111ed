//! Readiness (SPEC §13): who says the child is ready, `--ready-timeout` as a deadline of the
//! machine, and the child's RESTART_RESET=1 (SPEC §14), on the virtual clock.

use super::*;
use crate::supervise::events::Tell;

const TIMEOUT: Duration = Duration::from_secs(30);

fn waiting(policy: RestartPolicy, notify: bool, health: bool) -> Settings {
    Settings {
        notify,
        health,
        ready_timeout: Some(TIMEOUT),
        ..settings(policy)
    }
}

fn told_ready(actions: &[Action]) -> bool {
    actions.contains(&Action::Tell(Tell::Ready))
}

#[test]
fn who_says_the_child_is_ready() {
    // Neither --notify nor a health check: ready at spawn, and no deadline to wait on.
    let mut sim = Sim::new(settings(RestartPolicy::OnFailure), None);
    assert!(told_ready(&sim.start()));
    assert!(sim.m.ready());
    assert_eq!(sim.m.deadline(), None);
    // --notify, or a health check: not ready until the Ready fact comes, which is told once.
    for (notify, health) in [(true, false), (false, true), (true, true)] {
        let mut sim = Sim::new(waiting(RestartPolicy::OnFailure, notify, health), None);
        assert!(!told_ready(&sim.start()), "{notify} {health}");
        assert!(!sim.m.ready());
        assert_eq!(sim.m.status(), Status::Running);
        sim.advance(TIMEOUT / 2);
        assert_eq!(
            sim.feed(Input::Ready),
            vec![Action::Tell(Tell::Ready), Action::SaveState]
        );
        assert!(sim.m.ready());
        assert_eq!(sim.feed(Input::Ready), vec![], "told once");
        assert_eq!(sim.m.deadline(), None, "ready: the timeout is off");
        sim.advance(TIMEOUT);
        assert_eq!(sim.feed(Input::Tick), vec![]);
    }
}

#[test]
fn a_child_not_ready_in_time_is_stopped_with_reason_start_timeout() {
    let mut sim = Sim::new(waiting(RestartPolicy::OnFailure, true, false), Some(5));
    sim.advance(Duration::from_secs(3));
    sim.start();
    let started = sim.t0.mono + Duration::from_secs(3);
    assert_eq!(sim.m.deadline(), Some(started + TIMEOUT));
    // A tick before the deadline changes nothing.
    sim.advance(TIMEOUT - Duration::from_millis(1));
    assert_eq!(sim.feed(Input::Tick), vec![]);
    let actions = sim.step();
    assert_eq!(
        actions,
        vec![
            Action::SignalAll(SIGTERM),
            Action::Monitors(false),
            Action::SaveState
        ]
    );
    assert_eq!(sim.m.status(), Status::Stopping);
    // A READY=1 that comes while it is being stopped is too late.
    assert_eq!(sim.feed(Input::Ready), vec![]);
    let actions = sim.end(ProcessEnd::Signaled {
        signal: SIGTERM,
        core_dumped: false,
    });
    let r = report(&actions);
    assert_eq!(r.reason, Reason::StartTimeout);
    assert_eq!(r.reason.as_str(), "start-timeout");
    assert!(r.crash);
    assert_eq!(
        r.detail.as_deref(),
        Some("not ready within --ready-timeout 30s")
    );
    assert_eq!(delay_of(&actions), SEC);
    // The next child gets its own deadline, from its own start.
    sim.step();
    assert_eq!(sim.m.status(), Status::Running);
    let restarted = sim.now().mono;
    assert_eq!(sim.m.deadline(), Some(restarted + TIMEOUT));
}

#[test]
fn the_start_timeout_follows_the_policy_row_of_a_timeout() {
    // SPEC §3: the row of unhealthy / not ready / memory.
    for (policy, restarts) in [
        (RestartPolicy::No, false),
        (RestartPolicy::Always, true),
        (RestartPolicy::OnSuccess, false),
        (RestartPolicy::OnFailure, true),
        (RestartPolicy::OnAbnormal, true),
        (RestartPolicy::OnAbort, false),
        (RestartPolicy::OnWatchdog, false),
    ] {
        let mut sim = Sim::new(waiting(policy, false, true), Some(5));
        sim.start();
        sim.step();
        let actions = sim.end(ProcessEnd::Exited(0));
        let r = report(&actions);
        assert_eq!(r.reason, Reason::StartTimeout, "{policy:?}");
        assert_eq!(
            matches!(r.outcome, Outcome::Restart { .. }),
            restarts,
            "{policy:?}: {:?}",
            r.outcome
        );
    }
}

#[test]
fn a_stop_while_waiting_for_readiness_is_a_plain_stop() {
    let mut sim = Sim::new(waiting(RestartPolicy::OnFailure, true, false), None);
    sim.start();
    sim.advance(Duration::from_secs(1));
    sim.feed(Input::Signal { signal: SIGTERM });
    // The stop's own deadline (SIGKILL after --stop-timeout) replaces the start timeout.
    assert_eq!(
        sim.m.deadline(),
        Some(sim.now().mono + sim.m.settings.stop_timeout)
    );
    let actions = sim.end(ProcessEnd::Exited(0));
    assert!(!report(&actions).crash);
    assert!(actions.contains(&Action::Exit(0)));
}

#[test]
fn restart_reset_clears_the_window_and_the_streak() {
    let mut sim = Sim::new(settings(RestartPolicy::OnFailure), Some(3));
    sim.start();
    assert_eq!(delay_of(&sim.end(CRASH)), SEC);
    sim.step();
    assert_eq!(delay_of(&sim.end(CRASH)), 2 * SEC);
    sim.step();
    assert_eq!(sim.m.window().times().count(), 2);
    assert_eq!(sim.feed(Input::RestartReset), vec![Action::SaveState]);
    assert_eq!(sim.m.window().times().count(), 0);
    let actions = sim.end(CRASH);
    assert_eq!(delay_of(&actions), SEC, "the streak starts over");
    match report(&actions).outcome {
        Outcome::Restart { n, .. } => assert_eq!(n, 1),
        other => panic!("{other:?}"),
    }
    // Total restarts are history, not the window: they stay.
    assert_eq!(sim.m.restarts_total(), 2);
}

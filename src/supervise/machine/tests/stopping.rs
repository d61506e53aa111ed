//! A requested stop (SPEC §4, §10): at once in backoff, the stop signal then SIGKILL at
//! `--stop-timeout`, the second request, and the deadline a stop sets for restartd's way out.

use super::*;

#[test]
fn stop_during_backoff_exits_0_at_once_without_spawning() {
    let mut sim = Sim::new(settings(RestartPolicy::Always), None);
    sim.start();
    sim.end(CRASH);
    let actions = sim.feed(Input::Signal { signal: SIGTERM });
    // systemd hears STOPPING=1 of every stop, this one too (it was missing: a stop in backoff).
    assert_eq!(
        actions,
        vec![
            Action::Tell(Tell::Stopping),
            Action::SaveState,
            Action::Exit(0)
        ]
    );
    assert_eq!(sim.m.status(), Status::Stopped);
}

#[test]
fn stop_forwards_then_kills_at_the_timeout_and_exits_137() {
    let mut sim = Sim::new(settings(RestartPolicy::Always), None);
    sim.start();
    let actions = sim.feed(Input::Signal { signal: SIGINT });
    assert_eq!(actions[0], Action::SignalAll(SIGINT));
    assert_eq!(sim.m.status(), Status::Stopping);
    assert_eq!(sim.step(), vec![Action::SignalAll(SIGKILL)]);
    let end = ProcessEnd::Signaled {
        signal: SIGKILL,
        core_dumped: false,
    };
    let actions = sim.end(end);
    assert!(!report(&actions).crash);
    assert_eq!(actions.last(), Some(&Action::Exit(137)));
}

#[test]
fn stop_that_ends_in_time_exits_0_whatever_the_child_status() {
    let mut sim = Sim::new(settings(RestartPolicy::Always), None);
    sim.start();
    sim.feed(Input::Signal { signal: SIGTERM });
    let actions = sim.end(ProcessEnd::Exited(3));
    assert_eq!(actions.last(), Some(&Action::Exit(0)));
    assert_eq!(sim.m.status(), Status::Stopped);
}

#[test]
fn second_stop_request_kills_at_once() {
    let mut sim = Sim::new(settings(RestartPolicy::Always), None);
    sim.start();
    sim.feed(Input::Signal { signal: SIGTERM });
    assert_eq!(
        sim.feed(Input::Signal { signal: SIGTERM }),
        vec![Action::SignalAll(SIGKILL)]
    );
    let actions = sim.end(ProcessEnd::Signaled {
        signal: SIGKILL,
        core_dumped: false,
    });
    assert_eq!(actions.last(), Some(&Action::Exit(137)));
}

/// The first stop request bounds restartd's way out (SPEC §10); a second one does not move it.
#[test]
fn a_stop_request_sets_the_moment_restartd_must_be_gone() {
    let mut sim = Sim::new(settings(RestartPolicy::Always), None);
    sim.start();
    assert_eq!(sim.m.stop_by(), None);
    sim.advance(SEC);
    sim.feed(Input::Signal { signal: SIGTERM });
    let by = sim.t0.mono + SEC + Duration::from_secs(5);
    assert_eq!(sim.m.stop_by(), Some(by));
    sim.advance(SEC);
    sim.feed(Input::Request(Request::Stop));
    assert_eq!(sim.m.stop_by(), Some(by));
    let actions = sim.end(ProcessEnd::Signaled {
        signal: SIGKILL,
        core_dumped: false,
    });
    assert_eq!(actions.last(), Some(&Action::Exit(137)));
    assert_eq!(sim.m.stop_by(), Some(by));
}

/// A stop request is served within `--stop-timeout` (SPEC §10): leftovers of a child that took
/// part of it to end get SIGKILL when it is over, not a whole `--stop-timeout` more.
#[test]
fn leftovers_of_a_requested_stop_are_killed_by_the_stops_deadline() {
    let mut sim = Sim::new(settings(RestartPolicy::Always), None);
    sim.start();
    sim.feed(Input::Signal { signal: SIGTERM });
    let by = sim.m.stop_by().unwrap();
    sim.advance(Duration::from_secs(3));
    let actions = sim.feed(Input::ChildEnded {
        end: ProcessEnd::Exited(0),
        leftovers: true,
        jitter: 0.5,
        oom: None,
    });
    assert!(actions.contains(&Action::SignalAll(SIGTERM)), "{actions:?}");
    assert_eq!(sim.m.deadline(), Some(by), "the leftovers' SIGKILL");
    assert_eq!(sim.step(), vec![Action::SignalAll(SIGKILL)]);
}

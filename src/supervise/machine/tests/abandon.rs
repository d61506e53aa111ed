//! What SIGKILL cannot end (issue 17, review point 3): a leftover of another user, or one in
//! uninterruptible sleep. After SIGKILL it gets --stop-timeout more, then restartd says so and
//! goes on (restart, give-up or exit as the policy says) without signalling it again.

use super::*;

fn ended_with_leftovers(sim: &mut Sim, end: ProcessEnd) -> Vec<Action> {
    sim.feed(Input::ChildEnded {
        end,
        leftovers: true,
        jitter: 0.5,
        oom: None,
    })
}

#[test]
fn leftovers_that_outlive_sigkill_are_abandoned_and_the_restart_comes() {
    let mut s = settings(RestartPolicy::Always);
    s.backoff.delay = Duration::ZERO;
    let mut sim = Sim::new(s, None);
    sim.start();
    ended_with_leftovers(&mut sim, CRASH);
    assert_eq!(sim.step(), vec![Action::SignalAll(SIGKILL)]);
    let killed_at = sim.at;
    // Still there: SIGKILL again reaches only what appeared since (the loop's rule); no exit,
    // no restart yet.
    assert_eq!(
        sim.feed(Input::Leftovers { alive: true }),
        vec![Action::SignalAll(SIGKILL)]
    );
    // --stop-timeout (5 s) after SIGKILL, not before.
    assert_eq!(
        sim.m.deadline(),
        Some(sim.t0.mono + killed_at + Duration::from_secs(5))
    );
    sim.advance(Duration::from_secs(4));
    assert_eq!(sim.feed(Input::Tick), vec![]);
    let actions = sim.step();
    assert_eq!(sim.at, killed_at + Duration::from_secs(5));
    assert_eq!(
        actions[..3],
        [
            Action::Abandon,
            Action::Release,
            Action::Spawn { restarts: 1 }
        ]
    );
    assert!(!actions.iter().any(|a| matches!(a, Action::SignalAll(_))));
    assert_eq!(sim.m.status(), Status::Running);
}

#[test]
fn leftovers_that_outlive_sigkill_do_not_hold_an_exit() {
    // --restart no: the exit waits for the leftovers, but not for ever.
    let mut sim = Sim::new(settings(RestartPolicy::No), None);
    sim.start();
    ended_with_leftovers(&mut sim, CRASH);
    assert_eq!(sim.step(), vec![Action::SignalAll(SIGKILL)]);
    assert_eq!(
        sim.step(),
        vec![
            Action::Abandon,
            Action::Release,
            Action::SaveState,
            Action::Exit(1)
        ]
    );
}

#[test]
fn after_a_stop_killed_the_child_its_unkillable_leftovers_do_not_hold_the_exit() {
    let mut sim = Sim::new(settings(RestartPolicy::Always), None);
    sim.start();
    sim.feed(Input::Signal { signal: SIGTERM });
    // The child ignores SIGTERM: SIGKILL at the stop timeout; it dies, something is left.
    assert_eq!(sim.step(), vec![Action::SignalAll(SIGKILL)]);
    let actions = ended_with_leftovers(
        &mut sim,
        ProcessEnd::Signaled {
            signal: SIGKILL,
            core_dumped: false,
        },
    );
    assert!(actions.contains(&Action::SignalAll(SIGKILL)));
    assert!(!actions.iter().any(|a| matches!(a, Action::Exit(_))));
    let ended = sim.at;
    let actions = sim.step();
    assert_eq!(sim.at, ended + Duration::from_secs(5));
    assert_eq!(
        actions,
        vec![
            Action::Abandon,
            Action::Release,
            Action::SaveState,
            Action::Exit(code::KILLED)
        ]
    );
}

#[test]
fn leftovers_that_die_of_sigkill_are_not_abandoned() {
    let mut s = settings(RestartPolicy::Always);
    s.backoff.delay = Duration::ZERO;
    let mut sim = Sim::new(s, None);
    sim.start();
    ended_with_leftovers(&mut sim, CRASH);
    sim.step();
    let actions = sim.feed(Input::Leftovers { alive: false });
    assert!(!actions.contains(&Action::Abandon));
    assert_eq!(
        actions[..2],
        [Action::Release, Action::Spawn { restarts: 1 }]
    );
}

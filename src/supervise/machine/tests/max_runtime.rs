//! `--max-runtime` (SPEC §13): a scheduled restart on the virtual clock. It is a deadline of
//! the running state, drawn with its jitter at each start, and it restarts as `restartd
//! restart` does: no crash record, no backoff, nothing in the window.
use super::*;

fn scheduled(max: Duration, jitter: Duration) -> Sim {
    let mut s = settings(RestartPolicy::OnFailure);
    s.max_runtime = Some(max);
    s.max_runtime_jitter = jitter;
    Sim::new(s, Some(1))
}

const HOUR: Duration = Duration::from_secs(3600);

#[test]
fn a_run_of_max_runtime_is_restarted_gracefully_without_a_crash() {
    let mut sim = scheduled(HOUR, Duration::ZERO);
    sim.start();
    assert_eq!(sim.m.deadline(), Some(sim.t0.mono + HOUR));
    sim.advance(HOUR - SEC);
    assert_eq!(sim.feed(Input::Tick), vec![], "not yet");
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
    sim.advance(SEC);
    let actions = sim.end(ProcessEnd::Signaled {
        signal: SIGTERM,
        core_dumped: false,
    });
    let r = report(&actions);
    assert_eq!(r.outcome, Outcome::Scheduled);
    assert!(!r.crash, "no crash record");
    assert!(
        actions.contains(&Action::Spawn { restarts: 1 }),
        "started again at once: {actions:?}"
    );
    assert_eq!(sim.m.status(), Status::Running);
    assert_eq!(sim.m.scheduled_restarts(), 1);
    assert_eq!(sim.m.restarts_total(), 1);
    assert_eq!(sim.m.window().times().count(), 0, "not in the window");
    // The next run has its own deadline, from its own start.
    assert_eq!(sim.m.deadline(), Some(sim.now().mono + HOUR));
    // --max-restarts 1 is not used up: a crash still restarts after --delay.
    sim.advance(SEC);
    assert_eq!(delay_of(&sim.end(CRASH)), SEC);
}

#[test]
fn the_jitter_is_drawn_at_each_start() {
    let mut sim = scheduled(HOUR, Duration::from_secs(600));
    sim.spawn_jitter = 0.5;
    sim.start();
    assert_eq!(
        sim.m.deadline(),
        Some(sim.t0.mono + HOUR + Duration::from_secs(300))
    );
    sim.spawn_jitter = 0.999;
    sim.step();
    sim.end(ProcessEnd::Exited(0));
    let started = sim.now().mono;
    let left = sim.m.deadline().unwrap() - started;
    assert!(left > HOUR + Duration::from_secs(599) && left < HOUR + Duration::from_secs(600));
}

#[test]
fn a_child_that_ignores_the_stop_is_killed_and_still_no_crash() {
    let mut sim = scheduled(HOUR, Duration::ZERO);
    sim.start();
    sim.step();
    assert_eq!(sim.step(), vec![Action::SignalAll(nix::libc::SIGKILL)]);
    let actions = sim.end(ProcessEnd::Signaled {
        signal: nix::libc::SIGKILL,
        core_dumped: false,
    });
    assert!(!report(&actions).crash);
    assert_eq!(sim.m.scheduled_restarts(), 1);
}

#[test]
fn a_stop_during_a_scheduled_restart_exits_and_is_not_counted() {
    let mut sim = scheduled(HOUR, Duration::ZERO);
    sim.start();
    sim.step();
    sim.feed(Input::Signal { signal: SIGINT });
    let actions = sim.end(ProcessEnd::Exited(0));
    assert!(actions.contains(&Action::Exit(0)), "{actions:?}");
    assert_eq!(sim.m.scheduled_restarts(), 0);
}

#[test]
fn a_crash_before_max_runtime_is_a_crash_and_the_count_carries_over() {
    let mut sim = scheduled(HOUR, Duration::ZERO);
    sim.m = sim.m.clone().with_scheduled_restarts(4);
    sim.start();
    sim.advance(SEC);
    let actions = sim.end(CRASH);
    assert_eq!(delay_of(&actions), SEC);
    assert!(report(&actions).crash);
    assert_eq!(
        sim.m.deadline(),
        Some(sim.now().mono + SEC),
        "the backoff's"
    );
    assert_eq!(sim.m.scheduled_restarts(), 4);
}

#[test]
fn without_max_runtime_a_running_child_has_no_deadline() {
    let mut sim = Sim::new(settings(RestartPolicy::OnFailure), None);
    sim.start();
    assert_eq!(sim.m.deadline(), None);
}

#[test]
fn ready_timeout_and_max_runtime_each_keep_their_deadline() {
    let mut s = settings(RestartPolicy::OnFailure);
    s.notify = true;
    s.ready_timeout = Some(10 * SEC);
    s.max_runtime = Some(HOUR);
    let mut sim = Sim::new(s.clone(), None);
    sim.start();
    // Not ready: the earlier deadline is --ready-timeout's, and it is a start-timeout failure.
    assert_eq!(sim.m.deadline(), Some(sim.t0.mono + 10 * SEC));
    sim.step();
    assert_eq!(sim.m.status(), Status::Stopping);
    let actions = sim.end(ProcessEnd::Exited(0));
    assert_eq!(report(&actions).reason, Reason::StartTimeout);
    assert_eq!(sim.m.scheduled_restarts(), 0);

    // Ready: only --max-runtime is left.
    let mut sim = Sim::new(s, None);
    sim.start();
    sim.advance(SEC);
    sim.feed(Input::Ready);
    assert_eq!(sim.m.deadline(), Some(sim.t0.mono + HOUR));
    sim.step();
    let actions = sim.end(ProcessEnd::Exited(0));
    assert_eq!(report(&actions).outcome, Outcome::Scheduled);
}

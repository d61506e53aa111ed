//! The decisions the machine took over from the loop (control requests, signals, readiness,
//! release), and issue 17's: passing spawn errors, a give-up after a clean end.

use super::*;

#[test]
fn the_machine_admits_or_refuses_control_requests() {
    let mut sim = Sim::new(settings(RestartPolicy::Always), None);
    sim.start();
    // A signal reaches a live child's group; a restart is refused while stopping.
    let actions = sim.feed(Input::Request(Request::Signal(nix::libc::SIGUSR1)));
    assert_eq!(
        actions,
        vec![
            Action::Reply(Reply::Ok),
            Action::SignalGroup(nix::libc::SIGUSR1)
        ]
    );
    sim.feed(Input::Signal { signal: SIGTERM });
    assert_eq!(
        sim.feed(Input::Request(Request::Restart)),
        vec![Action::Reply(Reply::Refused(
            "cannot restart while stopping".into()
        ))]
    );
    // In a backoff there is no child to signal, and a restart starts one at once.
    let mut sim = Sim::new(settings(RestartPolicy::Always), None);
    sim.start();
    sim.end(CRASH);
    assert_eq!(
        sim.feed(Input::Request(Request::Signal(1))),
        vec![Action::Reply(Reply::Refused(
            "no child is running (backoff)".into()
        ))]
    );
    let actions = sim.feed(Input::Request(Request::Restart));
    assert_eq!(actions[0], Action::Reply(Reply::Ok));
    assert!(actions.contains(&Action::Spawn { restarts: 1 }));
    // A stop is answered once restartd has stopped.
    let actions = sim.feed(Input::Request(Request::Stop));
    assert_eq!(actions[0], Action::Reply(Reply::WhenStopped));
    assert!(actions.contains(&Action::SignalAll(SIGTERM)));
}

#[test]
fn the_machine_decides_what_each_signal_means() {
    let mut sim = Sim::new(settings(RestartPolicy::Always), None);
    sim.start();
    assert_eq!(
        sim.feed(Input::Signal {
            signal: nix::libc::SIGHUP
        }),
        vec![Action::SignalGroup(nix::libc::SIGHUP)]
    );
    assert_eq!(
        sim.feed(Input::Signal {
            signal: nix::libc::SIGTSTP
        }),
        vec![Action::SignalGroup(nix::libc::SIGSTOP), Action::SuspendSelf]
    );
    assert_eq!(
        sim.feed(Input::Signal {
            signal: nix::libc::SIGCHLD
        }),
        vec![]
    );
    let actions = sim.feed(Input::Signal { signal: SIGINT });
    assert_eq!(actions[0], Action::SignalAll(SIGINT));
    assert!(actions.contains(&Action::Tell(Tell::Stopping)));
    assert!(actions.contains(&Action::Monitors(false)));
}

#[test]
fn readiness_is_told_once_at_spawn_or_at_ready() {
    let mut sim = Sim::new(settings(RestartPolicy::Always), None);
    let actions = sim.start();
    assert!(actions.contains(&Action::Monitors(true)));
    assert!(actions.contains(&Action::Tell(Tell::Ready)));
    assert!(sim.m.ready());
    let mut s = settings(RestartPolicy::Always);
    s.notify = true;
    let mut sim = Sim::new(s, None);
    let actions = sim.start();
    assert!(!actions.contains(&Action::Tell(Tell::Ready)));
    assert!(!sim.m.ready());
    assert_eq!(
        sim.feed(Input::Ready),
        vec![Action::Tell(Tell::Ready), Action::SaveState]
    );
    assert_eq!(sim.feed(Input::Ready), vec![]);
    assert!(sim.m.ready());
}

#[test]
fn leftovers_get_the_cleanup_signal_again_and_the_group_is_released_before_any_spawn() {
    let mut s = settings(RestartPolicy::Always);
    s.backoff.delay = Duration::ZERO;
    let mut sim = Sim::new(s, None);
    sim.start();
    sim.feed(Input::ChildEnded {
        end: CRASH,
        leftovers: true,
        jitter: 0.5,
        oom: None,
    });
    assert!(sim.m.cleaning());
    assert_eq!(
        sim.feed(Input::Leftovers { alive: true }),
        vec![Action::SignalAll(SIGTERM)]
    );
    sim.step();
    assert_eq!(
        sim.feed(Input::Leftovers { alive: true }),
        vec![Action::SignalAll(SIGKILL)]
    );
    // Without leftovers too: the group is released before the next child's is made.
    let mut sim = Sim::new(settings(RestartPolicy::Always), None);
    sim.start();
    sim.end(CRASH);
    let actions = sim.step();
    assert_eq!(actions[0], Action::Spawn { restarts: 1 });
    let mut sim = Sim::new(settings(RestartPolicy::Always), None);
    sim.start();
    let actions = sim.end(CRASH);
    let release = actions.iter().position(|a| *a == Action::Release);
    assert!(release.is_some(), "{actions:?}");
}

#[test]
fn a_start_that_fails_for_a_passing_reason_is_a_crash_under_the_policy() {
    // See: issue 17 (point 5). EMFILE, EAGAIN, ENOMEM, ENFILE follow the policy and window.
    let mut sim = Sim::new(settings(RestartPolicy::OnFailure), Some(1));
    let now = sim.now();
    sim.m.start(now);
    let failed = || Input::SpawnFailed {
        failure: SpawnError::Passing,
        error: "Too many open files (os error 24)".into(),
        jitter: 0.5,
    };
    let actions = sim.feed(failed());
    let r = report(&actions);
    assert!(r.crash);
    assert_eq!(r.reason, Reason::SpawnFailed);
    assert_eq!(r.outcome.action(), "restart");
    assert_eq!(sim.m.status(), Status::Backoff);
    sim.advance(sim.m.deadline().unwrap() - sim.now().mono);
    let actions = sim.m.handle(Input::Tick, sim.now());
    assert_eq!(actions, vec![Action::Spawn { restarts: 1 }]);
    let actions = sim.m.handle(failed(), sim.now());
    assert_eq!(report(&actions).outcome.action(), "give-up");
    assert_eq!(actions.last(), Some(&Action::Exit(126)));
    assert_eq!(sim.m.status(), Status::GaveUp);
    // Under --restart no the record says exit, and restartd exits 126.
    let mut sim = Sim::new(settings(RestartPolicy::No), None);
    let now = sim.now();
    sim.m.start(now);
    let actions = sim.feed(failed());
    assert_eq!(report(&actions).outcome.action(), "exit");
    assert_eq!(actions.last(), Some(&Action::Exit(126)));
}

#[test]
fn a_clean_end_that_meets_the_window_limit_is_recorded_as_a_give_up() {
    // See: issue 17 (point 9). SPEC §3: the give-up is the event, whatever the end.
    let mut sim = Sim::new(settings(RestartPolicy::Always), Some(0));
    sim.start();
    let actions = sim.end(ProcessEnd::Exited(0));
    let r = report(&actions);
    assert_eq!(r.outcome.action(), "give-up");
    assert!(r.crash, "a give-up always gets a record");
    assert_eq!(actions.last(), Some(&Action::Exit(0)));
}

/// `reset` clears the window in every state; `reset --crashes` has the loop remove the crash
/// files before the answer, so that they are gone when `restartd reset` returns.
#[test]
fn a_reset_clears_the_window_and_with_crashes_the_crash_files_first() {
    let mut sim = Sim::new(settings(RestartPolicy::Always), Some(5));
    sim.start();
    sim.end(CRASH);
    sim.step();
    assert_eq!(sim.m.window().times().count(), 1);
    assert_eq!(
        sim.feed(Input::Request(Request::Reset { crashes: false })),
        vec![Action::Reply(Reply::Ok), Action::SaveState]
    );
    assert_eq!(sim.m.window().times().count(), 0);
    sim.end(CRASH);
    sim.step();
    sim.end(CRASH);
    assert_eq!(sim.m.window().times().count(), 1);
    assert_eq!(
        sim.feed(Input::Request(Request::Reset { crashes: true })),
        vec![
            Action::ClearCrashes,
            Action::Reply(Reply::Ok),
            Action::SaveState
        ]
    );
    assert_eq!(sim.m.window().times().count(), 0);
    assert_eq!(
        sim.m.status(),
        Status::Backoff,
        "a reset changes nothing else"
    );
}

#[test]
fn a_stop_asked_for_while_a_failing_child_is_stopped_keeps_the_failure_record() {
    // Review of issue 17: the unhealthy end lost its record when SIGTERM came during its stop.
    let mut sim = Sim::new(settings(RestartPolicy::Always), Some(5));
    sim.start();
    sim.feed(Input::Unhealthy {
        detail: "exit 1: refused".into(),
    });
    sim.feed(Input::Signal { signal: SIGTERM });
    let actions = sim.end(ProcessEnd::Signaled {
        signal: SIGTERM,
        core_dumped: false,
    });
    let r = report(&actions);
    assert!(r.crash);
    assert_eq!(r.reason, Reason::Unhealthy);
    assert_eq!(r.detail.as_deref(), Some("exit 1: refused"));
    assert_eq!(r.outcome.action(), "exit");
    assert_eq!(actions.last(), Some(&Action::Exit(0)));
    assert_eq!(sim.m.status(), Status::Stopped);
}

#[test]
fn a_stop_before_the_first_start_starts_nothing() {
    let mut sim = Sim::new(settings(RestartPolicy::Always), None);
    let actions = sim.feed(Input::Signal { signal: SIGTERM });
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
fn an_oom_kill_has_its_reason_and_the_oom_row_of_the_policy_table() {
    // See: issue 18. SPEC §3: the OOM row restarts under always, on-failure and on-abnormal,
    // not under on-abort (which a bare SIGKILL would restart) nor the others.
    let kill = ProcessEnd::Signaled {
        signal: SIGKILL,
        core_dumped: false,
    };
    for (policy, restarts) in [
        (RestartPolicy::No, false),
        (RestartPolicy::Always, true),
        (RestartPolicy::OnSuccess, false),
        (RestartPolicy::OnFailure, true),
        (RestartPolicy::OnAbnormal, true),
        (RestartPolicy::OnAbort, false),
        (RestartPolicy::OnWatchdog, false),
    ] {
        let mut sim = Sim::new(settings(policy), None);
        sim.start();
        let actions = sim.feed(Input::ChildEnded {
            end: kill,
            leftovers: false,
            jitter: 0.5,
            oom: Some("killed by the kernel's OOM killer (/dev/kmsg)".into()),
        });
        let r = report(&actions);
        assert_eq!(r.reason, Reason::Oom, "{policy:?}");
        assert_eq!(r.reason.as_str(), "oom");
        assert!(r.crash);
        assert_eq!(r.end, Some(kill), "the record keeps the signal");
        assert_eq!(
            r.detail.as_deref(),
            Some("killed by the kernel's OOM killer (/dev/kmsg)")
        );
        assert_eq!(r.outcome.action() == "restart", restarts, "{policy:?}");
        assert_eq!(sim.m.last_exit().unwrap().reason, Reason::Oom);
    }
    // The same SIGKILL without OOM evidence is a plain signal, which on-abort restarts.
    let mut sim = Sim::new(settings(RestartPolicy::OnAbort), None);
    sim.start();
    let r = sim.end(kill);
    assert_eq!(report(&r).reason, Reason::Signal);
    assert_eq!(report(&r).outcome.action(), "restart");
}

#[test]
fn an_oom_kill_keeps_the_exit_code_lists() {
    // See: issue 18 (review). An OOM kill known from the cgroup's count can end in the child's
    // own exit code (a shell whose worker the OOM killer took exits 78): SPEC §3,
    // `--no-restart-exit-codes` wins over everything, and systemd's RestartPreventExitStatus=
    // wins over its OOM row too. The code was dropped and the child restarted.
    let mut s = settings(RestartPolicy::Always);
    s.rules.no_restart = vec![78];
    s.rules.force_restart = vec![3];
    let end = |code: i32, s: &Settings| {
        let mut sim = Sim::new(s.clone(), None);
        sim.start();
        let actions = sim.feed(Input::ChildEnded {
            end: ProcessEnd::Exited(code),
            leftovers: false,
            jitter: 0.5,
            oom: Some("killed by the kernel's OOM killer: oom_kill of restartd's cgroup".into()),
        });
        let r = report(&actions);
        (r.reason, r.outcome.action(), r.expected)
    };
    assert_eq!(end(78, &s), (Reason::Oom, "exit", true));
    // --force-restart-exit-codes wins over the policy, as for any end of the child's own.
    s.policy = RestartPolicy::OnAbort;
    assert_eq!(end(3, &s), (Reason::Oom, "restart", true));
    assert_eq!(end(4, &s), (Reason::Oom, "exit", false));
}

#[test]
fn a_clean_end_is_never_an_oom_kill() {
    // See: issue 18 (review). The cgroup's count rose (another process of it was the victim)
    // and the child then ended cleanly: with a code of --success-exit-codes, or of a SIGTERM
    // from elsewhere. README: "A clean exit is never an OOM kill"; it was recorded as one and
    // restarted under on-failure.
    let mut s = settings(RestartPolicy::OnFailure);
    s.rules.success = vec![3];
    for end in [
        ProcessEnd::Exited(3),
        ProcessEnd::Signaled {
            signal: SIGTERM,
            core_dumped: false,
        },
    ] {
        let mut sim = Sim::new(s.clone(), None);
        sim.start();
        let actions = sim.feed(Input::ChildEnded {
            end,
            leftovers: false,
            jitter: 0.5,
            oom: Some("killed by the kernel's OOM killer: oom_kill of restartd's cgroup".into()),
        });
        let r = report(&actions);
        assert_ne!(r.reason, Reason::Oom, "{end:?}");
        assert_eq!((r.crash, r.outcome.action()), (false, "exit"), "{end:?}");
    }
}

/// issue 17 (review): a child killed by a second stop request was reported as killed at the
/// stop timeout.
#[test]
fn a_kill_by_a_second_stop_request_is_told_apart_from_the_stop_timeouts() {
    let killed = ProcessEnd::Signaled {
        signal: SIGKILL,
        core_dumped: false,
    };
    let outcome = |second: bool| {
        let mut sim = Sim::new(settings(RestartPolicy::Always), None);
        sim.start();
        sim.feed(Input::Signal { signal: SIGTERM });
        if second {
            sim.advance(SEC);
            assert_eq!(
                sim.feed(Input::Signal { signal: SIGTERM }),
                vec![Action::SignalAll(SIGKILL)]
            );
        } else {
            assert_eq!(sim.step(), vec![Action::SignalAll(SIGKILL)]);
            // A request after the timeout's SIGKILL does not make it the request's.
            sim.feed(Input::Signal { signal: SIGTERM });
        }
        report(&sim.end(killed)).outcome
    };
    assert_eq!(
        outcome(true),
        Outcome::Stopped {
            killed: true,
            hurried: true
        }
    );
    assert_eq!(
        outcome(false),
        Outcome::Stopped {
            killed: true,
            hurried: false
        }
    );
}

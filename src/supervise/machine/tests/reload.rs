//! Issue 20: `restartd reload` on the virtual clock: two children at once, the switch, the
//! old child's drain, and the rollback (`keep-old`) when the new one fails or is late.

use super::*;
use crate::supervise::machine::reload::{HOLD_HANDSHAKES, HOLD_LOOK};
use nix::libc::SIGKILL;

fn with_sockets(notify: bool) -> Settings {
    Settings {
        sockets: true,
        notify,
        ..settings(RestartPolicy::OnFailure)
    }
}

/// A running child (pid 101), then `reload` asked for; returns the actions of the request.
fn reloading(settings: Settings) -> (Sim, Vec<Action>) {
    let mut sim = Sim::new(settings, Some(5));
    sim.start();
    let actions = sim.feed(Input::Request(Request::Reload));
    (sim, actions)
}

fn other_report(actions: &[Action]) -> &EndReport {
    actions
        .iter()
        .find_map(|a| match a {
            Action::EndedOther(r) => Some(r),
            _ => None,
        })
        .expect("an EndedOther action")
}

fn reloaded(actions: &[Action]) -> &Result<String, String> {
    actions
        .iter()
        .find_map(|a| match a {
            Action::Reloaded(r) => Some(r),
            _ => None,
        })
        .expect("a Reloaded action")
}

/// A reload with sockets and --notify whose new child (pid 202) is spawned, not yet ready.
fn new_child_spawned() -> Sim {
    let (mut sim, _) = reloading(with_sockets(true));
    sim.feed(Input::Spawned {
        pid: 202,
        jitter: 0.0,
    });
    sim
}

/// Ends the hold of the old child (its queue empty after 1 s), then it exits 0: the reload's actions.
fn old_drained(sim: &mut Sim) -> Vec<Action> {
    sim.advance(SEC);
    assert_eq!(
        sim.feed(Input::OldQueue { queued: 0 }),
        vec![Action::SignalOther(SIGTERM)]
    );
    sim.feed(Input::OtherEnded {
        end: ProcessEnd::Exited(0),
        leftovers: false,
    })
}

/// Asks `request` during the reload: it is queued behind it.
fn queued_behind(sim: &mut Sim, request: Request) {
    assert_eq!(
        sim.feed(Input::Request(request)),
        vec![Action::Reply(Reply::AfterReload)]
    );
}

#[test]
fn without_sockets_a_reload_is_a_restart_and_says_so() {
    let (sim, actions) = reloading(settings(RestartPolicy::OnFailure));
    assert!(
        matches!(&actions[0], Action::Reply(Reply::OkSaying(m)) if m.contains("is a restart")),
        "{actions:?}"
    );
    assert!(actions.contains(&Action::SignalAll(SIGTERM)));
    assert_eq!(sim.m.status(), Status::Stopping);
}

/// Review of issue 20: a remote client's handshake under way at the switch joins the old queue
/// a round trip later. The old child was stopped at the first look, 10 ms after the switch,
/// if its queue was empty then: a client 50 ms away found its connection reset.
#[test]
fn the_old_child_is_not_stopped_before_handshakes_under_way_can_land() {
    let mut sim = new_child_spawned();
    sim.feed(Input::Ready);
    assert!(sim.m.holding_old());
    // Empty at every look within the first 0.5 s: still held.
    for _ in 0..49 {
        sim.advance(Duration::from_millis(10));
        assert_eq!(sim.feed(Input::OldQueue { queued: 0 }), vec![]);
    }
    sim.advance(Duration::from_millis(10));
    assert_eq!(
        sim.feed(Input::OldQueue { queued: 0 }),
        vec![Action::SignalOther(SIGTERM)]
    );
}

#[test]
fn the_new_child_starts_beside_the_old_and_the_old_drains_once_it_is_ready() {
    let (mut sim, actions) = reloading(with_sockets(true));
    assert_eq!(
        actions,
        vec![
            Action::Reply(Reply::WhenReloaded),
            Action::Monitors(false),
            Action::SaveState,
            Action::Tell(Tell::Reloading),
            Action::Sockets(Sockets::Open),
            Action::SpawnOther { restarts: 0 },
        ]
    );
    assert_eq!(sim.m.status(), Status::Reloading);
    assert_eq!(sim.m.child_pid(), Some(101));
    // The new child runs; until it is ready, the old one is the child.
    sim.advance(SEC);
    let actions = sim.feed(Input::Spawned {
        pid: 202,
        jitter: 0.0,
    });
    assert_eq!(actions, vec![Action::Monitors(true), Action::SaveState]);
    assert_eq!(sim.m.child_pid(), Some(101));
    assert!(sim.m.watching_new());
    assert_eq!(
        sim.m.deadline(),
        Some(sim.t0.mono + Duration::from_secs(61))
    );
    // Ready: the switch; new connections go to the new child's sockets, then the children
    // swap (the loop answers the sockets' step with `Switched`).
    sim.advance(SEC);
    let actions = sim.feed(Input::Ready);
    assert_eq!(
        actions,
        vec![
            Action::Sockets(Sockets::ToNew),
            Action::Switch,
            Action::SaveState
        ]
    );
    assert_eq!(sim.m.child_pid(), Some(202));
    assert_eq!(sim.m.status(), Status::Reloading);
    assert!(!sim.m.watching_new());
    // The old child is stopped only once its sockets' queues are empty, looked at first after
    // the handshakes under way had time to land, then every 10 ms.
    assert!(sim.m.holding_old());
    assert_eq!(sim.m.deadline(), Some(sim.now().mono + HOLD_HANDSHAKES));
    // A turn before the look is due (another fact woke the loop) does not count.
    assert_eq!(sim.feed(Input::OldQueue { queued: 0 }), vec![]);
    sim.advance(HOLD_HANDSHAKES);
    assert_eq!(sim.feed(Input::OldQueue { queued: 2 }), vec![]);
    assert_eq!(sim.m.deadline(), Some(sim.now().mono + HOLD_LOOK));
    sim.advance(HOLD_LOOK);
    assert_eq!(
        sim.feed(Input::OldQueue { queued: 0 }),
        vec![Action::SignalOther(SIGTERM)]
    );
    assert!(!sim.m.holding_old());
    assert_eq!(sim.m.deadline(), Some(sim.now().mono + 5 * SEC));
    // The old child ends within --stop-timeout, leaving nothing: the reload is done.
    let actions = sim.feed(Input::OtherEnded {
        end: ProcessEnd::Exited(0),
        leftovers: false,
    });
    assert!(!other_report(&actions).crash);
    assert_eq!(other_report(&actions).outcome, Outcome::Replaced);
    assert!(actions.contains(&Action::ReleaseOther));
    assert!(actions.contains(&Action::Sockets(Sockets::KeepNew)));
    // systemd hears READY=1 again (RELOADING=1 went up at the start).
    assert!(actions.contains(&Action::Tell(Tell::Reloaded)));
    assert!(reloaded(&actions).is_ok());
    assert_eq!(sim.m.status(), Status::Running);
    assert_eq!(sim.m.child_pid(), Some(202));
    assert_eq!(sim.m.reloads(), 1);
    // No crash: no restart counted, nothing in the window.
    assert_eq!(sim.m.restarts_total(), 0);
    assert_eq!(sim.m.window().times().count(), 0);
}

#[test]
fn without_notify_or_health_the_new_child_is_ready_at_spawn() {
    let (mut sim, _) = reloading(with_sockets(false));
    let actions = sim.feed(Input::Spawned {
        pid: 202,
        jitter: 0.0,
    });
    assert_eq!(
        actions,
        vec![
            Action::Monitors(true),
            Action::SaveState,
            Action::Sockets(Sockets::ToNew),
            Action::Switch,
            Action::SaveState,
        ]
    );
    // An old socket whose queue never empties (an old child that accepts nothing) holds the
    // stop signal back for at most a second.
    sim.feed(Input::OldQueue { queued: 1 });
    sim.advance(SEC);
    assert_eq!(
        sim.feed(Input::OldQueue { queued: 1 }),
        vec![Action::SignalOther(SIGTERM)]
    );
    // An old child that ignores the stop signal gets SIGKILL after --stop-timeout, and what it
    // left is cleaned up before the reload counts as done.
    assert_eq!(sim.step(), vec![Action::SignalOther(SIGKILL)]);
    let actions = sim.feed(Input::OtherEnded {
        end: ProcessEnd::Signaled {
            signal: SIGKILL,
            core_dumped: false,
        },
        leftovers: true,
    });
    assert!(actions.contains(&Action::SignalOther(SIGKILL)));
    assert!(sim.m.cleaning_other());
    assert_eq!(
        sim.feed(Input::OtherLeftovers { alive: true }),
        vec![Action::SignalOther(SIGKILL)]
    );
    let actions = sim.feed(Input::OtherLeftovers { alive: false });
    assert_eq!(actions[0], Action::ReleaseOther);
    assert!(reloaded(&actions).is_ok());
    assert_eq!(sim.m.status(), Status::Running);
}

#[test]
fn a_new_child_that_exits_is_recorded_as_keep_old_and_the_old_one_goes_on() {
    let mut sim = new_child_spawned();
    sim.advance(SEC);
    let actions = sim.feed(Input::OtherEnded {
        end: ProcessEnd::Exited(3),
        leftovers: false,
    });
    let r = other_report(&actions);
    assert!(r.crash);
    assert_eq!(r.outcome.action(), "keep-old");
    assert_eq!(r.pid, Some(202));
    assert_eq!(r.uptime, SEC);
    let err = reloaded(&actions).clone().unwrap_err();
    assert!(err.contains("exited with code 3"), "{err}");
    assert!(
        err.contains("the old child (pid 101) keeps running"),
        "{err}"
    );
    assert!(actions.contains(&Action::Monitors(true)));
    assert!(!actions.iter().any(|a| matches!(a, Action::Spawn { .. })));
    assert_eq!(sim.m.status(), Status::Running);
    assert_eq!(sim.m.child_pid(), Some(101));
    assert_eq!(sim.m.deadline(), None, "no backoff");
    assert_eq!(sim.m.window().times().count(), 0);
    assert_eq!(sim.m.reloads(), 0);
}

#[test]
fn a_new_child_not_ready_within_the_timeout_is_stopped_with_reason_start_timeout() {
    let mut sim = new_child_spawned();
    // Just before the limit nothing happens.
    sim.advance(Duration::from_secs(59));
    assert_eq!(sim.feed(Input::Tick), vec![]);
    assert_eq!(
        sim.step(),
        vec![Action::SignalOther(SIGTERM), Action::Monitors(false)]
    );
    assert_eq!(sim.m.child_pid(), Some(101));
    // It ignores SIGTERM: SIGKILL after --stop-timeout.
    assert_eq!(sim.step(), vec![Action::SignalOther(SIGKILL)]);
    let actions = sim.feed(Input::OtherEnded {
        end: ProcessEnd::Signaled {
            signal: SIGKILL,
            core_dumped: false,
        },
        leftovers: false,
    });
    let r = other_report(&actions);
    assert_eq!(r.reason, Reason::StartTimeout);
    assert_eq!(r.outcome, Outcome::KeepOld);
    assert_eq!(r.detail.as_deref(), Some("not ready within 1m"));
    let err = reloaded(&actions).clone().unwrap_err();
    assert!(
        err.starts_with("the new child was stopped: not ready within 1m"),
        "{err}"
    );
    assert_eq!(sim.m.status(), Status::Running);
    assert_eq!(sim.m.child_pid(), Some(101));
}

#[test]
fn an_unhealthy_or_unstartable_new_child_keeps_the_old_one() {
    let mut sim = new_child_spawned();
    let actions = sim.feed(Input::Unhealthy {
        detail: "HTTP 500".into(),
    });
    assert_eq!(
        actions,
        vec![Action::SignalOther(SIGTERM), Action::Monitors(false)]
    );
    let actions = sim.feed(Input::OtherEnded {
        end: ProcessEnd::Exited(0),
        leftovers: false,
    });
    assert_eq!(other_report(&actions).reason, Reason::Unhealthy);
    assert_eq!(sim.m.child_pid(), Some(101));

    let (mut sim, _) = reloading(with_sockets(true));
    let actions = sim.feed(Input::SpawnFailed {
        failure: SpawnError::NotFound,
        error: "No such file or directory".into(),
        jitter: 0.5,
    });
    assert_eq!(other_report(&actions).reason, Reason::SpawnFailed);
    assert!(reloaded(&actions).is_err());
    assert!(!actions.iter().any(|a| matches!(a, Action::Exit(_))));
    assert_eq!(sim.m.status(), Status::Running);
}

#[test]
fn requests_during_a_reload_are_queued_or_served_for_the_old_child() {
    let mut sim = new_child_spawned();
    // A restart and another reload wait for this one (see
    // `a_reload_asked_during_a_reload_follows_it`, `a_restart_asked_during_a_reload_follows_it`).
    queued_behind(&mut sim, Request::Restart);
    queued_behind(&mut sim, Request::Reload);
    assert_eq!(
        sim.feed(Input::Signal {
            signal: nix::libc::SIGHUP
        }),
        vec![Action::SignalGroup(nix::libc::SIGHUP)]
    );
    assert_eq!(sim.m.status(), Status::Reloading);
}

#[test]
fn a_stop_during_a_reload_stops_both_children_together() {
    // Before the switch: the reload is abandoned, the new child joins the leftovers.
    let mut sim = new_child_spawned();
    let actions = sim.feed(Input::Request(Request::Stop));
    assert_eq!(actions[0], Action::Fold);
    assert!(reloaded(&actions).is_err());
    assert!(actions.contains(&Action::Reply(Reply::WhenStopped)));
    assert!(actions.contains(&Action::SignalAll(SIGTERM)));
    assert_eq!(sim.m.status(), Status::Stopping);
    // After the switch: the reload counts, the old child joins the new one's leftovers.
    let (mut sim, _) = reloading(with_sockets(false));
    sim.feed(Input::Spawned {
        pid: 202,
        jitter: 0.0,
    });
    let actions = sim.feed(Input::Signal { signal: SIGTERM });
    assert_eq!(actions[0], Action::Fold);
    assert!(reloaded(&actions).is_ok());
    assert!(actions.contains(&Action::SignalAll(SIGTERM)));
    assert_eq!(sim.m.child_pid(), Some(202));
    assert_eq!(sim.m.reloads(), 1);
}

#[test]
fn the_old_child_ending_during_a_reload_is_a_crash_as_usual() {
    let mut sim = new_child_spawned();
    let actions = sim.end(CRASH);
    assert_eq!(actions[0], Action::Fold);
    assert!(reloaded(&actions).is_err());
    let r = report(&actions);
    assert_eq!(r.pid, Some(101));
    assert!(r.crash);
    // The new child is among the leftovers now: cleaned up before the restart.
    assert!(actions.contains(&Action::SignalAll(SIGTERM)));
    assert!(sim.m.cleaning());
}

#[test]
fn ready_timeout_sets_how_long_a_reloads_new_child_may_take() {
    let settings = Settings {
        ready_timeout: Some(Duration::from_secs(5)),
        ..with_sockets(true)
    };
    let (mut sim, _) = reloading(settings);
    sim.advance(SEC);
    sim.feed(Input::Spawned {
        pid: 202,
        jitter: 0.0,
    });
    assert_eq!(sim.m.deadline(), Some(sim.t0.mono + Duration::from_secs(6)));
    let actions = sim.step();
    assert_eq!(actions[0], Action::SignalOther(SIGTERM));
    let actions = sim.feed(Input::OtherEnded {
        end: ProcessEnd::Exited(0),
        leftovers: false,
    });
    assert_eq!(
        other_report(&actions).detail.as_deref(),
        Some("not ready within 5s")
    );
}

/// Issue 21 + 20: with sockets held, `--max-runtime` replaces the child by a reload (SPEC
/// §13); one that fails is tried again a --max-runtime later, not at once.
#[test]
fn max_runtime_with_sockets_is_a_reload() {
    let settings = Settings {
        max_runtime: Some(Duration::from_secs(3600)),
        ..with_sockets(false)
    };
    let mut sim = Sim::new(settings, Some(5));
    sim.start();
    let actions = sim.step();
    assert_eq!(
        actions,
        vec![
            Action::Monitors(false),
            Action::SaveState,
            Action::Tell(Tell::Reloading),
            Action::Sockets(Sockets::Open),
            Action::SpawnOther { restarts: 0 }
        ],
        "no reply: nobody asked"
    );
    assert_eq!(sim.m.status(), Status::Reloading);
    assert_eq!(sim.m.scheduled_restarts(), 1);
    // A new child that fails: the old one goes on, with its next try an hour later.
    sim.feed(Input::SpawnFailed {
        failure: SpawnError::Passing,
        error: "EAGAIN".into(),
        jitter: 0.5,
    });
    assert_eq!(sim.m.status(), Status::Running);
    assert_eq!(
        sim.m.deadline(),
        Some(sim.now().mono + Duration::from_secs(3600))
    );
    // The next try works: the new child serves, the old one drains.
    let actions = sim.step();
    assert!(actions.contains(&Action::SpawnOther { restarts: 0 }));
    let actions = sim.feed(Input::Spawned {
        pid: 303,
        jitter: 0.0,
    });
    assert!(actions.contains(&Action::Switch));
    assert_eq!(sim.m.child_pid(), Some(303));
}

/// Issue 20: an old child that ends by itself while its queue is awaited is not waited for
/// again: its leftovers get the stop signal and SIGKILL after --stop-timeout.
#[test]
fn an_old_child_that_ends_before_its_stop_signal_is_cleaned_up_with_a_deadline() {
    let (mut sim, _) = reloading(with_sockets(false));
    sim.feed(Input::Spawned {
        pid: 202,
        jitter: 0.0,
    });
    assert!(sim.m.holding_old());
    let actions = sim.feed(Input::OtherEnded {
        end: ProcessEnd::Exited(1),
        leftovers: true,
    });
    assert!(
        actions.contains(&Action::SignalOther(SIGTERM)),
        "{actions:?}"
    );
    assert!(!sim.m.holding_old());
    assert_eq!(sim.m.deadline(), Some(sim.now().mono + 5 * SEC));
    assert_eq!(sim.step(), vec![Action::SignalOther(SIGKILL)]);
}

/// Issue 20: a new child that fails before the switch closes its sockets (they got nothing);
/// one that ends after the switch makes the new sockets the only ones.
#[test]
fn the_sockets_follow_the_child_that_stays() {
    let mut sim = new_child_spawned();
    let actions = sim.feed(Input::OtherEnded {
        end: ProcessEnd::Exited(3),
        leftovers: false,
    });
    assert!(
        actions.contains(&Action::Sockets(Sockets::KeepOld)),
        "{actions:?}"
    );
    assert_eq!(sim.m.child_pid(), Some(101));
    sim.feed(Input::Request(Request::Reload));
    sim.feed(Input::Spawned {
        pid: 303,
        jitter: 0.0,
    });
    sim.feed(Input::Ready);
    let actions = sim.feed(Input::ChildEnded {
        end: ProcessEnd::Exited(1),
        leftovers: false,
        jitter: 0.0,
        oom: None,
    });
    assert!(
        actions.contains(&Action::Sockets(Sockets::KeepNew)),
        "{actions:?}"
    );
    assert!(!sim.m.holding_old());
}

/// Review of issue 20: `reload` while restartd waits to restart after a crash starts the child
/// at once, as `restart` does, and says that there was nothing to replace (it answered a bare
/// `ok` and logged nothing).
#[test]
fn a_reload_in_backoff_starts_the_child_now_and_says_so() {
    let mut sim = Sim::new(with_sockets(false), Some(5));
    sim.start();
    sim.feed(Input::ChildEnded {
        end: ProcessEnd::Exited(1),
        leftovers: false,
        jitter: 0.0,
        oom: None,
    });
    assert_eq!(sim.m.status(), Status::Backoff);
    let actions = sim.feed(Input::Request(Request::Reload));
    assert!(
        matches!(&actions[0], Action::Reply(Reply::OkSaying(m)) if m.contains("no child was running")),
        "{actions:?}"
    );
    assert!(
        actions.iter().any(|a| matches!(a, Action::Spawn { .. })),
        "{actions:?}"
    );
    // `restart` answers as before.
    sim.feed(Input::ChildEnded {
        end: ProcessEnd::Exited(1),
        leftovers: false,
        jitter: 0.0,
        oom: None,
    });
    let actions = sim.feed(Input::Request(Request::Restart));
    assert_eq!(actions[0], Action::Reply(Reply::Ok), "{actions:?}");
}

/// Breaking it: a stop, a restart and another reload while the old child's queue is awaited.
/// The restart and the reload are queued; the stop ends the reload (the new child serves, the
/// old socket closes, the old child is stopped with the child's leftovers), and the queued
/// requests hear that restartd is stopping.
#[test]
fn requests_while_the_old_queue_is_awaited() {
    let (mut sim, _) = reloading(with_sockets(false));
    sim.feed(Input::Spawned {
        pid: 202,
        jitter: 0.0,
    });
    assert!(sim.m.holding_old());
    queued_behind(&mut sim, Request::Restart);
    assert!(sim.m.holding_old());
    queued_behind(&mut sim, Request::Reload);
    assert!(sim.m.holding_old());
    let actions = sim.feed(Input::Request(Request::Stop));
    assert!(
        matches!(actions.last(), Some(Action::ReplyQueued(Request::Restart, Reply::Refused(m))) if m.contains("stopping")),
        "{actions:?}"
    );
    let at = |a: &Action| actions.iter().position(|b| b == a);
    let (fold, keep_new) = (at(&Action::Fold), at(&Action::Sockets(Sockets::KeepNew)));
    assert!(fold.is_some() && keep_new.is_some(), "{actions:?}");
    assert!(actions.contains(&Action::SignalAll(SIGTERM)), "{actions:?}");
    assert!(!sim.m.holding_old());
    assert_eq!(sim.m.status(), Status::Stopping);
}

/// Issue 20 follow-up: a unix PATH (or its temporary name) replaced during the reload refuses
/// the switch. The children used to swap anyway: the old child was stopped, the new one served
/// a socket no client could reach, and `reload` said "replaced". Now the switch comes first and
/// its refusal goes back: the new child is stopped, recorded `keep-old`, the old one stays.
#[test]
fn a_refused_switch_stops_the_new_child_and_keeps_the_old() {
    let mut sim = new_child_spawned();
    let why = "--socket unix:/run/a.sock: /run/a.sock is no longer restartd's socket";
    sim.refuse_switch = Some(why.into());
    sim.advance(SEC);
    let actions = sim.feed(Input::Ready);
    assert_eq!(
        actions,
        vec![
            Action::Sockets(Sockets::ToNew),
            Action::SignalOther(SIGTERM),
            Action::Monitors(false),
        ]
    );
    assert_eq!(sim.m.child_pid(), Some(101), "no swap");
    assert_eq!(sim.m.status(), Status::Reloading);
    assert!(!sim.m.holding_old());
    // The new child goes within --stop-timeout (SIGKILL after it).
    assert_eq!(sim.m.deadline(), Some(sim.now().mono + 5 * SEC));
    let actions = sim.feed(Input::OtherEnded {
        end: ProcessEnd::Signaled {
            signal: SIGTERM,
            core_dumped: false,
        },
        leftovers: false,
    });
    let report = other_report(&actions);
    assert_eq!(report.outcome, Outcome::KeepOld);
    assert!(report.crash);
    assert_eq!(report.reason, Reason::Signal);
    assert_eq!(report.pid, Some(202));
    let detail = report.detail.as_deref().unwrap();
    assert!(
        detail.contains("could not be switched") && detail.contains(why),
        "{detail}"
    );
    assert!(
        actions.contains(&Action::Sockets(Sockets::KeepOld)),
        "{actions:?}"
    );
    let err = reloaded(&actions).as_ref().unwrap_err();
    assert!(
        err.contains(why) && err.contains("pid 101) keeps running"),
        "{err}"
    );
    assert_eq!(sim.m.status(), Status::Running);
    assert_eq!(sim.m.child_pid(), Some(101));
    assert_eq!(sim.m.reloads(), 0);
    assert_eq!(sim.m.restarts_total(), 0);
}

/// Issue 20 follow-up: a second `reload` during a reload was refused with an error, which the
/// CLI reports as "not running" (exit 3). It is queued instead, as systemd queues a reload job
/// behind a running one: once the first reload is over (replaced or failed), another one
/// starts, and the queued requesters wait for it; more requests meanwhile share it.
#[test]
fn a_reload_asked_during_a_reload_follows_it() {
    let mut sim = new_child_spawned();
    // Before the switch, and again during the hold: one reload follows.
    queued_behind(&mut sim, Request::Reload);
    sim.feed(Input::Ready);
    assert!(sim.m.holding_old());
    queued_behind(&mut sim, Request::Reload);
    let actions = old_drained(&mut sim);
    // The first requesters hear that it is done, then the queued ones wait for the next.
    let done = actions
        .iter()
        .position(|a| matches!(a, Action::Reloaded(Ok(_))))
        .expect("the first reload is done");
    let queued = actions
        .iter()
        .position(|a| *a == Action::ReplyQueued(Request::Reload, Reply::WhenReloaded))
        .expect("the queued requests wait for the next reload");
    assert!(done < queued, "{actions:?}");
    assert_eq!(
        actions[queued + 1..],
        [
            Action::Monitors(false),
            Action::SaveState,
            Action::Tell(Tell::Reloading),
            Action::Sockets(Sockets::Open),
            Action::SpawnOther { restarts: 0 },
        ]
    );
    assert_eq!(sim.m.status(), Status::Reloading);
    assert_eq!(sim.m.child_pid(), Some(202));
    assert_eq!(sim.m.reloads(), 1);
    // It fails; nothing more is queued, and the old child (202 now) stays.
    let actions = sim.feed(Input::SpawnFailed {
        failure: SpawnError::NotFound,
        error: "No such file or directory".into(),
        jitter: 0.0,
    });
    assert!(reloaded(&actions).is_err());
    assert!(!actions.iter().any(|a| matches!(a, Action::ReplyQueued(..))));
    assert_eq!(sim.m.status(), Status::Running);
    assert_eq!(sim.m.child_pid(), Some(202));
}

/// Review of the queued reload: a reload that ends otherwise than replaced or failed, with one
/// queued behind it. The queued requests are answered as a `reload` asked for then would be
/// (README said only "restartd stopping: exit 3"): the old child that crashed before the switch
/// leaves restartd waiting to restart, so the child starts at once (`ok: …`, exit 0); a new child
/// that fails after the switch is being stopped to restart, and the queued reload is refused
/// (exit 3); with nothing to restart, refused as well.
#[test]
fn a_queued_reload_after_a_reload_ended_by_the_child_is_answered_as_then() {
    // The old child crashes before the switch.
    let mut sim = new_child_spawned();
    sim.feed(Input::Request(Request::Reload));
    let crashed = Input::ChildEnded {
        end: ProcessEnd::Exited(1),
        leftovers: false,
        jitter: 0.0,
        oom: None,
    };
    let actions = sim.feed(crashed.clone());
    assert!(
        matches!(actions.last(), Some(Action::ReplyQueued(Request::Reload, Reply::OkSaying(m))) if m.contains("starting one now")),
        "{actions:?}"
    );
    assert_eq!(sim.m.status(), Status::Backoff);
    // The new child fails its health checks after the switch.
    let mut sim = new_child_spawned();
    sim.feed(Input::Ready);
    sim.feed(Input::Request(Request::Reload));
    let actions = sim.feed(Input::Unhealthy {
        detail: "503".into(),
    });
    assert!(
        matches!(actions.last(), Some(Action::ReplyQueued(Request::Reload, Reply::Refused(m))) if m.contains("stopping")),
        "{actions:?}"
    );
    assert_eq!(sim.m.status(), Status::Stopping);
    // --restart no: the old child's end is restartd's.
    let (mut sim, _) = reloading(Settings {
        sockets: true,
        notify: true,
        ..settings(RestartPolicy::No)
    });
    sim.feed(Input::Spawned {
        pid: 202,
        jitter: 0.0,
    });
    sim.feed(Input::Request(Request::Reload));
    let actions = sim.feed(crashed);
    assert!(
        matches!(actions.last(), Some(Action::ReplyQueued(Request::Reload, Reply::Refused(m))) if m.contains("exited")),
        "{actions:?}"
    );
}

/// A `restart` during a reload was refused ("a reload is under way; try again when it is
/// over"), which the CLI reports as exit 3, "not running". It is queued as a `reload` is, as
/// systemd queues a restart job behind a running reload job: once the reload is over, the
/// child (the new one, if it was replaced) is restarted and the queued requesters hear `ok`.
/// Reloads queued with it share that restart (it starts the command as it is then too), and
/// say so; if restartd stops instead, they all hear it.
#[test]
fn a_restart_asked_during_a_reload_follows_it() {
    // Before the switch, with a reload queued too; then during the hold.
    let mut sim = new_child_spawned();
    queued_behind(&mut sim, Request::Restart);
    queued_behind(&mut sim, Request::Reload);
    sim.feed(Input::Ready);
    assert!(sim.m.holding_old());
    queued_behind(&mut sim, Request::Restart);
    let actions = old_drained(&mut sim);
    let done = actions
        .iter()
        .position(|a| matches!(a, Action::Reloaded(Ok(_))))
        .expect("the reload is done");
    let queued = actions
        .iter()
        .position(|a| {
            matches!(a, Action::ReplyQueued(Request::Restart, Reply::OkSaying(m)) if m.contains("restart"))
        })
        .unwrap_or_else(|| panic!("the queued requests hear the restart: {actions:?}"));
    assert!(done < queued, "{actions:?}");
    assert_eq!(
        actions[queued + 1..],
        [
            Action::SignalAll(SIGTERM),
            Action::Monitors(false),
            Action::SaveState
        ]
    );
    assert_eq!(sim.m.status(), Status::Stopping);
    assert_eq!(sim.m.child_pid(), Some(202));
    assert_eq!(sim.m.reloads(), 1);
    // The restarted child is started as after any requested restart.
    let actions = sim.end(ProcessEnd::Signaled {
        signal: SIGTERM,
        core_dumped: false,
    });
    assert!(
        actions.iter().any(|a| matches!(a, Action::Spawn { .. })),
        "{actions:?}"
    );
    assert_eq!(sim.m.restarts_total(), 1);

    // A restart alone hears a bare `ok`, once the new child failed and the old one stayed.
    let (mut sim, _) = reloading(with_sockets(true));
    sim.feed(Input::Request(Request::Restart));
    let actions = sim.feed(Input::SpawnFailed {
        failure: SpawnError::NotFound,
        error: "No such file or directory".into(),
        jitter: 0.0,
    });
    assert!(reloaded(&actions).is_err());
    assert!(
        actions.contains(&Action::ReplyQueued(Request::Restart, Reply::Ok)),
        "{actions:?}"
    );
    assert!(actions.contains(&Action::SignalAll(SIGTERM)), "{actions:?}");
    assert_eq!(sim.m.child_pid(), Some(101));
    assert_eq!(sim.m.status(), Status::Stopping);

    // restartd stops instead: the queued restart is refused (exit 3).
    let (mut sim, _) = reloading(with_sockets(true));
    sim.feed(Input::Request(Request::Restart));
    let actions = sim.feed(Input::Request(Request::Stop));
    assert!(
        matches!(actions.last(), Some(Action::ReplyQueued(Request::Restart, Reply::Refused(m))) if m.contains("stopping")),
        "{actions:?}"
    );
}

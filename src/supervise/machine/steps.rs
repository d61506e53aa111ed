//! The steps `handle` takes: start a child, stop it, decide after an end (SPEC §3's table, the
//! window, the backoff), clean up what it left, and move on. `handle`'s table in `machine.rs`
//! says which step follows which (state, input); these functions say what each step does.

use std::time::{Duration, Instant};

use nix::libc::{SIGABRT, SIGKILL};

use super::{Final, Machine, Run, SpawnKind, State, Stop, Then};
use crate::base::exit::{code, ProcessEnd};
use crate::supervise::events::{
    Action, EndReport, Input, LastExit, Now, Outcome, Reason, Reply, Request, SpawnError, Status,
    Tell,
};
use crate::supervise::policy::{decide, Cause, Verdict};

impl Machine {
    pub(super) fn deadline_passed(&self, now: Now) -> bool {
        self.deadline().is_some_and(|at| at <= now.mono)
    }

    pub(super) fn spawn(&mut self, kind: SpawnKind, now: Now) -> Vec<Action> {
        match kind {
            SpawnKind::First => {}
            SpawnKind::Automatic => {
                self.window.push(now.wall);
                self.restarts_total += 1;
                self.restarts_run += 1;
            }
            SpawnKind::Requested => {
                self.restarts_total += 1;
                self.restarts_run += 1;
            }
        }
        self.state = State::Starting { kind };
        vec![Action::Spawn {
            restarts: self.restarts_run,
        }]
    }

    /// A child that started now, with its `--max-runtime` deadline.
    pub(super) fn new_run(&self, pid: i32, jitter: f64, now: Now) -> Run {
        // The jitter is drawn at each start (SPEC §13), so instances started together spread.
        let s = &self.settings;
        let restart_at = s
            .max_runtime
            .map(|d| now.mono + d + s.max_runtime_jitter.mul_f64(jitter.clamp(0.0, 1.0)));
        Run {
            pid,
            started: now.mono,
            started_wall: now.wall,
            restart_at,
        }
    }

    pub(super) fn spawned(&mut self, pid: i32, jitter: f64, now: Now) -> Vec<Action> {
        let run = self.new_run(pid, jitter, now);
        // Without --notify or a health check the child counts as ready once it runs (SPEC §13).
        let ready = self.settings.ready_at_spawn();
        self.state = State::Running { run, ready };
        let mut actions = vec![Action::Monitors(true)];
        if ready {
            actions.push(Action::Tell(Tell::Ready));
        }
        actions.push(Action::SaveState);
        actions
    }

    /// The command could not be started. A command that is missing or not executable is not
    /// retried (127/126); a failure that can pass (a process or file limit, memory) is a crash
    /// like an unclean exit: record, policy, window, backoff (SPEC §3).
    pub(super) fn spawn_failed(
        &mut self,
        failure: SpawnError,
        error: String,
        jitter: f64,
        now: Now,
    ) -> Vec<Action> {
        self.last_exit = Some(LastExit {
            end: None,
            reason: Reason::SpawnFailed,
            at: now.wall,
        });
        let mut report = EndReport {
            pid: None,
            end: None,
            reason: Reason::SpawnFailed,
            at: now.wall,
            uptime: Duration::ZERO,
            restarts: self.restarts_total,
            outcome: Outcome::Exit(None),
            crash: true,
            expected: false,
            detail: Some(error),
        };
        let code = match failure {
            SpawnError::NotFound => code::NOT_FOUND,
            SpawnError::NotExecutable => code::NOT_EXECUTABLE,
            SpawnError::Passing => {
                // As a shell does when exec fails for another reason than ENOENT.
                let status = code::NOT_EXECUTABLE;
                let then =
                    self.next_after(&mut report, Cause::UncleanExit, None, status, jitter, now);
                report.crash = true;
                let mut actions = vec![Action::Ended(report)];
                let next = self.then(then, now);
                actions.push(Action::SaveState);
                actions.extend(next);
                return actions;
            }
        };
        self.state = State::Done(Final {
            status: Status::Exited,
            code,
        });
        vec![Action::Ended(report), Action::SaveState, Action::Exit(code)]
    }

    /// restartd stops the running child: the stop signal to the whole group, SIGKILL after
    /// `--stop-timeout`. The watchdog first sends SIGABRT to the main child alone (so its runtime
    /// dumps a stack into the tail) and gives it `--stop-timeout` to end of it; only a child that
    /// survives that gets the stop sequence (`stop_deadline`).
    pub(super) fn stop(&mut self, run: Run, why: Stop, now: Now) -> Vec<Action> {
        let first = match &why {
            Stop::Shutdown { signal, .. } => Action::SignalAll(*signal),
            Stop::Abort { .. } => Action::SignalChild(SIGABRT),
            Stop::Restart | Stop::Scheduled | Stop::Failure { .. } => {
                Action::SignalAll(self.settings.stop_signal)
            }
        };
        let shutdown = matches!(why, Stop::Shutdown { .. });
        self.state = State::Stopping {
            run,
            why,
            kill_at: Some(now.mono + self.settings.stop_timeout),
        };
        let mut actions = vec![first, Action::Monitors(false)];
        if shutdown {
            actions.push(Action::Tell(Tell::Stopping));
        }
        actions.push(Action::SaveState);
        actions
    }

    /// The child has run `--max-runtime`: the one entry point of a scheduled restart. It is
    /// done as `restartd restart` does (stop signal, timeout, cleanup, start); with `--socket`
    /// it is to be a reload (SPEC §13), which is decided here and nowhere else.
    pub(super) fn scheduled_restart(&mut self, run: Run, ready: bool, now: Now) -> Vec<Action> {
        if self.settings.sockets {
            // With sockets held, a scheduled restart is a reload (SPEC §13).
            self.scheduled_restarts += 1;
            return self.reload(run, ready, false, now);
        }
        self.stop(run, Stop::Scheduled, now)
    }

    /// The stop's deadline passed with the child still running: after the watchdog's SIGABRT,
    /// the stop sequence (stop signal to the group, `--stop-timeout`, SIGKILL); else SIGKILL.
    pub(super) fn stop_deadline(&mut self, run: Run, why: Stop, now: Now) -> Vec<Action> {
        if let Stop::Abort { detail } = why {
            self.state = State::Stopping {
                run,
                why: Stop::Failure {
                    reason: Reason::Watchdog,
                    detail,
                },
                kill_at: Some(now.mono + self.settings.stop_timeout),
            };
            return vec![Action::SignalAll(self.settings.stop_signal)];
        }
        self.state = State::Stopping {
            run,
            why,
            kill_at: None,
        };
        vec![Action::SignalAll(SIGKILL)]
    }

    /// A stop request while restartd already stops the child.
    pub(super) fn stop_again(
        &mut self,
        run: Run,
        why: Stop,
        kill_at: Option<Instant>,
        signal: i32,
    ) -> Vec<Action> {
        match why {
            Stop::Shutdown {
                signal,
                failure,
                hurried,
            } => {
                // A second stop request: no more waiting. It is what killed the child unless the
                // stop timeout already had.
                self.state = State::Stopping {
                    run,
                    why: Stop::Shutdown {
                        signal,
                        failure,
                        hurried: hurried || kill_at.is_some(),
                    },
                    kill_at: None,
                };
                vec![Action::SignalAll(SIGKILL)]
            }
            Stop::Restart | Stop::Scheduled | Stop::Failure { .. } | Stop::Abort { .. } => {
                // The stop signal went out already (after the watchdog's SIGABRT it goes now);
                // the deadline stands, and restartd exits instead of restarting (a failure is
                // still recorded as one).
                let mut actions = Vec::new();
                let failure = match why {
                    Stop::Failure { reason, detail } => Some((reason, detail)),
                    Stop::Abort { detail } => {
                        actions.push(Action::SignalAll(signal));
                        Some((Reason::Watchdog, detail))
                    }
                    Stop::Restart | Stop::Scheduled | Stop::Shutdown { .. } => None,
                };
                self.state = State::Stopping {
                    run,
                    why: Stop::Shutdown {
                        signal,
                        failure,
                        hurried: false,
                    },
                    kill_at,
                };
                actions.extend([Action::Tell(Tell::Stopping), Action::SaveState]);
                actions
            }
        }
    }

    /// A stop request while leftovers of the last child are being cleaned up.
    pub(super) fn stop_in_cleanup(
        &mut self,
        signal: i32,
        kill_at: Option<Instant>,
        then: Then,
    ) -> Vec<Action> {
        match then {
            Then::Respawn => {
                // The restart's child is gone: exit instead, once its leftovers are.
                self.state = State::Cleanup {
                    signal,
                    kill_at,
                    then: Then::Exit(Final {
                        status: Status::Stopped,
                        code: code::STOPPED,
                    }),
                };
                vec![Action::Tell(Tell::Stopping), Action::SaveState]
            }
            Then::Backoff { .. } => {
                self.state = State::Done(Final {
                    status: Status::Stopped,
                    code: code::STOPPED,
                });
                vec![
                    Action::SignalAll(SIGKILL),
                    Action::Tell(Tell::Stopping),
                    Action::SaveState,
                    Action::Exit(code::STOPPED),
                ]
            }
            Then::Exit(last) => {
                // Waiting for leftovers before exiting: stop waiting.
                self.state = State::Done(last);
                vec![Action::SignalAll(SIGKILL), Action::Exit(last.code)]
            }
        }
    }

    /// A stop request while nothing runs: exit at once with status 0.
    pub(super) fn exit_at_once(&mut self) -> Vec<Action> {
        self.state = State::Done(Final {
            status: Status::Stopped,
            code: code::STOPPED,
        });
        // systemd hears STOPPING=1 of every stop, this one too.
        vec![
            Action::Tell(Tell::Stopping),
            Action::SaveState,
            Action::Exit(code::STOPPED),
        ]
    }

    pub(super) fn cannot_restart(&self) -> Vec<Action> {
        vec![Action::Reply(Reply::Refused(format!(
            "cannot restart while {}",
            self.status().as_str()
        )))]
    }

    /// The report of an end that is no crash (a requested stop or restart).
    pub(super) fn report(
        &mut self,
        run: Run,
        end: ProcessEnd,
        now: Now,
        outcome: Outcome,
    ) -> EndReport {
        let reason = Reason::of(end);
        self.last_exit = Some(LastExit {
            end: Some(end),
            reason,
            at: now.wall,
        });
        EndReport {
            pid: Some(run.pid),
            end: Some(end),
            reason,
            at: now.wall,
            uptime: now.mono.saturating_duration_since(run.started),
            restarts: self.restarts_total,
            outcome,
            crash: false,
            expected: false,
            detail: None,
        }
    }

    /// An end restartd did not ask for, or a failing child it stopped (`failure`): the policy
    /// table, the window and the backoff decide what follows (SPEC §3).
    pub(super) fn crashed(
        &mut self,
        run: Run,
        end: ProcessEnd,
        failure: Option<(Reason, String)>,
        jitter: f64,
        now: Now,
    ) -> (EndReport, Then) {
        let mut report = self.report(run, end, now, Outcome::Restarted);
        if report.uptime >= self.settings.min_uptime {
            self.streak = 0;
        }
        let s = &self.settings;
        // The cause of a child restartd stopped is restartd's reason (SPEC §3).
        let (cause, code) = match failure {
            Some((reason, detail)) => {
                report.reason = reason;
                report.detail = Some(detail);
                let cause = match reason {
                    Reason::Watchdog => Cause::Watchdog,
                    // SPEC §3: unhealthy, not ready, over --max-memory, killed by the OOM killer.
                    _ => Cause::Unhealthy,
                };
                // The kernel's OOM kill is no end restartd brought about: an exit code the
                // child still gave (its worker was the victim) meets the exit-code lists, and
                // `--no-restart-exit-codes` wins over everything.
                let code = if reason == Reason::Oom {
                    end.code()
                } else {
                    None
                };
                (cause, code)
            }
            None => (s.rules.classify(end), end.code()),
        };
        if let Some(last) = self.last_exit.as_mut() {
            last.reason = report.reason;
        }
        let then = self.next_after(&mut report, cause, code, end.exit_status(), jitter, now);
        (report, then)
    }

    /// SPEC §3 after an end of `cause` (`code`: the exit code, if any): the policy table, then
    /// the window, then the backoff. Fills in the report's outcome; `status` is restartd's exit
    /// status if it does not restart.
    pub(super) fn next_after(
        &mut self,
        report: &mut EndReport,
        cause: Cause,
        code: Option<i32>,
        status: u8,
        jitter: f64,
        now: Now,
    ) -> Then {
        let s = &self.settings;
        let verdict = decide(s.policy, cause, code, &s.rules);
        report.expected = matches!(
            verdict,
            Verdict::NoRestartCode(_) | Verdict::ForceRestartCode(_)
        );
        let then = if !verdict.restart() {
            report.outcome = Outcome::Exit(Some(verdict));
            Then::Exit(Final {
                status: Status::Exited,
                code: status,
            })
        } else if self.window.full(now.wall) {
            report.outcome = Outcome::GiveUp {
                count: self.window.count(now.wall),
                max: self.window.max().unwrap_or(0),
                window: self.window.window(),
            };
            Then::Exit(Final {
                status: Status::GaveUp,
                code: status,
            })
        } else {
            self.streak += 1;
            let delay = s.backoff.delay(self.streak, jitter);
            report.outcome = Outcome::Restart {
                n: self.window.count(now.wall) + 1,
                max: self.window.max(),
                window: self.window.window(),
                delay,
            };
            Then::Backoff {
                until: now.mono + delay,
                wall: now.wall + delay,
            }
        };
        // A crash gets a record; so does a give-up, even after a clean end (SPEC §3: the
        // give-up is the event).
        report.crash = cause != Cause::Clean || matches!(report.outcome, Outcome::GiveUp { .. });
        then
    }

    /// The child is gone: record its end, then clean up what it left (the `signal` to the group
    /// and its descendants, SIGKILL after `--stop-timeout`) or go on at once.
    pub(super) fn ended(
        &mut self,
        report: EndReport,
        then: Then,
        leftovers: bool,
        signal: i32,
        now: Now,
    ) -> Vec<Action> {
        let mut actions = vec![Action::Ended(report), Action::Monitors(false)];
        if leftovers {
            // After a stop request, what is left gets no more than the stop has left (SPEC §10)
            // before SIGKILL. After SIGKILL (already sent, or at `kill_at`), what it cannot end
            // gets --stop-timeout more, then is abandoned.
            let at = now.mono + self.settings.stop_timeout;
            let kill_at = Some(match signal {
                SIGKILL => at,
                _ => self.stop_by.map_or(at, |by| at.min(by)),
            });
            self.state = State::Cleanup {
                signal,
                kill_at,
                then,
            };
            actions.push(Action::SignalAll(signal));
            actions.push(Action::SaveState);
        } else {
            // Set the state `then` leads to before saving it, then carry on.
            actions.push(Action::Release);
            let next = self.then(then, now);
            actions.push(Action::SaveState);
            actions.extend(next);
        }
        actions
    }

    /// Moves on once the last child's group is clean: start again, wait, or exit.
    pub(super) fn then(&mut self, then: Then, now: Now) -> Vec<Action> {
        match then {
            Then::Backoff { until, .. } if until <= now.mono => {
                self.spawn(SpawnKind::Automatic, now)
            }
            Then::Backoff { until, wall } => {
                self.state = State::Backoff { until, wall };
                vec![Action::SaveState]
            }
            Then::Respawn => self.spawn(SpawnKind::Requested, now),
            Then::Exit(last) => {
                self.state = State::Done(last);
                vec![Action::SaveState, Action::Exit(last.code)]
            }
        }
    }

    pub(super) fn unexpected(&self, input: &Input) -> Vec<Action> {
        let name = match input {
            Input::Spawned { .. } => "Spawned",
            Input::SpawnFailed { .. } => "SpawnFailed",
            Input::ChildEnded { .. } => "ChildEnded",
            Input::Leftovers { .. } => "Leftovers",
            Input::OtherEnded { .. } => "OtherEnded",
            Input::OtherLeftovers { .. } => "OtherLeftovers",
            Input::OldQueue { .. } => "OldQueue",
            Input::Switched { .. } => "Switched",
            Input::Signal { .. } => "Signal",
            Input::Request(_) => "Request",
            Input::Ready => "Ready",
            Input::RestartReset => "RestartReset",
            Input::Unhealthy { .. } => "Unhealthy",
            Input::OverMemory { .. } => "OverMemory",
            Input::WatchdogMissed { .. } => "WatchdogMissed",
            Input::Tick => "Tick",
        };
        vec![Action::Unexpected(format!(
            "ignored {name} in status {}",
            self.status().as_str()
        ))]
    }
}

/// The answer to `restart` or `reload` while restartd waits to restart (backoff): the child is
/// started now. A reload has no old child to keep serving, so it says so rather than answer as
/// if one had been replaced.
pub(super) fn no_child_to_replace(request: Request) -> Reply {
    match request {
        Request::Reload => Reply::OkSaying(
            "no child was running (waiting to restart after a crash): starting one now, with \
             nothing to replace"
                .into(),
        ),
        _ => Reply::Ok,
    }
}

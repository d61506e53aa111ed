//! The supervisor state machine: the one place that decides what happens when the child starts,
//! ends, fails a check, or when restartd is signalled or asked for something.
//!
//! `Machine::handle(input, now)` returns the actions to carry out, in order; `deadline()` says
//! when it next needs a `Tick`. It never performs IO and never reads a clock: the event loop
//! feeds it facts and carries out its actions (quinn-proto's `handle_timeout(now)` contract).
//! Everything the machine waits on lives in its `State` variant (the child, the stop under way
//! and its SIGKILL deadline, the leftovers' cleanup, the backoff), and `handle` is one
//! `match (state, input)` that can be read against SPEC §3 and §4 line by line.

use std::time::{Instant, SystemTime};

use crate::base::exit::code;
pub use crate::supervise::events::{
    Action, EndReport, Input, LastExit, Now, Outcome, Reason, Reply, Request, Settings, Sockets,
    SpawnError, Status, Tell,
};
use crate::supervise::policy::Cause;
use crate::supervise::window::RestartWindow;
use nix::libc::{
    SIGCONT, SIGHUP, SIGINT, SIGKILL, SIGQUIT, SIGSTOP, SIGTERM, SIGTSTP, SIGUSR1, SIGUSR2,
    SIGWINCH,
};

/// Why restartd is stopping the child.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Stop {
    /// Stop the child and exit. `failure`: restartd was stopping a failing child when the stop
    /// was asked for; the end is still recorded as that failure. `hurried`: a second stop
    /// request sent SIGKILL before the stop timeout did.
    Shutdown {
        signal: i32,
        failure: Option<(Reason, String)>,
        hurried: bool,
    },
    /// Stop the child and start it again (`restartd restart`).
    Restart,
    /// Stop the child and start it again because it ran `--max-runtime`: a scheduled restart.
    Scheduled,
    /// restartd stopped a failing child; the policy decides next. `detail` is what it saw.
    Failure { reason: Reason, detail: String },
    /// The watchdog fired: the child got SIGABRT (its runtime dumps a stack and aborts). If it
    /// still runs at the deadline, the stop sequence follows as for a `Failure` (SPEC §5).
    Abort { detail: String },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Run {
    pid: i32,
    started: Instant,
    started_wall: SystemTime,
    /// When `--max-runtime` (plus this run's jitter) is up.
    restart_at: Option<Instant>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SpawnKind {
    First,
    /// After a crash: counted in the window.
    Automatic,
    /// `restartd restart`: not counted in the window.
    Requested,
}

/// How restartd ends: the status it leaves in `state.json` and its exit status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Final {
    status: Status,
    code: u8,
}

/// What follows once the last child's leftovers are gone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Then {
    /// Wait until `until`, then restart (an automatic restart).
    Backoff { until: Instant, wall: SystemTime },
    /// Start again at once (a requested restart).
    Respawn,
    /// Exit.
    Exit(Final),
}

/// Where the machine is. Each variant holds what it waits on.
#[derive(Debug, Clone, PartialEq)]
enum State {
    /// A spawn was asked for; `Spawned` or `SpawnFailed` comes next.
    Starting { kind: SpawnKind },
    /// The child runs.
    Running { run: Run, ready: bool },
    /// restartd sent the child's group a stop signal; SIGKILL at `kill_at` (`None`: sent).
    Stopping {
        run: Run,
        why: Stop,
        kill_at: Option<Instant>,
    },
    /// The child is gone; what is left of its group and its descendants got `signal`; `then`
    /// follows once nothing is left. At `kill_at` comes SIGKILL; once `signal` is SIGKILL, it is
    /// when restartd stops waiting for what SIGKILL could not end (no permission, uninterruptible
    /// sleep): it is abandoned, never signalled again, and `then` follows (SPEC §10).
    Cleanup {
        signal: i32,
        kill_at: Option<Instant>,
        then: Then,
    },
    /// Waiting to restart after a crash.
    Backoff { until: Instant, wall: SystemTime },
    /// A reload: the old child (`old`, `ready`) serves while the new one starts; it must be
    /// ready by `until` (`reload.rs`).
    Reloading {
        old: Run,
        ready: bool,
        new: Candidate,
        until: Instant,
    },
    /// After a reload's switch: `run`, the new child, is the child; the old one got `signal`
    /// (SIGKILL at `kill_at`) and drains; `ended` once it is gone and its leftovers are being
    /// cleaned up. While `hold`, the old child is not signalled yet: its sockets' queues empty
    /// into it first.
    Draining {
        run: Run,
        signal: i32,
        kill_at: Option<Instant>,
        ended: bool,
        hold: Option<Hold>,
    },
    /// restartd is exiting.
    Done(Final),
}

/// The supervisor. Build with `new`, start with `start`, then feed inputs to `handle`.
#[derive(Debug, Clone)]
pub struct Machine {
    settings: Settings,
    state: State,
    /// Automatic restarts since the last run of at least `--min-uptime`.
    streak: u32,
    window: RestartWindow,
    restarts_total: u64,
    restarts_run: u32,
    /// `--max-runtime` restarts over all runs.
    scheduled_restarts: u64,
    last_exit: Option<LastExit>,
    /// Reloads done in this run (`state.json`'s `reloads`).
    reloads: u64,
    /// What was asked for during a reload, to follow it (`queue`).
    queued: reload::Queued,
    /// When the first stop request came, plus `--stop-timeout`: restartd must be gone by then
    /// (SPEC §10), also when its output is stalled.
    stop_by: Option<Instant>,
}

/// The signals that ask restartd to stop (SPEC §4).
const STOP_SIGNALS: [i32; 3] = [SIGTERM, SIGINT, SIGQUIT];
/// The signals passed on to the child's group as they are (SPEC §4).
const FORWARDED: [i32; 5] = [SIGHUP, SIGUSR1, SIGUSR2, SIGWINCH, SIGCONT];

impl Machine {
    /// A machine that has not started yet; `window` and `restarts_total` may come from a
    /// previous run's state file.
    pub fn new(settings: Settings, window: RestartWindow, restarts_total: u64) -> Machine {
        Machine {
            settings,
            state: State::Starting {
                kind: SpawnKind::First,
            },
            streak: 0,
            window,
            restarts_total,
            restarts_run: 0,
            scheduled_restarts: 0,
            last_exit: None,
            reloads: 0,
            queued: reload::Queued::default(),
            stop_by: None,
        }
    }

    /// Carries on the count of scheduled restarts of a previous run's state file. Call before
    /// `start`.
    pub fn with_scheduled_restarts(mut self, n: u64) -> Machine {
        self.scheduled_restarts = n;
        self
    }

    /// The first actions: start the child. Call once, before any `handle`.
    pub fn start(&mut self, _now: Now) -> Vec<Action> {
        vec![Action::Spawn { restarts: 0 }]
    }

    /// When the machine next needs a `Tick`; `None` when it only waits for events.
    pub fn deadline(&self) -> Option<Instant> {
        match &self.state {
            State::Stopping { kill_at, .. } | State::Cleanup { kill_at, .. } => *kill_at,
            State::Backoff { until, .. } => Some(*until),
            State::Reloading { new, until, .. } => match new {
                Candidate::Up(_) => Some(*until),
                Candidate::Stopping { kill_at, .. } => *kill_at,
                Candidate::Starting | Candidate::Switching(_) | Candidate::Cleanup { .. } => None,
            },
            State::Draining { kill_at, hold, .. } => hold.map(|h| h.look_at).or(*kill_at),
            // The earlier of `--ready-timeout` (while not ready) and `--max-runtime`.
            State::Running { run, ready } => {
                let ready_by = if *ready { None } else { self.ready_by(run) };
                [ready_by, run.restart_at].into_iter().flatten().min()
            }
            State::Starting { .. } | State::Done(_) => None,
        }
    }

    /// Feeds one input; returns the actions to carry out, in order.
    pub fn handle(&mut self, input: Input, now: Now) -> Vec<Action> {
        let mut actions = self.handle_one(input, now);
        // A reload or restart queued behind the reload this input ended starts now.
        actions.extend(self.run_queued(now));
        actions
    }

    fn handle_one(&mut self, input: Input, now: Now) -> Vec<Action> {
        use Input as I;
        use State as S;
        let stop_request = match &input {
            I::Signal { signal } => STOP_SIGNALS.contains(signal),
            I::Request(request) => *request == Request::Stop,
            _ => false,
        };
        if stop_request {
            // The first request sets the bound; a second one only hurries the stop.
            self.stop_by
                .get_or_insert(now.mono + self.settings.stop_timeout);
        }
        let state = self.state.clone();
        match (state, input) {
            // A reload: two children at once (reload.rs has their table).
            (
                S::Reloading {
                    old,
                    ready,
                    new,
                    until,
                },
                input,
            ) => self.reloading(old, ready, new, until, input, now),
            (
                S::Draining {
                    run,
                    signal,
                    kill_at,
                    ended,
                    hold,
                },
                input,
            ) => self.draining(run, signal, kill_at, ended, hold, input, now),

            // Starting: the loop answers a spawn at once, with nothing in between.
            (S::Starting { .. }, I::Spawned { pid, jitter }) => self.spawned(pid, jitter, now),
            (
                S::Starting { .. },
                I::SpawnFailed {
                    failure,
                    error,
                    jitter,
                },
            ) => self.spawn_failed(failure, error, jitter, now),
            // A stop asked for before the first start (restartd was still stopping what a
            // previous run left): nothing is started.
            (
                S::Starting {
                    kind: SpawnKind::First,
                },
                I::Signal { signal },
            ) if STOP_SIGNALS.contains(&signal) => self.exit_at_once(),
            (S::Starting { .. }, input) => self.unexpected(&input),

            // Running.
            (
                S::Running { run, .. },
                I::ChildEnded {
                    end,
                    leftovers,
                    jitter,
                    oom,
                },
            ) => {
                // An OOM kill is the kernel's reason, with its own row of the policy table. A
                // clean end never is one (SPEC §3's clean row: a --success-exit-codes code, a
                // SIGTERM): the OOM killer's victim was another process of the cgroup.
                let clean = self.settings.rules.classify(end) == Cause::Clean;
                let failure = oom.filter(|_| !clean).map(|detail| (Reason::Oom, detail));
                let (report, then) = self.crashed(run, end, failure, jitter, now);
                self.ended(report, then, leftovers, self.settings.stop_signal, now)
            }
            (S::Running { run, .. }, I::Signal { signal }) if STOP_SIGNALS.contains(&signal) => {
                self.stop(
                    run,
                    Stop::Shutdown {
                        signal,
                        failure: None,
                        hurried: false,
                    },
                    now,
                )
            }
            (S::Running { run, .. }, I::Request(Request::Stop)) => {
                let signal = self.settings.stop_signal;
                let mut actions = vec![Action::Reply(Reply::WhenStopped)];
                actions.extend(self.stop(
                    run,
                    Stop::Shutdown {
                        signal,
                        failure: None,
                        hurried: false,
                    },
                    now,
                ));
                actions
            }
            (S::Running { run, .. }, I::Request(Request::Restart)) => {
                let mut actions = vec![Action::Reply(Reply::Ok)];
                actions.extend(self.stop(run, Stop::Restart, now));
                actions
            }
            (S::Running { run, ready }, I::Request(Request::Reload)) => {
                self.reload(run, ready, true, now)
            }
            (S::Running { run, .. }, I::Unhealthy { detail }) => self.stop(
                run,
                Stop::Failure {
                    reason: Reason::Unhealthy,
                    detail,
                },
                now,
            ),
            (S::Running { run, .. }, I::OverMemory { detail }) => self.stop(
                run,
                Stop::Failure {
                    reason: Reason::Memory,
                    detail,
                },
                now,
            ),
            (S::Running { run, .. }, I::WatchdogMissed { detail }) => {
                self.stop(run, Stop::Abort { detail }, now)
            }
            (S::Running { run, ready: false }, I::Ready) => {
                self.state = S::Running { run, ready: true };
                vec![Action::Tell(Tell::Ready), Action::SaveState]
            }
            (S::Running { ready: true, .. }, I::Ready) => vec![],
            // Not ready by `--ready-timeout`: a start-timeout failure, before anything else.
            (S::Running { run, ready: false }, I::Tick)
                if self.ready_by(&run).is_some_and(|t| t <= now.mono) =>
            {
                let waited = self.settings.ready_timeout.unwrap_or_default();
                let detail = format!(
                    "not ready within --ready-timeout {}",
                    crate::base::values::fmt_duration(waited)
                );
                self.stop(
                    run,
                    Stop::Failure {
                        reason: Reason::StartTimeout,
                        detail,
                    },
                    now,
                )
            }
            // `--max-runtime` is up.
            (S::Running { run, ready }, I::Tick)
                if run.restart_at.is_some_and(|t| t <= now.mono) =>
            {
                self.scheduled_restart(run, ready, now)
            }

            // Stopping: the child still runs and has had its stop signal.
            (
                S::Stopping { run, why, kill_at },
                // A child restartd was stopping ended for the reason restartd stopped it, even
                // if the OOM killer came first.
                I::ChildEnded {
                    end,
                    leftovers,
                    jitter,
                    oom: _,
                },
            ) => {
                let killed = kill_at.is_none();
                let (report, then, signal) = match why {
                    Stop::Shutdown {
                        signal,
                        failure,
                        hurried,
                    } => {
                        let code = if killed { code::KILLED } else { code::STOPPED };
                        let report = match failure {
                            // The failure restartd was acting on still gets its record.
                            Some(failure) => {
                                let (mut report, _) =
                                    self.crashed(run, end, Some(failure), jitter, now);
                                report.outcome = Outcome::Stopped { killed, hurried };
                                report.crash = true;
                                report
                            }
                            None => {
                                self.report(run, end, now, Outcome::Stopped { killed, hurried })
                            }
                        };
                        let then = Then::Exit(Final {
                            status: Status::Stopped,
                            code,
                        });
                        (report, then, signal)
                    }
                    Stop::Restart => {
                        self.streak = 0;
                        let report = self.report(run, end, now, Outcome::Restarted);
                        (report, Then::Respawn, self.settings.stop_signal)
                    }
                    Stop::Scheduled => {
                        // Not a crash: no record, no backoff, not in the window (SPEC §13).
                        self.streak = 0;
                        self.scheduled_restarts += 1;
                        let report = self.report(run, end, now, Outcome::Scheduled);
                        (report, Then::Respawn, self.settings.stop_signal)
                    }
                    Stop::Failure { reason, detail } => {
                        let (report, then) =
                            self.crashed(run, end, Some((reason, detail)), jitter, now);
                        (report, then, self.settings.stop_signal)
                    }
                    Stop::Abort { detail } => {
                        let failure = Some((Reason::Watchdog, detail));
                        let (report, then) = self.crashed(run, end, failure, jitter, now);
                        (report, then, self.settings.stop_signal)
                    }
                };
                let signal = if killed { SIGKILL } else { signal };
                self.ended(report, then, leftovers, signal, now)
            }
            (S::Stopping { run, why, kill_at }, I::Signal { signal })
                if STOP_SIGNALS.contains(&signal) =>
            {
                self.stop_again(run, why, kill_at, signal)
            }
            (S::Stopping { run, why, kill_at }, I::Request(Request::Stop)) => {
                let mut actions = vec![Action::Reply(Reply::WhenStopped)];
                actions.extend(self.stop_again(run, why, kill_at, self.settings.stop_signal));
                actions
            }
            (S::Stopping { .. }, I::Request(Request::Restart | Request::Reload)) => {
                self.cannot_restart()
            }
            (S::Stopping { run, why, .. }, I::Tick) if self.deadline_passed(now) => {
                self.stop_deadline(run, why, now)
            }
            (
                S::Stopping { .. },
                I::Unhealthy { .. } | I::OverMemory { .. } | I::WatchdogMissed { .. } | I::Ready,
            ) => vec![],

            // Cleanup: the child is gone, what it left behind is being stopped.
            (S::Cleanup { then, .. }, I::Leftovers { alive: false }) => {
                let mut actions = vec![Action::Release];
                actions.extend(self.then(then, now));
                actions
            }
            (S::Cleanup { signal, .. }, I::Leftovers { alive: true }) => {
                // Descendants may have been reparented to restartd since: they get it too.
                vec![Action::SignalAll(signal)]
            }
            (S::Cleanup { signal, then, .. }, I::Tick) if self.deadline_passed(now) => {
                if signal == SIGKILL {
                    // SIGKILL did not end them within --stop-timeout: they are left alone.
                    let mut actions = vec![Action::Abandon, Action::Release];
                    actions.extend(self.then(then, now));
                    return actions;
                }
                self.state = S::Cleanup {
                    signal: SIGKILL,
                    kill_at: Some(now.mono + self.settings.stop_timeout),
                    then,
                };
                vec![Action::SignalAll(SIGKILL)]
            }
            (
                S::Cleanup {
                    signal,
                    kill_at,
                    then,
                },
                I::Signal { signal: stop },
            ) if STOP_SIGNALS.contains(&stop) => self.stop_in_cleanup(signal, kill_at, then),
            (
                S::Cleanup {
                    signal,
                    kill_at,
                    then,
                },
                I::Request(Request::Stop),
            ) => {
                let mut actions = vec![Action::Reply(Reply::WhenStopped)];
                actions.extend(self.stop_in_cleanup(signal, kill_at, then));
                actions
            }
            (
                S::Cleanup {
                    signal,
                    kill_at,
                    then: Then::Backoff { wall, .. },
                },
                I::Request(request @ (Request::Restart | Request::Reload)),
            ) => {
                // Asked for: the rest of the delay is waived and the streak forgiven.
                self.streak = 0;
                self.state = S::Cleanup {
                    signal,
                    kill_at,
                    then: Then::Backoff {
                        until: now.mono,
                        wall,
                    },
                };
                vec![Action::Reply(steps::no_child_to_replace(request))]
            }
            (S::Cleanup { .. }, I::Request(Request::Restart | Request::Reload)) => {
                self.cannot_restart()
            }

            // Backoff: waiting to restart.
            (S::Backoff { until, .. }, I::Tick) if until <= now.mono => {
                self.spawn(SpawnKind::Automatic, now)
            }
            (S::Backoff { .. }, I::Signal { signal }) if STOP_SIGNALS.contains(&signal) => {
                self.exit_at_once()
            }
            (S::Backoff { .. }, I::Request(Request::Stop)) => {
                let mut actions = vec![Action::Reply(Reply::WhenStopped)];
                actions.extend(self.exit_at_once());
                actions
            }
            (S::Backoff { .. }, I::Request(request @ (Request::Restart | Request::Reload))) => {
                // Asked for: the rest of the delay is waived and the streak forgiven.
                self.streak = 0;
                let mut actions = vec![Action::Reply(steps::no_child_to_replace(request))];
                actions.extend(self.spawn(SpawnKind::Automatic, now));
                actions
            }

            // In every state: what a signal or request means when the rule above did not apply.
            (S::Running { .. } | S::Stopping { .. }, I::Signal { signal })
                if FORWARDED.contains(&signal) =>
            {
                vec![Action::SignalGroup(signal)]
            }
            (S::Running { .. } | S::Stopping { .. }, I::Request(Request::Signal(signal))) => {
                vec![Action::Reply(Reply::Ok), Action::SignalGroup(signal)]
            }
            (
                S::Cleanup { .. } | S::Backoff { .. } | S::Done(_),
                I::Request(Request::Signal(_)),
            ) => {
                vec![Action::Reply(Reply::Refused(format!(
                    "no child is running ({})",
                    self.status().as_str()
                )))]
            }
            (S::Running { .. } | S::Stopping { .. }, I::Signal { signal: SIGTSTP }) => {
                vec![Action::SignalGroup(SIGSTOP), Action::SuspendSelf]
            }
            (S::Cleanup { .. } | S::Backoff { .. }, I::Signal { signal: SIGTSTP }) => {
                vec![Action::SuspendSelf]
            }
            (_, I::RestartReset) => self.restart_reset(),
            (_, I::Request(Request::Reset { crashes })) => self.reset(crashes),
            (S::Done(_), I::Request(Request::Stop)) => vec![Action::Reply(Reply::WhenStopped)],
            (S::Done(_), I::Request(Request::Restart | Request::Reload)) => self.cannot_restart(),
            (S::Cleanup { .. } | S::Backoff { .. }, I::Signal { .. }) => vec![],
            (S::Running { .. } | S::Stopping { .. }, I::Signal { .. }) => vec![],
            (
                S::Running { .. }
                | S::Stopping { .. }
                | S::Cleanup { .. }
                | S::Backoff { .. }
                | S::Done(_),
                I::Tick,
            ) => vec![],
            (
                S::Cleanup { .. } | S::Backoff { .. } | S::Done(_),
                I::Unhealthy { .. } | I::OverMemory { .. } | I::WatchdogMissed { .. } | I::Ready,
            ) => vec![],
            (
                S::Running { .. }
                | S::Stopping { .. }
                | S::Cleanup { .. }
                | S::Backoff { .. }
                | S::Done(_),
                input @ (I::Spawned { .. } | I::SpawnFailed { .. }),
            ) => self.unexpected(&input),
            (S::Cleanup { .. } | S::Backoff { .. } | S::Done(_), input @ I::ChildEnded { .. }) => {
                self.unexpected(&input)
            }
            (
                S::Running { .. } | S::Stopping { .. } | S::Backoff { .. } | S::Done(_),
                I::Leftovers { .. },
            ) => vec![],
            // No second child outside a reload.
            (
                S::Running { .. }
                | S::Stopping { .. }
                | S::Cleanup { .. }
                | S::Backoff { .. }
                | S::Done(_),
                I::OtherLeftovers { .. } | I::OldQueue { .. },
            ) => vec![],
            (
                S::Running { .. }
                | S::Stopping { .. }
                | S::Cleanup { .. }
                | S::Backoff { .. }
                | S::Done(_),
                input @ (I::OtherEnded { .. } | I::Switched { .. }),
            ) => self.unexpected(&input),
            (S::Done(_), I::Signal { .. }) => vec![],
        }
    }
}

mod queries;
mod reload;
use reload::{Candidate, Hold};
mod steps;
#[cfg(test)]
mod tests;

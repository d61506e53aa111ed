//! The supervisor state machine: the one place that decides what happens when the child starts,
//! ends, fails a check, or when restartd is signalled or asked for something.
//!
//! `Machine::handle(input, now)` returns the actions to carry out, in order; `deadline()` says
//! when it next needs a `Tick`. It never performs IO and never reads a clock: the event loop
//! feeds it facts and carries out its actions (quinn-proto's `handle_timeout(now)` contract).
//! Everything the machine waits on lives in its `State` variant (the child, the stop under way
//! and its SIGKILL deadline, the leftovers' cleanup, the backoff), and `handle` is one
//! `match (state, input)` that can be read against SPEC §3 and §4 line by line.

use std::time::{Duration, Instant, SystemTime};

use nix::libc::{
    SIGABRT, SIGCONT, SIGHUP, SIGINT, SIGKILL, SIGQUIT, SIGSTOP, SIGTERM, SIGTSTP, SIGUSR1,
    SIGUSR2, SIGWINCH,
};
use serde::{Deserialize, Serialize};

use crate::base::exit::{code, ProcessEnd};
use crate::supervise::policy::{decide, Backoff, Cause, ExitRules, RestartPolicy, Verdict};
use crate::supervise::window::RestartWindow;

/// Time as the core sees it: both clocks, read once per loop turn.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Now {
    pub mono: Instant,
    pub wall: SystemTime,
}

impl Now {
    /// Reads both clocks. Called by the event loop only, once a turn.
    pub fn read() -> Now {
        Now {
            mono: Instant::now(),
            wall: SystemTime::now(),
        }
    }
}

/// The run options the machine decides with.
#[derive(Debug, Clone)]
pub struct Settings {
    pub policy: RestartPolicy,
    pub rules: ExitRules,
    pub backoff: Backoff,
    pub min_uptime: Duration,
    pub stop_signal: i32,
    pub stop_timeout: Duration,
    /// `--notify`: the child says when it is ready (READY=1); without it, it is ready at spawn.
    pub notify: bool,
}

/// `state.json`'s `status`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Status {
    Starting,
    Running,
    Backoff,
    Stopping,
    Stopped,
    Exited,
    GaveUp,
}

impl Status {
    /// The spelling in `state.json`, e.g. `gave-up`.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Starting => "starting",
            Status::Running => "running",
            Status::Backoff => "backoff",
            Status::Stopping => "stopping",
            Status::Stopped => "stopped",
            Status::Exited => "exited",
            Status::GaveUp => "gave-up",
        }
    }

    /// Whether restartd is on its way out (only leftovers may still be cleaned up).
    pub fn is_final(self) -> bool {
        matches!(self, Status::Stopped | Status::Exited | Status::GaveUp)
    }
}

/// A request to a running instance (`restartd stop|restart|signal|reset NAME`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Request {
    Stop,
    Restart,
    Signal(i32),
    Reset,
}

/// What the event loop observed.
#[derive(Debug, Clone, PartialEq)]
pub enum Input {
    /// The child was started with this pid.
    Spawned { pid: i32 },
    /// The command could not be started.
    SpawnFailed { not_found: bool, error: String },
    /// The main child ended. `leftovers`: processes of its group or reparented descendants are
    /// still alive. `jitter` is a sample in `[0, 1)`.
    ChildEnded {
        end: ProcessEnd,
        leftovers: bool,
        jitter: f64,
    },
    /// While the machine cleans up after a child (`cleaning()`): whether anything of it is left.
    Leftovers { alive: bool },
    /// A signal to restartd itself.
    Signal { signal: i32 },
    /// A request on the control socket; the machine answers with `Action::Reply`.
    Request(Request),
    /// The child sent READY=1.
    Ready,
    /// The health check failed `--health-retries` times; `detail` is the last check's output.
    Unhealthy { detail: String },
    /// The child's process group uses more than `--max-memory`; `detail` says how much.
    OverMemory { detail: String },
    /// No `WATCHDOG=1` within the watchdog interval.
    WatchdogMissed { detail: String },
    /// `deadline()` has passed (spurious ticks are harmless).
    Tick,
}

/// `reason` of a crash record and of `last_exit`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    Exit,
    Signal,
    Unhealthy,
    Watchdog,
    Memory,
    SpawnFailed,
}

impl Reason {
    /// The spelling in files, e.g. `spawn-failed`.
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::Exit => "exit",
            Reason::Signal => "signal",
            Reason::Unhealthy => "unhealthy",
            Reason::Watchdog => "watchdog",
            Reason::Memory => "memory",
            Reason::SpawnFailed => "spawn-failed",
        }
    }

    fn of(end: ProcessEnd) -> Reason {
        match end {
            ProcessEnd::Exited(_) => Reason::Exit,
            ProcessEnd::Signaled { .. } => Reason::Signal,
        }
    }
}

/// What restartd does after an end.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Outcome {
    /// Restart number `n` inside the window, after `delay`.
    Restart {
        n: u32,
        max: Option<u32>,
        window: Duration,
        delay: Duration,
    },
    /// The window is full: `count` restarts in the last `window`.
    GiveUp {
        count: u32,
        max: u32,
        window: Duration,
    },
    /// Not restarted; `None` for a command that cannot be started.
    Exit(Option<Verdict>),
    /// A requested stop; `killed` when the child needed SIGKILL.
    Stopped { killed: bool },
    /// A requested restart.
    Restarted,
}

impl Outcome {
    /// The crash record's `action`.
    pub fn action(&self) -> &'static str {
        match self {
            Outcome::Restart { .. } | Outcome::Restarted => "restart",
            Outcome::GiveUp { .. } => "give-up",
            Outcome::Exit(_) | Outcome::Stopped { .. } => "exit",
        }
    }
}

/// Everything known about one end of the child, for the log line and the crash record.
#[derive(Debug, Clone, PartialEq)]
pub struct EndReport {
    pub pid: Option<i32>,
    /// `None` when the command could not be started.
    pub end: Option<ProcessEnd>,
    pub reason: Reason,
    pub at: SystemTime,
    pub uptime: Duration,
    /// Restarts made before this end, over all runs (`state.json`'s `restarts`).
    pub restarts: u64,
    pub outcome: Outcome,
    /// Whether this end gets a crash record: not a clean end, not a requested stop or restart.
    pub crash: bool,
    /// The exit code is one the configuration names (`--no-restart-exit-codes`,
    /// `--force-restart-exit-codes`): an end the user anticipated.
    pub expected: bool,
    /// The spawn error, or what restartd saw when it stopped a failing child.
    pub detail: Option<String>,
}

/// `state.json`'s `last_exit`, without the crash id the event loop adds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LastExit {
    pub end: Option<ProcessEnd>,
    pub reason: Reason,
    pub at: SystemTime,
}

/// What restartd tells systemd (when it runs under one).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tell {
    /// READY=1: the child is ready.
    Ready,
    /// STOPPING=1: restartd is stopping.
    Stopping,
}

/// The answer to a control request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    /// Done (or under way).
    Ok,
    /// A stop: answered once restartd has stopped, so `restartd stop` returns when it is over.
    WhenStopped,
    /// Refused, and why.
    Refused(String),
}

/// What the event loop must do, in order.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// Start the command; `restarts` goes into `RESTARTD_RESTARTS`. Answer with
    /// `Spawned` or `SpawnFailed`, before any other input.
    Spawn { restarts: u32 },
    /// Signal the child's process group.
    SignalGroup(i32),
    /// Signal the main child only (the watchdog's SIGABRT, for its stack dump).
    SignalChild(i32),
    /// Signal the child's process group and every reparented descendant; repeated, it reaches
    /// only those that did not get this signal yet.
    SignalAll(i32),
    /// The last child's group is clean: forget it; nothing of it may be signalled any more.
    Release,
    /// Stop restartd itself (SIGSTOP), after the child's group was stopped.
    SuspendSelf,
    /// Start (true) or stop (false) the health checks, watchdog and memory sampling.
    Monitors(bool),
    /// Tell systemd.
    Tell(Tell),
    /// Answer the control request being handled.
    Reply(Reply),
    /// Log the end and, when `crash`, append the crash record durably before the next action.
    Ended(EndReport),
    /// `state.json` changed.
    SaveState,
    /// An input that cannot happen in this state; logged, otherwise ignored.
    Unexpected(String),
    /// Exit restartd with this status.
    Exit(u8),
}

/// Why restartd is stopping the child.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Stop {
    /// Stop the child and exit.
    Shutdown { signal: i32 },
    /// Stop the child and start it again (`restartd restart`).
    Restart,
    /// restartd stopped a failing child; the policy decides next. `detail` is what it saw.
    Failure { reason: Reason, detail: String },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Run {
    pid: i32,
    started: Instant,
    started_wall: SystemTime,
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
    /// The child is gone; what is left of its group and its descendants got `signal` (SIGKILL
    /// at `kill_at`); `then` follows once nothing is left.
    Cleanup {
        signal: i32,
        kill_at: Option<Instant>,
        then: Then,
    },
    /// Waiting to restart after a crash.
    Backoff { until: Instant, wall: SystemTime },
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
    last_exit: Option<LastExit>,
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
            last_exit: None,
        }
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
            State::Starting { .. } | State::Running { .. } | State::Done(_) => None,
        }
    }

    /// Feeds one input; returns the actions to carry out, in order.
    pub fn handle(&mut self, input: Input, now: Now) -> Vec<Action> {
        use Input as I;
        use State as S;
        let state = self.state.clone();
        match (state, input) {
            // Starting: the loop answers a spawn at once, with nothing in between.
            (S::Starting { .. }, I::Spawned { pid }) => self.spawned(pid, now),
            (S::Starting { .. }, I::SpawnFailed { not_found, error }) => {
                self.spawn_failed(not_found, error, now)
            }
            (S::Starting { .. }, input) => self.unexpected(&input),

            // Running.
            (
                S::Running { run, .. },
                I::ChildEnded {
                    end,
                    leftovers,
                    jitter,
                },
            ) => {
                let (report, then) = self.crashed(run, end, None, jitter, now);
                self.ended(report, then, leftovers, self.settings.stop_signal, now)
            }
            (S::Running { run, .. }, I::Signal { signal }) if STOP_SIGNALS.contains(&signal) => {
                self.stop(run, Stop::Shutdown { signal }, now)
            }
            (S::Running { run, .. }, I::Request(Request::Stop)) => {
                let signal = self.settings.stop_signal;
                let mut actions = vec![Action::Reply(Reply::WhenStopped)];
                actions.extend(self.stop(run, Stop::Shutdown { signal }, now));
                actions
            }
            (S::Running { run, .. }, I::Request(Request::Restart)) => {
                let mut actions = vec![Action::Reply(Reply::Ok)];
                actions.extend(self.stop(run, Stop::Restart, now));
                actions
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
            (S::Running { run, .. }, I::WatchdogMissed { detail }) => self.stop(
                run,
                Stop::Failure {
                    reason: Reason::Watchdog,
                    detail,
                },
                now,
            ),
            (S::Running { run, ready: false }, I::Ready) => {
                self.state = S::Running { run, ready: true };
                vec![Action::Tell(Tell::Ready), Action::SaveState]
            }
            (S::Running { ready: true, .. }, I::Ready) => vec![],

            // Stopping: the child still runs and has had its stop signal.
            (
                S::Stopping { run, why, kill_at },
                I::ChildEnded {
                    end,
                    leftovers,
                    jitter,
                },
            ) => {
                let killed = kill_at.is_none();
                let (report, then, signal) = match why {
                    Stop::Shutdown { signal } => {
                        let code = if killed { code::KILLED } else { code::STOPPED };
                        let report = self.report(run, end, now, Outcome::Stopped { killed });
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
                    Stop::Failure { reason, detail } => {
                        let (report, then) =
                            self.crashed(run, end, Some((reason, detail)), jitter, now);
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
            (S::Stopping { .. }, I::Request(Request::Restart)) => self.cannot_restart(),
            (S::Stopping { run, why, .. }, I::Tick) if self.deadline_passed(now) => {
                self.state = S::Stopping {
                    run,
                    why,
                    kill_at: None,
                };
                vec![Action::SignalAll(SIGKILL)]
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
            (S::Cleanup { then, .. }, I::Tick) if self.deadline_passed(now) => {
                self.state = S::Cleanup {
                    signal: SIGKILL,
                    kill_at: None,
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
                I::Request(Request::Restart),
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
                vec![Action::Reply(Reply::Ok)]
            }
            (S::Cleanup { .. }, I::Request(Request::Restart)) => self.cannot_restart(),

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
            (S::Backoff { .. }, I::Request(Request::Restart)) => {
                // Asked for: the rest of the delay is waived and the streak forgiven.
                self.streak = 0;
                let mut actions = vec![Action::Reply(Reply::Ok)];
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
            (_, I::Request(Request::Reset)) => {
                self.window.clear();
                vec![Action::Reply(Reply::Ok), Action::SaveState]
            }
            (S::Done(_), I::Request(Request::Stop)) => vec![Action::Reply(Reply::WhenStopped)],
            (S::Done(_), I::Request(Request::Restart)) => self.cannot_restart(),
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
            (S::Done(_), I::Signal { .. }) => vec![],
        }
    }

    fn deadline_passed(&self, now: Now) -> bool {
        self.deadline().is_some_and(|at| at <= now.mono)
    }

    fn spawn(&mut self, kind: SpawnKind, now: Now) -> Vec<Action> {
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

    fn spawned(&mut self, pid: i32, now: Now) -> Vec<Action> {
        let run = Run {
            pid,
            started: now.mono,
            started_wall: now.wall,
        };
        // Without --notify the child counts as ready once it runs (SPEC §5).
        let ready = !self.settings.notify;
        self.state = State::Running { run, ready };
        let mut actions = vec![Action::Monitors(true)];
        if ready {
            actions.push(Action::Tell(Tell::Ready));
        }
        actions.push(Action::SaveState);
        actions
    }

    fn spawn_failed(&mut self, not_found: bool, error: String, now: Now) -> Vec<Action> {
        let code = if not_found {
            code::NOT_FOUND
        } else {
            code::NOT_EXECUTABLE
        };
        self.state = State::Done(Final {
            status: Status::Exited,
            code,
        });
        self.last_exit = Some(LastExit {
            end: None,
            reason: Reason::SpawnFailed,
            at: now.wall,
        });
        let report = EndReport {
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
        vec![Action::Ended(report), Action::SaveState, Action::Exit(code)]
    }

    /// restartd stops the running child: the watchdog first sends SIGABRT to the main child (so
    /// its runtime dumps a stack into the tail), every other stop the stop signal to the whole
    /// group; after `--stop-timeout`, SIGKILL.
    fn stop(&mut self, run: Run, why: Stop, now: Now) -> Vec<Action> {
        let first = match &why {
            Stop::Shutdown { signal } => Action::SignalAll(*signal),
            Stop::Failure {
                reason: Reason::Watchdog,
                ..
            } => Action::SignalChild(SIGABRT),
            Stop::Restart | Stop::Failure { .. } => Action::SignalAll(self.settings.stop_signal),
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

    /// A stop request while restartd already stops the child.
    fn stop_again(
        &mut self,
        run: Run,
        why: Stop,
        kill_at: Option<Instant>,
        signal: i32,
    ) -> Vec<Action> {
        match why {
            Stop::Shutdown { .. } => {
                // A second stop request: no more waiting.
                self.state = State::Stopping {
                    run,
                    why,
                    kill_at: None,
                };
                vec![Action::SignalAll(SIGKILL)]
            }
            Stop::Restart | Stop::Failure { .. } => {
                // The stop signal went out already; its deadline stands, and restartd exits
                // instead of restarting.
                self.state = State::Stopping {
                    run,
                    why: Stop::Shutdown { signal },
                    kill_at,
                };
                vec![Action::Tell(Tell::Stopping), Action::SaveState]
            }
        }
    }

    /// A stop request while leftovers of the last child are being cleaned up.
    fn stop_in_cleanup(
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
    fn exit_at_once(&mut self) -> Vec<Action> {
        self.state = State::Done(Final {
            status: Status::Stopped,
            code: code::STOPPED,
        });
        vec![Action::SaveState, Action::Exit(code::STOPPED)]
    }

    fn cannot_restart(&self) -> Vec<Action> {
        vec![Action::Reply(Reply::Refused(format!(
            "cannot restart while {}",
            self.status().as_str()
        )))]
    }

    /// The report of an end that is no crash (a requested stop or restart).
    fn report(&mut self, run: Run, end: ProcessEnd, now: Now, outcome: Outcome) -> EndReport {
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
    fn crashed(
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
                    _ => Cause::Unhealthy,
                };
                (cause, None)
            }
            None => (s.rules.classify(end), end.code()),
        };
        if let Some(last) = self.last_exit.as_mut() {
            last.reason = report.reason;
        }
        let verdict = decide(s.policy, cause, code, &s.rules);
        report.crash = cause != Cause::Clean;
        report.expected = matches!(
            verdict,
            Verdict::NoRestartCode(_) | Verdict::ForceRestartCode(_)
        );
        let status = end.exit_status();
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
        (report, then)
    }

    /// The child is gone: record its end, then clean up what it left (the `signal` to the group
    /// and its descendants, SIGKILL after `--stop-timeout`) or go on at once.
    fn ended(
        &mut self,
        report: EndReport,
        then: Then,
        leftovers: bool,
        signal: i32,
        now: Now,
    ) -> Vec<Action> {
        let mut actions = vec![Action::Ended(report), Action::Monitors(false)];
        if leftovers {
            // A SIGKILL already sent has nothing left to escalate to.
            let kill_at = (signal != SIGKILL).then(|| now.mono + self.settings.stop_timeout);
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
    fn then(&mut self, then: Then, now: Now) -> Vec<Action> {
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

    fn unexpected(&self, input: &Input) -> Vec<Action> {
        let name = match input {
            Input::Spawned { .. } => "Spawned",
            Input::SpawnFailed { .. } => "SpawnFailed",
            Input::ChildEnded { .. } => "ChildEnded",
            Input::Leftovers { .. } => "Leftovers",
            Input::Signal { .. } => "Signal",
            Input::Request(_) => "Request",
            Input::Ready => "Ready",
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

    /// `state.json`'s `status`.
    pub fn status(&self) -> Status {
        match &self.state {
            State::Starting { .. } => Status::Starting,
            State::Running { .. } => Status::Running,
            State::Stopping { .. } => Status::Stopping,
            State::Cleanup { then, .. } => match then {
                Then::Backoff { .. } => Status::Backoff,
                Then::Respawn => Status::Stopping,
                Then::Exit(last) => last.status,
            },
            State::Backoff { .. } => Status::Backoff,
            State::Done(last) => last.status,
        }
    }

    /// Whether the machine waits for the last child's leftovers: the loop then reports
    /// `Leftovers` every turn.
    pub fn cleaning(&self) -> bool {
        matches!(self.state, State::Cleanup { .. })
    }

    /// The live child's pid.
    pub fn child_pid(&self) -> Option<i32> {
        self.run().map(|r| r.pid)
    }

    /// When the live child started.
    pub fn child_started_at(&self) -> Option<SystemTime> {
        self.run().map(|r| r.started_wall)
    }

    /// Whether the live child is ready (READY=1 with `--notify`, else since its spawn).
    pub fn ready(&self) -> bool {
        match &self.state {
            State::Running { ready, .. } => *ready,
            _ => false,
        }
    }

    fn run(&self) -> Option<Run> {
        match &self.state {
            State::Running { run, .. } | State::Stopping { run, .. } => Some(*run),
            State::Starting { .. }
            | State::Cleanup { .. }
            | State::Backoff { .. }
            | State::Done(_) => None,
        }
    }

    /// Restarts over all runs.
    pub fn restarts_total(&self) -> u64 {
        self.restarts_total
    }

    /// The restart window (for `recent_restarts`, `max_restarts`, `window_secs`).
    pub fn window(&self) -> &RestartWindow {
        &self.window
    }

    /// The last end of the child.
    pub fn last_exit(&self) -> Option<LastExit> {
        self.last_exit
    }

    /// When the pending restart happens.
    pub fn next_restart_at(&self) -> Option<SystemTime> {
        match &self.state {
            State::Backoff { wall, .. }
            | State::Cleanup {
                then: Then::Backoff { wall, .. },
                ..
            } => Some(*wall),
            State::Starting { .. }
            | State::Running { .. }
            | State::Stopping { .. }
            | State::Cleanup { .. }
            | State::Done(_) => None,
        }
    }
}

#[cfg(test)]
mod tests;

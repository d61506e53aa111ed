//! The supervisor state machine: what happens when the child starts, ends, or is asked to stop.
//!
//! `Machine::handle(input, now)` returns the actions to carry out, in order; `deadline()` says
//! when it next needs a `Tick`. It never performs IO and never reads a clock: the event loop
//! feeds it facts and carries out its actions (quinn-proto's `handle_timeout(now)` contract).
//! Every (status, input) pair is written out in `handle`.

use std::time::{Duration, Instant, SystemTime};

use nix::libc::{SIGKILL, SIGSTOP};
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
    /// Reads both clocks. Called by the event loop only.
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

/// What the event loop observed.
#[derive(Debug, Clone, PartialEq)]
pub enum Input {
    /// The child was started with this pid.
    Spawned { pid: i32 },
    /// The command could not be started.
    SpawnFailed { not_found: bool, error: String },
    /// The main child was reaped. `leftovers`: processes of its group or reparented descendants
    /// are still alive. `jitter` is a sample in `[0, 1)`.
    ChildEnded {
        end: ProcessEnd,
        leftovers: bool,
        jitter: f64,
    },
    /// No process of the last child's group and no reparented descendant is left.
    LeftoversGone,
    /// SIGTERM, SIGINT or SIGQUIT to restartd (that signal), or `restartd stop` (`--stop-signal`).
    StopRequested { signal: i32 },
    /// `restartd restart`: replace the child gracefully; no crash, no backoff.
    RestartRequested,
    /// SIGHUP, SIGUSR1, SIGUSR2, SIGWINCH, SIGCONT: pass on to the child's group.
    Forward { signal: i32 },
    /// SIGTSTP: suspend the child and restartd.
    Suspend,
    /// `restartd reset`: forget the restart window.
    ResetWindow,
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
    /// The spawn error.
    pub detail: Option<String>,
}

/// `state.json`'s `last_exit`, without the crash id the event loop adds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LastExit {
    pub end: Option<ProcessEnd>,
    pub reason: Reason,
    pub at: SystemTime,
}

/// What the event loop must do, in order.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// Start the command; `restarts` goes into `RESTARTD_RESTARTS`. Answer with
    /// `Spawned` or `SpawnFailed`.
    Spawn { restarts: u32 },
    /// Signal the child's process group.
    SignalGroup(i32),
    /// Signal the main child only (the watchdog's SIGABRT, for its stack dump).
    SignalChild(i32),
    /// Signal the child's process group and every reparented descendant.
    SignalAll(i32),
    /// Stop restartd itself (SIGSTOP), after the child's group was stopped.
    SuspendSelf,
    /// Log the end and, when `crash`, append the crash record durably before the next action.
    Ended(EndReport),
    /// `state.json` changed.
    SaveState,
    /// An input that cannot happen in this status; logged, otherwise ignored.
    Unexpected(String),
    /// Exit restartd with this status.
    Exit(u8),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stop {
    /// Stop the child and exit.
    Shutdown { signal: i32 },
    /// Stop the child and start it again.
    Restart,
    /// restartd stopped a failing child (unhealthy, memory, watchdog); the policy decides next.
    Failure(Reason),
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

/// The supervisor. Build with `new`, start with `start`, then feed inputs to `handle`.
#[derive(Debug, Clone)]
pub struct Machine {
    settings: Settings,
    status: Status,
    child: Option<Run>,
    stop: Option<Stop>,
    /// Processes of the last child are still alive.
    leftovers: bool,
    /// SIGKILL was sent while the main child was alive.
    killed: bool,
    kill_at: Option<Instant>,
    backoff_until: Option<Instant>,
    next_restart_wall: Option<SystemTime>,
    /// Automatic restarts since the last run of at least `--min-uptime`.
    streak: u32,
    window: RestartWindow,
    restarts_total: u64,
    restarts_run: u32,
    last_exit: Option<LastExit>,
    /// What restartd saw when it stopped a failing child, for the crash record.
    failure_detail: Option<String>,
    exit: u8,
}

impl Machine {
    /// A machine that has not started yet; `window` and `restarts_total` may come from a
    /// previous run's state file.
    pub fn new(settings: Settings, window: RestartWindow, restarts_total: u64) -> Machine {
        Machine {
            settings,
            status: Status::Starting,
            child: None,
            stop: None,
            leftovers: false,
            killed: false,
            kill_at: None,
            backoff_until: None,
            next_restart_wall: None,
            streak: 0,
            window,
            restarts_total,
            restarts_run: 0,
            last_exit: None,
            failure_detail: None,
            exit: 0,
        }
    }

    /// The first actions: start the child. Call once, before any `handle`.
    pub fn start(&mut self, now: Now) -> Vec<Action> {
        self.spawn(now, SpawnKind::First)
    }

    /// When the machine next needs a `Tick`; `None` when it only waits for events.
    pub fn deadline(&self) -> Option<Instant> {
        let backoff = self.backoff_until.filter(|_| !self.leftovers);
        match (self.kill_at, backoff) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Feeds one input; returns the actions to carry out, in order.
    pub fn handle(&mut self, input: Input, now: Now) -> Vec<Action> {
        use Status::*;
        let status = self.status;
        match input {
            Input::Spawned { pid } => match status {
                Starting => {
                    self.status = Running;
                    self.child = Some(Run {
                        pid,
                        started: now.mono,
                        started_wall: now.wall,
                    });
                    vec![Action::SaveState]
                }
                Running | Backoff | Stopping | Stopped | Exited | GaveUp => {
                    self.unexpected("Spawned", status)
                }
            },
            Input::SpawnFailed { not_found, error } => match status {
                Starting => self.spawn_failed(not_found, error, now),
                Running | Backoff | Stopping | Stopped | Exited | GaveUp => {
                    self.unexpected("SpawnFailed", status)
                }
            },
            Input::ChildEnded {
                end,
                leftovers,
                jitter,
            } => match (status, self.child) {
                (Running | Stopping, Some(run)) => {
                    self.child_ended(run, end, leftovers, jitter, now)
                }
                (Starting | Running | Backoff | Stopping | Stopped | Exited | GaveUp, _) => {
                    self.unexpected("ChildEnded", status)
                }
            },
            Input::LeftoversGone => {
                self.leftovers = false;
                if self.child.is_none() {
                    self.kill_at = None;
                }
                self.proceed(now)
            }
            Input::StopRequested { signal } => self.stop_requested(signal, now),
            Input::RestartRequested => match status {
                Running => {
                    self.stop = Some(Stop::Restart);
                    self.status = Stopping;
                    self.kill_at = Some(now.mono + self.settings.stop_timeout);
                    vec![
                        Action::SignalAll(self.settings.stop_signal),
                        Action::SaveState,
                    ]
                }
                Backoff => {
                    // Asked for: the rest of the delay is waived and the streak forgiven.
                    self.streak = 0;
                    self.backoff_until = Some(now.mono);
                    self.proceed(now)
                }
                Starting | Stopping | Stopped | Exited | GaveUp => vec![],
            },
            Input::Forward { signal } => match (status, self.child) {
                (Running | Stopping, Some(_)) => vec![Action::SignalGroup(signal)],
                (Starting | Running | Backoff | Stopping | Stopped | Exited | GaveUp, _) => vec![],
            },
            Input::Suspend => match self.child {
                Some(_) => vec![Action::SignalGroup(SIGSTOP), Action::SuspendSelf],
                None => vec![Action::SuspendSelf],
            },
            Input::ResetWindow => {
                self.window.clear();
                vec![Action::SaveState]
            }
            Input::Unhealthy { detail } => self.failed(Reason::Unhealthy, detail, now),
            Input::OverMemory { detail } => self.failed(Reason::Memory, detail, now),
            Input::WatchdogMissed { detail } => self.failed(Reason::Watchdog, detail, now),
            Input::Tick => self.tick(now),
        }
    }

    fn spawn(&mut self, now: Now, kind: SpawnKind) -> Vec<Action> {
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
        self.status = Status::Starting;
        self.stop = None;
        self.killed = false;
        self.kill_at = None;
        self.backoff_until = None;
        self.next_restart_wall = None;
        vec![Action::Spawn {
            restarts: self.restarts_run,
        }]
    }

    fn spawn_failed(&mut self, not_found: bool, error: String, now: Now) -> Vec<Action> {
        self.status = Status::Exited;
        self.exit = if not_found {
            code::NOT_FOUND
        } else {
            code::NOT_EXECUTABLE
        };
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
        vec![
            Action::Ended(report),
            Action::SaveState,
            Action::Exit(self.exit),
        ]
    }

    fn child_ended(
        &mut self,
        run: Run,
        end: ProcessEnd,
        leftovers: bool,
        jitter: f64,
        now: Now,
    ) -> Vec<Action> {
        self.child = None;
        self.leftovers = leftovers;
        let uptime = now.mono.saturating_duration_since(run.started);
        let reason = Reason::of(end);
        self.last_exit = Some(LastExit {
            end: Some(end),
            reason,
            at: now.wall,
        });
        let mut report = EndReport {
            pid: Some(run.pid),
            end: Some(end),
            reason,
            at: now.wall,
            uptime,
            restarts: self.restarts_total,
            outcome: Outcome::Restarted,
            crash: false,
            expected: false,
            detail: None,
        };
        // The signal that takes down what is left of the group.
        let mut leftover_signal = self.settings.stop_signal;
        match self.stop {
            Some(Stop::Shutdown { signal }) => {
                self.exit = if self.killed {
                    code::KILLED
                } else {
                    code::STOPPED
                };
                report.outcome = Outcome::Stopped {
                    killed: self.killed,
                };
                leftover_signal = signal;
            }
            Some(Stop::Restart) => {
                self.streak = 0;
                report.outcome = Outcome::Restarted;
            }
            None | Some(Stop::Failure(_)) => {
                if uptime >= self.settings.min_uptime {
                    self.streak = 0;
                }
                let s = &self.settings;
                // The cause of a child restartd stopped is restartd's reason (SPEC §3).
                let (cause, code) = match self.stop {
                    Some(Stop::Failure(why)) => {
                        report.reason = why;
                        report.detail = self.failure_detail.take();
                        let cause = match why {
                            Reason::Watchdog => Cause::Watchdog,
                            _ => Cause::Unhealthy,
                        };
                        (cause, None)
                    }
                    _ => (s.rules.classify(end), end.code()),
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
                report.outcome = if !verdict.restart() {
                    self.status = Status::Exited;
                    self.exit = end.exit_status();
                    Outcome::Exit(Some(verdict))
                } else if self.window.full(now.wall) {
                    self.status = Status::GaveUp;
                    self.exit = end.exit_status();
                    Outcome::GiveUp {
                        count: self.window.count(now.wall),
                        max: self.window.max().unwrap_or(0),
                        window: self.window.window(),
                    }
                } else {
                    self.streak += 1;
                    let delay = s.backoff.delay(self.streak, jitter);
                    self.status = Status::Backoff;
                    self.backoff_until = Some(now.mono + delay);
                    self.next_restart_wall = Some(now.wall + delay);
                    Outcome::Restart {
                        n: self.window.count(now.wall) + 1,
                        max: self.window.max(),
                        window: self.window.window(),
                        delay,
                    }
                };
            }
        }
        let mut actions = vec![Action::Ended(report)];
        if leftovers {
            actions.push(Action::SignalAll(leftover_signal));
            if self.kill_at.is_none() {
                self.kill_at = Some(now.mono + self.settings.stop_timeout);
            }
        } else {
            self.kill_at = None;
        }
        actions.push(Action::SaveState);
        actions.extend(self.proceed(now));
        actions
    }

    fn stop_requested(&mut self, signal: i32, now: Now) -> Vec<Action> {
        use Status::*;
        match (self.status, self.stop) {
            (Running, _) | (Stopping, Some(Stop::Restart | Stop::Failure(_)))
                if self.child.is_some() =>
            {
                let first = self.stop.is_none();
                self.stop = Some(Stop::Shutdown { signal });
                self.status = Stopping;
                if first {
                    self.kill_at = Some(now.mono + self.settings.stop_timeout);
                    vec![Action::SignalAll(signal), Action::SaveState]
                } else {
                    // The restart already sent the stop signal; its deadline stands.
                    vec![Action::SaveState]
                }
            }
            (Stopping, Some(Stop::Restart | Stop::Failure(_))) => {
                // The child is gone and its leftovers are going: exit instead of restarting.
                self.stop = Some(Stop::Shutdown { signal });
                self.proceed(now)
            }
            (Stopping, Some(Stop::Shutdown { .. })) => {
                // A second stop request: no more waiting.
                self.killed |= self.child.is_some();
                self.kill_at = None;
                vec![Action::SignalAll(SIGKILL)]
            }
            (Starting | Backoff, _) => {
                self.status = Stopped;
                self.exit = code::STOPPED;
                self.backoff_until = None;
                self.next_restart_wall = None;
                let mut actions = Vec::new();
                if self.leftovers {
                    actions.push(Action::SignalAll(SIGKILL));
                }
                actions.extend([Action::SaveState, Action::Exit(self.exit)]);
                actions
            }
            (Stopped | Exited | GaveUp, _) => {
                // Waiting for leftovers before exiting: stop waiting.
                vec![Action::SignalAll(SIGKILL), Action::Exit(self.exit)]
            }
            (Running | Stopping, _) => self.unexpected("StopRequested", self.status),
        }
    }

    /// restartd stops a failing child: the watchdog first sends SIGABRT to the main child (so its
    /// runtime dumps a stack into the tail), the others the stop signal to the whole group; after
    /// `--stop-timeout`, SIGKILL. Only a running child that is not already stopping can fail.
    fn failed(&mut self, reason: Reason, detail: String, now: Now) -> Vec<Action> {
        match (self.status, self.child) {
            (Status::Running, Some(_)) => {
                self.stop = Some(Stop::Failure(reason));
                self.failure_detail = Some(detail);
                self.status = Status::Stopping;
                self.kill_at = Some(now.mono + self.settings.stop_timeout);
                let first = match reason {
                    Reason::Watchdog => Action::SignalChild(nix::libc::SIGABRT),
                    _ => Action::SignalAll(self.settings.stop_signal),
                };
                vec![first, Action::SaveState]
            }
            (
                Status::Starting
                | Status::Running
                | Status::Backoff
                | Status::Stopping
                | Status::Stopped
                | Status::Exited
                | Status::GaveUp,
                _,
            ) => vec![],
        }
    }

    fn tick(&mut self, now: Now) -> Vec<Action> {
        let mut actions = Vec::new();
        if self.kill_at.is_some_and(|at| at <= now.mono) {
            self.kill_at = None;
            if self.child.is_some() || self.leftovers {
                self.killed |= self.child.is_some();
                actions.push(Action::SignalAll(SIGKILL));
            }
        }
        actions.extend(self.proceed(now));
        actions
    }

    /// Moves on once the group is clean: start again, or exit.
    fn proceed(&mut self, now: Now) -> Vec<Action> {
        if self.leftovers || self.child.is_some() {
            return vec![];
        }
        match (self.status, self.stop) {
            (Status::Backoff, _) => match self.backoff_until {
                Some(at) if at <= now.mono => self.spawn(now, SpawnKind::Automatic),
                _ => vec![],
            },
            (Status::Stopping, Some(Stop::Restart)) => self.spawn(now, SpawnKind::Requested),
            (Status::Stopping, Some(Stop::Shutdown { .. })) => {
                self.status = Status::Stopped;
                vec![Action::SaveState, Action::Exit(self.exit)]
            }
            (Status::Stopped | Status::Exited | Status::GaveUp, _) => vec![Action::Exit(self.exit)],
            (Status::Starting | Status::Running | Status::Stopping, _) => vec![],
        }
    }

    fn unexpected(&self, input: &str, status: Status) -> Vec<Action> {
        vec![Action::Unexpected(format!(
            "ignored {input} in status {}",
            status.as_str()
        ))]
    }

    /// `state.json`'s `status`.
    pub fn status(&self) -> Status {
        self.status
    }

    /// The live child's pid.
    pub fn child_pid(&self) -> Option<i32> {
        self.child.map(|r| r.pid)
    }

    /// When the live child started.
    pub fn child_started_at(&self) -> Option<SystemTime> {
        self.child.map(|r| r.started_wall)
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
        self.next_restart_wall
            .filter(|_| self.status == Status::Backoff)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use nix::libc::{SIGABRT, SIGINT, SIGTERM};

    const SEC: Duration = Duration::from_secs(1);

    fn settings(policy: RestartPolicy) -> Settings {
        Settings {
            policy,
            rules: ExitRules::default(),
            backoff: Backoff {
                delay: SEC,
                factor: 2.0,
                max_delay: Duration::from_secs(60),
                jitter: 0.0,
            },
            min_uptime: Duration::from_secs(10),
            stop_signal: SIGTERM,
            stop_timeout: Duration::from_secs(5),
        }
    }

    /// A machine and a virtual clock (quinn's `Pair::step`).
    struct Sim {
        m: Machine,
        t0: Now,
        at: Duration,
        next_pid: i32,
    }

    impl Sim {
        fn new(settings: Settings, max: Option<u32>) -> Sim {
            let t0 = Now::read();
            let window = RestartWindow::new(Duration::from_secs(300), max);
            Sim {
                m: Machine::new(settings, window, 0),
                t0,
                at: Duration::ZERO,
                next_pid: 100,
            }
        }
        fn now(&self) -> Now {
            Now {
                mono: self.t0.mono + self.at,
                wall: self.t0.wall + self.at,
            }
        }
        /// Feeds `input`; answers every `Spawn` with `Spawned`, like the event loop.
        fn feed(&mut self, input: Input) -> Vec<Action> {
            let now = self.now();
            let actions = self.m.handle(input, now);
            self.answer_spawns(actions)
        }
        fn answer_spawns(&mut self, actions: Vec<Action>) -> Vec<Action> {
            let mut out = Vec::new();
            for a in actions {
                let spawned = matches!(a, Action::Spawn { .. });
                out.push(a);
                if spawned {
                    self.next_pid += 1;
                    let now = self.now();
                    let more = self.m.handle(Input::Spawned { pid: self.next_pid }, now);
                    out.extend(more);
                }
            }
            out
        }
        fn start(&mut self) -> Vec<Action> {
            let now = self.now();
            let actions = self.m.start(now);
            self.answer_spawns(actions)
        }
        fn advance(&mut self, d: Duration) {
            self.at += d;
        }
        /// Advances to the machine's deadline and ticks.
        fn step(&mut self) -> Vec<Action> {
            let deadline = self.m.deadline().expect("a deadline");
            self.at = deadline - self.t0.mono;
            self.feed(Input::Tick)
        }
        fn end(&mut self, end: ProcessEnd) -> Vec<Action> {
            self.feed(Input::ChildEnded {
                end,
                leftovers: false,
                jitter: 0.5,
            })
        }
    }

    fn report(actions: &[Action]) -> &EndReport {
        actions
            .iter()
            .find_map(|a| match a {
                Action::Ended(r) => Some(r),
                _ => None,
            })
            .expect("an Ended action")
    }

    fn delay_of(actions: &[Action]) -> Duration {
        match report(actions).outcome {
            Outcome::Restart { delay, .. } => delay,
            other => panic!("expected a restart, got {other:?}"),
        }
    }

    const CRASH: ProcessEnd = ProcessEnd::Exited(1);

    #[test]
    fn crash_crash_long_run_crash_resets_the_delay() {
        let mut sim = Sim::new(settings(RestartPolicy::OnFailure), Some(10));
        sim.start();
        assert_eq!(delay_of(&sim.end(CRASH)), SEC);
        sim.step();
        assert_eq!(delay_of(&sim.end(CRASH)), 2 * SEC);
        sim.step();
        sim.advance(Duration::from_secs(10));
        assert_eq!(delay_of(&sim.end(CRASH)), SEC);
    }

    #[test]
    fn backoff_ends_in_a_spawn_at_the_deadline_not_before() {
        let mut sim = Sim::new(settings(RestartPolicy::Always), None);
        sim.start();
        sim.end(CRASH);
        assert_eq!(sim.m.status(), Status::Backoff);
        sim.advance(Duration::from_millis(999));
        assert!(!sim
            .feed(Input::Tick)
            .iter()
            .any(|a| matches!(a, Action::Spawn { .. })));
        let actions = sim.step();
        assert_eq!(actions[0], Action::Spawn { restarts: 1 });
        assert_eq!(sim.m.status(), Status::Running);
        assert_eq!(sim.m.restarts_total(), 1);
    }

    #[test]
    fn stop_during_backoff_exits_0_at_once_without_spawning() {
        let mut sim = Sim::new(settings(RestartPolicy::Always), None);
        sim.start();
        sim.end(CRASH);
        let actions = sim.feed(Input::StopRequested { signal: SIGTERM });
        assert_eq!(actions, vec![Action::SaveState, Action::Exit(0)]);
        assert_eq!(sim.m.status(), Status::Stopped);
    }

    #[test]
    fn stop_forwards_then_kills_at_the_timeout_and_exits_137() {
        let mut sim = Sim::new(settings(RestartPolicy::Always), None);
        sim.start();
        let actions = sim.feed(Input::StopRequested { signal: SIGINT });
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
        sim.feed(Input::StopRequested { signal: SIGTERM });
        let actions = sim.end(ProcessEnd::Exited(3));
        assert_eq!(actions.last(), Some(&Action::Exit(0)));
        assert_eq!(sim.m.status(), Status::Stopped);
    }

    #[test]
    fn second_stop_request_kills_at_once() {
        let mut sim = Sim::new(settings(RestartPolicy::Always), None);
        sim.start();
        sim.feed(Input::StopRequested { signal: SIGTERM });
        assert_eq!(
            sim.feed(Input::StopRequested { signal: SIGTERM }),
            vec![Action::SignalAll(SIGKILL)]
        );
        let actions = sim.end(ProcessEnd::Signaled {
            signal: SIGKILL,
            core_dumped: false,
        });
        assert_eq!(actions.last(), Some(&Action::Exit(137)));
    }

    #[test]
    fn max_restarts_reached_gives_up_with_the_child_status() {
        let mut sim = Sim::new(settings(RestartPolicy::Always), Some(2));
        sim.start();
        for _ in 0..2 {
            sim.end(CRASH);
            sim.step();
        }
        let actions = sim.end(ProcessEnd::Signaled {
            signal: SIGABRT,
            core_dumped: true,
        });
        let r = report(&actions);
        assert!(r.crash);
        assert_eq!(r.outcome.action(), "give-up");
        assert_eq!(r.restarts, 2);
        assert_eq!(actions.last(), Some(&Action::Exit(134)));
        assert_eq!(sim.m.status(), Status::GaveUp);
    }

    #[test]
    fn the_window_forgets_old_restarts() {
        let mut s = settings(RestartPolicy::Always);
        s.backoff.delay = Duration::ZERO;
        let mut sim = Sim::new(s, Some(1));
        sim.start();
        let actions = sim.end(CRASH);
        assert!(
            matches!(actions.last(), Some(Action::SaveState)),
            "{actions:?}"
        );
        sim.advance(Duration::from_secs(301));
        let actions = sim.end(CRASH);
        assert!(actions.iter().any(|a| matches!(a, Action::Spawn { .. })));
    }

    #[test]
    fn max_restarts_zero_never_restarts() {
        let mut sim = Sim::new(settings(RestartPolicy::Always), Some(0));
        sim.start();
        let actions = sim.end(CRASH);
        assert_eq!(report(&actions).outcome.action(), "give-up");
        assert_eq!(actions.last(), Some(&Action::Exit(1)));
    }

    #[test]
    fn clean_exit_under_on_failure_exits_without_a_crash_record() {
        let mut sim = Sim::new(settings(RestartPolicy::OnFailure), None);
        sim.start();
        let actions = sim.end(ProcessEnd::Exited(0));
        assert!(!report(&actions).crash);
        assert_eq!(actions.last(), Some(&Action::Exit(0)));
        assert_eq!(sim.m.status(), Status::Exited);
    }

    #[test]
    fn crash_record_comes_before_spawn_and_exit() {
        let mut s = settings(RestartPolicy::Always);
        s.backoff.delay = Duration::ZERO;
        let mut sim = Sim::new(s, Some(1));
        sim.start();
        for _ in 0..2 {
            let actions = sim.end(CRASH);
            let ended = actions
                .iter()
                .position(|a| matches!(a, Action::Ended(_)))
                .unwrap();
            let acted = actions
                .iter()
                .position(|a| matches!(a, Action::Spawn { .. } | Action::Exit(_)))
                .unwrap();
            assert!(ended < acted, "{actions:?}");
        }
    }

    #[test]
    fn spawn_failure_is_not_retried() {
        let mut sim = Sim::new(settings(RestartPolicy::Always), None);
        let now = sim.now();
        sim.m.start(now);
        let actions = sim.feed(Input::SpawnFailed {
            not_found: true,
            error: "No such file or directory (os error 2)".into(),
        });
        assert_eq!(report(&actions).reason, Reason::SpawnFailed);
        assert_eq!(actions.last(), Some(&Action::Exit(127)));
        let mut sim = Sim::new(settings(RestartPolicy::Always), None);
        let now = sim.now();
        sim.m.start(now);
        let actions = sim.feed(Input::SpawnFailed {
            not_found: false,
            error: "Permission denied (os error 13)".into(),
        });
        assert_eq!(actions.last(), Some(&Action::Exit(126)));
    }

    #[test]
    fn requested_restart_is_no_crash_and_costs_no_backoff() {
        let mut sim = Sim::new(settings(RestartPolicy::OnFailure), Some(1));
        sim.start();
        let actions = sim.feed(Input::RestartRequested);
        assert_eq!(actions[0], Action::SignalAll(SIGTERM));
        let actions = sim.end(ProcessEnd::Signaled {
            signal: SIGTERM,
            core_dumped: false,
        });
        assert!(!report(&actions).crash);
        assert!(actions.contains(&Action::Spawn { restarts: 1 }));
        assert_eq!(sim.m.window.clone().count(sim.now().wall), 0);
        assert_eq!(sim.m.status(), Status::Running);
    }

    #[test]
    fn leftovers_delay_the_restart_until_gone_or_killed() {
        let mut s = settings(RestartPolicy::Always);
        s.backoff.delay = Duration::ZERO;
        let mut sim = Sim::new(s, None);
        sim.start();
        let actions = sim.feed(Input::ChildEnded {
            end: CRASH,
            leftovers: true,
            jitter: 0.5,
        });
        assert!(actions.contains(&Action::SignalAll(SIGTERM)));
        assert!(!actions.iter().any(|a| matches!(a, Action::Spawn { .. })));
        // The leftovers ignore SIGTERM: SIGKILL at the stop timeout.
        assert_eq!(sim.step(), vec![Action::SignalAll(SIGKILL)]);
        assert_eq!(sim.m.deadline(), None);
        let actions = sim.feed(Input::LeftoversGone);
        assert_eq!(actions[0], Action::Spawn { restarts: 1 });
    }

    #[test]
    fn leftovers_are_cleaned_before_exit() {
        let mut sim = Sim::new(settings(RestartPolicy::No), None);
        sim.start();
        let actions = sim.feed(Input::ChildEnded {
            end: CRASH,
            leftovers: true,
            jitter: 0.5,
        });
        assert!(!actions.iter().any(|a| matches!(a, Action::Exit(_))));
        assert_eq!(sim.feed(Input::LeftoversGone), vec![Action::Exit(1)]);
    }

    #[test]
    fn an_unhealthy_child_is_stopped_recorded_and_restarted_by_policy() {
        let mut sim = Sim::new(settings(RestartPolicy::OnFailure), Some(5));
        sim.start();
        let actions = sim.feed(Input::Unhealthy {
            detail: "exit 1: connection refused".into(),
        });
        assert_eq!(actions[0], Action::SignalAll(SIGTERM));
        assert_eq!(sim.m.status(), Status::Stopping);
        // It dies of SIGTERM, which would be clean; the cause is restartd's reason.
        let actions = sim.end(ProcessEnd::Signaled {
            signal: SIGTERM,
            core_dumped: false,
        });
        let r = report(&actions);
        assert!(r.crash);
        assert_eq!(r.reason, Reason::Unhealthy);
        assert_eq!(r.detail.as_deref(), Some("exit 1: connection refused"));
        assert_eq!(r.outcome.action(), "restart");
        assert_eq!(sim.m.last_exit().unwrap().reason, Reason::Unhealthy);
    }

    #[test]
    fn the_policy_table_decides_after_a_failure_stop() {
        // on-abort does not restart unhealthy or watchdog ends; on-watchdog restarts only those.
        for (policy, input, restarts) in [
            (
                RestartPolicy::OnAbort,
                Input::Unhealthy { detail: "x".into() },
                false,
            ),
            (
                RestartPolicy::OnWatchdog,
                Input::OverMemory { detail: "x".into() },
                false,
            ),
            (
                RestartPolicy::OnWatchdog,
                Input::WatchdogMissed { detail: "x".into() },
                true,
            ),
            (
                RestartPolicy::OnAbnormal,
                Input::OverMemory { detail: "x".into() },
                true,
            ),
            (
                RestartPolicy::No,
                Input::WatchdogMissed { detail: "x".into() },
                false,
            ),
        ] {
            let mut sim = Sim::new(settings(policy), Some(5));
            sim.start();
            sim.feed(input.clone());
            let actions = sim.end(ProcessEnd::Exited(0));
            let r = report(&actions);
            assert_eq!(
                r.outcome.action() == "restart",
                restarts,
                "{policy:?} {input:?}"
            );
            assert!(r.crash);
            if !restarts {
                assert_eq!(
                    actions.last(),
                    Some(&Action::Exit(0)),
                    "the child's own status"
                );
            }
        }
    }

    #[test]
    fn a_missed_watchdog_aborts_the_child_then_kills_at_the_timeout() {
        let mut sim = Sim::new(settings(RestartPolicy::OnWatchdog), Some(5));
        sim.start();
        let actions = sim.feed(Input::WatchdogMissed {
            detail: "no WATCHDOG=1 for 1s".into(),
        });
        assert_eq!(actions[0], Action::SignalChild(nix::libc::SIGABRT));
        assert_eq!(sim.step(), vec![Action::SignalAll(SIGKILL)]);
        let actions = sim.end(ProcessEnd::Signaled {
            signal: SIGKILL,
            core_dumped: false,
        });
        assert_eq!(report(&actions).reason, Reason::Watchdog);
        assert_eq!(report(&actions).outcome.action(), "restart");
    }

    #[test]
    fn failures_are_ignored_unless_the_child_runs() {
        let mut sim = Sim::new(settings(RestartPolicy::Always), Some(5));
        sim.start();
        sim.feed(Input::StopRequested { signal: SIGTERM });
        assert_eq!(sim.feed(Input::Unhealthy { detail: "x".into() }), vec![]);
        let actions = sim.end(ProcessEnd::Exited(0));
        assert_eq!(actions.last(), Some(&Action::Exit(0)));
    }

    #[test]
    fn forwarded_signals_reach_only_a_live_child() {
        let mut sim = Sim::new(settings(RestartPolicy::Always), None);
        sim.start();
        assert_eq!(
            sim.feed(Input::Forward { signal: 1 }),
            vec![Action::SignalGroup(1)]
        );
        sim.end(CRASH);
        assert_eq!(sim.feed(Input::Forward { signal: 1 }), vec![]);
    }

    #[test]
    fn no_deadline_while_the_child_runs_quietly() {
        let mut sim = Sim::new(settings(RestartPolicy::Always), Some(5));
        sim.start();
        assert_eq!(sim.m.deadline(), None);
    }

    /// Builds the machine in each status and feeds it every kind of input: nothing panics, and
    /// what cannot happen is reported, not acted on.
    #[test]
    fn every_status_handles_every_input() {
        let inputs = || {
            vec![
                Input::Spawned { pid: 7 },
                Input::SpawnFailed {
                    not_found: true,
                    error: "x".into(),
                },
                Input::ChildEnded {
                    end: CRASH,
                    leftovers: false,
                    jitter: 0.3,
                },
                Input::ChildEnded {
                    end: ProcessEnd::Exited(0),
                    leftovers: true,
                    jitter: 0.3,
                },
                Input::LeftoversGone,
                Input::StopRequested { signal: SIGTERM },
                Input::RestartRequested,
                Input::Forward { signal: 1 },
                Input::Suspend,
                Input::ResetWindow,
                Input::Unhealthy { detail: "x".into() },
                Input::OverMemory { detail: "x".into() },
                Input::WatchdogMissed { detail: "x".into() },
                Input::Tick,
            ]
        };
        type Setup = fn(&mut Sim);
        let setups: Vec<(&str, Setup)> = vec![
            ("starting", |s| {
                let now = s.now();
                s.m.start(now);
            }),
            ("running", |s| {
                s.start();
            }),
            ("backoff", |s| {
                s.start();
                s.end(CRASH);
            }),
            ("stopping", |s| {
                s.start();
                s.feed(Input::StopRequested { signal: SIGTERM });
            }),
            ("restarting", |s| {
                s.start();
                s.feed(Input::RestartRequested);
            }),
            ("stopped", |s| {
                s.start();
                s.feed(Input::StopRequested { signal: SIGTERM });
                s.end(CRASH);
            }),
            ("exited", |s| {
                s.start();
                s.end(ProcessEnd::Exited(0));
            }),
            ("gave-up", |s| {
                s.start();
                s.m.window = RestartWindow::new(Duration::from_secs(60), Some(0));
                s.end(CRASH);
            }),
        ];
        for policy in [RestartPolicy::OnFailure, RestartPolicy::Always] {
            for (name, setup) in &setups {
                for input in inputs() {
                    let mut sim = Sim::new(settings(policy), Some(3));
                    setup(&mut sim);
                    sim.advance(Duration::from_secs(100));
                    let actions = sim.feed(input.clone());
                    let _ = sim.m.deadline();
                    for a in &actions {
                        if let Action::Unexpected(msg) = a {
                            assert!(msg.starts_with("ignored"), "{name}: {msg}");
                        }
                    }
                }
            }
        }
    }
}

//! The machine's vocabulary: the time it is given, the facts it is fed (`Input`), what it answers
//! (`Action`), and the reports and statuses it hands out. Plain data, no behaviour beyond
//! spelling: the decisions are in `machine.rs`.

use std::time::{Duration, Instant, SystemTime};

use serde::{Deserialize, Serialize};

use crate::base::exit::ProcessEnd;
use crate::supervise::policy::{Backoff, ExitRules, RestartPolicy, Verdict};

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
    /// `--notify`: the child says when it is ready (READY=1).
    pub notify: bool,
    /// A health check is configured: without `--notify`, its first pass makes the child ready.
    /// With neither, the child is ready at spawn (SPEC §13).
    pub health: bool,
    /// `--ready-timeout`: a child not ready this long after its start is stopped, reason
    /// `start-timeout` (SPEC §13).
    pub ready_timeout: Option<Duration>,
    /// `--socket`s are held: `restartd reload` starts the new child beside the old one.
    pub sockets: bool,
    /// `--max-runtime`: a run this long (plus a draw of `max_runtime_jitter`) is restarted.
    pub max_runtime: Option<Duration>,
    pub max_runtime_jitter: Duration,
}

/// How long a reload's new child may take to be ready without `--ready-timeout` (SPEC §11).
pub const RELOAD_TIMEOUT: Duration = Duration::from_secs(60);

impl Settings {
    /// Whether a child counts as ready as soon as it runs: nothing else can say it is.
    pub fn ready_at_spawn(&self) -> bool {
        !self.notify && !self.health
    }

    /// How long a reload's new child may take to be ready: `--ready-timeout`, else 60 s.
    pub fn reload_timeout(&self) -> Duration {
        self.ready_timeout.unwrap_or(RELOAD_TIMEOUT)
    }
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
    Reloading,
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
            Status::Reloading => "reloading",
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
    /// Replace the child without downtime (`restartd reload`, SPEC §11).
    Reload,
    Signal(i32),
    /// Clear the restart window; with `crashes`, the crash history too (`reset --crashes`).
    Reset {
        crashes: bool,
    },
}

/// What the event loop observed.
#[derive(Debug, Clone, PartialEq)]
pub enum Input {
    /// The child was started with this pid. `jitter`, a sample in `[0, 1)`, draws this run's
    /// share of `--max-runtime-jitter`.
    Spawned { pid: i32, jitter: f64 },
    /// The command could not be started; `jitter` as for `ChildEnded`.
    SpawnFailed {
        failure: SpawnError,
        error: String,
        jitter: f64,
    },
    /// The main child ended. `leftovers`: processes of its group or reparented descendants are
    /// still alive. `jitter` is a sample in `[0, 1)`.
    ChildEnded {
        end: ProcessEnd,
        leftovers: bool,
        jitter: f64,
        /// The kernel's OOM killer ended it, and how that is known (`process::oom`).
        oom: Option<String>,
    },
    /// While the machine cleans up after a child (`cleaning()`): whether anything of it is left.
    Leftovers { alive: bool },
    /// The second child of a reload ended: the new one before the switch, the old one after.
    OtherEnded { end: ProcessEnd, leftovers: bool },
    /// While the machine cleans up after the second child (`cleaning_other()`).
    OtherLeftovers { alive: bool },
    /// After a reload's switch, while the old child is not signalled yet (`holding_old()`):
    /// how many connections wait in the old sockets' queues, which only the old child takes.
    OldQueue { queued: u32 },
    /// The answer to `Sockets::ToNew`, at once, with nothing in between (as `Spawned` to a
    /// spawn): `refused` says why the sockets were not switched (a unix PATH or its temporary
    /// name was replaced), and nothing was changed then.
    Switched { refused: Option<String> },
    /// A signal to restartd itself.
    Signal { signal: i32 },
    /// A request on the control socket; the machine answers with `Action::Reply`.
    Request(Request),
    /// The child is ready: READY=1 with `--notify`, else its first passing health check (SPEC
    /// §13). The one readiness fact, whatever told it.
    Ready,
    /// The child sent RESTART_RESET=1: end the crash streak and clear the restart window, as
    /// `restartd reset` does (SPEC §14).
    RestartReset,
    /// The health check failed `--health-retries` times; `detail` is the last check's output.
    Unhealthy { detail: String },
    /// The child's process group uses more than `--max-memory`; `detail` says how much.
    OverMemory { detail: String },
    /// No `WATCHDOG=1` within the watchdog interval.
    WatchdogMissed { detail: String },
    /// `deadline()` has passed (spurious ticks are harmless).
    Tick,
}

/// Why a start failed (SPEC §3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SpawnError {
    /// The command does not exist (ENOENT): exit 127, no retry.
    NotFound,
    /// Not executable, a directory, a bad format: exit 126, no retry.
    NotExecutable,
    /// A limit that can pass (EAGAIN, ENOMEM, EMFILE, ENFILE): a crash like any other.
    Passing,
}

impl SpawnError {
    /// Classifies the error `spawn` returned.
    pub fn of(errno: Option<i32>) -> SpawnError {
        use nix::libc::{EAGAIN, EMFILE, ENFILE, ENOENT, ENOMEM};
        match errno {
            Some(ENOENT) => SpawnError::NotFound,
            Some(EAGAIN | ENOMEM | EMFILE | ENFILE) => SpawnError::Passing,
            _ => SpawnError::NotExecutable,
        }
    }
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
    /// Killed by the kernel's OOM killer.
    Oom,
    /// Not ready within `--ready-timeout` (SPEC §13).
    StartTimeout,
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
            Reason::Oom => "oom",
            Reason::StartTimeout => "start-timeout",
        }
    }

    pub(crate) fn of(end: ProcessEnd) -> Reason {
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
    /// A requested stop; `killed` when the child needed SIGKILL, `hurried` when a second stop
    /// request sent it (not the stop timeout).
    Stopped { killed: bool, hurried: bool },
    /// A requested restart.
    Restarted,
    /// A reload's new child failed; the old one keeps running.
    KeepOld,
    /// A reload's old child, stopped once the new one was ready.
    Replaced,
    /// A scheduled restart: the child ran `--max-runtime` (plus its jitter).
    Scheduled,
}

impl Outcome {
    /// The crash record's `action`.
    pub fn action(&self) -> &'static str {
        match self {
            Outcome::Restart { .. } | Outcome::Restarted | Outcome::Scheduled => "restart",
            Outcome::GiveUp { .. } => "give-up",
            Outcome::Exit(_) | Outcome::Stopped { .. } | Outcome::Replaced => "exit",
            Outcome::KeepOld => "keep-old",
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
    /// RELOADING=1 with MONOTONIC_USEC=: a reload (`restartd reload`, or `--max-runtime` with
    /// sockets) starts; systemd's `Type=notify-reload` protocol.
    Reloading,
    /// READY=1 again: the reload is over, whichever child serves.
    Reloaded,
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
    /// Done, with a remark for the requester (`ok: …`).
    OkSaying(String),
    /// A reload: answered once it is over (`Action::Reloaded`).
    WhenReloaded,
    /// A reload or restart asked for while a reload is under way: answered once the reload is
    /// over, as the request handled then is (`Action::ReplyQueued`), as systemd queues a job
    /// behind a running reload job.
    AfterReload,
}

/// A reload's TCP sockets: the new child gets a socket of its own on each TCP address, in the
/// old socket's SO_REUSEPORT group, and the group's program says which one gets new connections.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sockets {
    /// Before the new child starts: open its sockets; the old ones keep every new connection, so
    /// a new child that fails takes none with it.
    Open,
    /// At the switch, before the children swap: every new connection goes to the new child's
    /// sockets. Answered at once with `Input::Switched`.
    ToNew,
    /// The reload is over and the new child serves: the old sockets stop listening.
    KeepNew,
    /// The reload failed or was abandoned before the switch: the new sockets are closed.
    KeepOld,
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
    /// What is left of the last child outlived SIGKILL by --stop-timeout: say which pids, and
    /// never signal them again (a `Release` follows).
    Abandon,
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
    /// Remove `crashes.jsonl` and `crashes.jsonl.1`; the next record starts a new file. The
    /// running instance does it, not the `reset` subcommand, since it holds the file open.
    ClearCrashes,
    /// Start a reload's new child beside the running one, on the same sockets; answer with
    /// `Spawned` or `SpawnFailed` as for `Spawn`.
    SpawnOther { restarts: u32 },
    /// The reload's new child is ready: it becomes the child, the old one the second child.
    Switch,
    /// A reload's own sockets (issue 20; see `Sockets`).
    Sockets(Sockets),
    /// `SignalAll` for the second child's group and descendants only.
    SignalOther(i32),
    /// The second child and what it left are gone: forget it.
    ReleaseOther,
    /// Whatever is left of the second child becomes part of the child's leftovers (a stop or an
    /// end of the child during a reload: everything is cleaned up together).
    Fold,
    /// As `Ended`, for the second child (its own stderr tail and usage).
    EndedOther(EndReport),
    /// A reload is over: `Ok` replaced (with a remark), `Err` why the old child kept running;
    /// answers the waiting `reload` requests.
    Reloaded(Result<String, String>),
    /// Answer the requests queued during a reload (`Reply::AfterReload`) as the request handled
    /// in their name after it (`Restart` if any of them was one, else `Reload`) was answered:
    /// `WhenReloaded` (they wait for the next reload), or at once.
    ReplyQueued(Request, Reply),
    /// An input that cannot happen in this state; logged, otherwise ignored.
    Unexpected(String),
    /// Exit restartd with this status.
    Exit(u8),
}

//! The only poll(2): owns the fds (signal pipe, child stderr, control socket), reads the clock once
//! a turn, turns what happened into `Input`s and carries out the machine's `Action`s in order.
//!
//! It never decides whether to restart. With no deadline pending it blocks with no timeout, so a
//! quiet child costs no wakeups (SPEC §5). Order in a turn: drain the signal pipe then take the
//! flags; copy the child's stderr; reap everything; serve control requests; tick.

use std::os::fd::{AsFd, OwnedFd};
use std::time::SystemTime;

use anyhow::Context;
use nix::errno::Errno;
use nix::libc;
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use serde_json::Map;

use crate::child;
use crate::config::Config;
use crate::control::{self, Request};
use crate::exit::{signal_name, ProcessEnd};
use crate::instance::Instance;
use crate::log::{fmt_duration, Level, Logger};
use crate::machine::{Action, EndReport, Input, Machine, Now, Outcome, Status};
use crate::policy::Verdict;
use crate::signals::{self, Inherited, SignalPipe};
use crate::state::{self, LastExitJson, StateFile, StateWriter};
use crate::window::RestartWindow;

/// Everything the loop owns.
pub struct Supervisor {
    cfg: Config,
    log: Logger,
    machine: Machine,
    _instance: Instance,
    writer: StateWriter,
    control: control::Server,
    signals: SignalPipe,
    inherited: Inherited,
    started_at: SystemTime,
    /// The live main child.
    child: Option<i32>,
    /// The last child's process group, kept until its leftovers are gone.
    group: Option<i32>,
    /// Waiting for leftovers of the last child to go.
    awaiting_leftovers: bool,
    /// The signal of the current stop or cleanup, and whom it was sent to (pids, -pgids).
    cleanup: Option<(i32, Vec<i32>)>,
    stderr: Option<OwnedFd>,
    /// restartd's stderr is gone: keep reading the child's, stop copying it.
    stderr_closed: bool,
    dirty: bool,
    rng: u64,
}

impl Supervisor {
    /// Sets up everything around an acquired instance; starts nothing yet.
    pub fn new(
        cfg: Config,
        instance: Instance,
        signals: SignalPipe,
        inherited: Inherited,
    ) -> anyhow::Result<Supervisor> {
        let log = Logger::new(&cfg.name, cfg.verbosity, cfg.log_format);
        let now = SystemTime::now();
        let (window, restarts) = previous_run(&cfg, &instance, &log, now);
        let writer = StateWriter::new(&instance.dir)
            .with_context(|| format!("unable to open {}", instance.dir.display()))?;
        let control = control::Server::bind(&instance.dir).with_context(|| {
            format!(
                "unable to listen on {}",
                instance.dir.join(crate::instance::CONTROL).display()
            )
        })?;
        let machine = Machine::new(cfg.settings.clone(), window, restarts);
        let seed = now
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64)
            ^ (u64::from(std::process::id()) << 32);
        Ok(Supervisor {
            cfg,
            log,
            machine,
            _instance: instance,
            writer,
            control,
            signals,
            inherited,
            started_at: now,
            child: None,
            group: None,
            awaiting_leftovers: false,
            cleanup: None,
            stderr: None,
            stderr_closed: false,
            dirty: false,
            rng: seed | 1,
        })
    }

    /// Runs until the machine says exit; returns restartd's exit status.
    pub fn run(mut self) -> u8 {
        let now = Now::read();
        let actions = self.machine.start(now);
        if let Some(code) = self.execute(actions, now) {
            return code;
        }
        loop {
            self.wait();
            let now = Now::read();
            let inputs = self.gather(now);
            for input in inputs {
                let actions = self.machine.handle(input, now);
                if let Some(code) = self.execute(actions, now) {
                    return code;
                }
            }
            self.save_if_dirty();
        }
    }

    /// Blocks until an fd is ready or the machine's deadline comes.
    fn wait(&mut self) {
        let timeout = match self.machine.deadline() {
            None => PollTimeout::NONE,
            Some(deadline) => {
                let left = deadline.saturating_duration_since(std::time::Instant::now());
                // Round up: waking a millisecond early would only cost a spurious turn.
                let ms = left.as_micros().div_ceil(1000).min(i32::MAX as u128) as i32;
                PollTimeout::try_from(ms).unwrap_or(PollTimeout::MAX)
            }
        };
        let mut fds = vec![PollFd::new(self.signals.fd(), PollFlags::POLLIN)];
        if let Some(stderr) = &self.stderr {
            fds.push(PollFd::new(stderr.as_fd(), PollFlags::POLLIN));
        }
        fds.extend(
            self.control
                .fds()
                .map(|fd| PollFd::new(fd, PollFlags::POLLIN)),
        );
        match poll(&mut fds, timeout) {
            Ok(_) | Err(Errno::EINTR) => {}
            Err(e) => self.log.warn(&format!("poll failed: {e}")),
        }
    }

    /// Turns everything that happened into inputs, in a fixed order.
    fn gather(&mut self, now: Now) -> Vec<Input> {
        let mut inputs = Vec::new();
        self.signals.drain();
        for sig in [libc::SIGTERM, libc::SIGINT, libc::SIGQUIT] {
            if signals::take(sig) {
                self.log
                    .info(&format!("received {}, stopping", signal_name(sig)));
                inputs.push(Input::StopRequested { signal: sig });
            }
        }
        for sig in [
            libc::SIGHUP,
            libc::SIGUSR1,
            libc::SIGUSR2,
            libc::SIGWINCH,
            libc::SIGCONT,
        ] {
            if signals::take(sig) {
                self.log.debug(&format!("forwarding {}", signal_name(sig)));
                inputs.push(Input::Forward { signal: sig });
            }
        }
        if signals::take(libc::SIGTSTP) {
            inputs.push(Input::Suspend);
        }
        signals::take(libc::SIGCHLD);

        self.copy_stderr();
        let mut ended = None;
        while let Some(reaped) = child::reap() {
            if Some(reaped.pid) == self.child {
                self.child = None;
                ended = Some(reaped.end);
            } else {
                self.log.debug(&format!(
                    "reaped orphan {} ({})",
                    reaped.pid,
                    reaped.end.describe()
                ));
            }
        }
        if let Some(end) = ended {
            // The child wrote its last lines before it exited: they are in the pipe now.
            self.copy_stderr();
            self.stderr = None;
            let leftovers = self.leftovers_alive();
            self.awaiting_leftovers = leftovers;
            inputs.push(Input::ChildEnded {
                end,
                leftovers,
                jitter: self.jitter_sample(),
            });
        } else if self.awaiting_leftovers {
            if self.leftovers_alive() {
                // Descendants of the leftovers may have been reparented to us since.
                if let Some((sig, _)) = &self.cleanup {
                    self.signal_all(*sig);
                }
            } else {
                self.awaiting_leftovers = false;
                self.group = None;
                inputs.push(Input::LeftoversGone);
            }
        }

        for pending in self.control.requests() {
            match self.control_input(pending.request) {
                Ok(input) => {
                    inputs.push(input);
                    if pending.request == Request::Stop {
                        pending.ok_and_wait(&mut self.control);
                    } else {
                        pending.ok();
                    }
                }
                Err(msg) => pending.error(&msg),
            }
        }

        if self.machine.deadline().is_some_and(|d| d <= now.mono) {
            inputs.push(Input::Tick);
        }
        inputs
    }

    fn control_input(&self, request: Request) -> Result<Input, String> {
        let status = self.machine.status();
        match request {
            Request::Stop => Ok(Input::StopRequested {
                signal: self.cfg.settings.stop_signal,
            }),
            Request::Restart if matches!(status, Status::Running | Status::Backoff) => {
                self.log.info("restart requested");
                Ok(Input::RestartRequested)
            }
            Request::Restart => Err(format!("cannot restart while {}", status.as_str())),
            Request::Signal(signal) if self.child.is_some() => Ok(Input::Forward { signal }),
            Request::Signal(_) => Err(format!("no child is running ({})", status.as_str())),
            Request::Reset => {
                self.log.info("restart window cleared on request");
                Ok(Input::ResetWindow)
            }
        }
    }

    /// Carries out `actions` in order; `Some(status)` when restartd is to exit.
    fn execute(&mut self, actions: Vec<Action>, now: Now) -> Option<u8> {
        let mut queue = std::collections::VecDeque::from(actions);
        while let Some(action) = queue.pop_front() {
            match action {
                Action::Spawn { restarts } => {
                    let input = self.spawn(restarts);
                    queue.extend(self.machine.handle(input, Now::read()));
                }
                Action::SignalGroup(sig) => {
                    if let Some(group) = self.group {
                        child::signal_group(group, sig);
                    }
                }
                Action::SignalAll(sig) => self.signal_all(sig),
                Action::SuspendSelf => {
                    self.save_if_dirty();
                    let _ = nix::sys::signal::raise(nix::sys::signal::Signal::SIGSTOP);
                }
                Action::Ended(report) => self.ended(&report, now),
                Action::SaveState => self.dirty = true,
                Action::Unexpected(msg) => self.log.warn(&msg),
                Action::Exit(code) => {
                    self.dirty = true;
                    self.save_if_dirty();
                    self.log.flush_suppressed();
                    return Some(code);
                }
            }
        }
        None
    }

    fn spawn(&mut self, restarts: u32) -> Input {
        let env = [
            ("RESTARTD_NAME", self.cfg.name.clone()),
            ("RESTARTD_RESTARTS", restarts.to_string()),
        ];
        self.cleanup = None;
        match child::spawn(&self.cfg.command, &env, self.inherited) {
            Ok(spawned) => {
                let _ = nix::fcntl::fcntl(
                    &spawned.stderr,
                    nix::fcntl::FcntlArg::F_SETFL(nix::fcntl::OFlag::O_NONBLOCK),
                );
                self.child = Some(spawned.pid);
                self.group = Some(spawned.pid);
                self.stderr = Some(spawned.stderr);
                self.log.debug(&format!("started pid {}", spawned.pid));
                Input::Spawned { pid: spawned.pid }
            }
            Err(e) => Input::SpawnFailed {
                not_found: e.kind() == std::io::ErrorKind::NotFound,
                error: e.to_string(),
            },
        }
    }

    /// Sends `sig` to the child's group and to every reparented descendant (and its group), once
    /// per signal: a repeated call only reaches processes that appeared since.
    fn signal_all(&mut self, sig: i32) {
        if self.cleanup.as_ref().is_none_or(|(s, _)| *s != sig) {
            self.cleanup = Some((sig, Vec::new()));
        }
        let Some((_, sent)) = self.cleanup.as_mut() else {
            return;
        };
        let own_group = nix::unistd::getpgrp().as_raw();
        if let Some(group) = self.group {
            if !sent.contains(&-group) {
                child::signal_group(group, sig);
                sent.push(-group);
            }
        }
        for pid in child::children() {
            if Some(pid) == self.child || sent.contains(&pid) {
                continue;
            }
            // A daemon that left the group (setsid) leads its own, with its children in it.
            if let Some(pgid) = child::group_of(pid).filter(|&g| g != own_group) {
                if !sent.contains(&-pgid) {
                    child::signal_group(pgid, sig);
                    sent.push(-pgid);
                }
            }
            child::signal_process(pid, sig);
            sent.push(pid);
        }
    }

    /// Whether anything of the last child is alive: its group, or a reparented descendant.
    fn leftovers_alive(&self) -> bool {
        self.group.is_some_and(child::group_alive)
            || child::children().iter().any(|&pid| Some(pid) != self.child)
    }

    /// Copies what the child wrote to stderr on to restartd's stderr, without blocking on the
    /// child (the pipe is non-blocking) and without waiting for EOF.
    fn copy_stderr(&mut self) {
        let Some(fd) = &self.stderr else { return };
        let mut buf = [0u8; 65536];
        loop {
            match nix::unistd::read(fd, &mut buf) {
                Ok(0) => {
                    self.stderr = None;
                    return;
                }
                Ok(n) => {
                    if !self.stderr_closed && write_all_stderr(&buf[..n]).is_err() {
                        self.stderr_closed = true;
                    }
                    if n < buf.len() {
                        return;
                    }
                }
                Err(Errno::EINTR) => continue,
                Err(_) => return,
            }
        }
    }

    fn ended(&mut self, r: &EndReport, now: Now) {
        let (level, msg) = end_line(r, &self.cfg);
        let mut fields = Map::new();
        fields.insert("event".into(), r.outcome.action().into());
        fields.insert("reason".into(), r.reason.as_str().into());
        if let Some(pid) = r.pid {
            fields.insert("pid".into(), pid.into());
        }
        if let Some(end) = r.end {
            fields.insert("exit_code".into(), end.code().into());
            fields.insert("signal".into(), end.signal().map(signal_name).into());
        }
        fields.insert("uptime_ms".into(), (r.uptime.as_millis() as u64).into());
        fields.insert("restarts".into(), r.restarts.into());
        if let Outcome::Restart { delay, .. } = r.outcome {
            fields.insert("next_delay_ms".into(), (delay.as_millis() as u64).into());
        }
        if let Some(detail) = &r.detail {
            fields.insert("detail".into(), detail.clone().into());
        }
        let always = !matches!(r.outcome, Outcome::Restart { .. });
        self.log.crash(now.mono, level, &msg, fields, always);
    }

    fn save_if_dirty(&mut self) {
        if !self.dirty {
            return;
        }
        self.dirty = false;
        let state = self.state_file();
        if let Err(e) = self.writer.write(&state) {
            self.log.warn(&format!(
                "unable to write {}: {e}; supervision goes on",
                self._instance.dir.join(crate::instance::STATE).display()
            ));
        }
    }

    fn state_file(&self) -> StateFile {
        let m = &self.machine;
        let window = m.window();
        StateFile {
            version: state::VERSION,
            name: self.cfg.name.clone(),
            command: self
                .cfg
                .command
                .iter()
                .map(|a| a.to_string_lossy().into_owned())
                .collect(),
            status: m.status(),
            supervisor_pid: std::process::id(),
            child_pid: m.child_pid(),
            started_at: state::rfc3339(self.started_at),
            child_started_at: m.child_started_at().map(state::rfc3339),
            restarts: m.restarts_total(),
            recent_restarts: window.times().map(state::rfc3339).collect(),
            max_restarts: window.max(),
            window_secs: window.window().as_secs(),
            last_exit: m.last_exit().map(|last| LastExitJson {
                code: last.end.and_then(ProcessEnd::code),
                signal: last.end.and_then(ProcessEnd::signal).map(signal_name),
                reason: last.reason.as_str().into(),
                at: state::rfc3339(last.at),
                crash_id: None,
            }),
            next_restart_at: m.next_restart_at().map(state::rfc3339),
            health: None,
            updated_at: state::rfc3339(SystemTime::now()),
        }
    }

    /// A sample in [0, 1) for jitter: xorshift64, seeded from time and pid.
    fn jitter_sample(&mut self) -> f64 {
        self.rng ^= self.rng << 13;
        self.rng ^= self.rng >> 7;
        self.rng ^= self.rng << 17;
        (self.rng >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// The restart window and total restarts a previous run left in `state.json`.
fn previous_run(
    cfg: &Config,
    instance: &Instance,
    log: &Logger,
    now: SystemTime,
) -> (RestartWindow, u64) {
    let empty = RestartWindow::new(cfg.window, cfg.max_restarts);
    let previous = match state::load(&instance.dir) {
        state::Loaded::Missing => return (empty, 0),
        state::Loaded::Corrupt(why) => {
            match state::move_aside(&instance.dir) {
                Ok(to) => log.warn(&format!(
                    "state.json is unreadable ({why}); moved to {} and starting afresh",
                    to.display()
                )),
                Err(e) => log.warn(&format!(
                    "state.json is unreadable ({why}) and could not be moved aside: {e}"
                )),
            }
            return (empty, 0);
        }
        state::Loaded::Found(previous) => previous,
    };
    let times = previous
        .recent_restarts
        .iter()
        .filter_map(|t| state::parse_rfc3339(t));
    let mut window = RestartWindow::with_times(cfg.window, cfg.max_restarts, times, now);
    let count = window.count(now);
    if cfg.reset {
        window.clear();
        if count > 0 {
            log.info(&format!(
                "--reset: forgot {count} restarts of a previous run"
            ));
        }
    } else if count > 0 {
        let limit = cfg
            .max_restarts
            .map_or("no limit".to_string(), |m| format!("limit {m}"));
        log.info(&format!(
            "{count} restarts in the last {} from a previous run count toward --max-restarts ({limit}); `restartd reset {}` clears them",
            fmt_duration(cfg.window),
            cfg.name
        ));
    }
    (window, previous.restarts)
}

/// The line restartd prints for an end, and its level.
fn end_line(r: &EndReport, cfg: &Config) -> (Level, String) {
    let how = match r.end {
        Some(ProcessEnd::Exited(code)) => format!("exited with code {code}"),
        Some(ProcessEnd::Signaled {
            signal,
            core_dumped,
        }) => {
            let core = if core_dumped { " (core dumped)" } else { "" };
            format!("killed by signal {}{core}", signal_name(signal))
        }
        None => String::new(),
    };
    let after = format!("{how} after {}", fmt_duration(r.uptime));
    match r.outcome {
        Outcome::Restart {
            n,
            max,
            window,
            delay,
        } => {
            let of = max.map_or(String::new(), |m| {
                format!(" of {m} in {}", fmt_duration(window))
            });
            (
                Level::Info,
                format!("{after}; restart {n}{of}, next in {}", fmt_duration(delay)),
            )
        }
        Outcome::GiveUp { count, max, window } => {
            let last = r.end.map_or(String::new(), |e| e.describe());
            let why = if max == 0 {
                "--max-restarts is 0".to_string()
            } else {
                format!(
                    "{count} restarts in the last {} (limit {max})",
                    fmt_duration(window)
                )
            };
            (
                Level::Warn,
                format!(
                    "giving up: {why}; last exit: {last} after {}",
                    fmt_duration(r.uptime)
                ),
            )
        }
        Outcome::Exit(None) => {
            let cmd = cfg.command[0].to_string_lossy();
            let detail = r.detail.as_deref().unwrap_or("unknown error");
            (Level::Error, format!("cannot start '{cmd}': {detail}"))
        }
        Outcome::Exit(Some(Verdict::NoRestartCode(code))) => (
            Level::Info,
            format!("{after}; not restarting: code {code} is in --no-restart-exit-codes"),
        ),
        Outcome::Exit(Some(_)) => (
            Level::Info,
            format!(
                "{after}; not restarting (--restart {})",
                cfg.settings.policy.as_str()
            ),
        ),
        Outcome::Stopped { killed: true } => (
            Level::Warn,
            format!(
                "stopped: the child did not exit within --stop-timeout {} and was killed",
                fmt_duration(cfg.settings.stop_timeout)
            ),
        ),
        Outcome::Stopped { killed: false } => (Level::Info, format!("stopped: child {after}")),
        Outcome::Restarted => (Level::Info, format!("restarting on request: child {after}")),
    }
}

fn write_all_stderr(mut buf: &[u8]) -> nix::Result<()> {
    let stderr = std::io::stderr();
    while !buf.is_empty() {
        match nix::unistd::write(&stderr, buf) {
            Ok(n) => buf = &buf[n..],
            Err(Errno::EINTR) => continue,
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

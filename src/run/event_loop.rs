//! The only poll(2): owns the fds (signal pipe, child stderr, control socket, and through
//! `observe` the `--listen` sockets), reads the clock once a turn, turns what happened into
//! `Input`s and carries out the machine's `Action`s in order.
//!
//! It never decides whether to restart. With no deadline pending it blocks with no timeout, so a
//! quiet child costs no wakeups (SPEC §5). Order in a turn: drain the signal pipe then take the
//! flags; copy the child's stderr; reap everything; serve control requests, then HTTP; tick.
//! What it writes about the child's ends (crash records, `state.json`) is in `records`.

use std::ffi::OsString;
use std::time::SystemTime;

use anyhow::Context;
use nix::errno::Errno;
use nix::libc;
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use serde_json::Map;

use crate::base::exit::{signal_name, ProcessEnd};
use crate::cli::config::Config;
use crate::monitors::health::{Event as HealthEvent, Health};
use crate::monitors::memory::MemoryLimit;
use crate::monitors::notify::{Message, NotifySocket, Upward, Watchdog};
use crate::observe::Observe;
use crate::process::child::{self, Usage};
use crate::process::logfile::LogFile;
use crate::process::output::Output;
use crate::process::signals::{self, Inherited, SignalPipe};
use crate::process::trim;
use crate::records::crashlog::{self, CrashLog, CrashRecord};
use crate::records::hooks::Hooks;
use crate::records::instance::Instance;
use crate::records::state::{self, LastExitJson, StateFile, StateWriter};
use crate::records::traceback;
use crate::run::control::{self, Request};
use crate::run::log::{fmt_duration, Level, Logger};
use crate::supervise::machine::{Action, EndReport, Input, Machine, Now, Outcome, Status};
use crate::supervise::policy::Verdict;
use crate::supervise::window::RestartWindow;

mod records;

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
    /// The stop signal a handler sent to the child's group before this turn of the loop.
    stop_sent: Option<i32>,
    /// The child's stderr and stdout on their way out, and the tail of stderr.
    output: Output,
    /// `--notify`: the child's NOTIFY_SOCKET, its readiness and STATUS= text.
    notify: Option<NotifySocket>,
    ready: bool,
    status_text: Option<String>,
    watchdog: Option<Watchdog>,
    /// restartd's own channel to systemd.
    upward: Option<Upward>,
    health: Option<Health>,
    /// The HTTP health check's socket was ready at the last poll.
    health_ready: bool,
    memory: Option<MemoryLimit>,
    /// What the last main child used.
    usage: Option<Usage>,
    /// When code pages were last given back (see `trim`).
    trimmed_at: Option<std::time::Instant>,
    crash_log: CrashLog,
    /// The record of the child's last end, if it got one.
    last_crash_id: Option<String>,
    crash_seq: u64,
    /// restartd's pid, host name and working directory (the child's too), read once.
    pid: u32,
    host: Option<String>,
    cwd: Option<String>,
    /// A control connection or the listener was readable at the last poll.
    control_ready: bool,
    hooks: Hooks,
    dirty: bool,
    rng: u64,
    /// `--listen` and `--metrics-file`.
    observe: Option<Observe>,
    /// An HTTP socket was ready at the last poll.
    observe_ready: bool,
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
                instance
                    .dir
                    .join(crate::records::instance::CONTROL)
                    .display()
            )
        })?;
        let machine = Machine::new(cfg.settings.clone(), window, restarts);
        let observe = Observe::new(&cfg, &instance.dir)?;
        if let Some(url) = observe.as_ref().and_then(Observe::url) {
            log.info(&format!("serving {url} (metrics at {url}metrics)"));
        }
        let crash_log = CrashLog::new(&instance.dir);
        let hooks = Hooks::new(
            cfg.on_crash.clone(),
            cfg.on_give_up.clone(),
            cfg.alert_limit,
            inherited,
        );
        let notify = match cfg.notify {
            true => Some(NotifySocket::bind(&instance.dir).with_context(|| {
                format!(
                    "unable to create the notify socket in {}",
                    instance.dir.display()
                )
            })?),
            false => None,
        };
        let health = match &cfg.health {
            Some(h) => Some(Health::new(h.clone(), inherited).map_err(anyhow::Error::msg)?),
            None => None,
        };
        let env = |key: &str| std::env::var(key).ok();
        let upward = Upward::from_env(&env, std::time::Instant::now());
        let output = Output::new(cfg.log_file.clone().map(LogFile::new));
        let watchdog = cfg.watchdog.map(Watchdog::new);
        let memory = cfg.max_memory.map(MemoryLimit::new);
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
            stop_sent: None,
            output,
            notify,
            ready: false,
            status_text: None,
            watchdog,
            upward,
            health,
            health_ready: false,
            memory,
            usage: None,
            trimmed_at: None,
            crash_log,
            last_crash_id: None,
            crash_seq: 0,
            pid: std::process::id(),
            host: nix::unistd::gethostname()
                .ok()
                .map(|h| h.to_string_lossy().into_owned()),
            cwd: std::env::current_dir()
                .ok()
                .map(|d| d.to_string_lossy().into_owned()),
            control_ready: false,
            hooks,
            dirty: false,
            rng: seed | 1,
            observe,
            observe_ready: false,
        })
    }

    /// Runs until the machine says exit; returns restartd's exit status.
    pub fn run(mut self) -> u8 {
        let now = Now::read();
        let actions = self.machine.start(now);
        if let Some(code) = self.execute(Status::Starting, actions, now) {
            return code;
        }
        loop {
            self.wait();
            let now = Now::read();
            for input in self.gather(now) {
                let was = self.machine.status();
                let actions = self.machine.handle(input, now);
                if let Some(code) = self.execute(was, actions, now) {
                    return code;
                }
            }
        }
    }

    /// The earliest moment anything needs the loop; `None` when only events matter.
    fn deadline(&self) -> Option<std::time::Instant> {
        [
            self.machine.deadline(),
            self.hooks.deadline(),
            self.health.as_ref().and_then(Health::deadline),
            self.watchdog.as_ref().and_then(Watchdog::deadline),
            self.memory.as_ref().and_then(MemoryLimit::deadline),
            self.upward.as_ref().and_then(Upward::deadline),
            self.observe.as_ref().and_then(Observe::deadline),
        ]
        .into_iter()
        .flatten()
        .min()
    }

    /// Saves the state if it changed, then blocks until an fd is ready or a deadline comes.
    fn wait(&mut self) {
        // Until poll returns, a stop or forwarded signal goes to the child's group straight from
        // its handler (src/signals.rs); nothing is reaped before that is taken back.
        if self.machine.status() == Status::Running && self.child.is_some() {
            signals::direct_to(self.group.unwrap_or(0));
        }
        self.save_if_dirty();
        let timeout = match self.deadline() {
            None => PollTimeout::NONE,
            Some(deadline) => {
                let left = deadline.saturating_duration_since(std::time::Instant::now());
                // Round up: waking a millisecond early would only cost a spurious turn.
                let ms = left.as_micros().div_ceil(1000).min(i32::MAX as u128) as i32;
                PollTimeout::try_from(ms).unwrap_or(PollTimeout::MAX)
            }
        };
        // About to block with nothing timed: once the loop has been quiet for a moment, give
        // back the pages that starting needed (a run that ends sooner never pays for it).
        let trim_if_quiet =
            timeout == PollTimeout::NONE && trim::due(self.trimmed_at, std::time::Instant::now());
        let timeout = if trim_if_quiet {
            PollTimeout::try_from(trim::QUIET.as_millis() as i32).unwrap_or(PollTimeout::MAX)
        } else {
            timeout
        };
        let mut fds = vec![PollFd::new(self.signals.fd(), PollFlags::POLLIN)];
        let health_at = self
            .health
            .as_ref()
            .and_then(Health::poll_fd)
            .map(|(fd, events)| {
                fds.push(PollFd::new(fd, events));
                fds.len() - 1
            });
        fds.extend(
            self.output
                .fds()
                .map(|fd| PollFd::new(fd, PollFlags::POLLIN)),
        );
        if let Some(notify) = &self.notify {
            fds.push(PollFd::new(notify.fd(), PollFlags::POLLIN));
        }
        let control_from = fds.len();
        fds.extend(
            self.control
                .fds()
                .map(|fd| PollFd::new(fd, PollFlags::POLLIN)),
        );
        let observe_from = fds.len();
        fds.extend(
            self.observe
                .iter()
                .flat_map(Observe::fds)
                .map(|(fd, events)| PollFd::new(fd, events)),
        );
        let mut result = poll(&mut fds, timeout);
        if trim_if_quiet && result == Ok(0) {
            trim::give_back();
            self.trimmed_at = Some(std::time::Instant::now());
            // Block again at once: whatever code ran between the trim and the next poll would
            // fault back in, 64 KiB around each page it touches.
            result = poll(&mut fds, PollTimeout::NONE);
        }
        signals::direct_to(0);
        let ready = |fd: &PollFd| fd.revents().is_some_and(|r| !r.is_empty());
        let health_ready = health_at.is_some_and(|i| ready(&fds[i]));
        let control_ready = fds[control_from..observe_from].iter().any(ready);
        let observe_ready = fds[observe_from..].iter().any(ready);
        drop(fds);
        self.health_ready = health_ready;
        self.control_ready = control_ready;
        self.observe_ready = observe_ready;
        match result {
            Ok(_) | Err(Errno::EINTR) => {}
            Err(e) => self.log.warn(&format!("poll failed: {e}")),
        }
    }

    /// Turns everything that happened into inputs, in a fixed order.
    fn gather(&mut self, now: Now) -> Vec<Input> {
        let mut inputs = Vec::new();
        self.signals.drain();
        // A stop signal a handler already sent goes first, so the machine's first stop is it.
        self.stop_sent = signals::take_stop_sent();
        let stops = self.stop_sent.into_iter().chain(signals::STOP);
        let mut stops: Vec<i32> = stops.collect();
        stops.dedup();
        for sig in stops {
            if signals::take(sig) {
                self.log
                    .info(&format!("received {}, stopping", signal_name(sig)));
                inputs.push(Input::StopRequested { signal: sig });
            }
        }
        for sig in signals::FORWARD {
            if signals::take_forwarded(sig) {
                self.log.debug(&format!("forwarded {}", signal_name(sig)));
            }
            if signals::take(sig) {
                self.log.debug(&format!("forwarding {}", signal_name(sig)));
                inputs.push(Input::Forward { signal: sig });
            }
        }
        if signals::take(libc::SIGTSTP) {
            inputs.push(Input::Suspend);
        }
        signals::take(libc::SIGCHLD);

        self.copy_output();
        let mut ended = None;
        while let Some(reaped) = child::reap() {
            if Some(reaped.pid) == self.child {
                self.child = None;
                self.usage = Some(reaped.usage);
                ended = Some(reaped.end);
            } else if self.hooks.owns(reaped.pid) {
                if let Some(problem) = self.hooks.reaped(reaped.pid, reaped.end) {
                    self.log.warn(&problem);
                }
            } else if self.health.as_ref().is_some_and(|h| h.owns(reaped.pid)) {
                let event = self
                    .health
                    .as_mut()
                    .and_then(|h| h.reaped(reaped.pid, reaped.end, now.mono));
                inputs.extend(self.health_event(event));
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
            for problem in self.output.detach() {
                self.log.warn(&problem);
            }
            self.stop_monitors();
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

        self.notifications(now);
        if self.health_ready {
            let event = self.health.as_mut().and_then(|h| h.ready(now.mono));
            inputs.extend(self.health_event(event));
        }
        if self.machine.status() == Status::Running {
            inputs.extend(self.monitor_ticks(now));
        }
        if let Some(up) = &mut self.upward {
            up.tick(now.mono);
        }

        let requests = match self.control_ready {
            true => self.control.requests(),
            false => Vec::new(),
        };
        for pending in requests {
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

        let overdue = self
            .observe
            .as_ref()
            .and_then(Observe::deadline)
            .is_some_and(|d| d <= now.mono);
        if self.observe_ready || overdue {
            // The state is built only when a whole request waits for it, not at every accept,
            // partial read or write.
            let incoming = self
                .observe
                .as_mut()
                .map(|o| o.io(now.mono))
                .unwrap_or_default();
            if !incoming.is_empty() {
                let state = self.state_file();
                if let Some(observe) = &mut self.observe {
                    observe.answer(incoming, &state, now.wall);
                }
            }
            if let Some(observe) = &mut self.observe {
                observe.finish(now.mono);
            }
        }

        if self.hooks.deadline().is_some_and(|d| d <= now.mono) {
            for problem in self.hooks.kill_overdue(now.mono) {
                self.log.warn(&problem);
            }
        }
        if self.machine.deadline().is_some_and(|d| d <= now.mono) {
            inputs.push(Input::Tick);
        }
        inputs
    }

    /// Reads the child's sd_notify datagrams; only its process group may speak.
    fn notifications(&mut self, now: Now) {
        let Some(notify) = &self.notify else { return };
        for (pid, messages) in notify.receive() {
            let group = self.child.and(self.group);
            let allowed = match (pid, group) {
                (Some(pid), Some(group)) => pid == group || child::group_of(pid) == Some(group),
                _ => false,
            };
            if !allowed {
                self.log
                    .debug(&format!("ignored a notify datagram from pid {pid:?}"));
                continue;
            }
            for message in messages {
                match message {
                    Message::Ready => {
                        if !self.ready {
                            self.ready = true;
                            self.dirty = true;
                            self.log.debug("the child is ready");
                        }
                        if let Some(up) = &mut self.upward {
                            up.ready();
                        }
                        if let Some(w) = &mut self.watchdog {
                            w.restart(now.mono);
                        }
                    }
                    Message::Status(text) => {
                        if let Some(up) = &self.upward {
                            up.status(&text);
                        }
                        self.status_text = Some(text);
                        self.dirty = true;
                    }
                    Message::Watchdog => {
                        if let Some(w) = &mut self.watchdog {
                            w.restart(now.mono);
                        }
                    }
                    Message::WatchdogUsec(usec) => {
                        if let Some(w) = &mut self.watchdog {
                            w.set_interval(std::time::Duration::from_micros(usec), now.mono);
                        }
                    }
                    Message::Stopping => self.log.debug("the child says it is stopping"),
                }
            }
        }
    }

    /// Due health checks, watchdog and memory samples, while the child runs.
    fn monitor_ticks(&mut self, now: Now) -> Vec<Input> {
        let mut inputs = Vec::new();
        let event = self.health.as_mut().and_then(|h| h.tick(now.mono));
        inputs.extend(self.health_event(event));
        if let Some(interval) = self.watchdog.as_mut().and_then(|w| w.missed(now.mono)) {
            let detail = format!("no WATCHDOG=1 within {}", fmt_duration(interval));
            self.log
                .warn(&format!("watchdog: {detail}; sending SIGABRT"));
            inputs.push(Input::WatchdogMissed { detail });
        }
        let due = self
            .memory
            .as_ref()
            .and_then(MemoryLimit::deadline)
            .is_some_and(|d| d <= now.mono);
        if let (true, Some(group)) = (due, self.group) {
            let others: Vec<i32> = child::children()
                .into_iter()
                .filter(|&p| Some(p) != self.child && !self.hooks.owns(p))
                .collect();
            let over = self
                .memory
                .as_mut()
                .and_then(|m| m.tick(now.mono, group, &others));
            if let Some(detail) = over {
                self.log.warn(&detail);
                inputs.push(Input::OverMemory { detail });
            }
        }
        inputs
    }

    fn health_event(&mut self, event: Option<HealthEvent>) -> Option<Input> {
        match event? {
            HealthEvent::Changed => {
                self.dirty = true;
                None
            }
            HealthEvent::Unhealthy(detail) => {
                self.dirty = true;
                self.log.warn(&format!("unhealthy: {detail}"));
                Some(Input::Unhealthy { detail })
            }
        }
    }

    /// No health checks, pings or samples for a child that is gone or being stopped.
    fn stop_monitors(&mut self) {
        if let Some(h) = &mut self.health {
            h.child_stopped();
        }
        if let Some(m) = &mut self.memory {
            m.child_stopped();
        }
        if let Some(w) = &mut self.watchdog {
            w.disarm();
        }
    }

    /// A child started: monitors begin, readiness is unknown again.
    fn start_monitors(&mut self, now: std::time::Instant) {
        self.ready = false;
        self.status_text = None;
        if let Some(h) = &mut self.health {
            h.child_started(now);
        }
        if let Some(m) = &mut self.memory {
            m.child_started(now);
        }
        if let Some(w) = &mut self.watchdog {
            w.restart(now);
        }
        if self.notify.is_none() {
            // Without --notify the child counts as ready once it runs.
            if let Some(up) = &mut self.upward {
                up.ready();
            }
        }
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

    /// Carries out the actions the machine returned when its status was `was`; then stops the
    /// monitors of a child that no longer runs and tells systemd when a stop began.
    fn execute(&mut self, was: Status, actions: Vec<Action>, now: Now) -> Option<u8> {
        let code = self.run_actions(actions, now);
        let status = self.machine.status();
        if status != Status::Running {
            self.stop_monitors();
        }
        if status == Status::Stopping && was != Status::Stopping {
            if let Some(up) = &self.upward {
                up.stopping();
            }
        }
        code
    }

    /// Carries out `actions` in order; `Some(status)` when restartd is to exit.
    fn run_actions(&mut self, actions: Vec<Action>, now: Now) -> Option<u8> {
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
                Action::SignalChild(sig) => {
                    if let Some(pid) = self.child {
                        child::signal_process(pid, sig);
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
                    self.wait_for_hooks();
                    return Some(code);
                }
            }
        }
        None
    }

    fn spawn(&mut self, restarts: u32) -> Input {
        let mut env: Vec<(OsString, OsString)> = vec![
            ("RESTARTD_NAME".into(), self.cfg.name.clone().into()),
            ("RESTARTD_RESTARTS".into(), restarts.to_string().into()),
        ];
        if let Some(notify) = &self.notify {
            env.push(("NOTIFY_SOCKET".into(), notify.address().into()));
        }
        if let Some(watchdog) = self.cfg.watchdog {
            env.push((
                "WATCHDOG_USEC".into(),
                watchdog.as_micros().to_string().into(),
            ));
        }
        self.cleanup = None;
        self.usage = None;
        let start = child::Start {
            command: &self.cfg.command,
            env,
            // What systemd gave restartd is restartd's, not the child's.
            remove: &["NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID"],
            watchdog_pid: self.cfg.watchdog.is_some(),
            capture_stdout: self.output.captures_stdout(),
        };
        match child::spawn(start, self.inherited) {
            Ok(spawned) => {
                self.child = Some(spawned.pid);
                self.group = Some(spawned.pid);
                self.output.attach(spawned.stderr, spawned.stdout);
                self.start_monitors(std::time::Instant::now());
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
            // A handler may have sent this very stop signal to the group already.
            let sent = match (self.stop_sent.take(), self.group) {
                (Some(s), Some(group)) if s == sig => vec![-group],
                _ => Vec::new(),
            };
            self.cleanup = Some((sig, sent));
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
            || child::children().iter().any(|&pid| {
                Some(pid) != self.child
                    && !self.hooks.owns(pid)
                    && !self.health.as_ref().is_some_and(|h| h.owns(pid))
            })
    }

    /// Before exiting: hooks still running get up to their timeout, so a give-up alert is always
    /// delivered. Signals are not acted on meanwhile; SIGCHLD only wakes the wait.
    fn wait_for_hooks(&mut self) {
        while !self.hooks.idle() {
            if let Some(deadline) = self.hooks.deadline() {
                let left = deadline.saturating_duration_since(std::time::Instant::now());
                let ms = left.as_millis().min(i32::MAX as u128) as i32 + 1;
                let mut fds = [PollFd::new(self.signals.fd(), PollFlags::POLLIN)];
                let _ = poll(
                    &mut fds,
                    PollTimeout::try_from(ms).unwrap_or(PollTimeout::MAX),
                );
            }
            self.signals.drain();
            while let Some(reaped) = child::reap() {
                if let Some(problem) = self.hooks.reaped(reaped.pid, reaped.end) {
                    self.log.warn(&problem);
                }
            }
            for problem in self.hooks.kill_overdue(std::time::Instant::now()) {
                self.log.warn(&problem);
            }
        }
    }

    /// Copies what the child wrote on to restartd's stdout/stderr and the log file.
    fn copy_output(&mut self) {
        for problem in self.output.copy() {
            self.log.warn(&problem);
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

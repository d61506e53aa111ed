//! The monitors of a running child, side by side: health checks, the child's sd_notify socket
//! and watchdog, memory sampling, and restartd's own channel to systemd.
//!
//! They run while the machine says so (`Action::Monitors`) and turn what they see into inputs
//! (`Ready`, `Unhealthy`, `OverMemory`, `WatchdogMissed`); what is done about it is the
//! machine's. The STATUS= text and the watchdog's clock are bookkeeping, kept here.

use std::os::fd::BorrowedFd;
use std::time::{Duration, Instant};

use nix::poll::PollFlags;

use crate::base::exit::ProcessEnd;
use crate::base::values::fmt_duration;
use crate::monitors::health::{Event as HealthEvent, Health, HealthState};
use crate::monitors::memory::MemoryLimit;
use crate::monitors::notify::{Message, NotifySocket, Upward, Watchdog};
use crate::process::procs;
use crate::process::signals::Inherited;
use crate::run::log::Logger;
use crate::supervise::config::Config;
use crate::supervise::machine::{Input, Tell};

pub struct Monitors {
    /// `--notify`: the child's NOTIFY_SOCKET.
    pub notify: Option<NotifySocket>,
    /// The child's last STATUS= text.
    pub status_text: Option<String>,
    watchdog: Option<Watchdog>,
    /// restartd's own channel to systemd.
    upward: Option<Upward>,
    health: Option<Health>,
    memory: Option<MemoryLimit>,
}

/// The `PollFd` events each monitor wants, in the order `fds` gives them.
pub struct MonitorFds<'a> {
    pub health: Option<(BorrowedFd<'a>, PollFlags)>,
    pub notify: Option<BorrowedFd<'a>>,
}

impl Monitors {
    /// Sets up what the configuration asks for; starts nothing yet.
    pub fn new(
        cfg: &Config,
        notify: Option<NotifySocket>,
        inherited: Inherited,
        now: Instant,
    ) -> Result<Monitors, String> {
        let health = match &cfg.health {
            Some(h) => Some(Health::new(h.clone(), inherited)?),
            None => None,
        };
        let env = |key: &str| std::env::var(key).ok();
        Ok(Monitors {
            notify,
            status_text: None,
            watchdog: cfg.watchdog.map(Watchdog::new),
            upward: Upward::from_env(&env, now),
            health,
            memory: cfg.max_memory.map(MemoryLimit::new),
        })
    }

    /// The earliest moment a monitor needs the loop.
    pub fn deadline(&self) -> Option<Instant> {
        [
            self.health.as_ref().and_then(Health::deadline),
            self.watchdog.as_ref().and_then(Watchdog::deadline),
            self.memory.as_ref().and_then(MemoryLimit::deadline),
            self.upward.as_ref().and_then(Upward::deadline),
        ]
        .into_iter()
        .flatten()
        .min()
    }

    /// The fds to poll.
    pub fn fds(&self) -> MonitorFds<'_> {
        MonitorFds {
            health: self.health.as_ref().and_then(Health::poll_fd),
            notify: self.notify.as_ref().map(NotifySocket::fd),
        }
    }

    /// A child started: the monitors begin, its readiness and STATUS= are unknown again.
    pub fn start(&mut self, now: Instant) {
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
    }

    /// No health checks, pings or samples for a child that is gone or being stopped.
    pub fn stop(&mut self) {
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

    /// Tells systemd, when restartd runs under it.
    pub fn tell(&mut self, what: Tell) {
        if let Some(up) = &mut self.upward {
            match what {
                Tell::Ready => up.ready(),
                Tell::Stopping => up.stopping(),
            }
        }
    }

    /// Pings systemd's watchdog when due.
    pub fn upward_tick(&mut self, now: Instant) {
        if let Some(up) = &mut self.upward {
            up.tick(now);
        }
    }

    /// The health check's state for `state.json`.
    pub fn health_state(&self) -> Option<HealthState> {
        self.health.as_ref().map(Health::state)
    }

    /// Whether `pid` is a running health check.
    pub fn owns(&self, pid: i32) -> bool {
        self.health.as_ref().is_some_and(|h| h.owns(pid))
    }

    /// A health check process ended.
    pub fn health_reaped(
        &mut self,
        pid: i32,
        end: ProcessEnd,
        now: Instant,
        log: &Logger,
    ) -> (bool, Option<Input>) {
        let event = self.health.as_mut().and_then(|h| h.reaped(pid, end, now));
        health_event(event, log)
    }

    /// The HTTP health check's socket is ready.
    pub fn health_io(&mut self, now: Instant, log: &Logger) -> (bool, Option<Input>) {
        let event = self.health.as_mut().and_then(|h| h.ready(now));
        health_event(event, log)
    }

    /// Reads the child's sd_notify datagrams; only the child's process group (`group`) may
    /// speak. Returns the inputs for the machine and whether `state.json` changed.
    pub fn notifications(
        &mut self,
        group: Option<i32>,
        now: Instant,
        log: &Logger,
    ) -> (bool, Vec<Input>) {
        let mut inputs = Vec::new();
        let mut changed = false;
        let Some(notify) = &self.notify else {
            return (changed, inputs);
        };
        for (pid, messages) in notify.receive() {
            let allowed = match (pid, group) {
                (Some(pid), Some(group)) => pid == group || procs::group_of(pid) == Some(group),
                _ => false,
            };
            if !allowed {
                log.debug(&format!("ignored a notify datagram from pid {pid:?}"));
                continue;
            }
            for message in messages {
                match message {
                    Message::Ready => {
                        inputs.push(Input::Ready);
                        if let Some(w) = &mut self.watchdog {
                            w.restart(now);
                        }
                    }
                    Message::Status(text) => {
                        if let Some(up) = &self.upward {
                            up.status(&text);
                        }
                        self.status_text = Some(text);
                        changed = true;
                    }
                    Message::Watchdog => {
                        if let Some(w) = &mut self.watchdog {
                            w.restart(now);
                        }
                    }
                    Message::WatchdogUsec(usec) => {
                        if let Some(w) = &mut self.watchdog {
                            w.set_interval(Duration::from_micros(usec), now);
                        }
                    }
                    Message::Stopping => log.debug("the child says it is stopping"),
                }
            }
        }
        (changed, inputs)
    }

    /// Due health checks, watchdog and memory samples. `group` is the running child's group,
    /// `others` restartd's other children that may belong to it.
    pub fn ticks(
        &mut self,
        now: Instant,
        group: Option<i32>,
        others: impl FnOnce() -> Vec<i32>,
        log: &Logger,
    ) -> (bool, Vec<Input>) {
        let mut inputs = Vec::new();
        let event = self.health.as_mut().and_then(|h| h.tick(now));
        let (changed, input) = health_event(event, log);
        inputs.extend(input);
        if let Some(interval) = self.watchdog.as_mut().and_then(|w| w.missed(now)) {
            let detail = format!("no WATCHDOG=1 within {}", fmt_duration(interval));
            log.warn(&format!("watchdog: {detail}; sending SIGABRT"));
            inputs.push(Input::WatchdogMissed { detail });
        }
        let due = self
            .memory
            .as_ref()
            .and_then(MemoryLimit::deadline)
            .is_some_and(|d| d <= now);
        if let (true, Some(group)) = (due, group) {
            // A running health check is restartd's, not the child's.
            let health = &self.health;
            let others: Vec<i32> = others()
                .into_iter()
                .filter(|&p| !health.as_ref().is_some_and(|h| h.owns(p)))
                .collect();
            let over = self
                .memory
                .as_mut()
                .and_then(|m| m.tick(now, group, &others));
            if let Some(detail) = over {
                log.warn(&detail);
                inputs.push(Input::OverMemory { detail });
            }
        }
        (changed, inputs)
    }
}

/// What a health event means for the machine, and whether `state.json` changed.
fn health_event(event: Option<HealthEvent>, log: &Logger) -> (bool, Option<Input>) {
    match event {
        None => (false, None),
        Some(HealthEvent::Changed) => (true, None),
        Some(HealthEvent::Unhealthy(detail)) => {
            log.warn(&format!("unhealthy: {detail}"));
            (true, Some(Input::Unhealthy { detail }))
        }
    }
}

//! The monitors of a running child, side by side: health checks, the child's sd_notify socket
//! and watchdog, memory sampling, and restartd's own channel to systemd.
//!
//! They run while the machine says so (`Action::Monitors`) and turn what they see into inputs
//! (`Ready`, `RestartReset`, `Unhealthy`, `OverMemory`, `WatchdogMissed`); what is done about it
//! is the machine's. The STATUS= text, the child's last ERRNO=/EXIT_STATUS=, what is forwarded
//! to systemd and the watchdog's clock are bookkeeping, kept here.

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
use crate::supervise::machine::{EndReport, Input, Outcome, Reason, Tell};

pub struct Monitors {
    /// `--notify`: the child's NOTIFY_SOCKET.
    pub notify: Option<NotifySocket>,
    /// The child's last STATUS= text.
    pub status_text: Option<String>,
    watchdog: Option<Watchdog>,
    /// restartd's own channel to systemd.
    upward: Option<Upward>,
    health: Option<Health>,
    /// Without `--notify`, the first passing health check makes the child ready (SPEC §13).
    health_readies: bool,
    memory: Option<MemoryLimit>,
    /// The running child's last `ERRNO=` and `EXIT_STATUS=`, for its crash record's `detail`.
    errno: Option<i32>,
    exit_status: Option<String>,
    /// The restart restartd told systemd it waits for (`restart 2 of 5 in 5m`, and why).
    waited: Option<(String, String)>,
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
            health_readies: !cfg.notify,
            memory: cfg.max_memory.map(MemoryLimit::new),
            errno: None,
            exit_status: None,
            waited: None,
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
        self.errno = None;
        self.exit_status = None;
        if let (Some((restart, why)), Some(up)) = (self.waited.take(), &mut self.upward) {
            // The wait is over: systemctl status no longer says "next in 4s".
            up.status(&format!("running after {restart} (last end: {why})"));
        }
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
                Tell::Reloading => up.reload_starts(monotonic_usec()),
                Tell::Reloaded => up.reload_ends(),
            }
        }
    }

    /// After an end: while restartd waits to restart, systemd's `STATUS=` says so and why
    /// (SPEC §14), e.g. `restart 2 of 5 in 5m, next in 4s: ZeroDivisionError: division by
    /// zero`. `error` is the error the crash record recognised.
    pub fn ended(&mut self, report: &EndReport, error: Option<&str>) {
        let Some(text) = waiting_status(report, error) else {
            return;
        };
        if let Some(up) = &mut self.upward {
            up.status(&text.0);
        }
        self.waited = Some(text.1);
    }

    /// Adds what the child said about its end with sd_notify (`ERRNO=`, `EXIT_STATUS=`) to the
    /// `detail` of its crash record (SPEC §14). Not for a start that failed: no child spoke.
    pub fn explain(&self, report: &mut EndReport) {
        let child_said = report.crash && report.end.is_some();
        if let Some(said) = self.notify_detail().filter(|_| child_said) {
            report.detail = Some(match report.detail.take() {
                Some(detail) => format!("{detail}; {said}"),
                None => said,
            });
        }
    }

    /// What the child said with `ERRNO=` and `EXIT_STATUS=`; `None` when it said nothing.
    fn notify_detail(&self) -> Option<String> {
        let errno = self.errno.map(|n| {
            let name = nix::errno::Errno::from_raw(n);
            format!("ERRNO={n} ({})", name.desc())
        });
        let status = self
            .exit_status
            .as_ref()
            .map(|s| format!("EXIT_STATUS={s}"));
        let said: Vec<String> = errno.into_iter().chain(status).collect();
        (!said.is_empty()).then(|| format!("the child's sd_notify: {}", said.join(", ")))
    }

    /// Sends what waits for systemd, in order: the loop calls it once the machine has had the
    /// turn's facts.
    pub fn flush_upward(&mut self) {
        if let Some(up) = &mut self.upward {
            up.flush();
        }
    }

    /// When systemd's watchdog wants its next ping, if it does.
    pub fn upward_deadline(&self) -> Option<Instant> {
        self.upward.as_ref().and_then(Upward::deadline)
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
        self.health_event(event, log)
    }

    /// The HTTP health check's socket is ready.
    pub fn health_io(&mut self, now: Instant, log: &Logger) -> (bool, Option<Input>) {
        let event = self.health.as_mut().and_then(|h| h.ready(now));
        self.health_event(event, log)
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
        let upward = &mut self.upward;
        for (pid, messages) in notify.receive() {
            let allowed = match (pid, group) {
                (Some(pid), Some(group)) => pid == group || procs::group_of(pid) == Some(group),
                _ => false,
            };
            if !allowed {
                log.debug(&format!("ignored a notify datagram from pid {pid:?}"));
                continue;
            }
            // RELOADING=1 goes up with the MONOTONIC_USEC= of its datagram, wherever it stands.
            let monotonic = messages.iter().find_map(|m| match m {
                Message::MonotonicUsec(usec) => Some(*usec),
                _ => None,
            });
            for message in messages {
                match message {
                    Message::Ready => {
                        if let Some(up) = upward.as_mut() {
                            up.child_ready();
                        }
                        inputs.push(Input::Ready);
                        if let Some(w) = &mut self.watchdog {
                            w.restart(now);
                        }
                    }
                    Message::Status(text) => {
                        if let Some(up) = upward.as_mut() {
                            up.status(&text);
                        }
                        self.status_text = Some(text);
                        changed = true;
                    }
                    Message::RestartReset => {
                        log.info("the child sent RESTART_RESET=1: restart window cleared");
                        inputs.push(Input::RestartReset);
                    }
                    Message::WatchdogTrigger => {
                        let detail = "the child sent WATCHDOG=trigger".to_string();
                        log.warn(&format!("watchdog: {detail}; sending SIGABRT"));
                        inputs.push(Input::WatchdogMissed { detail });
                    }
                    Message::ExtendTimeoutUsec(usec) => {
                        if let Some(up) = upward.as_mut() {
                            up.extend_timeout(usec);
                        }
                    }
                    Message::Reloading => {
                        log.debug("the child is reloading");
                        if let Some(up) = upward.as_mut() {
                            up.reloading(monotonic.unwrap_or_else(monotonic_usec));
                        }
                    }
                    Message::MonotonicUsec(_) => {}
                    Message::Errno(n) => self.errno = Some(n),
                    Message::ExitStatus(text) => self.exit_status = Some(text),
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
        let (changed, input) = self.health_event(event, log);
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

impl Monitors {
    /// What a health event means for the machine, and whether `state.json` changed. A change
    /// to healthy is the child's readiness when no `--notify` says it (SPEC §13); the machine
    /// ignores a `Ready` for a child that is ready already.
    fn health_event(&self, event: Option<HealthEvent>, log: &Logger) -> (bool, Option<Input>) {
        match event {
            None => (false, None),
            Some(HealthEvent::Changed) => {
                let healthy = self.health_state() == Some(HealthState::Healthy);
                (
                    true,
                    (healthy && self.health_readies).then_some(Input::Ready),
                )
            }
            Some(HealthEvent::Unhealthy(detail)) => {
                log.warn(&format!("unhealthy: {detail}"));
                (true, Some(Input::Unhealthy { detail }))
            }
        }
    }
}

/// `STATUS=` while waiting to restart after `r`, and its parts (`restart 2 of 5 in 5m` and why)
/// for the status once the child runs again; `None` when restartd does not restart.
fn waiting_status(r: &EndReport, error: Option<&str>) -> Option<(String, (String, String))> {
    let Outcome::Restart {
        n,
        max,
        window,
        delay,
    } = r.outcome
    else {
        return None;
    };
    let of = max.map_or(String::new(), |m| {
        format!(" of {m} in {}", fmt_duration(window))
    });
    let restart = format!("restart {n}{of}");
    let why = match (error, r.end) {
        (Some(error), _) => error.lines().next().unwrap_or("").to_string(),
        (None, Some(ProcessEnd::Exited(code))) if r.reason == Reason::Exit => {
            format!("exited with code {code}")
        }
        (None, Some(end)) if r.reason == Reason::Signal => format!("killed by {}", end.describe()),
        (None, _) => match &r.detail {
            Some(detail) => format!("{}: {}", r.reason.as_str(), detail),
            None => r.reason.as_str().to_string(),
        },
    };
    let text = format!("{restart}, next in {}: {why}", fmt_duration(delay));
    Some((text, (restart, why)))
}

/// CLOCK_MONOTONIC in µs, systemd's clock for `MONOTONIC_USEC=`.
fn monotonic_usec() -> u64 {
    nix::time::clock_gettime(nix::time::ClockId::CLOCK_MONOTONIC).map_or(0, |t| {
        (t.tv_sec() as u64) * 1_000_000 + (t.tv_nsec() as u64) / 1000
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::SystemTime;

    fn report(reason: Reason, end: Option<ProcessEnd>, outcome: Outcome) -> EndReport {
        EndReport {
            pid: Some(7),
            end,
            reason,
            at: SystemTime::now(),
            uptime: Duration::from_secs(1),
            restarts: 1,
            outcome,
            crash: true,
            expected: false,
            detail: Some("3 failed health checks in a row; last: HTTP 503".into()),
        }
    }

    #[test]
    fn the_status_while_waiting_says_which_restart_when_and_why() {
        let restart = Outcome::Restart {
            n: 2,
            max: Some(5),
            window: Duration::from_secs(300),
            delay: Duration::from_secs(4),
        };
        let exit = report(Reason::Exit, Some(ProcessEnd::Exited(1)), restart);
        let error = "ZeroDivisionError: division by zero";
        let (text, (head, why)) = waiting_status(&exit, Some(error)).unwrap();
        assert_eq!(
            text,
            "restart 2 of 5 in 5m, next in 4s: ZeroDivisionError: division by zero"
        );
        assert_eq!(
            (head.as_str(), why.as_str()),
            ("restart 2 of 5 in 5m", error)
        );
        assert_eq!(
            waiting_status(&exit, None).unwrap().0,
            "restart 2 of 5 in 5m, next in 4s: exited with code 1"
        );
        let unlimited = Outcome::Restart {
            n: 2,
            max: None,
            window: Duration::from_secs(300),
            delay: Duration::from_secs(4),
        };
        let segv = ProcessEnd::Signaled {
            signal: nix::libc::SIGSEGV,
            core_dumped: true,
        };
        assert_eq!(
            waiting_status(&report(Reason::Signal, Some(segv), unlimited), None)
                .unwrap()
                .0,
            "restart 2, next in 4s: killed by signal SIGSEGV (core dumped)"
        );
        let term = ProcessEnd::Signaled {
            signal: nix::libc::SIGTERM,
            core_dumped: false,
        };
        assert_eq!(
            waiting_status(&report(Reason::Unhealthy, Some(term), restart), None)
                .unwrap()
                .0,
            "restart 2 of 5 in 5m, next in 4s: unhealthy: 3 failed health checks in a row; last: HTTP 503"
        );
        let give_up = Outcome::GiveUp {
            count: 5,
            max: 5,
            window: Duration::from_secs(300),
        };
        assert_eq!(
            waiting_status(&report(Reason::Exit, None, give_up), None),
            None
        );
    }
}

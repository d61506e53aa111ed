//! How the loop waits: the next deadline of anything, and the one poll(2) over every fd. Part
//! of the loop (`Supervisor`), kept apart so that the loop's file stays about the turn.

use std::time::Instant;

use nix::errno::Errno;
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};

use crate::observe::Observe;
use crate::process::trim;

use super::{Ready, Supervisor};

impl Supervisor {
    /// The earliest moment anything needs the loop; `None` when only events matter.
    pub(super) fn deadline(&self) -> Option<Instant> {
        [
            self.machine.deadline(),
            self.recorder.hooks.deadline(),
            self.monitors.deadline(),
            self.observe.as_ref().and_then(Observe::deadline),
            self.control.deadline(),
            // Log compression goes on each turn without blocking (`logcompress`).
            self.family.output.log_busy().then(Instant::now),
        ]
        .into_iter()
        .flatten()
        .min()
    }

    /// Saves the state if it changed and tells systemd what waits, then blocks until an fd is
    /// ready or a deadline comes.
    pub(super) fn wait(&mut self) {
        self.save();
        self.monitors.flush_upward();
        let timeout = match self.deadline() {
            None => PollTimeout::NONE,
            Some(deadline) => {
                let left = deadline.saturating_duration_since(Instant::now());
                // Round up: waking a millisecond early would only cost a spurious turn.
                let ms = left.as_micros().div_ceil(1000).min(i32::MAX as u128) as i32;
                PollTimeout::try_from(ms).unwrap_or(PollTimeout::MAX)
            }
        };
        // About to block with the child started: the heap that starting needed goes back, once.
        if self.family.pid().is_some() && !self.trimmed {
            trim::give_back();
            self.trimmed = true;
        }
        let mut fds = vec![PollFd::new(self.signals.fd(), PollFlags::POLLIN)];
        let monitor_fds = self.monitors.fds();
        let health_at = monitor_fds.health.map(|(fd, events)| {
            fds.push(PollFd::new(fd, events));
            fds.len() - 1
        });
        if let Some(fd) = monitor_fds.notify {
            fds.push(PollFd::new(fd, PollFlags::POLLIN));
        }
        let output = self.family.output.fds();
        fds.extend(
            output
                .into_iter()
                .map(|(fd, events)| PollFd::new(fd, events)),
        );
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
        let result = poll(&mut fds, timeout);
        let ready = |fd: &PollFd| fd.revents().is_some_and(|r| !r.is_empty());
        self.ready = Ready {
            health: health_at.is_some_and(|i| ready(&fds[i])),
            control: fds[control_from..observe_from].iter().any(ready),
            observe: fds[observe_from..].iter().any(ready),
        };
        drop(fds);
        match result {
            Ok(_) | Err(Errno::EINTR) => {}
            Err(e) => self.log.warn(&format!("poll failed: {e}")),
        }
    }
}

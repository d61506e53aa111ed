//! What the machine answers about itself: the status, the live child, the counts (for
//! `state.json`, `status` and the loop).

use std::time::{Instant, SystemTime};

use super::{LastExit, Machine, RestartWindow, Run, State, Status, Then};

impl Machine {
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
            State::Reloading { .. } | State::Draining { .. } => Status::Reloading,
            State::Done(last) => last.status,
        }
    }

    /// By when a requested stop must be over (the first stop request plus `--stop-timeout`):
    /// what restartd still does on its way out (its queued output) is cut off there.
    pub fn stop_by(&self) -> Option<Instant> {
        self.stop_by
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

    /// Whether the live child is ready (READY=1 with `--notify`, else its first passing health
    /// check, else since its spawn).
    pub fn ready(&self) -> bool {
        match &self.state {
            State::Running { ready, .. } | State::Reloading { ready, .. } => *ready,
            State::Draining { .. } => true,
            _ => false,
        }
    }

    /// When a child started at `run` must be ready by (`--ready-timeout`).
    pub(super) fn ready_by(&self, run: &Run) -> Option<Instant> {
        self.settings.ready_timeout.map(|t| run.started + t)
    }

    pub(super) fn run(&self) -> Option<Run> {
        match &self.state {
            State::Running { run, .. } | State::Stopping { run, .. } => Some(*run),
            // `child_pid` names the old child until the switch (SPEC §11).
            State::Reloading { old, .. } => Some(*old),
            State::Draining { run, .. } => Some(*run),
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

    /// `--max-runtime` restarts over all runs (`state.json`'s `scheduled_restarts`).
    pub fn scheduled_restarts(&self) -> u64 {
        self.scheduled_restarts
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
            | State::Reloading { .. }
            | State::Draining { .. }
            | State::Done(_) => None,
        }
    }
}

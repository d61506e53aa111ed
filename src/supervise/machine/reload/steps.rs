//! The steps of a reload that `reloading` and `draining` take: the switch to the new child,
//! stopping the new one and going back to the old (`keep-old`), folding the second child into
//! the child's leftovers, and the counts a `reset` or `restart` touches.

use std::time::Instant;

use super::super::{Machine, Run, Sockets, State, Tell};
use super::{Candidate, Hold, Queued, HOLD_HANDSHAKES, HOLD_MAX};
use crate::base::exit::ProcessEnd;
use crate::supervise::events::{Action, EndReport, Input, Now, Outcome, Reason, Reply, Request};

/// What the `reload`s queued with a `restart` during a reload hear once it restarts the child.
const RESTART_FOR_RELOADS: &str =
    "restarting rather than reloading: a restart was asked for during the reload";

impl Machine {
    /// The new child is ready: first every new connection goes to its sockets (which a replaced
    /// unix PATH refuses; `Switched` says), then the children swap (`switch`).
    pub(in crate::supervise::machine) fn switch_sockets(
        &mut self,
        old: Run,
        ready: bool,
        until: Instant,
        run: Run,
    ) -> Vec<Action> {
        self.state = State::Reloading {
            old,
            ready,
            new: Candidate::Switching(run),
            until,
        };
        vec![Action::Sockets(Sockets::ToNew)]
    }

    /// The sockets are switched: the new child becomes the child; the old one gets the stop
    /// signal once its sockets' queues are empty (`Hold`).
    pub(in crate::supervise::machine) fn switch(&mut self, run: Run, now: Now) -> Vec<Action> {
        let signal = self.settings.stop_signal;
        self.state = State::Draining {
            run,
            signal,
            kill_at: None,
            ended: false,
            // The first look comes after the handshakes under way at the switch had time to
            // join the old queue (`HOLD_HANDSHAKES`).
            hold: Some(Hold {
                until: now.mono + HOLD_MAX.min(self.settings.stop_timeout),
                look_at: now.mono + HOLD_HANDSHAKES.min(HOLD_MAX.min(self.settings.stop_timeout)),
            }),
        };
        vec![Action::Switch, Action::SaveState]
    }

    /// `reload` or `restart` asked for during a reload: it waits for this one to end, as
    /// systemd runs a reload or restart job queued behind a running reload job; then another
    /// reload starts (a new child of the command as it is then), or, if a restart was asked
    /// for, the child is restarted. Requests meanwhile share it.
    pub(in crate::supervise::machine) fn queue(&mut self, request: Request) -> Vec<Action> {
        match request {
            Request::Restart => self.queued.restart = true,
            _ => self.queued.reload = true,
        }
        vec![Action::Reply(Reply::AfterReload)]
    }

    /// After an input that ended a reload: the queued requests are handled as one request that
    /// came now (a restart if any was asked for, else a reload), and answered accordingly.
    pub(in crate::supervise::machine) fn run_queued(&mut self, now: Now) -> Vec<Action> {
        if self.in_reload() {
            return vec![];
        }
        let queued = std::mem::take(&mut self.queued);
        let request = match queued {
            Queued { restart: true, .. } => Request::Restart,
            Queued { reload: true, .. } => Request::Reload,
            Queued { .. } => return vec![],
        };
        // The `reload` requesters served by a restart hear so.
        let shared = queued.restart && queued.reload;
        self.handle(Input::Request(request), now)
            .into_iter()
            .map(|a| match a {
                Action::Reply(Reply::Ok) if shared => {
                    Action::ReplyQueued(request, Reply::OkSaying(RESTART_FOR_RELOADS.into()))
                }
                Action::Reply(reply) => Action::ReplyQueued(request, reply),
                a => a,
            })
            .collect()
    }

    /// The old child and its leftovers are gone: the reload is done.
    pub(in crate::supervise::machine) fn reloaded(&mut self, run: Run) -> Vec<Action> {
        self.reloads += 1;
        self.state = State::Running { run, ready: true };
        vec![
            Action::ReleaseOther,
            Action::Sockets(Sockets::KeepNew),
            Action::Tell(Tell::Reloaded),
            Action::Reloaded(Ok(format!("replaced: pid {} serves", run.pid))),
            Action::SaveState,
        ]
    }

    /// Stops the new child, which is failing or late; the old one keeps serving.
    #[allow(clippy::too_many_arguments)]
    pub(in crate::supervise::machine) fn stop_new(
        &mut self,
        old: Run,
        ready: bool,
        until: Instant,
        run: Run,
        reason: Option<Reason>,
        detail: String,
        now: Now,
    ) -> Vec<Action> {
        self.state = State::Reloading {
            old,
            ready,
            new: Candidate::Stopping {
                run,
                reason,
                detail,
                kill_at: Some(now.mono + self.settings.stop_timeout),
            },
            until,
        };
        vec![
            Action::SignalOther(self.settings.stop_signal),
            Action::Monitors(false),
        ]
    }

    /// The new child is gone and left nothing: record it, answer, and go on with the old one.
    pub(in crate::supervise::machine) fn keep_old(
        &mut self,
        old: Run,
        ready: bool,
        report: EndReport,
        why: String,
        now: Now,
    ) -> Vec<Action> {
        let mut actions = vec![Action::EndedOther(report), Action::ReleaseOther];
        actions.extend(self.back_to_old(old, ready, why, now));
        actions
    }

    pub(in crate::supervise::machine) fn back_to_old(
        &mut self,
        mut old: Run,
        ready: bool,
        why: String,
        now: Now,
    ) -> Vec<Action> {
        // A scheduled reload that failed is tried again one --max-runtime later, not at once.
        if old.restart_at.is_some_and(|t| t <= now.mono) {
            old.restart_at = self.settings.max_runtime.map(|d| now.mono + d);
        }
        self.state = State::Running { run: old, ready };
        vec![
            Action::Sockets(Sockets::KeepOld),
            Action::Tell(Tell::Reloaded),
            Action::Monitors(true),
            Action::Reloaded(Err(format!(
                "{why}; the old child (pid {}) keeps running",
                old.pid
            ))),
            Action::SaveState,
        ]
    }

    /// The reload cannot go on: the new child joins the old one's leftovers, the waiting
    /// `reload` hears why, and `Running`'s rule for `input` applies.
    pub(in crate::supervise::machine) fn abandon(
        &mut self,
        old: Run,
        ready: bool,
        new: Candidate,
        input: Input,
        why: &str,
        now: Now,
    ) -> Vec<Action> {
        let mut actions = Vec::new();
        if !matches!(new, Candidate::Starting) {
            actions.push(Action::Fold);
        }
        actions.extend([
            Action::Sockets(Sockets::KeepOld),
            Action::Tell(Tell::Reloaded),
        ]);
        actions.push(Action::Reloaded(Err(format!(
            "{why}; the reload was abandoned"
        ))));
        self.state = State::Running { run: old, ready };
        actions.extend(self.handle(input, now));
        actions
    }

    /// During the drain: the old child is folded into the child's leftovers, the reload counts
    /// as done (the new child had been ready), and `Running`'s rule for `input` applies.
    pub(in crate::supervise::machine) fn fold_into_running(
        &mut self,
        run: Run,
        input: Input,
        now: Now,
    ) -> Vec<Action> {
        self.reloads += 1;
        self.state = State::Running { run, ready: true };
        // What still waits in the old sockets' queues is reset with them.
        let mut actions = vec![
            Action::Fold,
            Action::Sockets(Sockets::KeepNew),
            Action::Tell(Tell::Reloaded),
            Action::Reloaded(Ok(format!(
                "replaced: pid {} serves (the old child is being stopped with it)",
                run.pid
            ))),
        ];
        actions.extend(self.handle(input, now));
        actions
    }

    /// The `keep-old` record of a failed new child (`run`: None when it never started).
    pub(in crate::supervise::machine) fn kept_old(
        &mut self,
        run: Option<Run>,
        end: Option<ProcessEnd>,
        reason: Reason,
        detail: Option<String>,
        now: Now,
    ) -> EndReport {
        EndReport {
            pid: run.map(|r| r.pid),
            end,
            reason,
            at: now.wall,
            uptime: run.map_or(std::time::Duration::ZERO, |r| {
                now.mono.saturating_duration_since(r.started)
            }),
            restarts: self.restarts_total,
            outcome: Outcome::KeepOld,
            crash: true,
            expected: false,
            detail,
        }
    }

    /// The old child's end after a switch: logged, no record.
    pub(in crate::supervise::machine) fn replaced(
        &mut self,
        end: ProcessEnd,
        now: Now,
    ) -> EndReport {
        EndReport {
            pid: None,
            end: Some(end),
            reason: Reason::of(end),
            at: now.wall,
            uptime: std::time::Duration::ZERO,
            restarts: self.restarts_total,
            outcome: Outcome::Replaced,
            crash: false,
            expected: false,
            detail: None,
        }
    }

    /// A signal to restartd that is not a stop: forwarded signals go to the child's group.
    pub(in crate::supervise::machine) fn other_signal(&self, signal: i32) -> Vec<Action> {
        match signal {
            s if super::super::FORWARDED.contains(&s) => vec![Action::SignalGroup(s)],
            nix::libc::SIGTSTP => {
                vec![Action::SignalGroup(nix::libc::SIGSTOP), Action::SuspendSelf]
            }
            _ => vec![],
        }
    }

    /// The child's RESTART_RESET=1 (SPEC §14): as `restartd reset`, and the streak ends too, so
    /// the next crash waits --delay again.
    pub(in crate::supervise::machine) fn restart_reset(&mut self) -> Vec<Action> {
        self.streak = 0;
        self.window.clear();
        vec![Action::SaveState]
    }

    pub(in crate::supervise::machine) fn reset(&mut self, crashes: bool) -> Vec<Action> {
        self.window.clear();
        // The files go before the answer: once `reset` returns, they are gone.
        let mut actions = Vec::new();
        if crashes {
            actions.push(Action::ClearCrashes);
        }
        actions.extend([Action::Reply(Reply::Ok), Action::SaveState]);
        actions
    }
}

/// "exited with code 3", "was killed by SIGSEGV".
pub(super) fn ended_how(end: ProcessEnd) -> String {
    match end {
        ProcessEnd::Exited(code) => format!("exited with code {code}"),
        ProcessEnd::Signaled { signal, .. } => {
            format!("was killed by {}", crate::base::exit::signal_name(signal))
        }
    }
}

pub(super) fn detail(report: &EndReport) -> String {
    match (&report.detail, report.end) {
        (Some(d), _) => d.clone(),
        (None, Some(end)) => ended_how(end),
        (None, None) => report.reason.as_str().into(),
    }
}

//! A reload (SPEC §11): two children at once. The old child keeps serving while a new one starts
//! on the same sockets (`State::Reloading`); once the new one is ready it becomes the child and
//! the old one drains: stop signal, `--stop-timeout`, SIGKILL, cleanup of its group and adopted
//! descendants (`State::Draining`). A new child that ends, fails a monitor or is not ready in
//! time is stopped, gets a `keep-old` record, and the old one goes on as if nothing happened.
//!
//! The reload is no crash: no backoff, nothing in the window. The second child's facts come as
//! `OtherEnded` / `OtherLeftovers`, its signals go out as `SignalOther`, so the child's own group
//! and the second child's are never mixed up. When the child itself ends or restartd is asked to
//! stop during a reload, the second child is folded into the child's leftovers (`Fold`) and the
//! ordinary rules of `Running` apply: everything is stopped together.
//!
//! `reload` is also the entry point for a reload the machine starts itself (`--max-runtime`
//! with sockets): it needs only the running child.

use std::time::Instant;

use nix::libc::SIGKILL;

use super::{Machine, Run, Sockets, State, Tell};
use crate::supervise::events::{Action, Input, Now, Reason, Reply, Request};

/// After the switch, the old child is signalled only once its sockets' accept queues are empty
/// (a server such as uvicorn closes, when stopped, what it accepted but did not read yet), or
/// at `until`, at most `HOLD_MAX` (or `--stop-timeout`, if shorter) after the switch. The loop
/// reports the queues every turn (`OldQueue`); the machine looks first `HOLD_HANDSHAKES` after
/// the switch, then every `HOLD_LOOK`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Hold {
    pub(super) until: Instant,
    pub(super) look_at: Instant,
}

pub(super) const HOLD_MAX: std::time::Duration = std::time::Duration::from_secs(1);
/// The first look comes this long after the switch (or at `until`, if sooner): a connection
/// whose handshake was under way at the switch joins the old queue one round trip later, and
/// a client far away is that far (a stopped old child would leave it to be reset).
pub(super) const HOLD_HANDSHAKES: std::time::Duration = std::time::Duration::from_millis(500);
pub(super) const HOLD_LOOK: std::time::Duration = std::time::Duration::from_millis(10);

/// The requests asked for during a reload, handled once it is over (`Machine::queue`): a
/// `reload` starts another one, a `restart` restarts the child; one restart serves the reloads
/// queued with it, since it starts the command as it is then too.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(super) struct Queued {
    pub(super) reload: bool,
    pub(super) restart: bool,
}

/// A reload's new child (`State::Reloading`).
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Candidate {
    /// Asked for; `Spawned` or `SpawnFailed` comes next.
    Starting,
    /// Runs, not ready yet.
    Up(Run),
    /// Ready: the loop was asked to switch the sockets to it (`Sockets::ToNew`); `Switched`
    /// comes next, and only then do the children swap (`Action::Switch`).
    Switching(Run),
    /// Failing or late: it got the stop signal (SIGKILL at `kill_at`); `reason` (`None`: how it
    /// ends, as the switch refused has no reason of its own in SPEC §5) and `detail` go into
    /// its `keep-old` record.
    Stopping {
        run: Run,
        reason: Option<Reason>,
        detail: String,
        kill_at: Option<Instant>,
    },
    /// Gone, recorded; what it left got SIGKILL. `why` is what `reload` will hear.
    Cleanup { why: String },
}

impl Machine {
    /// Whether the machine waits for the second child's leftovers: the loop then reports
    /// `OtherLeftovers` every turn.
    pub fn cleaning_other(&self) -> bool {
        matches!(
            self.state,
            State::Reloading {
                new: Candidate::Cleanup { .. },
                ..
            } | State::Draining { ended: true, .. }
        )
    }

    /// Whether the machine waits for the old child's sockets to empty before it stops it: the
    /// loop then reports `OldQueue` every turn.
    pub fn holding_old(&self) -> bool {
        matches!(self.state, State::Draining { hold: Some(_), .. })
    }

    /// Whether a reload's new child is being started and watched (the monitors watch it, not
    /// the old child, until the switch).
    pub fn watching_new(&self) -> bool {
        matches!(
            self.state,
            State::Reloading {
                new: Candidate::Up(_) | Candidate::Switching(_),
                ..
            }
        )
    }

    /// Whether a reload is under way (before or after its switch).
    pub(super) fn in_reload(&self) -> bool {
        matches!(self.state, State::Reloading { .. } | State::Draining { .. })
    }

    /// Reloads done in this run.
    pub fn reloads(&self) -> u64 {
        self.reloads
    }

    /// Starts a reload of the running child `old`: asked for with `restartd reload` (`asked`:
    /// the requester waits for the end), or by the machine itself (`--max-runtime` with sockets).
    /// Without sockets it is a restart (said so).
    pub(super) fn reload(&mut self, old: Run, ready: bool, asked: bool, now: Now) -> Vec<Action> {
        if !self.settings.sockets {
            let mut actions = vec![Action::Reply(Reply::OkSaying(
                "no --socket is held, so the reload is a restart (the port is closed meanwhile)"
                    .into(),
            ))];
            actions.extend(self.stop(old, super::Stop::Restart, now));
            return actions;
        }
        self.state = State::Reloading {
            old,
            ready,
            new: Candidate::Starting,
            until: now.mono + self.settings.reload_timeout(),
        };
        let mut actions = Vec::new();
        if asked {
            actions.push(Action::Reply(Reply::WhenReloaded));
        }
        actions.extend([
            Action::Monitors(false),
            Action::SaveState,
            Action::Tell(Tell::Reloading),
            Action::Sockets(Sockets::Open),
            Action::SpawnOther {
                restarts: self.restarts_run,
            },
        ]);
        actions
    }

    /// `(Reloading, input)`: the new child starts, becomes ready, or fails.
    pub(super) fn reloading(
        &mut self,
        old: Run,
        ready: bool,
        new: Candidate,
        until: Instant,
        input: Input,
        now: Now,
    ) -> Vec<Action> {
        use Candidate as C;
        use Input as I;
        let keep = |machine: &mut Machine, new| {
            machine.state = State::Reloading {
                old,
                ready,
                new,
                until,
            };
        };
        match (new, input) {
            (C::Starting, I::Spawned { pid, jitter }) => {
                let run = self.new_run(pid, jitter, now);
                // The time to be ready counts from the new child's start.
                self.state = State::Reloading {
                    old,
                    ready,
                    new: C::Up(run),
                    until: now.mono + self.settings.reload_timeout(),
                };
                // The monitors now watch the new child: its READY=1, its health checks.
                let mut actions = vec![Action::Monitors(true), Action::SaveState];
                if self.settings.ready_at_spawn() {
                    // Ready at spawn (SPEC §13).
                    actions.extend(self.switch_sockets(
                        old,
                        ready,
                        now.mono + self.settings.reload_timeout(),
                        run,
                    ));
                }
                actions
            }
            (C::Starting, I::SpawnFailed { error, .. }) => {
                let report = self.kept_old(None, None, Reason::SpawnFailed, Some(error), now);
                let why = format!("the new child could not be started: {}", detail(&report));
                self.keep_old(old, ready, report, why, now)
            }
            (C::Up(run), I::Ready) => self.switch_sockets(old, ready, until, run),
            (C::Switching(run), I::Switched { refused: None }) => self.switch(run, now),
            // The sockets could not be switched (a unix PATH or its temporary name was replaced
            // during the reload): nothing changed, and the new child, which no connection can
            // reach, goes; the old one keeps serving.
            (C::Switching(run), I::Switched { refused: Some(why) }) => {
                let detail = format!("its sockets could not be switched to it: {why}");
                self.stop_new(old, ready, until, run, None, detail, now)
            }
            (C::Up(run) | C::Switching(run), I::OtherEnded { end, leftovers }) => {
                let report = self.kept_old(Some(run), Some(end), Reason::of(end), None, now);
                let why = format!("the new child {}", ended_how(end));
                match leftovers {
                    true => {
                        keep(self, C::Cleanup { why });
                        vec![
                            Action::EndedOther(report),
                            Action::SignalOther(SIGKILL),
                            Action::SaveState,
                        ]
                    }
                    false => self.keep_old(old, ready, report, why, now),
                }
            }
            (C::Up(run), I::Tick) if until <= now.mono => {
                let detail = format!(
                    "not ready within {}",
                    crate::base::values::fmt_duration(self.settings.reload_timeout())
                );
                let reason = Some(Reason::StartTimeout);
                self.stop_new(old, ready, until, run, reason, detail, now)
            }
            (C::Up(run), I::Unhealthy { detail }) => {
                self.stop_new(old, ready, until, run, Some(Reason::Unhealthy), detail, now)
            }
            (C::Up(run), I::OverMemory { detail }) => {
                self.stop_new(old, ready, until, run, Some(Reason::Memory), detail, now)
            }
            (C::Up(run), I::WatchdogMissed { detail }) => {
                self.stop_new(old, ready, until, run, Some(Reason::Watchdog), detail, now)
            }
            (
                C::Stopping {
                    run,
                    reason,
                    detail,
                    kill_at: _,
                },
                I::OtherEnded { end, leftovers },
            ) => {
                let reason = reason.unwrap_or(Reason::of(end));
                let report = self.kept_old(Some(run), Some(end), reason, Some(detail), now);
                let why = format!("the new child was stopped: {}", steps::detail(&report));
                match leftovers {
                    true => {
                        keep(self, C::Cleanup { why });
                        vec![
                            Action::EndedOther(report),
                            Action::SignalOther(SIGKILL),
                            Action::SaveState,
                        ]
                    }
                    false => self.keep_old(old, ready, report, why, now),
                }
            }
            (
                C::Stopping {
                    run,
                    reason,
                    detail,
                    kill_at: Some(at),
                },
                I::Tick,
            ) if at <= now.mono => {
                keep(
                    self,
                    C::Stopping {
                        run,
                        reason,
                        detail,
                        kill_at: None,
                    },
                );
                vec![Action::SignalOther(SIGKILL)]
            }
            (C::Cleanup { why }, I::OtherLeftovers { alive: false }) => {
                let mut actions = vec![Action::ReleaseOther];
                actions.extend(self.back_to_old(old, ready, why, now));
                actions
            }
            (C::Cleanup { why }, I::OtherLeftovers { alive: true }) => {
                keep(self, C::Cleanup { why });
                vec![Action::SignalOther(SIGKILL)]
            }

            // The old child ended, or restartd is asked to stop: the reload is over, and the new
            // child is cleaned up with the old one's leftovers.
            (
                new,
                I::ChildEnded {
                    end, jitter, oom, ..
                },
            ) => {
                // The new child is among the leftovers now.
                let input = I::ChildEnded {
                    end,
                    leftovers: true,
                    jitter,
                    oom,
                };
                self.abandon(
                    old,
                    ready,
                    new,
                    input,
                    "the old child ended during the reload",
                    now,
                )
            }
            (new, input @ I::Signal { signal }) if super::STOP_SIGNALS.contains(&signal) => {
                self.abandon(old, ready, new, input, "restartd is stopping", now)
            }
            (new, input @ I::Request(Request::Stop)) => {
                self.abandon(old, ready, new, input, "restartd is stopping", now)
            }
            (new, I::Request(request @ (Request::Restart | Request::Reload))) => {
                keep(self, new);
                self.queue(request)
            }
            (new, I::Request(Request::Signal(sig))) => {
                keep(self, new);
                // The old child still serves: it is the child until the switch.
                vec![Action::Reply(Reply::Ok), Action::SignalGroup(sig)]
            }
            (new, I::Request(Request::Reset { crashes })) => {
                keep(self, new);
                self.reset(crashes)
            }
            (new, I::RestartReset) => {
                keep(self, new);
                self.restart_reset()
            }
            (new, I::Signal { signal }) => {
                keep(self, new);
                self.other_signal(signal)
            }
            // Facts that do not concern this stage.
            (
                new @ (C::Starting
                | C::Up(_)
                | C::Switching(_)
                | C::Stopping { .. }
                | C::Cleanup { .. }),
                input @ (I::Ready
                | I::Unhealthy { .. }
                | I::OverMemory { .. }
                | I::WatchdogMissed { .. }
                | I::Tick
                | I::Leftovers { .. }
                | I::OtherLeftovers { .. }
                | I::OldQueue { .. }),
            ) => {
                let _ = input;
                keep(self, new);
                vec![]
            }
            (
                new @ (C::Up(_) | C::Switching(_) | C::Stopping { .. } | C::Cleanup { .. }),
                input @ (I::Spawned { .. } | I::SpawnFailed { .. }),
            )
            | (new @ (C::Starting | C::Cleanup { .. }), input @ I::OtherEnded { .. })
            | (
                new @ (C::Starting | C::Up(_) | C::Stopping { .. } | C::Cleanup { .. }),
                input @ I::Switched { .. },
            ) => {
                keep(self, new);
                self.unexpected(&input)
            }
        }
    }

    /// `(Draining, input)`: the new child is the child; the old one is being stopped.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn draining(
        &mut self,
        run: Run,
        signal: i32,
        kill_at: Option<Instant>,
        ended: bool,
        hold: Option<Hold>,
        input: Input,
        now: Now,
    ) -> Vec<Action> {
        use Input as I;
        let keep = |machine: &mut Machine, signal, kill_at, ended| {
            machine.state = State::Draining {
                run,
                signal,
                kill_at,
                ended,
                hold,
            };
        };
        match input {
            I::OldQueue { queued } => match hold {
                // Reported every turn; looked at only when due.
                Some(h) if h.look_at > now.mono => {
                    keep(self, signal, kill_at, ended);
                    vec![]
                }
                Some(h) if queued > 0 && h.until > now.mono => {
                    let look_at = now.mono + HOLD_LOOK;
                    self.state = State::Draining {
                        run,
                        signal,
                        kill_at,
                        ended,
                        hold: Some(Hold { look_at, ..h }),
                    };
                    vec![]
                }
                // Empty, or waited long enough: now the old child is asked to stop.
                Some(_) => {
                    self.state = State::Draining {
                        run,
                        signal,
                        kill_at: Some(now.mono + self.settings.stop_timeout),
                        ended,
                        hold: None,
                    };
                    vec![Action::SignalOther(signal)]
                }
                None => {
                    keep(self, signal, kill_at, ended);
                    vec![]
                }
            },
            I::OtherEnded { end, leftovers } => {
                let report = self.replaced(end, now);
                let mut actions = vec![Action::EndedOther(report)];
                if leftovers {
                    // Ended by itself while held: its leftovers get the stop timeout from now.
                    self.state = State::Draining {
                        run,
                        signal,
                        kill_at: kill_at.or(Some(now.mono + self.settings.stop_timeout)),
                        ended: true,
                        hold: None,
                    };
                    actions.push(Action::SignalOther(signal));
                } else {
                    actions.extend(self.reloaded(run));
                }
                actions
            }
            I::OtherLeftovers { alive: true } => {
                keep(self, signal, kill_at, ended);
                vec![Action::SignalOther(signal)]
            }
            I::OtherLeftovers { alive: false } => self.reloaded(run),
            I::Tick if kill_at.is_some_and(|at| at <= now.mono) => {
                keep(self, SIGKILL, None, ended);
                vec![Action::SignalOther(SIGKILL)]
            }
            I::Request(request @ (Request::Restart | Request::Reload)) => {
                keep(self, signal, kill_at, ended);
                self.queue(request)
            }
            // The new child is the child: everything else is as in `Running`. What changes the
            // state ends the reload first; the old child is cleaned up with the child's leftovers.
            I::ChildEnded {
                end, jitter, oom, ..
            } => {
                let input = I::ChildEnded {
                    end,
                    leftovers: true,
                    jitter,
                    oom,
                };
                self.fold_into_running(run, input, now)
            }
            input @ (I::Unhealthy { .. } | I::OverMemory { .. } | I::WatchdogMissed { .. }) => {
                self.fold_into_running(run, input, now)
            }
            input @ I::Signal { signal: sig } if super::STOP_SIGNALS.contains(&sig) => {
                self.fold_into_running(run, input, now)
            }
            input @ I::Request(Request::Stop) => self.fold_into_running(run, input, now),
            I::Signal { signal: sig } => {
                keep(self, signal, kill_at, ended);
                self.other_signal(sig)
            }
            I::Request(Request::Signal(sig)) => {
                keep(self, signal, kill_at, ended);
                vec![Action::Reply(Reply::Ok), Action::SignalGroup(sig)]
            }
            I::Request(Request::Reset { crashes }) => {
                keep(self, signal, kill_at, ended);
                self.reset(crashes)
            }
            I::RestartReset => {
                keep(self, signal, kill_at, ended);
                self.restart_reset()
            }
            input @ (I::Ready | I::Tick | I::Leftovers { .. }) => {
                let _ = input;
                keep(self, signal, kill_at, ended);
                vec![]
            }
            input @ (I::Spawned { .. } | I::SpawnFailed { .. } | I::Switched { .. }) => {
                keep(self, signal, kill_at, ended);
                self.unexpected(&input)
            }
        }
    }
}

mod steps;
use steps::{detail, ended_how};

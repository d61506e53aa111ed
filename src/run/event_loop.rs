//! The only poll(2): owns the fds (signal pipe, the child's output, control socket, sd_notify
//! and health sockets, and through `observe` the `--listen` sockets), reads the clock once a
//! turn, turns what happened into `Input`s, feeds them to the machine and carries out its
//! `Action`s in order.
//!
//! It decides nothing: whether to restart, whom to signal, when to stop waiting, which monitors
//! run and what systemd hears are the machine's. With no deadline pending it blocks with no
//! timeout, so a quiet child costs no wakeups (SPEC §5). Order in a turn: drain the signal pipe
//! then take the flags; copy the child's output; reap everything; the leftovers, the monitors,
//! control requests, HTTP; tick. The parts it drives each own one thing: `Family` the child and
//! its group, `Monitors` what watches the child, `Recorder` what is written about it.

use std::collections::VecDeque;
use std::time::Instant;

use nix::libc;
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};

use crate::base::exit::signal_name;
use crate::observe::Observe;
use crate::process::procs;
use crate::process::procs::Reaped;
use crate::process::signals::{self, Inherited, SignalPipe};
use crate::records::instance::Instance;
use crate::run::control::{self, Pending};
use crate::run::envfiles::EnvFiles;
use crate::run::family::Family;
use crate::run::lineage::Lineage;
use crate::run::log::Logger;
use crate::run::monitors::Monitors;
use crate::run::recorder::Recorder;
use crate::supervise::config::Config;
use crate::supervise::machine::{Action, Input, Machine, Now, Reply, Request, Tell};

mod build;
mod second;
mod spawn;
mod tree;
mod wait;

/// What happened, for the machine; a control request brings the connection to answer on.
struct Event {
    input: Input,
    pending: Option<Pending>,
}

impl From<Input> for Event {
    fn from(input: Input) -> Event {
        Event {
            input,
            pending: None,
        }
    }
}

/// Which polled fds were ready at the last poll.
#[derive(Default)]
struct Ready {
    health: bool,
    control: bool,
    observe: bool,
}

/// The loop and the parts it drives.
pub struct Supervisor {
    cfg: Config,
    log: Logger,
    machine: Machine,
    _instance: Instance,
    family: Family,
    monitors: Monitors,
    recorder: Recorder,
    control: control::Server,
    signals: SignalPipe,
    inherited: Inherited,
    /// `--listen` and `--metrics-file`.
    observe: Option<Observe>,
    ready: Ready,
    /// restartd adopts its child's orphans (PR_SET_CHILD_SUBREAPER took).
    subreaper: bool,
    /// The first turn reaps whether SIGCHLD came or not.
    reap_first: bool,
    /// Whose each adopted process is: only the child's are its leftovers.
    lineage: Lineage,
    /// The time of this turn (`Now::read`), and of the last look at the child's tree.
    turn: Instant,
    looked: Option<Instant>,
    /// A look for the OOM watch held back by `oom::next_look` is due then.
    look_due: Option<Instant>,
    /// Whether the free heap was given back (see `trim`).
    trimmed: bool,
    env_files: EnvFiles,
    rng: u64,
    /// The `--socket`s, held until restartd exits.
    listeners: crate::process::sockets::Listeners,
}

impl Supervisor {
    pub fn run(mut self) -> u8 {
        // A stop signal that came while restartd was getting ready (stopping a previous run's
        // strays can take --stop-timeout) is served before anything starts.
        self.signals.drain();
        let mut now = Now::read();
        for sig in [libc::SIGTERM, libc::SIGINT, libc::SIGQUIT] {
            if signals::take(sig) > 0 {
                self.log
                    .info(&format!("received {}, stopping", signal_name(sig)));
                let actions = self.machine.handle(Input::Signal { signal: sig }, now);
                let mut none = VecDeque::new();
                if let Some(code) = self.execute(actions, &mut None, &mut none, now) {
                    return code;
                }
            }
        }
        // Any other signal of that time has no child to go to: dropped, not kept for a later
        // turn (its wake-up is drained), which would forward it at a moment nobody chose. A stop
        // signal that comes meanwhile is left to the loop (its wake-up is not drained).
        let kept = [libc::SIGTERM, libc::SIGINT, libc::SIGQUIT, libc::SIGCHLD];
        for sig in signals::HANDLED {
            if !kept.contains(&sig) && signals::take(sig) > 0 {
                self.log.info(&format!(
                    "received {} before the child started: not forwarded",
                    signal_name(sig)
                ));
            }
        }
        let actions = self.machine.start(now);
        let mut events = VecDeque::new();
        if let Some(code) = self.execute(actions, &mut None, &mut events, now) {
            return code;
        }
        loop {
            if let Some(code) = self.feed(events, now) {
                return code;
            }
            self.wait();
            now = Now::read();
            self.turn = now.mono;
            // Signals first, before anything else is read: a SIGTERM reaches the child's group
            // without waiting for the output copy, reaping and the monitors of this turn.
            let signals = self.signal_events();
            if let Some(code) = self.feed(signals, now) {
                return code;
            }
            events = self.gather(now);
        }
    }

    /// Feeds each event to the machine and carries out what it answers; an input a spawn gives
    /// back (`Spawned`, `SpawnFailed`) is fed next, before anything else. `Some(status)` when
    /// restartd is to exit.
    fn feed(&mut self, mut events: VecDeque<Event>, now: Now) -> Option<u8> {
        while let Some(Event { input, mut pending }) = events.pop_front() {
            let actions = self.machine.handle(input, now);
            let code = self.execute(actions, &mut pending, &mut events, now);
            if let Some(p) = pending {
                // The machine answers every request it can take; this one cannot happen now.
                p.error(&format!(
                    "not possible while {}",
                    self.machine.status().as_str()
                ));
            }
            if code.is_some() {
                // Requests still queued behind the exit get an answer, not a closed socket.
                for Event { pending, .. } in events {
                    if let Some(p) = pending {
                        p.error("restartd is exiting");
                    }
                }
                return code;
            }
        }
        None
    }

    /// The signals that came since the last turn (SIGCHLD aside: `gather` reaps for it).
    fn signal_events(&mut self) -> VecDeque<Event> {
        let mut events = VecDeque::new();
        self.signals.drain();
        for sig in signals::HANDLED {
            if sig == libc::SIGCHLD {
                continue;
            }
            for _ in 0..signals::repeats(sig, signals::take(sig)) {
                if matches!(sig, libc::SIGTERM | libc::SIGINT | libc::SIGQUIT) {
                    self.log
                        .info(&format!("received {}, stopping", signal_name(sig)));
                } else {
                    self.log.debug(&format!("received {}", signal_name(sig)));
                }
                events.push_back(Input::Signal { signal: sig }.into());
            }
        }
        events
    }

    /// Turns everything else that happened into events, in a fixed order.
    fn gather(&mut self, now: Now) -> VecDeque<Event> {
        let mut events = VecDeque::new();
        // Every end of a child raises SIGCHLD, so reaping (a /proc read while the child's group
        // is held) waits for it instead of costing every turn of the output copy. The first turn
        // reaps in any case: restartd may have been exec'd with ended children.
        let reap = signals::take(libc::SIGCHLD) > 0 || std::mem::take(&mut self.reap_first);

        self.copy_output();
        let ended = match reap {
            true => self.family.check_end(),
            false => None,
        }
        .map(|(end, problems)| {
            for problem in problems {
                self.log.warn(&problem);
            }
            end
        });
        // Who was orphaned by what ended is judged now (`lineage`), while what ended is still
        // there to be seen (a zombie, with its start time), before anything acts on it.
        if reap || self.machine.cleaning() {
            self.look();
        }
        self.look_for_oom();
        if reap {
            for reaped in self.family.reap_others() {
                self.reaped(reaped, now, &mut events);
            }
        }
        if reap {
            self.other_ended(&mut events);
        } else if self.machine.cleaning_other() {
            let alive = self.other_leftovers_alive();
            events.push_back(Input::OtherLeftovers { alive }.into());
        }
        if self.machine.holding_old() {
            let queued = self.listeners.old_queued();
            events.push_back(Input::OldQueue { queued }.into());
        }
        if let Some(end) = ended {
            let oom = self.family.oom(end);
            let leftovers = self.leftovers_alive();
            let jitter = self.jitter_sample();
            events.push_back(
                Input::ChildEnded {
                    end,
                    leftovers,
                    jitter,
                    oom,
                }
                .into(),
            );
        } else if self.machine.cleaning() {
            let alive = self.leftovers_alive();
            events.push_back(Input::Leftovers { alive }.into());
        }

        let group = match self.machine.watching_new() {
            // During a reload the monitors watch the new child.
            true => self.family.other_group(),
            false => self.family.pid().and(self.family.group()),
        };
        let (changed, inputs) = self.monitors.notifications(group, now.mono, &self.log);
        self.note(changed);
        events.extend(inputs.into_iter().map(Event::from));
        if self.ready.health {
            let (changed, input) = self.monitors.health_io(now.mono, &self.log);
            self.note(changed);
            events.extend(input.map(Event::from));
        }
        let lineage = &self.lineage;
        let family = &self.family;
        // During a reload the new child is watched: its group and its tree only.
        let new = self.machine.watching_new();
        let watched = match new {
            true => family.other_group(),
            false => family.group().filter(|_| family.pid().is_some()),
        };
        let others = || {
            procs::children()
                .into_iter()
                .filter(|&p| Some(p) != watched && lineage.is_childs(p))
                .filter(|&p| family.of_other(p) == new && Some(p) != family.group())
                .collect()
        };
        let (changed, inputs) = self.monitors.ticks(now.mono, watched, others, &self.log);
        self.note(changed);
        events.extend(inputs.into_iter().map(Event::from));
        self.monitors.upward_tick(now.mono);

        if self.ready.control || self.control.deadline().is_some_and(|d| d <= now.mono) {
            for pending in self.control.requests(now.mono) {
                events.push_back(Event {
                    input: Input::Request(pending.request),
                    pending: Some(pending),
                });
            }
        }

        self.serve_http(now);

        if self
            .recorder
            .hooks
            .deadline()
            .is_some_and(|d| d <= now.mono)
        {
            for problem in self.recorder.hooks.kill_overdue(now.mono) {
                self.log.warn(&problem);
            }
        }
        if self.machine.deadline().is_some_and(|d| d <= now.mono) {
            events.push_back(Input::Tick.into());
        }
        events
    }

    /// One reaped process, to whoever it belongs: a hook, a health check, or an orphan restartd
    /// adopted (the main child is not reaped here: `Family` holds it until it is released).
    fn reaped(&mut self, reaped: Reaped, now: Now, events: &mut VecDeque<Event>) {
        if self.recorder.hooks.owns(reaped.pid) {
            self.lineage.helper_reaped();
            if let Some(ended) = self.recorder.hooks.reaped(reaped.pid, reaped.end) {
                self.log.pass_on(&ended.output);
                for problem in ended.problems {
                    self.log.warn(&problem);
                }
            }
            self.recorder.hooks.forget_empty_groups();
        } else if self.monitors.owns(reaped.pid) {
            self.lineage.helper_reaped();
            let (changed, input) = self
                .monitors
                .health_reaped(reaped.pid, reaped.end, now.mono, &self.log);
            self.note(changed);
            events.extend(input.map(Event::from));
        } else {
            self.log.debug(&format!(
                "reaped orphan {} ({})",
                reaped.pid,
                reaped.end.describe()
            ));
        }
    }

    /// Serves `--listen`: the state is built only when a whole request waits for it, not at
    /// every accept, partial read or write.
    fn serve_http(&mut self, now: Now) {
        let Some(observe) = &mut self.observe else {
            return;
        };
        let overdue = observe.deadline().is_some_and(|d| d <= now.mono);
        if !self.ready.observe && !overdue {
            return;
        }
        let incoming = observe.io(now.mono);
        if !incoming.is_empty() {
            let state = self.recorder.state_file(&self.machine, &self.monitors);
            observe.answer(incoming, &state, now.wall);
        }
        observe.finish(now.mono);
    }

    /// Carries out `actions` in order, answering the request in `pending` when the machine
    /// replies; a spawn's result goes to the front of `events`. `Some(status)` when restartd is
    /// to exit.
    fn execute(
        &mut self,
        actions: Vec<Action>,
        pending: &mut Option<Pending>,
        events: &mut VecDeque<Event>,
        now: Now,
    ) -> Option<u8> {
        for action in actions {
            match action {
                Action::Spawn { restarts } => events.push_front(self.spawn(restarts, false).into()),
                Action::SpawnOther { restarts } => {
                    events.push_front(self.spawn(restarts, true).into())
                }
                Action::Switch => self.family.switch(),
                Action::Sockets(step) => {
                    // The switch is answered at once, before any other event (as a spawn).
                    if let Some(switched) = self.sockets(step) {
                        events.push_front(switched.into());
                    }
                }
                Action::SignalOther(sig) => {
                    // As SignalAll: only what the look proved of the child's trees.
                    self.look();
                    let lineage = &self.lineage;
                    self.family.signal_other(sig, |pid| !lineage.is_childs(pid));
                }
                Action::ReleaseOther => self.family.release_other(),
                Action::Fold => self.family.fold(),
                Action::EndedOther(report) => {
                    // The second child's record: its own tail and usage; what the upward
                    // STATUS= says is the child's, which goes on.
                    let _ = self.recorder.ended(
                        &report,
                        now,
                        &self.family.output.other_tail,
                        self.family.other_usage(),
                        &mut self.log,
                        self.observe.as_mut(),
                    );
                }
                Action::Reloaded(result) => self.reloaded(result),
                Action::ReplyQueued(request, reply) => self.reply_queued(request, reply),
                Action::SignalGroup(sig) => self.family.signal_group(sig),
                Action::SignalChild(sig) => self.family.signal_child(sig),
                Action::SignalAll(sig) => {
                    // The held group first (no /proc read), then whose the adopted are.
                    self.family.signal_held_group(sig);
                    // Only what the look proved the child's: a process adopted since is
                    // judged at the next look, never signalled unjudged.
                    self.look();
                    let lineage = &self.lineage;
                    self.family.signal_all(sig, |pid| !lineage.is_childs(pid));
                }
                Action::Abandon => self.abandon(),
                Action::Release => self.family.release(),
                Action::SuspendSelf => {
                    self.save();
                    let _ = nix::sys::signal::raise(nix::sys::signal::Signal::SIGSTOP);
                }
                Action::Monitors(true) => self.monitors.start(now.mono),
                Action::Monitors(false) => self.monitors.stop(),
                Action::Tell(what) => {
                    if what == Tell::Ready {
                        self.log.debug("the child is ready");
                    }
                    self.monitors.tell(what);
                }
                Action::Reply(reply) => self.reply(pending.take(), reply),
                Action::Ended(mut report) => {
                    self.monitors.explain(&mut report);
                    let error = self.recorder.ended(
                        &report,
                        now,
                        &self.family.output.tail,
                        self.family.usage(),
                        &mut self.log,
                        self.observe.as_mut(),
                    );
                    self.monitors.ended(&report, error.as_deref());
                }
                Action::ClearCrashes => match self.recorder.clear_crashes() {
                    Ok(()) => {
                        if let Some(observe) = &mut self.observe {
                            observe.crashes_cleared();
                        }
                    }
                    Err(problem) => {
                        self.log.warn(&problem);
                        // The requester hears it; the machine's `Ok` that follows finds no one.
                        if let Some(p) = pending.take() {
                            p.error(&problem);
                        }
                    }
                },
                Action::SaveState => self.recorder.changed(),
                Action::Unexpected(msg) => self.log.warn(&msg),
                Action::Exit(code) => {
                    self.recorder.changed();
                    self.save();
                    self.monitors.flush_upward();
                    self.log.flush_suppressed();
                    self.wait_for_hooks(now);
                    self.family.output.finish(self.machine.stop_by());
                    return Some(code);
                }
            }
        }
        None
    }

    /// Answers a control request as the machine decided.
    fn reply(&mut self, pending: Option<Pending>, reply: Reply) {
        let Some(pending) = pending else {
            return;
        };
        let changes = !matches!(pending.request, Request::Signal(_));
        if changes && matches!(reply, Reply::Ok | Reply::OkSaying(_)) {
            // What the requester reads in state.json once answered is what it asked for.
            self.recorder.changed();
            self.save();
        }
        match (reply, pending.request) {
            (Reply::Refused(msg), _) => pending.error(&msg),
            (Reply::WhenStopped, _) => pending.ok_and_wait(&mut self.control),
            (Reply::WhenReloaded, _) => {
                self.log.info("reload requested: starting the new child");
                pending.wait_for_reload(&mut self.control)
            }
            (Reply::AfterReload, request) => {
                let what = match request {
                    Request::Restart => "restart",
                    _ => "reload",
                };
                self.log.info(&format!(
                    "{what} requested while a reload is under way: it follows once this one is over"
                ));
                pending.wait_behind_reload(&mut self.control)
            }
            (Reply::OkSaying(msg), _) => {
                self.log.info(&format!("reload requested: {msg}"));
                pending.ok_saying(&msg)
            }
            (Reply::Ok, request) => {
                match request {
                    Request::Restart => self.log.info("restart requested"),
                    Request::Reset { crashes: false } => {
                        self.log.info("restart window cleared on request")
                    }
                    Request::Reset { crashes: true } => self
                        .log
                        .info("restart window and crash history cleared on request"),
                    Request::Stop | Request::Reload | Request::Signal(_) => {}
                }
                pending.ok();
            }
        }
    }

    fn note(&mut self, changed: bool) {
        if changed {
            self.recorder.changed();
        }
    }

    fn save(&mut self) {
        if self.recorder.dirty() {
            self.look();
            self.recorder.tree = self.tree();
        }
        self.recorder.save_if_dirty(
            &self.machine,
            &self.monitors,
            &self.log,
            self.observe.as_mut(),
        );
    }

    /// Before exiting: hooks still running get up to their timeout, so a give-up alert is always
    /// delivered. Signals are not acted on meanwhile; SIGCHLD only wakes the wait.
    fn wait_for_hooks(&mut self, now: Now) {
        while !self.recorder.hooks.idle() {
            // systemd's watchdog is still armed (a give-up sends no STOPPING=1): it stays fed,
            // or systemd would abort restartd and kill the hook it waits for.
            self.monitors.upward_tick(Instant::now());
            let deadline = [
                self.recorder.hooks.deadline(),
                self.monitors.upward_deadline(),
            ]
            .into_iter()
            .flatten()
            .min();
            if let Some(deadline) = deadline {
                let left = deadline.saturating_duration_since(Instant::now());
                let ms = left.as_millis().min(i32::MAX as u128) as i32 + 1;
                let mut fds = [PollFd::new(self.signals.fd(), PollFlags::POLLIN)];
                let _ = poll(
                    &mut fds,
                    PollTimeout::try_from(ms).unwrap_or(PollTimeout::MAX),
                );
            }
            self.signals.drain();
            let mut ignored = VecDeque::new();
            for reaped in self.family.reap_others() {
                self.reaped(reaped, now, &mut ignored);
            }
            for problem in self.recorder.hooks.kill_overdue(Instant::now()) {
                self.log.warn(&problem);
            }
        }
    }

    /// Copies what the child wrote on to restartd's stdout/stderr and the log file.
    fn copy_output(&mut self) {
        for problem in self.family.output.copy() {
            self.log.warn(&problem);
        }
        if let Some(problem) = self.family.output.log_work() {
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

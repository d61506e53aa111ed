//! The child and what belongs to it: its pid while it runs, its process group until the machine
//! releases it, the processes it left behind, and its output pipes.
//!
//! The child leads its process group, and restartd does not reap it when it ends: it learns how
//! it ended with `waitid(WNOWAIT)` and reaps it only when the machine releases the group, so the
//! group id cannot be taken by an unrelated process while restartd may still signal it (SPEC
//! §10). Every other process restartd signals is its own unreaped child (an adopted orphan),
//! whose pid cannot be reused either. `Family` carries out the machine's signal actions and
//! answers the loop's questions (has the child ended? is anything of it left?); it decides
//! nothing.

use std::io;

use crate::base::exit::ProcessEnd;
use crate::process::child::{self, Start};
use crate::process::oom;
use crate::process::output::Output;
use crate::process::procs;
use crate::process::procs::{Reaped, Usage};
use crate::process::signals::Inherited;

mod second;

/// Who already got the signal of the current stop or cleanup, so that a repeated `SignalAll`
/// reaches only processes that appeared since.
#[derive(Debug, Default)]
struct Sent {
    signal: i32,
    groups: Vec<i32>,
    pids: Vec<i32>,
}

/// The child, its group and its output.
pub struct Family {
    /// The last child's pid, which is its process group's id: not reaped until released.
    leader: Option<i32>,
    /// The leader has not ended yet.
    running: bool,
    sent: Option<Sent>,
    /// What the last main child used.
    usage: Option<Usage>,
    /// The OOM counters at the last child's start.
    oom: Option<oom::Watch>,
    /// The child's stderr and stdout on their way out, and the tail of stderr.
    pub output: Output,
    /// A reload's second child (`second.rs`).
    other: Option<second::Tree>,
    /// During a reload, before the switch: the child's adopted descendants when the new child
    /// started.
    known: Vec<i32>,
}

impl Family {
    pub fn new(output: Output) -> Family {
        Family {
            leader: None,
            running: false,
            sent: None,
            usage: None,
            oom: None,
            output,
            other: None,
            known: Vec::new(),
        }
    }

    /// Starts the child in a process group of its own; returns its pid.
    pub fn spawn(&mut self, start: Start, inherited: Inherited) -> io::Result<i32> {
        self.sent = None;
        self.usage = None;
        // Before the fork, so that the kernel's lines about the child are all after it; a start
        // that fails drops it (with its /dev/kmsg descriptor, which a crash record may need).
        let watch = oom::Watch::start();
        self.oom = None;
        let spawned = child::spawn(start, inherited)?;
        self.oom = Some(watch);
        self.leader = Some(spawned.pid);
        self.running = true;
        self.output.attach(spawned.stderr, spawned.stdout);
        Ok(spawned.pid)
    }

    /// The live main child.
    pub fn pid(&self) -> Option<i32> {
        self.leader.filter(|_| self.running)
    }

    /// The last child's process group, while it is not released.
    pub fn group(&self) -> Option<i32> {
        self.leader
    }

    /// If the main child has ended since the last call: how. It stays unreaped. Its last lines
    /// are in the pipe by now and are read into the tail (problems are returned for the log).
    pub fn check_end(&mut self) -> Option<(ProcessEnd, Vec<String>)> {
        let pid = self.pid()?;
        let (end, usage) = procs::peek_end(pid)?;
        self.running = false;
        self.usage = Some(usage);
        Some((end, self.output.detach()))
    }

    /// Reaps every other child of restartd that has ended (never the held leader).
    pub fn reap_others(&self) -> Vec<Reaped> {
        let other = self.other.as_ref().map(|t| t.leader);
        match self.leader.or(other) {
            None => std::iter::from_fn(procs::reap).collect(),
            Some(_) => procs::children()
                .into_iter()
                .filter(|&pid| Some(pid) != self.leader && Some(pid) != other)
                .filter_map(procs::reap_pid)
                .collect(),
        }
    }

    /// Whether the kernel's OOM killer ended the last child (`end` is how it ended): the
    /// `detail` saying how that is known.
    pub fn oom(&mut self, end: ProcessEnd) -> Option<String> {
        let leader = self.leader?;
        self.oom.as_mut()?.end(leader, end)
    }

    /// Whether the OOM watch of the running child wants looks at its tree (`oom::Watch`).
    pub fn oom_wants_looks(&self) -> bool {
        self.running && self.oom.as_ref().is_some_and(oom::Watch::wants_looks)
    }

    /// A look saw the child's tree (pids, zombies too): for the OOM watch.
    pub fn saw_tree(&mut self, tree: &[i32]) {
        // See: issue 18 (review). During a reload the second child's tree is not the child's:
        // a draining old child's worker killed by the OOM killer was taken for the new child's.
        let tree: Vec<i32> = match self.other {
            Some(_) => tree
                .iter()
                .copied()
                .filter(|&p| !self.of_other(p))
                .collect(),
            None => tree.to_vec(),
        };
        if let (Some(leader), Some(watch)) = (self.leader, self.oom.as_mut()) {
            watch.look(leader, &tree);
        }
    }

    /// What the last main child used, once it was reaped.
    pub fn usage(&self) -> Option<Usage> {
        self.usage
    }

    /// The machine is done with the last child's group: the leader is reaped, and nothing of
    /// the group is signalled any more.
    pub fn release(&mut self) {
        if let Some(leader) = self.leader.take() {
            // It has ended (the machine releases only after `ChildEnded`): no wait.
            let _ = procs::reap_pid(leader);
        }
        self.running = false;
        self.sent = None;
    }

    /// Signals the child's process group.
    pub fn signal_group(&self, sig: i32) {
        self.note_sent(sig);
        if let Some(group) = self.leader {
            procs::signal_group(group, sig);
            procs::let_run();
        }
    }

    /// Signals the main child only, while it runs.
    pub fn signal_child(&self, sig: i32) {
        self.note_sent(sig);
        if let Some(pid) = self.pid() {
            procs::signal_process(pid, sig);
            procs::let_run();
        }
    }

    /// Sends `sig` to the child's group and to every reparented descendant (and its group), once
    /// per signal: a repeated call only reaches processes that appeared since. `helper(pid)`
    /// says what is not proven the child's (restartd's own hooks and health checks and what
    /// they left, SPEC §7; orphans of unknown origin: `run::lineage`); those are never signalled.
    pub fn signal_all(&mut self, sig: i32, helper: impl Fn(i32) -> bool) {
        self.signal_held_group(sig);
        let other: Vec<i32> = match &self.other {
            Some(_) => procs::children()
                .into_iter()
                .filter(|&p| self.of_other(p))
                .collect(),
            None => Vec::new(),
        };
        let other_group = self.other.as_ref().map(|t| t.leader);
        let Some(sent) = self.sent.as_mut() else {
            return;
        };
        let own_group = nix::unistd::getpgrp().as_raw();
        for pid in procs::children() {
            if Some(pid) == self.leader
                || sent.pids.contains(&pid)
                || helper(pid)
                || other.contains(&pid)
            {
                continue;
            }
            // A daemon that left the group (setsid) leads its own, with its children in it.
            let group = procs::group_of(pid).filter(|&g| g != own_group && Some(g) != other_group);
            if let Some(pgid) = group {
                if !sent.groups.contains(&pgid) {
                    procs::signal_group(pgid, sig);
                    sent.groups.push(pgid);
                }
            }
            procs::signal_process(pid, sig);
            sent.pids.push(pid);
        }
    }

    /// A signal restartd sends the child counts for the OOM watch (its own SIGKILL explains a
    /// SIGKILL death).
    fn note_sent(&self, sig: i32) {
        if let Some(watch) = &self.oom {
            watch.sent(sig);
        }
    }

    /// The first step of `signal_all`: the child's group, once per signal. It needs no /proc
    /// read, so the loop takes it before working out which adopted processes are the child's:
    /// nothing stands between a SIGTERM to restartd and the child hearing it.
    pub fn signal_held_group(&mut self, sig: i32) {
        self.note_sent(sig);
        if self.sent.as_ref().is_none_or(|s| s.signal != sig) {
            self.sent = Some(Sent {
                signal: sig,
                ..Sent::default()
            });
        }
        if let (Some(group), Some(sent)) = (self.leader, self.sent.as_mut()) {
            if !sent.groups.contains(&group) {
                procs::signal_group(group, sig);
                procs::let_run();
                sent.groups.push(group);
            }
        }
    }

    /// Whether anything of the last child is alive: a process restartd adopted that `helper(pid)`
    /// does not rule out (see `signal_all`). Call after `reap_others`. Every live member of the
    /// child's group descends from the child, so restartd, a child subreaper, has adopted it or
    /// one of its ancestors (the held leader itself is a zombie and does not count). When
    /// restartd could not become a subreaper, the group is asked instead.
    pub fn leftovers_alive(&self, subreaper: bool, helper: impl Fn(i32) -> bool) -> bool {
        let adopted = procs::children()
            .iter()
            .any(|&pid| Some(pid) != self.leader && !helper(pid) && !self.of_other(pid));
        adopted || (!subreaper && self.leader.is_some_and(procs::group_has_others))
    }
}

//! The child and what belongs to it: its pid while it runs, its process group until the machine
//! releases it, the processes it left behind, and its output pipes.
//!
//! `Family` carries out the machine's signal actions (group, main child, everything left) and
//! answers the loop's questions (is this pid the child? is anything of it left?). It decides
//! nothing: whom a signal reaches is fixed by what the machine asked for.

use std::io;

use crate::base::exit::ProcessEnd;
use crate::process::child::{self, Reaped, Start, Usage};
use crate::process::output::Output;
use crate::process::signals::Inherited;

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
    /// The live main child.
    child: Option<i32>,
    /// The last child's process group, kept until the machine releases it.
    group: Option<i32>,
    sent: Option<Sent>,
    /// What the last main child used.
    usage: Option<Usage>,
    /// The child's stderr and stdout on their way out, and the tail of stderr.
    pub output: Output,
}

impl Family {
    pub fn new(output: Output) -> Family {
        Family {
            child: None,
            group: None,
            sent: None,
            usage: None,
            output,
        }
    }

    /// Starts the child in a process group of its own; returns its pid.
    pub fn spawn(&mut self, start: Start, inherited: Inherited) -> io::Result<i32> {
        self.sent = None;
        self.usage = None;
        let spawned = child::spawn(start, inherited)?;
        self.child = Some(spawned.pid);
        self.group = Some(spawned.pid);
        self.output.attach(spawned.stderr, spawned.stdout);
        Ok(spawned.pid)
    }

    /// The live main child.
    pub fn pid(&self) -> Option<i32> {
        self.child
    }

    /// The last child's process group, while it is not released.
    pub fn group(&self) -> Option<i32> {
        self.group
    }

    /// If `reaped` is the main child: it is gone; returns how it ended. Its last lines are in
    /// the pipe by now and are read into the tail (problems are returned for the log).
    pub fn reaped(&mut self, reaped: &Reaped) -> Option<(ProcessEnd, Vec<String>)> {
        if Some(reaped.pid) != self.child {
            return None;
        }
        self.child = None;
        self.usage = Some(reaped.usage);
        Some((reaped.end, self.output.detach()))
    }

    /// What the last main child used, once it was reaped.
    pub fn usage(&self) -> Option<Usage> {
        self.usage
    }

    /// The machine is done with the last child's group.
    pub fn release(&mut self) {
        self.group = None;
        self.sent = None;
    }

    /// Signals the child's process group.
    pub fn signal_group(&self, sig: i32) {
        if let Some(group) = self.group {
            child::signal_group(group, sig);
        }
    }

    /// Signals the main child only.
    pub fn signal_child(&self, sig: i32) {
        if let Some(pid) = self.child {
            child::signal_process(pid, sig);
        }
    }

    /// Sends `sig` to the child's group and to every reparented descendant (and its group), once
    /// per signal: a repeated call only reaches processes that appeared since. restartd's own
    /// helpers (`helper(pid)`: hooks, health checks) are never the child's (SPEC §7).
    pub fn signal_all(&mut self, sig: i32, helper: impl Fn(i32) -> bool) {
        if self.sent.as_ref().is_none_or(|s| s.signal != sig) {
            self.sent = Some(Sent {
                signal: sig,
                ..Sent::default()
            });
        }
        let Some(sent) = self.sent.as_mut() else {
            return;
        };
        let own_group = nix::unistd::getpgrp().as_raw();
        if let Some(group) = self.group {
            if !sent.groups.contains(&group) {
                child::signal_group(group, sig);
                sent.groups.push(group);
            }
        }
        for pid in child::children() {
            if Some(pid) == self.child || sent.pids.contains(&pid) || helper(pid) {
                continue;
            }
            // A daemon that left the group (setsid) leads its own, with its children in it.
            if let Some(pgid) = child::group_of(pid).filter(|&g| g != own_group) {
                if !sent.groups.contains(&pgid) {
                    child::signal_group(pgid, sig);
                    sent.groups.push(pgid);
                }
            }
            child::signal_process(pid, sig);
            sent.pids.push(pid);
        }
    }

    /// Whether anything of the last child is alive: its group, or a reparented descendant that
    /// is not one of restartd's own helpers (`helper(pid)`).
    pub fn leftovers_alive(&self, helper: impl Fn(i32) -> bool) -> bool {
        self.group.is_some_and(child::group_alive)
            || child::children()
                .iter()
                .any(|&pid| Some(pid) != self.child && !helper(pid))
    }
}

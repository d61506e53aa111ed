//! A reload's second child (SPEC §11): beside the child, for the time of a reload, a second
//! child with its own process group, adopted descendants, output and usage. Before the switch
//! the second child is the new one; after it, the old one, draining.
//!
//! Each tree is kept apart so that stopping one never signals the other (SPEC §10): a process
//! belongs to the second tree when it is its leader, is in its leader's group, or was adopted
//! from the old child before the switch (`adopted`). Orphans restartd adopts during the overlap
//! that are in neither group (a daemon that called setsid) cannot be told apart; they stay with
//! the child (the new one after the switch) and are never signalled by the old one's cleanup.

use std::io;

use super::{Family, Sent};
use crate::base::exit::ProcessEnd;
use crate::process::child::{self, Start};
use crate::process::oom;
use crate::process::procs::{self, Usage};
use crate::process::signals::Inherited;

/// One child's tree, apart from the child's.
#[derive(Debug)]
pub(super) struct Tree {
    pub(super) leader: i32,
    pub(super) running: bool,
    pub(super) sent: Option<Sent>,
    pub(super) usage: Option<Usage>,
    /// Adopted descendants known to be of this tree, whatever their group.
    pub(super) adopted: Vec<i32>,
    /// The new child's OOM watch, from before its fork: the child's from the switch on.
    pub(super) oom: Option<oom::Watch>,
}

impl Family {
    /// Starts a reload's new child beside the child; returns its pid. The child's adopted
    /// descendants as of now are the child's (`helper`: restartd's own hooks and checks).
    pub fn spawn_other(
        &mut self,
        start: Start,
        inherited: Inherited,
        helper: impl Fn(i32) -> bool,
    ) -> io::Result<i32> {
        // As for the child (`spawn`): before the fork, so that its counters and kill lines are
        // the new child's own, not the old child's since its start.
        let watch = oom::Watch::start();
        let spawned = child::spawn(start, inherited)?;
        self.known = procs::children()
            .into_iter()
            .filter(|&p| Some(p) != self.leader && p != spawned.pid && !helper(p))
            .collect();
        self.other = Some(Tree {
            leader: spawned.pid,
            running: true,
            sent: None,
            usage: None,
            adopted: Vec::new(),
            oom: Some(watch),
        });
        self.output.attach_other(spawned.stderr, spawned.stdout);
        Ok(spawned.pid)
    }

    /// The second child's group, while it runs.
    pub fn other_group(&self) -> Option<i32> {
        self.other.as_ref().filter(|t| t.running).map(|t| t.leader)
    }

    /// If the second child has ended since the last call: how (it stays unreaped).
    pub fn check_other_end(&mut self) -> Option<(ProcessEnd, Vec<String>)> {
        let tree = self.other.as_mut().filter(|t| t.running)?;
        let (end, usage) = procs::peek_end(tree.leader)?;
        tree.running = false;
        tree.usage = Some(usage);
        Some((end, self.output.detach_other()))
    }

    /// What the second child used, once it ended.
    pub fn other_usage(&self) -> Option<Usage> {
        self.other.as_ref().and_then(|t| t.usage)
    }

    /// Whether `pid`, a child of restartd, is of the second child's tree.
    pub fn of_other(&self, pid: i32) -> bool {
        self.other.as_ref().is_some_and(|t| {
            pid == t.leader || t.adopted.contains(&pid) || procs::group_of(pid) == Some(t.leader)
        })
    }

    /// The new child is ready: it becomes the child, and the old child the second one, with
    /// the descendants adopted from it (those known before the reload, and those in its group).
    pub fn switch(&mut self) {
        let Some(new) = self.other.take() else {
            return;
        };
        let old_leader = self.leader;
        let adopted = procs::children()
            .into_iter()
            .filter(|&p| Some(p) != old_leader && p != new.leader)
            .filter(|&p| {
                self.known.contains(&p)
                    || (old_leader.is_some() && procs::group_of(p) == old_leader)
            })
            .collect();
        if let Some(leader) = old_leader {
            self.other = Some(Tree {
                leader,
                running: self.running,
                sent: self.sent.take(),
                usage: self.usage.take(),
                adopted,
                // The old child's end is no crash to judge: its watch goes.
                oom: None,
            });
        }
        self.known.clear();
        self.leader = Some(new.leader);
        self.running = new.running;
        self.sent = new.sent;
        self.usage = new.usage;
        // See: issue 18 (review). The new child kept the old one's watch: an OOM kill of the
        // old child's worker made the new child's exit 1 a record of reason oom.
        self.oom = new.oom;
        self.output.swap();
    }

    /// `signal_all` for the second child's tree only: its group, and the adopted descendants
    /// of its tree (and their groups, never the child's).
    pub fn signal_other(&mut self, sig: i32, helper: impl Fn(i32) -> bool) {
        let children = procs::children();
        let members: Vec<i32> = children
            .into_iter()
            .filter(|&p| Some(p) != self.leader && !helper(p) && self.of_other(p))
            .collect();
        let own_group = nix::unistd::getpgrp().as_raw();
        let main_group = self.leader;
        let Some(tree) = self.other.as_mut() else {
            return;
        };
        if tree.sent.as_ref().is_none_or(|s| s.signal != sig) {
            tree.sent = Some(Sent {
                signal: sig,
                ..Sent::default()
            });
        }
        let Some(sent) = tree.sent.as_mut() else {
            return;
        };
        if !sent.groups.contains(&tree.leader) {
            procs::signal_group(tree.leader, sig);
            sent.groups.push(tree.leader);
        }
        for pid in members {
            if pid == tree.leader || sent.pids.contains(&pid) {
                continue;
            }
            let group = procs::group_of(pid).filter(|&g| g != own_group && Some(g) != main_group);
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

    /// Whether anything of the second child's tree is alive besides its (ended) leader.
    pub fn other_leftovers_alive(&self, subreaper: bool, helper: impl Fn(i32) -> bool) -> bool {
        let Some(tree) = &self.other else {
            return false;
        };
        let adopted = procs::children()
            .into_iter()
            .any(|p| p != tree.leader && Some(p) != self.leader && !helper(p) && self.of_other(p));
        adopted || (!subreaper && procs::group_has_others(tree.leader))
    }

    /// The second child and its leftovers are gone: reap its leader, forget it.
    pub fn release_other(&mut self) {
        if let Some(tree) = self.other.take() {
            if !tree.running {
                let _ = procs::reap_pid(tree.leader);
            }
        }
        let _ = self.output.detach_other();
    }

    /// The second child's tree joins the child's leftovers: from now on it is stopped, waited
    /// for and reaped as what the child left (its leader is reaped like any adopted process).
    pub fn fold(&mut self) {
        self.other = None;
        self.known.clear();
    }
}

//! The child's tree as the loop sees it: whose each adopted process is (`lineage`), what of it
//! is left, and what `state.json` names of it. Part of the loop (`Supervisor`), kept apart so
//! that the loop's file stays about the turn.

use crate::process::oom;
use crate::process::procs;
use crate::records::state::Proc;
use crate::run::lineage::Known;

use super::Supervisor;

impl Supervisor {
    /// The child and the processes of its tree restartd saw, with their start times, for
    /// `state.json` (a restartd killed without notice leaves them; the next one stops them).
    pub(super) fn tree(&self) -> Vec<Proc> {
        // The leader also once it has ended (held until its group's cleanup is over): its group
        // may still have members.
        let child = self.family.group().and_then(|pid| {
            Some(Proc {
                pid,
                start_time: procs::start_time(pid)?,
                group: true,
            })
        });
        child
            .into_iter()
            .chain(
                self.lineage
                    .childs_tree()
                    .filter(|&(pid, _)| Some(pid) != self.family.group())
                    .map(|(pid, start_time)| Proc {
                        pid,
                        start_time,
                        group: false,
                    }),
            )
            .collect()
    }

    /// Looks at restartd's children and their trees: whose is each (`lineage`).
    pub(super) fn look(&mut self) {
        let hooks = &self.recorder.hooks;
        let monitors = &self.monitors;
        let helper = |pid| hooks.owns(pid) || monitors.owns(pid);
        let helper_group = |pgid| hooks.owns_group(pgid);
        self.lineage.look(&Known {
            leader: self.family.group(),
            helper: &helper,
            helper_group: &helper_group,
        });
        self.family.saw_tree(&self.lineage.childs_pids());
        self.looked = Some(self.turn);
        self.look_due = None;
    }

    /// While the child runs and the OOM watch reads `/dev/kmsg`, a turn that did not look at
    /// the child's tree looks, at most once a second (`oom::next_look`): a worker the child
    /// forks is seen, though its end raises no SIGCHLD in restartd, and a kill line that names
    /// it is known for the child's (`oom::kmsg`). Held back, the look comes at the deadline, one
    /// wakeup after a busy moment; a quiet child makes no turn, so costs no look and no wakeup.
    pub(super) fn look_for_oom(&mut self) {
        if !self.family.oom_wants_looks() {
            self.look_due = None;
            return;
        }
        if self.looked == Some(self.turn) {
            return;
        }
        match oom::next_look(self.looked, self.turn) {
            None => self.look(),
            Some(due) => self.look_due = Some(due),
        }
    }

    /// Whether `pid`, a child of restartd, is not proven to be of the child's tree: a hook, a
    /// health check, what they left, or (as PID 1) an orphan from outside (SPEC §7, §10).
    pub(super) fn not_the_childs(&self, pid: i32) -> bool {
        !self.lineage.is_childs(pid)
    }

    /// Whether anything of the last child is alive (`not_the_childs` says what is not).
    pub(super) fn leftovers_alive(&self) -> bool {
        self.family
            .leftovers_alive(self.subreaper, |pid| self.not_the_childs(pid))
    }

    /// What is left of the last child outlived SIGKILL by --stop-timeout (SPEC §10): named in a
    /// warning and never signalled again (nobody's from now on: `Lineage::abandon`).
    pub(super) fn abandon(&mut self) {
        self.look();
        let mut pids = self.lineage.abandon();
        pids.sort_unstable();
        let named = match (pids.is_empty(), self.family.group()) {
            (false, _) => format!(
                "{} {}",
                if pids.len() == 1 { "pid" } else { "pids" },
                pids.iter()
                    .map(i32::to_string)
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            (true, Some(group)) => format!("the processes of group {group}"),
            (true, None) => "its processes".to_string(),
        };
        let timeout = crate::base::values::fmt_duration(self.cfg.settings.stop_timeout);
        self.log.warn(&format!(
            "{named} of the last child still alive --stop-timeout {timeout} after SIGKILL \
             (not restartd's to kill, or in uninterruptible sleep); left alone and not signalled \
             again"
        ));
    }
}

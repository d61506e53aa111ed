//! Whose is each process restartd adopted: the child's, one of restartd's own helpers' (a hook,
//! a health check), or nobody's that restartd can prove (SPEC §7, §10). Only the child's are its
//! leftovers: signalled at a cleanup, waited for, summed for `--max-memory`, named in
//! `state.json`.
//!
//! An adopted process carries no mark of where it came from once its parent has died: a
//! descendant may leave the child's group (`setsid`) and clear its environment (`env -i`). So
//! descent is recorded while it can be seen. At each look (every turn that reaps, and before the
//! loop signals, waits for or records the child's tree) restartd walks the trees under its
//! children (`/proc/PID/task/TID/children`) and records every process found, by pid and start
//! time, with the owner of the tree's root: the main child's tree is the child's, a hook's or a
//! health check's is a helper's. A process adopted before a look saw it is judged once, when
//! it first appears, by the end that orphaned it:
//!
//! - in the child's process group (its leader is held unreaped, so the id is the child's): the
//!   child's; in a hook's group: a helper's;
//! - as PID 1, a process whose group or session is led from outside restartd's PID namespace (a
//!   `docker exec` session's job): nobody's; so is an orphan of a process that was nobody's
//!   (those trees are walked too, so their processes stay nobody's);
//! - a helper can only be the origin of a process that started after it (a descendant starts
//!   after its ancestors): restartd keeps the start time of each helper it saw, and of one it
//!   never saw alive the time of the look before, which it started after;
//! - orphaned at a look where the child's tree lost a process (the main child ended, or an
//!   adopted process of its tree did) and no helper that could be its origin ended or runs: the
//!   child's — as PID 1 only if it leads its own session or is in restartd's (not a session
//!   started from outside); where only such a helper ended: a helper's;
//! - otherwise, while a helper that could be its origin runs or just ended, nobody's (restartd
//!   cannot tell); else, as PID 1, the child's if it inherited the instance's `RESTARTD_NAME`,
//!   and, when restartd is not PID 1 (every orphan it adopts comes from its own children), the
//!   child's.
//!
//! A process whose environment holds the instance's `RESTARTD_NAME` and no `RESTARTD_EVENT` is
//! no helper's (a health check gets neither, a hook both; unless restartd itself was started
//! with that `RESTARTD_NAME`, then its health checks have it too): no helper is taken for its
//! origin, so a daemon of the child orphaned while a health check ran is still the child's.
//!
//! The walk costs a few /proc reads per process of the tree, on turns that reap or act on the
//! tree, not on every turn. It never signals anything; the loop signals only what it says is
//! the child's, each an unreaped child of restartd.

use std::collections::HashMap;

use crate::process::procs::{self, Place};

/// Whose a process is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Owner {
    /// The child's tree.
    Child,
    /// A hook's or a health check's tree.
    Helper,
    /// Not provably either: never signalled, reaped when it ends.
    Unknown,
}

#[derive(Debug, Clone, Copy)]
struct Entry {
    start: u64,
    owner: Owner,
    zombie: bool,
}

/// What the loop tells a look.
pub struct Known<'a> {
    /// The main child while its group is held (also once it has ended).
    pub leader: Option<i32>,
    /// A hook or health check (by pid).
    pub helper: &'a dyn Fn(i32) -> bool,
    /// A hook's process group.
    pub helper_group: &'a dyn Fn(i32) -> bool,
}

/// The processes restartd saw in its children's trees, and whose they are.
pub struct Lineage {
    /// Every process seen at the last look: restartd's children and their descendants.
    known: HashMap<i32, Entry>,
    /// restartd's own children at the last look.
    direct: HashMap<i32, Entry>,
    /// The earliest start of a helper's process alive at the last look.
    helpers_alive_since: Option<u64>,
    /// A helper was reaped since the last look.
    helper_reaped: bool,
    /// When the last look was (`procs::now_ticks`): a helper no look saw started after it.
    last_look: u64,
    pid1: bool,
    own_sid: i32,
    /// `RESTARTD_NAME=NAME`.
    marker: Vec<u8>,
    /// restartd's own environment holds `marker` (its health checks then do too).
    own_marked: bool,
}

/// What ended since the last look, and which helpers could be the origin of an orphan.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Deaths {
    /// The child's tree lost a process.
    pub child: bool,
    /// The earliest start of a helper's process that ended.
    pub helper_since: Option<u64>,
    /// The earliest start of a helper's process that ended or runs.
    pub helper_alive_since: Option<u64>,
    /// A process that is nobody's ended: what it leaves is nobody's too.
    pub unknown: bool,
}

impl Deaths {
    fn helper_died(&mut self, start: u64) {
        self.helper_since = Some(self.helper_since.map_or(start, |s| s.min(start)));
    }

    /// A helper that ended could be the origin of a process that started at `start`.
    fn helper_ended_before(&self, start: u64) -> bool {
        self.helper_since.is_some_and(|s| s <= start)
    }

    /// A helper that ended or runs could be.
    fn helper_before(&self, start: u64) -> bool {
        self.helper_ended_before(start) || self.helper_alive_since.is_some_and(|s| s <= start)
    }
}

/// What is known of a process seen for the first time among restartd's children.
#[derive(Debug, Clone, Copy)]
pub struct Arrival {
    pub pid: i32,
    pub place: Place,
    /// In the child's held group.
    pub in_child_group: bool,
    /// In a hook's group.
    pub in_helper_group: bool,
    /// It carries the instance's `RESTARTD_NAME`.
    pub marked: bool,
    /// Its environment is the child's, not a helper's: `marked`, without a hook's
    /// `RESTARTD_EVENT`, and restartd's own environment is not marked.
    pub childs_env: bool,
}

/// Whose a process that restartd adopted before any look saw it is (see the module's list).
pub fn judge(a: &Arrival, deaths: Deaths, pid1: bool, own_sid: i32) -> Owner {
    if a.in_child_group {
        return Owner::Child;
    }
    if a.in_helper_group {
        return Owner::Helper;
    }
    if deaths.unknown {
        return Owner::Unknown;
    }
    // A group or session led from outside the namespace reads as 0; a session of 0 is
    // restartd's own when restartd's is led from outside too (started by `unshare`, not `runc`).
    let outside = a.place.pgid == 0 || (a.place.sid == 0 && own_sid != 0);
    if pid1 && outside {
        return Owner::Unknown;
    }
    let own_session = a.place.sid == a.pid || a.place.sid == own_sid;
    let start = a.place.start_time;
    // With the child's environment, no helper is its origin.
    let helper_could = !a.childs_env && deaths.helper_before(start);
    if deaths.child && !helper_could && (!pid1 || own_session) {
        return Owner::Child;
    }
    if !deaths.child && !a.childs_env && deaths.helper_ended_before(start) {
        return Owner::Helper;
    }
    if helper_could {
        Owner::Unknown
    } else if !pid1 || a.marked {
        Owner::Child
    } else {
        Owner::Unknown
    }
}

impl Lineage {
    pub fn new(pid1: bool, marker: Vec<u8>) -> Lineage {
        let own_marked = procs::environ_has(std::process::id() as i32, &marker);
        Lineage {
            known: HashMap::new(),
            direct: HashMap::new(),
            helpers_alive_since: None,
            helper_reaped: false,
            last_look: 0,
            pid1,
            own_sid: nix::unistd::getsid(None).map_or(0, |s| s.as_raw()),
            marker,
            own_marked,
        }
    }

    /// A hook or health check was reaped: orphans that appear at the next look may be its.
    pub fn helper_reaped(&mut self) {
        self.helper_reaped = true;
    }

    /// Looks at restartd's children and walks their trees (see the module's doc).
    pub fn look(&mut self, k: &Known) {
        let mut deaths = Deaths {
            helper_alive_since: self.helpers_alive_since,
            ..Deaths::default()
        };
        if self.helper_reaped {
            // Reaped before a look saw it: it started after the last look.
            deaths.helper_died(self.last_look);
        }
        let now = procs::now_ticks();
        // What ended since the last look, read before the list of children: the kernel hands a
        // process's children to restartd before it turns into a zombie, so every orphan of an
        // end seen here is in the list read below.
        for (pid, before) in &self.direct {
            let same = procs::place(*pid).filter(|pl| pl.start_time == before.start);
            if !before.zombie && same.is_none_or(|pl| pl.zombie) {
                match before.owner {
                    Owner::Child => deaths.child = true,
                    Owner::Helper => deaths.helper_died(before.start),
                    Owner::Unknown => deaths.unknown = true,
                }
            }
        }
        if let Some(leader) = k.leader.filter(|l| !self.direct.contains_key(l)) {
            // Ended before a look saw it alive.
            if procs::place(leader).is_some_and(|pl| pl.zombie) {
                deaths.child = true;
            }
        }
        let places: Vec<(i32, Place)> = procs::children()
            .into_iter()
            .filter_map(|pid| Some((pid, procs::place(pid)?)))
            .collect();
        for (pid, place) in &places {
            if (k.helper)(*pid) {
                if !place.zombie {
                    let since = deaths
                        .helper_alive_since
                        .map_or(place.start_time, |s| s.min(place.start_time));
                    deaths.helper_alive_since = Some(since);
                } else if !self.direct.contains_key(pid) {
                    // A helper that ended before a look saw it alive (its orphans are in the list).
                    deaths.helper_died(place.start_time);
                }
            }
        }
        let mut known = HashMap::new();
        let mut direct = HashMap::new();
        for &(pid, place) in &places {
            let owner = if Some(pid) == k.leader {
                Owner::Child
            } else if (k.helper)(pid) {
                Owner::Helper
            } else if let Some(e) = self.seen(pid, place.start_time) {
                e.owner
            } else {
                let marked = procs::environ_has(pid, &self.marker);
                let arrival = Arrival {
                    pid,
                    place,
                    in_child_group: k.leader.is_some_and(|g| place.pgid == g),
                    in_helper_group: place.pgid != 0 && (k.helper_group)(place.pgid),
                    marked,
                    childs_env: marked
                        && !self.own_marked
                        && !procs::environ_has_var(pid, b"RESTARTD_EVENT"),
                };
                judge(&arrival, deaths, self.pid1, self.own_sid)
            };
            let entry = Entry {
                start: place.start_time,
                owner,
                zombie: place.zombie,
            };
            direct.insert(pid, entry);
            known.insert(pid, entry);
            // Also a tree that is nobody's: what it leaves is then known to be nobody's.
            if place.zombie {
                continue;
            }
            for d in procs::descendants(pid) {
                let Some(dp) = procs::place(d) else {
                    continue;
                };
                let owner = self.seen(d, dp.start_time).map_or(owner, |e| e.owner);
                known.insert(
                    d,
                    Entry {
                        start: dp.start_time,
                        owner,
                        zombie: dp.zombie,
                    },
                );
            }
        }
        self.helpers_alive_since = known
            .values()
            .filter(|e| e.owner == Owner::Helper && !e.zombie)
            .map(|e| e.start)
            .min();
        self.known = known;
        self.direct = direct;
        self.helper_reaped = false;
        self.last_look = now;
    }

    fn seen(&self, pid: i32, start: u64) -> Option<&Entry> {
        self.known.get(&pid).filter(|e| e.start == start)
    }

    /// Whether `pid` is of the child's tree, as of the last look (and still the same process).
    pub fn is_childs(&self, pid: i32) -> bool {
        self.known
            .get(&pid)
            .is_some_and(|e| e.owner == Owner::Child && procs::start_time(pid) == Some(e.start))
    }

    /// The child's tree as of the last look is given up on (SIGKILL did not end it): from now on
    /// it is nobody's, never signalled, not waited for, reaped when it ends. Returns the pids
    /// of its live processes.
    pub fn abandon(&mut self) -> Vec<i32> {
        let mut pids = Vec::new();
        for (&pid, e) in self.known.iter_mut().chain(self.direct.iter_mut()) {
            if e.owner == Owner::Child {
                e.owner = Owner::Unknown;
                if !e.zombie && !pids.contains(&pid) {
                    pids.push(pid);
                }
            }
        }
        pids
    }

    /// Every process of the child's tree seen at the last look, zombies too (pids).
    pub fn childs_pids(&self) -> Vec<i32> {
        self.known
            .iter()
            .filter(|(_, e)| e.owner == Owner::Child)
            .map(|(&pid, _)| pid)
            .collect()
    }

    /// The live processes of the child's tree seen at the last look, with their start times:
    /// restartd's adopted children and the descendants under them and under the main child.
    pub fn childs_tree(&self) -> impl Iterator<Item = (i32, u64)> + '_ {
        self.known
            .iter()
            .filter(|(_, e)| e.owner == Owner::Child && !e.zombie)
            .map(|(&pid, e)| (pid, e.start))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A process that started at tick 100.
    fn arrival(pid: i32, pgid: i32, sid: i32) -> Arrival {
        Arrival {
            pid,
            place: Place {
                zombie: false,
                pgid,
                sid,
                start_time: 100,
            },
            in_child_group: false,
            in_helper_group: false,
            marked: false,
            childs_env: false,
        }
    }

    const CHILD: Deaths = Deaths {
        child: true,
        helper_since: None,
        helper_alive_since: None,
        unknown: false,
    };
    /// A helper that started before the arrival ended.
    const HELPER: Deaths = Deaths {
        child: false,
        helper_since: Some(90),
        helper_alive_since: None,
        unknown: false,
    };
    const BOTH: Deaths = Deaths {
        child: true,
        helper_since: Some(90),
        helper_alive_since: None,
        unknown: false,
    };
    const NONE: Deaths = Deaths {
        child: false,
        helper_since: None,
        helper_alive_since: None,
        unknown: false,
    };
    /// A helper that started before the arrival runs.
    const RUNNING: Deaths = Deaths {
        child: false,
        helper_since: None,
        helper_alive_since: Some(90),
        unknown: false,
    };

    #[test]
    fn an_orphan_of_the_childs_end_is_the_childs_even_without_group_or_marker() {
        // `setsid env -i daemon &`: its own session and group, no RESTARTD_NAME.
        let a = arrival(50, 50, 50);
        assert_eq!(judge(&a, CHILD, true, 1), Owner::Child);
        assert_eq!(judge(&a, CHILD, false, 7), Owner::Child);
    }

    #[test]
    fn an_orphan_of_a_helpers_end_is_never_the_childs() {
        let a = arrival(50, 50, 50);
        for pid1 in [false, true] {
            assert_eq!(judge(&a, HELPER, pid1, 7), Owner::Helper);
        }
        let mut hook_job = arrival(51, 40, 7);
        hook_job.in_helper_group = true;
        assert_eq!(judge(&hook_job, CHILD, false, 7), Owner::Helper);
    }

    #[test]
    fn when_a_helper_may_be_its_origin_an_unproven_orphan_is_nobodys() {
        let a = arrival(50, 50, 50);
        assert_eq!(judge(&a, BOTH, false, 7), Owner::Unknown);
        assert_eq!(judge(&a, RUNNING, false, 7), Owner::Unknown);
        // Not PID 1 and no helper about: restartd adopts only from its own children.
        assert_eq!(judge(&a, NONE, false, 7), Owner::Child);
    }

    /// A helper cannot be the origin of a process older than itself: a health check that ran
    /// after the child's daemon started does not make the daemon a helper's.
    #[test]
    fn a_helper_younger_than_the_orphan_is_not_its_origin() {
        let a = arrival(50, 50, 50);
        let younger = |mut d: Deaths| {
            d.helper_since = d.helper_since.map(|_| 110);
            d.helper_alive_since = d.helper_alive_since.map(|_| 120);
            d
        };
        assert_eq!(judge(&a, younger(HELPER), false, 7), Owner::Child);
        assert_eq!(judge(&a, younger(BOTH), false, 7), Owner::Child);
        assert_eq!(judge(&a, younger(RUNNING), false, 7), Owner::Child);
        assert_eq!(judge(&a, younger(BOTH), true, 1), Owner::Child);
    }

    #[test]
    fn as_pid_1_a_session_from_outside_is_never_the_childs() {
        // A `docker exec` job: its group or session leader is outside the namespace.
        assert_eq!(judge(&arrival(50, 0, 0), CHILD, true, 1), Owner::Unknown);
        assert_eq!(judge(&arrival(50, 50, 0), CHILD, true, 1), Owner::Unknown);
        // `docker exec -it`'s shell leads a session of its own; its job is not the child's.
        assert_eq!(judge(&arrival(50, 50, 44), CHILD, true, 1), Owner::Unknown);
        // Without a proof, the instance's RESTARTD_NAME still marks the child's tree.
        let mut marked = arrival(50, 50, 44);
        marked.marked = true;
        assert_eq!(judge(&marked, NONE, true, 1), Owner::Child);
        assert_eq!(judge(&marked, RUNNING, true, 1), Owner::Unknown);
    }

    /// restartd in a PID namespace whose session leader is outside it (`unshare --pid`): its own
    /// session reads as 0, and a process in it is not taken for a foreign one.
    #[test]
    fn as_pid_1_in_a_session_from_outside_the_childs_orphans_are_still_the_childs() {
        assert_eq!(judge(&arrival(50, 50, 0), CHILD, true, 0), Owner::Child);
        assert_eq!(judge(&arrival(50, 0, 0), CHILD, true, 0), Owner::Unknown);
    }

    /// What a process of unknown origin leaves is of unknown origin too.
    #[test]
    fn an_orphan_of_nobodys_process_is_nobodys() {
        let d = Deaths {
            unknown: true,
            ..CHILD
        };
        for pid1 in [false, true] {
            assert_eq!(judge(&arrival(50, 50, 50), d, pid1, 7), Owner::Unknown);
        }
    }

    /// Started with the child's environment (its `RESTARTD_NAME`, no hook's `RESTARTD_EVENT`):
    /// a helper that ran or ended meanwhile is not its origin.
    #[test]
    fn an_orphan_with_the_childs_environment_is_never_a_helpers() {
        let mut a = arrival(50, 50, 50);
        a.marked = true;
        a.childs_env = true;
        for pid1 in [false, true] {
            for d in [HELPER, RUNNING, BOTH, CHILD, NONE] {
                assert_eq!(judge(&a, d, pid1, 7), Owner::Child, "{d:?} pid1 {pid1}");
            }
        }
        // A hook's job carries RESTARTD_NAME too, with RESTARTD_EVENT: not proof.
        a.childs_env = false;
        assert_eq!(judge(&a, HELPER, false, 7), Owner::Helper);
    }

    #[test]
    fn the_childs_group_decides_first() {
        let mut a = arrival(50, 10, 1);
        a.in_child_group = true;
        assert_eq!(judge(&a, HELPER, true, 1), Owner::Child);
    }

    #[test]
    fn now_is_in_the_unit_of_start_times() {
        let me = procs::start_time(std::process::id() as i32).unwrap();
        let now = procs::now_ticks();
        assert!(me <= now, "started {me}, now {now}");
    }
}

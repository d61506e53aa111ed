//! The kernel's `Killed process PID (comm) total-vm:…` lines in `/dev/kmsg` during a run, and
//! which of them name the child or a process of its tree (SPEC §6, reason `oom`, source 2).
//!
//! `/dev/kmsg` (readable by root, or where `kernel.dmesg_restrict` is 0; not read in a PID
//! namespace of restartd's own, where its pids are not the kernel's) is opened right before
//! the child starts and moved to its end, so every record read from it was logged during the
//! run. It is read without blocking, never polled: at each look at the child's tree (`lineage`:
//! turns that reap or act on the tree, and while the child runs at most once a second on turns
//! that happen anyway) and at the child's end.
//!
//! A line read at a look names a process of the child's tree when its pid was the child's at
//! that look or at the one before (`Matcher`): the victim was alive when the line was logged,
//! after the look before's read. The order of reads stands in for a comparison of times, which
//! would mix three clocks (the record's stamp is the kernel's `local_clock`, not slewed by NTP;
//! the loop's is CLOCK_MONOTONIC; a start time counts boot ticks with suspend): over days they
//! drift apart by seconds. Two looks can be hours apart (a quiet child makes no turn): a pid
//! seen only at the look before may have ended and been handed to an unrelated process since,
//! so it counts only if the kernel has not gone past it since (`may_be_reused`: its last pid
//! handed out and its forks, at each look; more forks than pids gone past, and any pid may
//! have been handed out). What it cannot tell: a process forked and killed
//! between two looks, which no look saw. The main child's own pid cannot be reused: it is held unreaped all run.

use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};
use std::os::unix::fs::OpenOptionsExt;

use nix::libc;

/// The kernel's line about one OOM kill of the child or of a process of its tree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Killed {
    pub pid: i32,
    /// `Killed process 4242 (python3) total-vm:…kB, anon-rss:…kB, …` as the kernel wrote it.
    pub line: String,
    /// Another process of the child's tree, not the child itself.
    pub group: bool,
}

/// Which kill lines name the child's tree, look after look. Pure: the lines and the trees are
/// given.
#[derive(Debug, Default)]
pub struct Matcher {
    /// The child's tree at the last look: pids (with zombies).
    last: Vec<i32>,
    /// The child's own kill line.
    child: Option<Killed>,
    /// The last kill line of another process of its tree.
    group: Option<Killed>,
}

impl Matcher {
    /// The lines read at a look (`lines`: pid and line, in the order logged) against the child's
    /// tree seen at it (`tree`) and at the look before. `child` is the main child's pid.
    /// `reused`: whether a pid may have been handed to another process since the look before
    /// (`may_be_reused`); a pid seen only then is not the child's if so.
    pub fn look(
        &mut self,
        child: i32,
        tree: &[i32],
        lines: Vec<(i32, String)>,
        reused: impl Fn(i32) -> bool,
    ) {
        for (pid, line) in lines {
            if pid == child {
                self.child = Some(Killed {
                    pid,
                    line,
                    group: false,
                });
            } else if tree.contains(&pid) || (self.last.contains(&pid) && !reused(pid)) {
                self.group = Some(Killed {
                    pid,
                    line,
                    group: true,
                });
            }
        }
        self.last = tree.to_vec();
    }

    /// The lines read at the child's end, after the last look (its turn's): against that look's
    /// tree.
    pub fn end(&mut self, child: i32, lines: Vec<(i32, String)>) {
        let tree = self.last.clone();
        self.look(child, &tree, lines, |_| false);
    }

    /// The kill line to name: the child's own, else the last of its tree's.
    pub fn found(&self) -> Option<Killed> {
        self.child.clone().or_else(|| self.group.clone())
    }
}

/// Where the kernel's handing out of pids stood at a look: the last pid it handed out
/// (`/proc/sys/kernel/ns_last_pid`) and the forks since boot (`/proc/stat`'s `processes`,
/// threads included).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pids {
    pub last: i32,
    pub forks: u64,
}

impl Pids {
    pub fn read() -> Option<Pids> {
        Pids::read_with(
            || {
                let last = std::fs::read_to_string("/proc/sys/kernel/ns_last_pid").ok()?;
                last.trim().parse().ok()
            },
            || {
                let stat = std::fs::read_to_string("/proc/stat").ok()?;
                stat.lines()
                    .find_map(|l| l.strip_prefix("processes "))?
                    .trim()
                    .parse()
                    .ok()
            },
        )
    }

    /// The last pid read on both sides of the forks, until it is the same on both: the forks
    /// counted are then those that took the pids up to it. A fork between the two reads would
    /// be counted without its pid among those gone past by the next look, which, with more
    /// forks than pids gone past, would take any pid for reused (`may_be_reused`). Where pids
    /// are handed out too fast for that, the last try: its forks, and the last pid before them.
    fn read_with(
        mut last: impl FnMut() -> Option<i32>,
        mut forks: impl FnMut() -> Option<u64>,
    ) -> Option<Pids> {
        let mut before = last()?;
        let mut tries = 0;
        loop {
            let counted = forks()?;
            let after = last()?;
            tries += 1;
            if after == before || tries == 8 {
                return Some(Pids {
                    last: before,
                    forks: counted,
                });
            }
            before = after;
        }
    }
}

/// Whether `pid` may have been handed to another process between two looks (`before`, `now`).
/// The kernel hands pids out in turn, each the next free one after the last: only a pid it
/// went past since `before` can be, unless it went all the way round. That it did is certain
/// when there were more forks than pids it went past (each fork takes a pid of its own), and
/// is taken for possible after `pid_max / 2` forks, which may do it where many pids are in use.
/// More forks than pids gone past also means pids out of turn: `ns_last_pid` written (CRIU, a
/// test) or a pid asked for (clone3's `set_tid`); then too any pid may have been handed out.
pub fn may_be_reused(pid: i32, before: Pids, now: Pids, pid_max: i32) -> bool {
    let forks = now.forks.saturating_sub(before.forks);
    if forks >= (pid_max / 2).max(1) as u64 {
        return true;
    }
    let wrapped = now.last < before.last;
    // The pids it went past, (before.last, now.last], round past pid_max if it came round to
    // the lowest pids, which after pid_max start at 300 (the kernel's RESERVED_PIDS).
    let past = match wrapped {
        false => i64::from(now.last) - i64::from(before.last),
        true => i64::from(pid_max) - 1 - i64::from(before.last) + i64::from(now.last) - 299,
    };
    if forks as i64 > past {
        return true;
    }
    match wrapped {
        false => pid > before.last && pid <= now.last,
        true => pid > before.last || pid <= now.last,
    }
}

/// Whether `pid`, seen at the look before, may have been handed to another process since:
/// `may_be_reused`, from where the handing out of pids stood at both looks (`before`, `now`).
/// `guarded`: the kernel gives `ns_last_pid`. Where it does not, that is never known, and a
/// pid is taken for the child's as before the guard. Where it does and a read failed at one of
/// the two looks (restartd out of file descriptors), it is not known this once, and the pid,
/// perhaps seen hours ago, is not taken for the child's on a guess.
pub fn reused(
    pid: i32,
    before: Option<Pids>,
    now: Option<Pids>,
    pid_max: Option<i32>,
    guarded: bool,
) -> bool {
    match (before, now, pid_max) {
        (Some(b), Some(n), Some(max)) => may_be_reused(pid, b, n, max),
        _ => guarded,
    }
}

/// `/dev/kmsg` from the child's start on.
#[derive(Debug)]
pub struct Kmsg {
    file: File,
}

impl Kmsg {
    /// Opens `/dev/kmsg` at its end, or `None` where it cannot be read or its pids are not
    /// restartd's: in a PID namespace of its own (a container's), the kernel's lines name the
    /// host's pids, and a host process killed could have the pid of a process of the child's
    /// tree in the namespace.
    pub fn open() -> Option<Kmsg> {
        let ns = std::fs::read_link("/proc/self/ns/pid").ok()?;
        if !initial_pid_namespace(&ns.to_string_lossy()) {
            return None;
        }
        let mut file = File::options()
            .read(true)
            .custom_flags(libc::O_NONBLOCK)
            .open("/dev/kmsg")
            .ok()?;
        file.seek(SeekFrom::End(0)).ok()?;
        Some(Kmsg { file })
    }

    /// The kill lines logged since the last read: pid and line.
    pub fn read(&mut self) -> Vec<(i32, String)> {
        let mut found = Vec::new();
        let mut buf = vec![0u8; 8192];
        // The ring buffer holds at most a few MiB: a bounded number of records.
        for _ in 0..200_000 {
            match self.file.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => found.extend(parse_kmsg(&buf[..n])),
                // EPIPE: records were overwritten before they were read; go on with the oldest.
                Err(e) if e.raw_os_error() == Some(libc::EPIPE) => continue,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                // EAGAIN: nothing more for now.
                Err(_) => break,
            }
        }
        found
    }
}

/// Whether `/proc/self/ns/pid` (`pid:[INODE]`) names the initial PID namespace, whose pids the
/// kernel's lines give: its inode number is fixed (the kernel's `PROC_PID_INIT_INO`).
fn initial_pid_namespace(link: &str) -> bool {
    link == "pid:[4026531836]"
}

/// One `/dev/kmsg` record, `PRI,SEQ,TIME_US,FLAGS;MESSAGE`: the pid and the line, if it is the
/// OOM killer's `Killed process PID` line.
pub fn parse_kmsg(record: &[u8]) -> Option<(i32, String)> {
    let text = String::from_utf8_lossy(record);
    let (head, message) = text.split_once(';')?;
    // A record's head: priority, sequence number, time, flags. The kernel's own lines have
    // facility 0 (priority below 8), which a line written to /dev/kmsg from user space never
    // has: such a line is not the OOM killer's, whatever it says.
    let mut head = head.split(',');
    let priority: u32 = head.next()?.parse().ok()?;
    let _time: u64 = head.nth(1)?.parse().ok()?;
    if priority >> 3 != 0 {
        return None;
    }
    let message = message.lines().next()?.trim();
    let at = message.find("Killed process ")?;
    let line = &message[at..];
    let killed: i32 = line["Killed process ".len()..]
        .split(' ')
        .next()?
        .parse()
        .ok()?;
    Some((killed, line.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn never(_: i32) -> bool {
        false
    }

    fn line(pid: i32) -> (i32, String) {
        (pid, format!("Killed process {pid} (python3) total-vm:1kB"))
    }

    #[test]
    fn kmsg_records_are_kill_lines_or_nothing() {
        let record = b"3,1234,5000000,-;Memory cgroup out of memory: Killed process 42 (python3) total-vm:80000kB, anon-rss:65536kB\n SUBSYSTEM=x\n";
        assert_eq!(
            parse_kmsg(record),
            Some((
                42,
                "Killed process 42 (python3) total-vm:80000kB, anon-rss:65536kB".into()
            ))
        );
        assert_eq!(parse_kmsg(b"6,1,1,-;eth0: link up"), None);
        assert_eq!(parse_kmsg(b"garbage"), None);
        assert_eq!(parse_kmsg(b"3,1,x,-;Killed process 42 (a)"), None);
        assert_eq!(parse_kmsg(b"3,1,1,-;Killed process x (a)"), None);
        // See: issue 18 (review). A line written from user space (facility 1 and up, as the
        // kernel stamps them) was taken for the OOM killer's.
        assert_eq!(
            parse_kmsg(b"12,7,1,-;Out of memory: Killed process 42 (a)"),
            None
        );
        assert_eq!(
            parse_kmsg(b"11,7,1,-;Out of memory: Killed process 42 (a)"),
            None
        );
        assert!(parse_kmsg(b"0,7,1,-;Out of memory: Killed process 42 (a)").is_some());
    }

    #[test]
    fn only_the_initial_pid_namespace_reads_the_kernels_pids() {
        // See: issue 18 (review). In a container's PID namespace a host process's kill line
        // was matched against the namespace's pids of the child's tree.
        assert!(initial_pid_namespace("pid:[4026531836]"));
        assert!(!initial_pid_namespace("pid:[4026532271]"));
        assert!(!initial_pid_namespace(""));
    }

    #[test]
    fn the_childs_own_line_is_named_first() {
        let mut m = Matcher::default();
        m.look(10, &[10, 11], vec![line(11), line(10)], never);
        let k = m.found().unwrap();
        assert_eq!((k.pid, k.group), (10, false));
        // Read before the group's line, the child's still comes first.
        let mut m = Matcher::default();
        m.look(10, &[10, 11], vec![line(10)], never);
        m.look(10, &[10], vec![line(11)], never);
        assert_eq!(m.found().unwrap().pid, 10);
    }

    #[test]
    fn a_process_of_the_tree_is_named_when_a_look_before_or_at_the_line_saw_it() {
        // See: issue 18. `sh -c` whose grandchild was OOM-killed exited 137, and only the
        // child's own pid was looked for.
        // Seen at the look before the line was read, gone at the look that read it (killed
        // and reaped by its parent meanwhile).
        let mut m = Matcher::default();
        m.look(10, &[10, 11], vec![], never);
        m.look(10, &[10], vec![line(11)], never);
        let k = m.found().unwrap();
        assert_eq!((k.pid, k.group), (11, true));
        assert_eq!(k.line, "Killed process 11 (python3) total-vm:1kB");
        // Forked after the look before, still there (dying) at the look that read the line.
        let mut m = Matcher::default();
        m.look(10, &[10], vec![], never);
        m.look(10, &[10, 12], vec![line(12)], never);
        assert_eq!(m.found().unwrap().pid, 12);
        // At the child's end: the tree of the last look.
        let mut m = Matcher::default();
        m.look(10, &[10, 13], vec![], never);
        m.end(10, vec![line(13)]);
        assert_eq!(m.found().unwrap().pid, 13);
    }

    #[test]
    fn an_unrelated_pid_is_not_named() {
        let mut m = Matcher::default();
        m.look(10, &[10, 11], vec![line(99)], never);
        m.look(10, &[10, 11], vec![line(98)], never);
        assert_eq!(m.found(), None);
    }

    #[test]
    fn a_pid_seen_only_at_the_look_before_is_not_named_when_it_may_have_been_handed_on() {
        // See: issue 18 (review). A quiet child's looks can be hours apart: a worker seen at
        // one and ended since had its pid handed to a host process, whose OOM kill was taken
        // for the child's group's (pid_max 32768 here).
        let mut m = Matcher::default();
        m.look(10, &[10, 11], vec![], never);
        m.look(10, &[10], vec![line(11)], |p| p == 11);
        assert_eq!(m.found(), None);
        // Still there at the look that read the line: the same process, whatever came after.
        let mut m = Matcher::default();
        m.look(10, &[10, 11], vec![], never);
        m.look(10, &[10, 11], vec![line(11)], |p| p == 11);
        assert_eq!(m.found().unwrap().pid, 11);
    }

    #[test]
    fn a_pid_may_be_reused_when_the_kernel_went_past_it() {
        let at = |last, forks| Pids { last, forks };
        // Handed out 500..=600: 550 may be reused, 450 and 700 not.
        assert!(may_be_reused(550, at(500, 10), at(600, 110), 32768));
        assert!(!may_be_reused(450, at(500, 10), at(600, 110), 32768));
        assert!(!may_be_reused(700, at(500, 10), at(600, 110), 32768));
        // Round past pid_max to the low pids: 32000 and 400 may be, 20000 not.
        assert!(may_be_reused(32000, at(31000, 0), at(500, 1900), 32768));
        assert!(may_be_reused(400, at(31000, 0), at(500, 1900), 32768));
        assert!(!may_be_reused(20000, at(31000, 0), at(500, 1900), 32768));
        // Nothing handed out: none.
        assert!(!may_be_reused(500, at(500, 7), at(500, 7), 32768));
        // Back at the same pid after forks: all the way round.
        assert!(may_be_reused(450, at(500, 7), at(500, 9), 32768));
        // Half of pid_max forks: perhaps all the way round.
        assert!(may_be_reused(450, at(500, 0), at(600, 16384), 32768));
        // As many forks as pids it went past: each the next in turn, 450 not among them.
        assert!(!may_be_reused(450, at(500, 0), at(600, 100), 32768));
        assert!(!may_be_reused(20000, at(31000, 0), at(500, 1968), 32768));
    }

    #[test]
    fn a_pid_is_taken_for_reused_when_a_read_of_where_pids_stood_failed() {
        // A look whose read of ns_last_pid or /proc/stat failed (EMFILE: restartd's fds taken
        // by clients of its sockets) took every pid of the look before, which may be hours
        // old, for the child's: a kill line of a process that got one since was the child's.
        let at = |last, forks| Some(Pids { last, forks });
        assert!(reused(450, at(500, 0), None, Some(32768), true));
        assert!(reused(450, None, at(600, 100), Some(32768), true));
        assert!(reused(450, at(500, 0), at(600, 100), None, true));
        assert!(!reused(450, at(500, 0), at(600, 100), Some(32768), true));
        assert!(reused(550, at(500, 0), at(600, 100), Some(32768), true));
        // A kernel without ns_last_pid (no CONFIG_CHECKPOINT_RESTORE): as before the guard.
        assert!(!reused(450, None, None, Some(32768), false));
    }

    #[test]
    fn a_pid_may_be_reused_when_there_were_more_forks_than_pids_gone_past() {
        // See: the flaky forensics::a_workers_pid_handed_to_a_host_process_is_not_the_childs.
        // Its worker 2363 was seen at a look with the last pid 2423; the test then wrote
        // ns_last_pid back to 2362, the host process got 2363, and another test's forks took
        // the last pid to 2555 by the next look: 3024 forks for 132 pids gone past, yet 2363,
        // not among those 132, was taken for the same worker. So it is where many pids are in
        // use and the kernel comes all the way round in fewer than pid_max / 2 forks, or where
        // a pid is handed out out of turn (CRIU writing ns_last_pid, clone3's set_tid).
        let at = |last, forks| Pids { last, forks };
        assert!(may_be_reused(
            2363,
            at(2423, 135_152),
            at(2555, 138_176),
            32768
        ));
        assert!(may_be_reused(450, at(500, 0), at(600, 101), 32768));
        // Round past pid_max: 1767 + 201 pids gone past (from 300 on), 1969 forks.
        assert!(may_be_reused(20000, at(31000, 0), at(500, 1969), 32768));
    }

    #[test]
    fn after_pid_max_the_kernel_hands_out_pids_from_300() {
        // Round past pid_max the kernel starts again at 300 (RESERVED_PIDS), not 1: from 31000
        // to 500 it went past 32767 - 31000 + 500 - 299 = 1968 pids. Counted from 1, 299 more,
        // up to 299 forks more than pids gone past were taken for pids handed out in turn (as
        // in the forensics test: ns_last_pid written back, then a wrap).
        let at = |last, forks| Pids { last, forks };
        assert!(!may_be_reused(20000, at(31000, 0), at(500, 1968), 32768));
        assert!(may_be_reused(20000, at(31000, 0), at(500, 1969), 32768));
        assert!(may_be_reused(20000, at(31000, 0), at(500, 2267), 32768));
        // Below 300 after a wrap: pids out of turn; fewer pids gone past, never more.
        assert!(may_be_reused(20000, at(31000, 0), at(100, 1768), 32768));
    }

    #[test]
    fn the_forks_are_counted_between_two_reads_of_the_same_last_pid() {
        // A fork between the reads of the last pid and of the fork count: its fork was counted
        // and its pid not, and the next look, finding one fork more than pids gone past, took
        // the pid of a worker seen at this look for reused (its OOM kill was missed).
        let reads = |lasts: Vec<i32>, forks: Vec<u64>| {
            let (mut lasts, mut forks) = (lasts.into_iter(), forks.into_iter());
            Pids::read_with(|| lasts.next(), || forks.next())
        };
        let at = |last, forks| Some(Pids { last, forks });
        // At the look before: 500 the last pid, 10 forks. At this one, 100 forks took 501..=600,
        // and one more took 601 between the reads: 600 with 111 forks would be one fork more
        // than pids gone past.
        let before = reads(vec![500, 500], vec![10]).unwrap();
        let now = reads(vec![600, 601, 601], vec![111, 111]);
        assert_eq!(now, at(601, 111));
        assert!(!may_be_reused(450, before, now.unwrap(), 32768));
        // Never the same: the last try.
        let lasts = (500..510).collect();
        assert_eq!(reads(lasts, (10..20).collect()), at(507, 17));
        assert_eq!(reads(vec![], vec![1]), None);
        assert_eq!(reads(vec![500, 500], vec![]), None);
    }

    /// A pid that was the child's before the look before is nobody's now: it ended and the
    /// kernel may have handed it to another process, whose kill says nothing of the child.
    #[test]
    fn a_pid_of_the_tree_no_longer_seen_is_not_named() {
        let mut m = Matcher::default();
        m.look(10, &[10, 11], vec![], never);
        m.look(10, &[10], vec![], never);
        m.look(10, &[10], vec![line(11)], never);
        assert_eq!(m.found(), None);
        // The same pid back in the child's tree (reused by it): the child's again.
        m.look(10, &[10, 11], vec![line(11)], never);
        assert_eq!(m.found().unwrap().pid, 11);
    }
}

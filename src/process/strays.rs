//! What a previous restartd of the same instance left running: its child and the descendants it
//! had adopted, when it was killed without notice (the OOM killer, `kill -9`, a crashed tmux)
//! and the child ignored its parent-death signal (SPEC §10).
//!
//! They are named by pid and start time in the previous `state.json`. They are not restartd's
//! children, so each is reached through a pidfd opened before its start time is checked: a pid
//! reused since is never signalled. They get the stop signal, then SIGKILL after the stop
//! timeout, before restartd starts its own child, so that child finds the port free.
//!
//! The child's process group is swept as well: its members need not have been adopted (the
//! child's own children, in its group, die or outlive it unseen). A process in group G (the
//! recorded child's pid) that started no earlier than the child is taken for a member, unless
//! pid G now names another process (started at another time): then G may be another group, and
//! none of it is touched. Group G cannot have been made anew while any of its members lives, as
//! its id is their group's; what is left is a group G that emptied, whose id was then reused by
//! a newer process that made a group and died leaving members — not ruled out, and not guarded
//! against.
//!
//! Nothing in restartd's own process group is stopped, and that group is never signalled: a
//! restartd started from inside the old child's group (the old child ran it) would stop itself
//! and whoever started it.

use std::os::fd::{AsFd, FromRawFd, OwnedFd};
use std::time::{Duration, Instant};

use nix::libc;
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};

use crate::process::procs;

/// A process that was the child's, still running, held by a pidfd.
pub struct Stray {
    pub pid: i32,
    pidfd: OwnedFd,
    /// It leads the previous child's process group.
    leader: bool,
}

/// The processes of `(pid, start_time)` still running as the same process, and the members of
/// each of `groups` (`(pgid, start_time)` of the child that led it; see the module's doc). A
/// leader's group is signalled too while it runs.
pub fn find(recorded: &[(i32, u64)], groups: &[(i32, u64)]) -> Vec<Stray> {
    // Started from inside a recorded group (a script of the old child ran this restartd): the
    // group holds restartd and whoever started it, which are neither stopped nor swept, and
    // the group is not signalled (restartd would signal itself).
    let own = nix::unistd::getpgrp().as_raw();
    let mut found: Vec<Stray> = recorded
        .iter()
        .filter_map(|&(pid, start_time)| {
            let pidfd = pidfd_open(pid)?;
            // Checked after the pidfd was opened: if the pid was reused in between, the start
            // time differs, and the pidfd (which names whoever held the pid when it was
            // opened) is dropped unused.
            let place = procs::place(pid)?;
            (!place.zombie && place.start_time == start_time && place.pgid != own && pid != own)
                .then_some(Stray {
                    pid,
                    pidfd,
                    leader: groups.iter().any(|&(g, _)| g == pid),
                })
        })
        .collect();
    for &(pgid, start) in groups {
        if procs::start_time(pgid).is_some_and(|t| t != start) || pgid == own {
            continue;
        }
        for pid in members(pgid, start) {
            if found.iter().any(|s| s.pid == pid) {
                continue;
            }
            let Some(pidfd) = pidfd_open(pid) else {
                continue;
            };
            // Again after the pidfd: the same group, and no earlier than the child.
            if procs::place(pid).is_some_and(|p| is_member(&p, pgid, start)) {
                found.push(Stray {
                    pid,
                    pidfd,
                    leader: false,
                });
            }
        }
    }
    found
}

/// The live processes of group `pgid` that started at or after `start` (a scan of /proc).
fn members(pgid: i32, start: u64) -> Vec<i32> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<i32>().ok())
        .filter(|&pid| procs::place(pid).is_some_and(|p| is_member(&p, pgid, start)))
        .collect()
}

fn is_member(p: &procs::Place, pgid: i32, start: u64) -> bool {
    !p.zombie && p.pgid == pgid && p.start_time >= start
}

/// Sends `signal` to each stray (and the previous child's group while its leader runs), waits up
/// to `timeout` for them to end, then SIGKILLs what is left and waits for that (at most 5 s more:
/// a process in uninterruptible sleep dies when it wakes). Returns the pids that needed SIGKILL.
pub fn stop(strays: &[Stray], signal: i32, timeout: Duration) -> Vec<i32> {
    send(strays, signal);
    let left = wait(strays, timeout);
    if left.is_empty() {
        return left;
    }
    let rest: Vec<&Stray> = strays.iter().filter(|s| left.contains(&s.pid)).collect();
    for s in &rest {
        if s.leader && running(s) {
            procs::signal_group(s.pid, libc::SIGKILL);
        }
        pidfd_send_signal(&s.pidfd, libc::SIGKILL);
    }
    wait(strays, Duration::from_secs(5));
    left
}

fn send(strays: &[Stray], signal: i32) {
    for s in strays {
        // The group id is the leader's pid, which cannot be reused while the leader runs.
        if s.leader && running(s) {
            procs::signal_group(s.pid, signal);
        }
        pidfd_send_signal(&s.pidfd, signal);
    }
}

/// Waits until every stray has ended or `timeout` passed; returns the pids still running.
fn wait(strays: &[Stray], timeout: Duration) -> Vec<i32> {
    let deadline = Instant::now() + timeout;
    loop {
        let left: Vec<&Stray> = strays.iter().filter(|s| running(s)).collect();
        let now = Instant::now();
        if left.is_empty() || now >= deadline {
            return left.iter().map(|s| s.pid).collect();
        }
        let mut fds: Vec<PollFd> = left
            .iter()
            .map(|s| PollFd::new(s.pidfd.as_fd(), PollFlags::POLLIN))
            .collect();
        let ms = (deadline - now).as_millis().min(i32::MAX as u128) as i32 + 1;
        let _ = poll(
            &mut fds,
            PollTimeout::try_from(ms).unwrap_or(PollTimeout::MAX),
        );
    }
}

/// A pidfd turns readable when its process ends.
fn running(s: &Stray) -> bool {
    let mut fds = [PollFd::new(s.pidfd.as_fd(), PollFlags::POLLIN)];
    !matches!(poll(&mut fds, PollTimeout::ZERO), Ok(n) if n > 0)
}

fn pidfd_open(pid: i32) -> Option<OwnedFd> {
    // SAFETY: a system call with plain arguments; a new fd is owned below.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
    // SAFETY: the kernel returned a new fd that nothing else owns.
    (fd >= 0).then(|| unsafe { OwnedFd::from_raw_fd(fd as i32) })
}

fn pidfd_send_signal(pidfd: &OwnedFd, signal: i32) {
    use std::os::fd::AsRawFd;
    // SAFETY: a valid pidfd, a null siginfo (as kill(2) would send), no flags.
    unsafe {
        libc::syscall(
            libc::SYS_pidfd_send_signal,
            pidfd.as_raw_fd(),
            signal,
            std::ptr::null::<libc::siginfo_t>(),
            0,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pid_with_another_start_time_is_not_found() {
        use std::os::unix::process::CommandExt;
        // In a group of its own, as the child's processes are: not in restartd's.
        let mut sleeper = std::process::Command::new("sleep")
            .arg("100")
            .process_group(0)
            .spawn()
            .unwrap();
        let pid = sleeper.id() as i32;
        let start = procs::start_time(pid).unwrap();
        assert!(find(&[(pid, start + 1)], &[]).is_empty());
        let found = find(&[(pid, start)], &[]);
        assert_eq!(found.len(), 1);
        assert!(stop(&found, libc::SIGTERM, Duration::from_secs(5)).is_empty());
        sleeper.wait().unwrap();
    }

    /// A recorded process that has ended but was not reaped yet (a zombie of a PID 1 that reaps
    /// late) is not running: it is not stopped, nor said to be.
    #[test]
    fn a_zombie_is_not_found() {
        use std::os::unix::process::CommandExt;
        let mut gone = std::process::Command::new("true")
            .process_group(0)
            .spawn()
            .unwrap();
        let pid = gone.id() as i32;
        let start = procs::start_time(pid).unwrap();
        while !procs::place(pid).unwrap().zombie {
            std::thread::yield_now();
        }
        let found: Vec<i32> = find(&[(pid, start)], &[]).iter().map(|s| s.pid).collect();
        gone.wait().unwrap();
        assert!(found.is_empty(), "{found:?}");
    }

    /// A restartd started from inside the recorded group (here: the test's own group) finds
    /// nothing of it: it would stop itself and whoever started it.
    #[test]
    fn restartds_own_group_is_never_swept() {
        let own = nix::unistd::getpgrp().as_raw();
        let Some(start) = procs::start_time(own) else {
            println!("skipped: the leader of this test's process group {own} is gone");
            return;
        };
        assert!(find(&[], &[(own, start)]).is_empty());
    }

    /// The recorded child itself leads restartd's own group (it ran this restartd, and ignored
    /// its parent-death signal): it is not stopped and its group is not signalled, or restartd
    /// would SIGKILL itself and whoever started it at the stop timeout.
    #[test]
    fn a_recorded_leader_of_restartds_own_group_is_never_signalled() {
        let own = nix::unistd::getpgrp().as_raw();
        let Some(start) = procs::start_time(own) else {
            println!("skipped: the leader of this test's process group {own} is gone");
            return;
        };
        let found = find(&[(own, start)], &[(own, start)]);
        let pids: Vec<(i32, bool)> = found.iter().map(|s| (s.pid, s.leader)).collect();
        assert!(pids.is_empty(), "restartd's own group {own}: {pids:?}");
    }

    /// Members of a recorded group are found while its pid names the recorded leader; when the
    /// pid names a process started at another time, the group is not touched.
    #[test]
    fn a_groups_members_are_found_unless_its_leader_pid_was_reused() {
        use std::os::unix::process::CommandExt;
        let mut leader = std::process::Command::new("sh")
            .args(["-c", "sleep 100 & echo $!; wait"])
            .stdout(std::process::Stdio::piped())
            .process_group(0)
            .spawn()
            .unwrap();
        let mut line = String::new();
        std::io::BufRead::read_line(
            &mut std::io::BufReader::new(leader.stdout.take().unwrap()),
            &mut line,
        )
        .unwrap();
        let member: i32 = line.trim().parse().unwrap();
        let pgid = leader.id() as i32;
        let start = procs::start_time(pgid).unwrap();
        assert!(find(&[], &[(pgid, start + 1)]).is_empty());
        let found = find(&[], &[(pgid, start)]);
        let mut pids: Vec<i32> = found.iter().map(|s| s.pid).collect();
        pids.sort();
        let mut expected = vec![pgid, member];
        expected.sort();
        assert_eq!(pids, expected);
        assert!(stop(&found, libc::SIGKILL, Duration::from_secs(5)).is_empty());
        leader.wait().unwrap();
    }
}

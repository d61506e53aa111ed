//! What a previous restartd of the same instance left running: its child and the descendants it
//! had adopted, when it was killed without notice (the OOM killer, `kill -9`, a crashed tmux)
//! and the child ignored its parent-death signal (SPEC §10).
//!
//! They are named by pid and start time in the previous `state.json`. They are not restartd's
//! children, so each is reached through a pidfd opened before its start time is checked: a pid
//! reused since is never signalled. They get the stop signal, then SIGKILL after the stop
//! timeout, before restartd starts its own child, so that child finds the port free.

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

/// The processes of `(pid, start_time)` still running as the same process; `leader` names the
/// previous child (its group is signalled too).
pub fn find(recorded: &[(i32, u64)], leader: Option<i32>) -> Vec<Stray> {
    recorded
        .iter()
        .filter_map(|&(pid, start_time)| {
            let pidfd = pidfd_open(pid)?;
            // Checked after the pidfd was opened: if the pid was reused in between, the start
            // time differs, and the pidfd (which names whoever held the pid when it was
            // opened) is dropped unused.
            (procs::start_time(pid)? == start_time).then_some(Stray {
                pid,
                pidfd,
                leader: Some(pid) == leader,
            })
        })
        .collect()
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
        let mut sleeper = std::process::Command::new("sleep")
            .arg("100")
            .spawn()
            .unwrap();
        let pid = sleeper.id() as i32;
        let start = procs::start_time(pid).unwrap();
        assert!(find(&[(pid, start + 1)], None).is_empty());
        let found = find(&[(pid, start)], None);
        assert_eq!(found.len(), 1);
        assert!(stop(&found, libc::SIGTERM, Duration::from_secs(5)).is_empty());
        sleeper.wait().unwrap();
    }
}

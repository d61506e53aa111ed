//! The child process: spawn it, signal its group, reap everything, find what it left behind.
//!
//! restartd owns all reaping (`wait4(-1)`), so std's `Child::wait` is never used. The child runs
//! in its own process group with stdin /dev/null, the inherited signal state and a parent-death
//! signal. This module carries out what the state machine decides; it never decides itself.

use std::ffi::OsString;
use std::io;
use std::os::fd::OwnedFd;
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};

use nix::errno::Errno;
use nix::libc;
use nix::sys::signal::{kill, killpg, Signal};
use nix::unistd::Pid;

use crate::exit::ProcessEnd;
use crate::signals::Inherited;

/// A started child.
pub struct Spawned {
    pub pid: i32,
    /// The read end of the child's stderr pipe.
    pub stderr: OwnedFd,
}

/// Starts `command` in a new process group, with `env` added to restartd's environment.
pub fn spawn(
    command: &[OsString],
    env: &[(&str, String)],
    inherited: Inherited,
) -> io::Result<Spawned> {
    let parent = std::process::id() as libc::pid_t;
    let mut cmd = Command::new(&command[0]);
    cmd.args(&command[1..])
        .stdin(Stdio::null())
        .stdout(Stdio::inherit())
        .stderr(Stdio::piped())
        .process_group(0);
    for (key, value) in env {
        cmd.env(key, value);
    }
    // SAFETY: the closure runs between fork and exec and only makes async-signal-safe calls.
    unsafe {
        cmd.pre_exec(move || {
            inherited.restore()?;
            if libc::prctl(
                libc::PR_SET_PDEATHSIG,
                libc::SIGTERM as libc::c_ulong,
                0,
                0,
                0,
            ) != 0
            {
                return Err(io::Error::last_os_error());
            }
            // restartd may have died before prctl: then nobody will send the signal.
            if libc::getppid() != parent {
                libc::raise(libc::SIGTERM);
            }
            Ok(())
        });
    }
    let mut child = cmd.spawn()?;
    let stderr = child.stderr.take().expect("stderr is piped").into();
    Ok(Spawned {
        pid: child.id() as i32,
        stderr,
    })
}

/// One reaped process: its pid, how it ended and what it used.
pub struct Reaped {
    pub pid: i32,
    pub end: ProcessEnd,
    pub usage: Usage,
}

/// What a reaped process used, from `wait4(2)`'s rusage.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Usage {
    pub max_rss_kb: u64,
    pub user_cpu_ms: u64,
    pub sys_cpu_ms: u64,
}

impl Usage {
    fn from_rusage(ru: &libc::rusage) -> Usage {
        let ms = |tv: libc::timeval| (tv.tv_sec as u64) * 1000 + (tv.tv_usec as u64) / 1000;
        Usage {
            max_rss_kb: ru.ru_maxrss.max(0) as u64,
            user_cpu_ms: ms(ru.ru_utime),
            sys_cpu_ms: ms(ru.ru_stime),
        }
    }
}

/// Reaps one ended child of restartd without blocking; `None` when there is none.
pub fn reap() -> Option<Reaped> {
    loop {
        let mut status = 0;
        // SAFETY: rusage is plain data that wait4 fills in.
        let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
        // SAFETY: valid pointers to locals.
        let pid = unsafe { libc::wait4(-1, &mut status, libc::WNOHANG, &mut usage) };
        match pid {
            0 => return None,
            -1 if Errno::last() == Errno::EINTR => continue,
            -1 => return None,
            pid => match ProcessEnd::from_wait_status(status) {
                Some(end) => {
                    return Some(Reaped {
                        pid,
                        end,
                        usage: Usage::from_rusage(&usage),
                    })
                }
                None => continue,
            },
        }
    }
}

/// Makes restartd the reaper of orphaned descendants (PR_SET_CHILD_SUBREAPER).
pub fn become_subreaper() -> io::Result<()> {
    nix::sys::prctl::set_child_subreaper(true).map_err(io::Error::from)
}

/// Sends `sig` to process group `pgid`; a group that is gone is no error.
pub fn signal_group(pgid: i32, sig: i32) {
    let _ = killpg(Pid::from_raw(pgid), Signal::try_from(sig).ok());
}

/// Sends `sig` to one process; a process that is gone is no error.
pub fn signal_process(pid: i32, sig: i32) {
    let _ = kill(Pid::from_raw(pid), Signal::try_from(sig).ok());
}

/// Whether any process of group `pgid` is alive.
pub fn group_alive(pgid: i32) -> bool {
    !matches!(killpg(Pid::from_raw(pgid), None), Err(Errno::ESRCH))
}

/// The process group of `pid`, if it still exists.
pub fn group_of(pid: i32) -> Option<i32> {
    nix::unistd::getpgid(Some(Pid::from_raw(pid)))
        .ok()
        .map(|p| p.as_raw())
}

/// restartd's live children (reparented descendants included), from
/// `/proc/self/task/TID/children`; restartd is single-threaded, so its one task holds them all.
pub fn children() -> Vec<i32> {
    let me = std::process::id();
    match std::fs::read_to_string(format!("/proc/self/task/{me}/children")) {
        Ok(text) => text
            .split_whitespace()
            .filter_map(|p| p.parse().ok())
            .collect(),
        Err(_) => children_by_scan(me as i32),
    }
}

/// The slow way, for kernels without CONFIG_PROC_CHILDREN: every /proc/PID/stat whose ppid is us.
fn children_by_scan(me: i32) -> Vec<i32> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<i32>().ok())
        .filter(|pid| {
            std::fs::read_to_string(format!("/proc/{pid}/stat"))
                .ok()
                .and_then(|stat| {
                    // The command name may hold spaces and parentheses: fields follow the last ')'.
                    let rest = &stat[stat.rfind(')')? + 1..];
                    rest.split_whitespace().nth(1)?.parse::<i32>().ok()
                })
                == Some(me)
        })
        .collect()
}

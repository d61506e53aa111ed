//! Processes restartd owns or looks at, by pid: reaping (all of it is restartd's: `wait4`, and
//! `waitid(WNOWAIT)` to learn how the held child ended), signalling a process or a group, and
//! what /proc says of a process (its children, group, start time, environment).
//!
//! It carries out what the machine decided; it never decides itself.

use std::io;

use nix::errno::Errno;
use nix::libc;
use nix::sys::signal::{kill, killpg, Signal};
use nix::unistd::Pid;

use crate::base::exit::ProcessEnd;

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

/// Reaps one ended child of restartd without blocking; `None` when there is none. Only while
/// restartd holds no child unreaped on purpose (see `peek_end`): `wait4(-1)` takes any child.
pub fn reap() -> Option<Reaped> {
    wait_for(-1)
}

/// Reaps child `pid` if it has ended, without blocking.
pub fn reap_pid(pid: i32) -> Option<Reaped> {
    wait_for(pid)
}

fn wait_for(which: i32) -> Option<Reaped> {
    loop {
        let mut status = 0;
        // SAFETY: rusage is plain data that wait4 fills in.
        let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
        // SAFETY: valid pointers to locals.
        let pid = unsafe { libc::wait4(which, &mut status, libc::WNOHANG, &mut usage) };
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

/// How child `pid` ended, if it has, and what it used, without reaping it
/// (`waitid(P_PID, pid, WEXITED | WNOHANG | WNOWAIT)`): the zombie keeps its pid, so the process
/// group it led cannot be reused while restartd may still signal that group (SPEC §10).
pub fn peek_end(pid: i32) -> Option<(ProcessEnd, Usage)> {
    loop {
        // SAFETY: siginfo_t and rusage are plain data the kernel fills in.
        let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
        let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
        // The raw system call: glibc's waitid has no rusage argument, the kernel's has (and fills
        // it for WNOWAIT too, as wait4 would at the reap).
        // SAFETY: valid pointers to locals, flags that only query.
        let r = unsafe {
            libc::syscall(
                libc::SYS_waitid,
                libc::P_PID,
                pid,
                &mut info as *mut libc::siginfo_t,
                libc::WEXITED | libc::WNOHANG | libc::WNOWAIT,
                &mut usage as *mut libc::rusage,
            )
        };
        if r == -1 {
            if Errno::last() == Errno::EINTR {
                continue;
            }
            return None;
        }
        // SAFETY: waitid filled a SIGCHLD siginfo (or left it zeroed: no child has ended).
        let (got, status) = unsafe { (info.si_pid(), info.si_status()) };
        if got == 0 {
            return None;
        }
        let end = match info.si_code {
            libc::CLD_EXITED => ProcessEnd::Exited(status),
            libc::CLD_KILLED => ProcessEnd::Signaled {
                signal: status,
                core_dumped: false,
            },
            libc::CLD_DUMPED => ProcessEnd::Signaled {
                signal: status,
                core_dumped: true,
            },
            _ => return None,
        };
        return Some((end, Usage::from_rusage(&usage)));
    }
}

/// Makes restartd the reaper of orphaned descendants (PR_SET_CHILD_SUBREAPER).
pub fn become_subreaper() -> io::Result<()> {
    nix::sys::prctl::set_child_subreaper(true).map_err(io::Error::from)
}

/// This boot's id (`/proc/sys/kernel/random/boot_id`, a UUID made anew at every boot). A start
/// time (clock ticks since boot) names a process only together with it: after a reboot the same
/// pid and start time can be another process.
pub fn boot_id() -> Option<String> {
    let id = std::fs::read_to_string("/proc/sys/kernel/random/boot_id").ok()?;
    let id = id.trim();
    (!id.is_empty()).then(|| id.to_string())
}

/// When process `pid` started: `/proc/PID/stat` field 22, in clock ticks since boot. With the
/// pid it names one process: a reused pid comes with another start time.
pub fn start_time(pid: i32) -> Option<u64> {
    // Field 22 is the 20th after the command name.
    stat_fields(pid)?.get(19)?.parse().ok()
}

/// The fields of `/proc/PID/stat` after the command name, from field 3 (state) on: the name may
/// hold spaces and parentheses, so they start after the last ')'.
fn stat_fields(pid: i32) -> Option<Vec<String>> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &stat[stat.rfind(')')? + 1..];
    Some(rest.split_whitespace().map(String::from).collect())
}

/// What `/proc/PID/stat` says of a process's place: its state letter, group, session and start
/// time. A group or session whose leader is outside restartd's PID namespace reads as 0.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Place {
    pub zombie: bool,
    pub pgid: i32,
    pub sid: i32,
    pub start_time: u64,
}

/// Where `pid` is (see `Place`), if it exists.
pub fn place(pid: i32) -> Option<Place> {
    // Fields 3 (state), 5 (pgrp), 6 (session) and 22 (starttime).
    let f = stat_fields(pid)?;
    Some(Place {
        zombie: f.first()? == "Z",
        pgid: f.get(2)?.parse().ok()?,
        sid: f.get(3)?.parse().ok()?,
        start_time: f.get(19)?.parse().ok()?,
    })
}

/// The live descendants of `pid` (not `pid` itself), from each task's
/// `/proc/PID/task/TID/children`, depth first. A process that ends meanwhile only ends its branch.
pub fn descendants(pid: i32) -> Vec<i32> {
    let mut found = Vec::new();
    let mut todo = vec![pid];
    while let Some(p) = todo.pop() {
        let Ok(tasks) = std::fs::read_dir(format!("/proc/{p}/task")) else {
            continue;
        };
        for task in tasks.filter_map(|t| t.ok()) {
            let path = task.path().join("children");
            let Ok(text) = std::fs::read_to_string(path) else {
                continue;
            };
            for child in text.split_whitespace().filter_map(|c| c.parse().ok()) {
                // A pid can only appear once in a tree; the check keeps a racing read finite.
                if child != pid && !found.contains(&child) {
                    found.push(child);
                    todo.push(child);
                }
            }
        }
    }
    found
}

/// Now, in the unit of `start_time` (clock ticks since boot, CLOCK_BOOTTIME as the kernel
/// counts a process's start).
pub fn now_ticks() -> u64 {
    let mut now = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes into the valid timespec given; sysconf has no preconditions.
    let (rc, hz) = unsafe {
        (
            libc::clock_gettime(libc::CLOCK_BOOTTIME, &mut now),
            libc::sysconf(libc::_SC_CLK_TCK),
        )
    };
    if rc != 0 {
        return 0;
    }
    let hz = hz.max(1) as u64;
    now.tv_sec as u64 * hz + now.tv_nsec as u64 * hz / 1_000_000_000
}

/// Whether the environment `pid` was started with holds the line `var` (`KEY=VALUE`).
pub fn environ_has(pid: i32, var: &[u8]) -> bool {
    std::fs::read(format!("/proc/{pid}/environ"))
        .is_ok_and(|env| env.split(|&b| b == 0).any(|line| line == var))
}

/// Whether the environment `pid` was started with sets variable `name` (to anything).
pub fn environ_has_var(pid: i32, name: &[u8]) -> bool {
    std::fs::read(format!("/proc/{pid}/environ")).is_ok_and(|env| {
        env.split(|&b| b == 0).any(|line| {
            line.strip_prefix(name)
                .is_some_and(|rest| rest.first() == Some(&b'='))
        })
    })
}

/// Whether restartd is a child subreaper.
pub fn is_subreaper() -> bool {
    nix::sys::prctl::get_child_subreaper().unwrap_or(false)
}

/// Sends `sig` to process group `pgid`; a group that is gone is no error.
pub fn signal_group(pgid: i32, sig: i32) {
    let _ = killpg(Pid::from_raw(pgid), Signal::try_from(sig).ok());
}

/// Gives up the CPU once, right after the child was sent a signal. The child mostly shares
/// restartd's CPU (always, in a one-CPU container), and the scheduler lets the task that just
/// woke, restartd, finish its turn first: the /proc reads that judge adopted processes and the
/// rest of the turn, about 0.45 ms, before the child's handler could run. Measured with both
/// on one CPU (`taskset -c 0`): 680 µs from SIGTERM to the child's handler without this, 200 µs
/// with it (BENCHMARKS.md, session 10). One system call; nothing is decided here.
pub fn let_run() {
    // SAFETY: sched_yield takes no arguments and touches no memory.
    unsafe {
        nix::libc::sched_yield();
    }
}

/// Sends `sig` to one process; a process that is gone is no error.
pub fn signal_process(pid: i32, sig: i32) {
    let _ = kill(Pid::from_raw(pid), Signal::try_from(sig).ok());
}

/// Whether any process (a zombie included) is in group `pgid`.
pub fn group_alive(pgid: i32) -> bool {
    !matches!(killpg(Pid::from_raw(pgid), None), Err(Errno::ESRCH))
}

/// Whether a live process other than its leader is in group `pgid` (a scan of /proc: only for
/// a restartd that is not a subreaper).
pub fn group_has_others(pgid: i32) -> bool {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return false;
    };
    entries
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<i32>().ok())
        .filter(|&pid| pid != pgid)
        .any(|pid| {
            // State, ppid, pgrp.
            stat_fields(pid).is_some_and(|f| {
                f.len() > 2 && f[0] != "Z" && f[2].parse::<i32>().ok() == Some(pgid)
            })
        })
}

/// The process group of `pid`, if it still exists.
pub fn group_of(pid: i32) -> Option<i32> {
    nix::unistd::getpgid(Some(Pid::from_raw(pid)))
        .ok()
        .map(|p| p.as_raw())
}

/// restartd's live children (reparented descendants included), from
/// `/proc/thread-self/children` (restartd is single-threaded, so its one task holds them all; the
/// link also names the right task when /proc belongs to another pid namespace).
pub fn children() -> Vec<i32> {
    let me = std::process::id();
    match std::fs::read_to_string("/proc/thread-self/children") {
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
        .filter(|&pid| {
            // The parent pid is the field after the state.
            stat_fields(pid).and_then(|f| f.get(1)?.parse::<i32>().ok()) == Some(me)
        })
        .collect()
}

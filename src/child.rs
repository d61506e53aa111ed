//! The child process: spawn it, signal its group, reap everything, find what it left behind.
//!
//! restartd owns all reaping (`wait4(-1)`), so std's `Child::wait` is never used. The child runs
//! in its own process group with stdin /dev/null, the inherited signal state and a parent-death
//! signal. This module carries out what the state machine decides; it never decides itself.

use std::ffi::{CString, OsString};
use std::io;
use std::os::fd::OwnedFd;
use std::os::unix::ffi::OsStrExt;
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
    /// The read end of the child's stdout pipe, when stdout is captured (`--log-file`).
    pub stdout: Option<OwnedFd>,
}

/// How to start the child.
pub struct Start<'a> {
    pub command: &'a [OsString],
    /// Added to restartd's environment (replacing variables of the same name).
    pub env: Vec<(OsString, OsString)>,
    /// Variables of restartd's environment the child must not see.
    pub remove: &'a [&'a str],
    /// Set `WATCHDOG_PID` to the child's own pid.
    pub watchdog_pid: bool,
    /// Pipe stdout through restartd instead of passing restartd's own.
    pub capture_stdout: bool,
}

/// argv and envp as C arrays, built before fork so that the child, between fork and exec, only
/// writes its pid into a reserved slot: no allocation after fork.
struct ExecPlan {
    argv: Vec<CString>,
    argv_ptrs: Vec<*const libc::c_char>,
    env: Vec<Vec<u8>>,
    env_ptrs: Vec<*const libc::c_char>,
    /// Index in `env` of `WATCHDOG_PID=` followed by room for the digits.
    pid_slot: Option<usize>,
}

// SAFETY: the pointers point into the plan's own buffers, which move with it; the plan is used
// by one thread (the forked child) at a time.
unsafe impl Send for ExecPlan {}
unsafe impl Sync for ExecPlan {}

const PID_VAR: &[u8] = b"WATCHDOG_PID=";

impl ExecPlan {
    fn new(start: &Start) -> io::Result<ExecPlan> {
        let argv = start
            .command
            .iter()
            .map(|a| CString::new(a.as_bytes()))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|_| {
                io::Error::new(io::ErrorKind::InvalidInput, "an argument holds a NUL byte")
            })?;
        let mut vars: Vec<(OsString, OsString)> = std::env::vars_os()
            .filter(|(k, _)| !start.remove.iter().any(|r| k.as_bytes() == r.as_bytes()))
            .filter(|(k, _)| !start.env.iter().any(|(e, _)| e == k))
            .collect();
        vars.extend(start.env.iter().cloned());
        let mut env: Vec<Vec<u8>> = vars
            .iter()
            .filter(|(k, v)| !k.as_bytes().contains(&0) && !v.as_bytes().contains(&0))
            .map(|(k, v)| [k.as_bytes(), b"=", v.as_bytes(), b"\0"].concat())
            .collect();
        let pid_slot = start.watchdog_pid.then(|| {
            let mut slot = PID_VAR.to_vec();
            slot.resize(PID_VAR.len() + 12, 0);
            env.push(slot);
            env.len() - 1
        });
        let mut plan = ExecPlan {
            argv_ptrs: Vec::new(),
            argv,
            env_ptrs: Vec::new(),
            env,
            pid_slot,
        };
        plan.argv_ptrs = plan.argv.iter().map(|a| a.as_ptr()).collect();
        plan.argv_ptrs.push(std::ptr::null());
        plan.env_ptrs = plan.env.iter().map(|e| e.as_ptr().cast()).collect();
        plan.env_ptrs.push(std::ptr::null());
        Ok(plan)
    }

    /// In the child: fill in the pid, then exec. Returns only on failure.
    fn exec(&mut self) -> io::Error {
        if let Some(i) = self.pid_slot {
            // SAFETY: getpid is async-signal-safe.
            let mut pid = unsafe { libc::getpid() } as u32;
            let mut digits = [0u8; 10];
            let mut n = 0;
            loop {
                digits[n] = b'0' + (pid % 10) as u8;
                n += 1;
                pid /= 10;
                if pid == 0 {
                    break;
                }
            }
            let slot = &mut self.env[i];
            for (k, d) in digits[..n].iter().rev().enumerate() {
                slot[PID_VAR.len() + k] = *d;
            }
            slot[PID_VAR.len() + n] = 0;
        }
        // SAFETY: NULL-terminated arrays of NUL-terminated strings owned by the plan.
        unsafe {
            libc::execvpe(
                self.argv[0].as_ptr(),
                self.argv_ptrs.as_ptr(),
                self.env_ptrs.as_ptr(),
            )
        };
        io::Error::last_os_error()
    }
}

/// Starts the child in a new process group, with stdin /dev/null, the inherited signal state and a
/// parent-death signal.
pub fn spawn(start: Start, inherited: Inherited) -> io::Result<Spawned> {
    let parent = std::process::id() as libc::pid_t;
    let mut plan = ExecPlan::new(&start)?;
    let mut cmd = Command::new(&start.command[0]);
    cmd.stdin(Stdio::null())
        .stdout(if start.capture_stdout {
            Stdio::piped()
        } else {
            Stdio::inherit()
        })
        .stderr(Stdio::piped())
        .process_group(0);
    // SAFETY: the closure runs between fork and exec and only makes async-signal-safe calls;
    // it execs itself (std's own exec is never reached on success).
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
            Err(plan.exec())
        });
    }
    let mut child = cmd.spawn()?;
    let stderr = child.stderr.take().expect("stderr is piped").into();
    let stdout = child.stdout.take().map(OwnedFd::from);
    Ok(Spawned {
        pid: child.id() as i32,
        stderr,
        stdout,
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

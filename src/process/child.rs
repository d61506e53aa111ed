//! Starting processes, signalling the child's group, reaping everything, finding what the child
//! left behind.
//!
//! Every process restartd starts goes through `launch`: the child (`spawn`), the `--on-crash` and
//! `--on-give-up` hooks (`records::hooks`) and `--health-cmd` checks (`monitors::health`). Each
//! leads a new process group of its own and gets the signal state restartd inherited (mask and
//! ignored signals, as tini restores them). What differs is said in `Exec`: argv, environment,
//! stdin/stdout/stderr, and the parent-death signal. Hooks and health checks are restartd's own
//! helpers: a group of their own keeps them out of the child's group (SPEC §7, §10), lets a
//! timeout kill a helper's whole `sh -c` pipeline, and their pids are what `Hooks::owns` and
//! `Health::owns` know them by when they are reaped.
//!
//! restartd owns all reaping (`wait4(-1)`), so std's `Child::wait` is never used, and no process
//! is started through std's `Command` (whose `Child` would invite it). This module carries out
//! what the state machine decides; it never decides itself.

use std::ffi::{CString, OsString};
use std::fs::File;
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;

use nix::libc;

use crate::process::signals::Inherited;
use crate::process::sink;

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
    /// The `--socket`s, as fds 3, 4, … with `LISTEN_FDS`, `LISTEN_PID` and `LISTEN_FDNAMES`.
    pub listen: Option<Listen<'a>>,
}

/// Sockets handed over by systemd's socket-activation protocol (sd_listen_fds(3)).
#[derive(Clone, Copy)]
pub struct Listen<'a> {
    /// restartd's descriptors, in order: they become the process's 3, 4, …
    pub fds: &'a [RawFd],
    /// `LISTEN_FDNAMES`: the names, `:`-separated.
    pub names: &'a str,
}

/// Where a new process's stdout or stderr goes.
#[derive(Clone, Copy)]
pub enum Output<'a> {
    /// restartd's own descriptor, as it is.
    Inherit,
    /// A new pipe; restartd gets the read end (`Launched`).
    Pipe,
    /// This file.
    To(BorrowedFd<'a>),
}

/// What differs between the processes restartd starts (see `launch`).
pub struct Exec<'a> {
    /// argv; `argv[0]` is looked up in PATH unless it holds a `/`.
    pub argv: &'a [OsString],
    /// Added to restartd's environment (replacing variables of the same name).
    pub env: &'a [(OsString, OsString)],
    /// Variables of restartd's environment the process must not see.
    pub remove: &'a [&'a str],
    /// Set `WATCHDOG_PID` to the process's own pid.
    pub watchdog_pid: bool,
    /// Sockets to pass as fds 3, 4, … (`LISTEN_PID` is the process's own pid).
    pub listen: Option<Listen<'a>>,
    /// stdin: this file, or /dev/null.
    pub stdin: Option<BorrowedFd<'a>>,
    pub stdout: Output<'a>,
    pub stderr: Output<'a>,
    /// Sent to the process when restartd dies (PR_SET_PDEATHSIG), or right away if restartd died
    /// before it was set.
    pub death_signal: Option<libc::c_int>,
}

/// A started process: its pid (also its process group) and the read ends of `Output::Pipe`s.
pub struct Launched {
    pub pid: i32,
    pub stdout: Option<OwnedFd>,
    pub stderr: Option<OwnedFd>,
}

/// argv and envp as C arrays, built before clone so that the child, between clone and exec, only
/// writes its pid into a reserved slot: no allocation in the child.
struct ExecPlan {
    argv: Vec<CString>,
    argv_ptrs: Vec<*const libc::c_char>,
    env: Vec<Vec<u8>>,
    env_ptrs: Vec<*const libc::c_char>,
    /// Indexes in `env` of `WATCHDOG_PID=` and `LISTEN_PID=`, each followed by room for the
    /// digits, with the length of its `NAME=`.
    pid_slots: Vec<(usize, usize)>,
}

/// The variables that hold the process's own pid, filled in between clone and exec.
const WATCHDOG_PID: &[u8] = b"WATCHDOG_PID=";
const LISTEN_PID: &[u8] = b"LISTEN_PID=";

impl ExecPlan {
    fn new(exec: &Exec) -> io::Result<ExecPlan> {
        let argv = exec
            .argv
            .iter()
            .map(|a| CString::new(a.as_bytes()))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|_| {
                io::Error::new(io::ErrorKind::InvalidInput, "an argument holds a NUL byte")
            })?;
        if argv.is_empty() {
            return Err(io::Error::new(io::ErrorKind::InvalidInput, "no command"));
        }
        let mut vars: Vec<(OsString, OsString)> = std::env::vars_os()
            .filter(|(k, _)| !exec.remove.iter().any(|r| k.as_bytes() == r.as_bytes()))
            .filter(|(k, _)| !exec.env.iter().any(|(e, _)| e == k))
            .collect();
        vars.extend(exec.env.iter().cloned());
        if let Some(listen) = exec.listen {
            vars.retain(|(k, _)| k != "LISTEN_FDS" && k != "LISTEN_FDNAMES" && k != "LISTEN_PID");
            vars.push(("LISTEN_FDS".into(), listen.fds.len().to_string().into()));
            vars.push(("LISTEN_FDNAMES".into(), listen.names.into()));
        }
        let mut env: Vec<Vec<u8>> = vars
            .iter()
            .filter(|(k, v)| !k.as_bytes().contains(&0) && !v.as_bytes().contains(&0))
            .map(|(k, v)| [k.as_bytes(), b"=", v.as_bytes(), b"\0"].concat())
            .collect();
        let mut pid_slots = Vec::new();
        let wanted = [
            (exec.watchdog_pid, WATCHDOG_PID),
            (exec.listen.is_some(), LISTEN_PID),
        ];
        for (_, var) in wanted.into_iter().filter(|(on, _)| *on) {
            let mut slot = var.to_vec();
            slot.resize(var.len() + 12, 0);
            env.push(slot);
            pid_slots.push((env.len() - 1, var.len()));
        }
        let mut plan = ExecPlan {
            argv_ptrs: Vec::new(),
            argv,
            env_ptrs: Vec::new(),
            env,
            pid_slots,
        };
        plan.argv_ptrs = plan.argv.iter().map(|a| a.as_ptr()).collect();
        plan.argv_ptrs.push(std::ptr::null());
        plan.env_ptrs = plan.env.iter().map(|e| e.as_ptr().cast()).collect();
        plan.env_ptrs.push(std::ptr::null());
        Ok(plan)
    }

    /// Stack enough for the child: glibc's execvpe keeps the PATH candidate (at most PATH_MAX +
    /// NAME_MAX bytes) and, for a script without `#!`, a copy of argv on the stack; 32 KiB more
    /// as glibc's posix_spawn allows.
    fn stack_bytes(&self) -> usize {
        (self.argv_ptrs.len() + 2) * std::mem::size_of::<usize>() + 4096 + 256 + 32 * 1024
    }

    /// In the child: fill in the pid, then exec. Returns only on failure.
    fn exec(&mut self) -> io::Error {
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
        for &(i, at) in &self.pid_slots {
            // Written into the slot's reserved room: no allocation.
            let slot = &mut self.env[i];
            for (k, d) in digits[..n].iter().rev().enumerate() {
                slot[at + k] = *d;
            }
            slot[at + n] = 0;
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

/// Starts the supervised child: stdin /dev/null, stderr (and with `capture_stdout` stdout) a pipe
/// to restartd, SIGTERM when restartd dies, in a new process group with the inherited signal
/// state (`launch`).
pub fn spawn(start: Start, inherited: Inherited) -> io::Result<Spawned> {
    let launched = launch(
        &Exec {
            argv: start.command,
            env: &start.env,
            remove: start.remove,
            watchdog_pid: start.watchdog_pid,
            listen: start.listen,
            stdin: None,
            stdout: match start.capture_stdout {
                true => Output::Pipe,
                false => Output::Inherit,
            },
            stderr: Output::Pipe,
            death_signal: Some(libc::SIGTERM),
        },
        inherited,
    )?;
    Ok(Spawned {
        pid: launched.pid,
        stderr: launched.stderr.expect("stderr is a pipe"),
        stdout: launched.stdout,
    })
}

/// Starts a process as `exec` says, leading a new process group, with the signal state restartd
/// inherited; returns once it has exec'd (or with the exec error, e.g. NotFound).
///
/// The process is made the way glibc's posix_spawn makes one: clone(2) with `CLONE_VM |
/// CLONE_VFORK` on a stack of its own, so restartd's page tables are never copied and its pages
/// never turn copy-on-write; restartd is suspended until the process has exec'd or failed.
/// (Neither std's `Command`, which forks once there is pre-exec work, nor posix_spawn, which
/// cannot restore an inherited ignored signal or set a parent-death signal, does all of it.) The
/// process shares restartd's memory, so every signal stays blocked until it has dropped
/// restartd's handlers, and between clone and exec it only makes system calls and writes its
/// error into `Plan::error`: everything it needs (argv, envp, descriptors) is prepared here first.
pub fn launch(exec: &Exec, inherited: Inherited) -> io::Result<Launched> {
    let null: Option<OwnedFd> = match exec.stdin {
        Some(_) => None,
        None => Some(File::open("/dev/null")?.into()),
    };
    let stdout = matches!(exec.stdout, Output::Pipe).then(pipe).transpose()?;
    let stderr = matches!(exec.stderr, Output::Pipe).then(pipe).transpose()?;
    let target = |output: Output, pipe: &Option<(OwnedFd, OwnedFd)>| match (output, pipe) {
        (Output::To(fd), _) => fd.as_raw_fd(),
        (Output::Pipe, Some((_, write))) => write.as_raw_fd(),
        _ => -1,
    };
    let stdin = match (exec.stdin, &null) {
        (Some(fd), _) => fd.as_raw_fd(),
        (None, Some(null)) => null.as_raw_fd(),
        (None, None) => -1,
    };
    let mut plan = Plan {
        exec: ExecPlan::new(exec)?,
        inherited,
        parent: std::process::id() as libc::pid_t,
        death_signal: exec.death_signal.unwrap_or(0),
        fds: [
            stdin,
            target(exec.stdout, &stdout),
            target(exec.stderr, &stderr),
        ],
        listen: exec.listen.map_or(Vec::new(), |l| l.fds.to_vec()),
        spare: Vec::new(),
        error: 0,
    };
    // Room for the copies `child_setup` makes, so that the child does not allocate.
    plan.spare = vec![-1; plan.listen.len()];
    let mut stack = Stack::new(plan.exec.stack_bytes())?;
    // SAFETY: sigset_t is plain data; all zeroes is a valid (empty) set.
    let mut all: libc::sigset_t = unsafe { std::mem::zeroed() };
    // SAFETY: as above; pthread_sigmask fills it in.
    let mut before: libc::sigset_t = unsafe { std::mem::zeroed() };
    // SAFETY: the sets are valid; the child runs `child_main` on its own stack with a pointer to
    // `plan`, which outlives it: CLONE_VFORK returns only once the child has exec'd or exited.
    // The descriptors in `plan.fds` stay open until then (`null`, the pipes, the caller's).
    let pid = unsafe {
        libc::sigfillset(&mut all);
        libc::pthread_sigmask(libc::SIG_SETMASK, &all, &mut before);
        let pid = libc::clone(
            child_main,
            stack.top(),
            libc::CLONE_VM | libc::CLONE_VFORK | libc::SIGCHLD,
            (&raw mut plan).cast(),
        );
        let clone_error = io::Error::last_os_error();
        libc::pthread_sigmask(libc::SIG_SETMASK, &before, std::ptr::null_mut());
        if pid == -1 {
            return Err(clone_error);
        }
        pid
    };
    drop(stack);
    if plan.error != 0 {
        // The process has exited: reap it here so that the loop never sees it.
        // SAFETY: waits for our own child; a null status pointer is allowed.
        unsafe { libc::waitpid(pid, std::ptr::null_mut(), 0) };
        return Err(io::Error::from_raw_os_error(plan.error));
    }
    // The write ends close here: the process has its copies.
    Ok(Launched {
        pid,
        stdout: stdout.map(|(read, _)| read),
        stderr: stderr.map(|(read, _)| read),
    })
}

/// Everything the new process needs between clone and exec, prepared by restartd beforehand.
struct Plan {
    exec: ExecPlan,
    inherited: Inherited,
    parent: libc::pid_t,
    /// PR_SET_PDEATHSIG's signal; 0: none.
    death_signal: libc::c_int,
    /// The descriptors to put at 0, 1 and 2; -1 leaves restartd's own.
    fds: [libc::c_int; 3],
    /// The descriptors to put at 3, 4, … (the `--socket`s).
    listen: Vec<RawFd>,
    /// As many slots as `listen`, for copies above the targets made in the child.
    spare: Vec<RawFd>,
    /// Set by the child when it could not exec: the errno.
    error: i32,
}

/// A pipe for the child's output, both ends close-on-exec, enlarged to `sink::PIPE_BYTES`
/// before the child exists: a child that makes it bigger still is never shrunk back.
fn pipe() -> io::Result<(OwnedFd, OwnedFd)> {
    let (read, write) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)?;
    sink::widen(read.as_fd());
    Ok((read, write))
}

/// The child's stack: anonymous memory with a guard page below it.
struct Stack {
    base: *mut libc::c_void,
    len: usize,
}

impl Stack {
    const GUARD: usize = 4096;

    fn new(bytes: usize) -> io::Result<Stack> {
        let len = Self::GUARD + bytes.div_ceil(Self::GUARD) * Self::GUARD;
        // SAFETY: a fresh private anonymous mapping; nothing else refers to it.
        let base = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_STACK,
                -1,
                0,
            )
        };
        if base == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        let stack = Stack { base, len };
        // SAFETY: the first page of our own mapping.
        if unsafe { libc::mprotect(base, Self::GUARD, libc::PROT_NONE) } != 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(stack)
    }

    /// The highest address: the stack grows down from here (16-byte aligned).
    fn top(&mut self) -> *mut libc::c_void {
        // SAFETY: one past the end of the mapping, which is page-aligned.
        unsafe { self.base.cast::<u8>().add(self.len).cast() }
    }
}

impl Drop for Stack {
    fn drop(&mut self) {
        // SAFETY: our own mapping, no longer used (the child has exec'd or exited).
        unsafe { libc::munmap(self.base, self.len) };
    }
}

/// The child, between clone and exec. Every signal is blocked and memory is restartd's: only
/// system calls, and on failure the errno into `Plan::error`, then `_exit`.
extern "C" fn child_main(arg: *mut libc::c_void) -> libc::c_int {
    // SAFETY: `arg` is the `Plan` restartd passed, alive until this child execs or exits.
    let plan = unsafe { &mut *arg.cast::<Plan>() };
    let error = match child_setup(plan) {
        Ok(()) => plan.exec.exec(),
        Err(e) => e,
    };
    plan.error = error.raw_os_error().unwrap_or(libc::EINVAL);
    // SAFETY: ends the child without running anything of restartd's.
    unsafe { libc::_exit(127) }
}

fn child_setup(plan: &mut Plan) -> io::Result<()> {
    for (target, fd) in (0..).zip(plan.fds) {
        if fd < 0 {
            continue;
        }
        // SAFETY: dup2 and fcntl on descriptors restartd keeps open until the exec. restartd
        // keeps 0–2 open (main.rs), so no source is one of 0–2 that an earlier dup2 replaced,
        // unless it is meant to be (the same file for stdout and stderr).
        let result = unsafe {
            if fd == target {
                libc::fcntl(target, libc::F_SETFD, 0)
            } else {
                libc::dup2(fd, target)
            }
        };
        if result == -1 {
            return Err(io::Error::last_os_error());
        }
    }
    // The sockets go to 3, 4, …: first each is copied above every target (close-on-exec), so
    // that placing one never closes another still to be placed; dup2 then clears the flag.
    let first_free = 3 + plan.listen.len() as libc::c_int;
    for (i, &fd) in plan.listen.iter().enumerate() {
        // SAFETY: fcntl on a descriptor restartd keeps open until the exec.
        let copy = unsafe { libc::fcntl(fd, libc::F_DUPFD_CLOEXEC, first_free) };
        if copy == -1 {
            return Err(io::Error::last_os_error());
        }
        plan.spare[i] = copy;
    }
    for (target, &copy) in (3..).zip(plan.spare.iter()) {
        // SAFETY: dup2 from the copy made above.
        if unsafe { libc::dup2(copy, target) } == -1 {
            return Err(io::Error::last_os_error());
        }
    }
    // SAFETY: setpgid, prctl, getppid and raise are system calls without user-space state.
    unsafe {
        if libc::setpgid(0, 0) != 0 {
            return Err(io::Error::last_os_error());
        }
        if plan.death_signal != 0 {
            let death = plan.death_signal as libc::c_ulong;
            if libc::prctl(libc::PR_SET_PDEATHSIG, death, 0, 0, 0) != 0 {
                return Err(io::Error::last_os_error());
            }
            // restartd may have died before prctl: then nobody will send the signal (it is
            // delivered once the mask below lets it in).
            if libc::getppid() != plan.parent {
                libc::raise(plan.death_signal);
            }
        }
    }
    plan.inherited.restore()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Seek};
    use std::os::fd::AsFd;

    /// Runs `argv` through `launch` with its stdout and stderr in one memfd; returns the pid, its
    /// process group while it was alive, and what it wrote.
    fn run(
        argv: &[&str],
        env: &[(&str, &str)],
        remove: &[&str],
        inherited: Inherited,
    ) -> (i32, i32, String) {
        let mut output = crate::base::files::memfd(c"restartd-test", &[]).unwrap();
        let argv: Vec<OsString> = argv.iter().map(OsString::from).collect();
        let env: Vec<(OsString, OsString)> =
            env.iter().map(|(k, v)| (k.into(), v.into())).collect();
        let launched = launch(
            &Exec {
                argv: &argv,
                env: &env,
                remove,
                watchdog_pid: false,
                listen: None,
                stdin: None,
                stdout: Output::To(output.as_fd()),
                stderr: Output::To(output.as_fd()),
                death_signal: Some(libc::SIGKILL),
            },
            inherited,
        )
        .unwrap();
        assert!(launched.stdout.is_none() && launched.stderr.is_none());
        // launch returns after the exec: the group is set, and a zombie keeps it until reaped.
        let group = crate::process::procs::group_of(launched.pid).unwrap();
        let pid = nix::unistd::Pid::from_raw(launched.pid);
        let status = nix::sys::wait::waitpid(pid, None).unwrap();
        assert_eq!(status, nix::sys::wait::WaitStatus::Exited(pid, 0));
        let mut text = String::new();
        output.rewind().unwrap();
        output.read_to_string(&mut text).unwrap();
        (launched.pid, group, text)
    }

    fn field(status: &str, name: &str) -> u64 {
        let line = status.lines().find(|l| l.starts_with(name)).unwrap();
        u64::from_str_radix(line.split_whitespace().nth(1).unwrap(), 16).unwrap()
    }

    /// A helper (a hook, a health check) gets what the child gets: a group of its own, and the
    /// mask and ignored signals restartd inherited (std's `Command` reset SIGPIPE to default).
    #[test]
    fn a_launched_process_leads_its_own_group_with_the_inherited_signal_state() {
        // The test harness ignores SIGPIPE (Rust's start-up code); block SIGUSR2 on this thread
        // while the state is captured, as if restartd had been started with it blocked.
        let bit = |sig: i32| 1u64 << (sig - 1);
        // SAFETY: sigset_t is plain data, filled in by the calls.
        let inherited = unsafe {
            let mut usr2: libc::sigset_t = std::mem::zeroed();
            let mut before: libc::sigset_t = std::mem::zeroed();
            libc::sigemptyset(&mut usr2);
            libc::sigaddset(&mut usr2, libc::SIGUSR2);
            libc::pthread_sigmask(libc::SIG_BLOCK, &usr2, &mut before);
            let inherited = Inherited::capture();
            libc::pthread_sigmask(libc::SIG_SETMASK, &before, std::ptr::null_mut());
            inherited
        };
        let ours = std::fs::read_to_string("/proc/thread-self/status").unwrap();
        let (pid, group, text) = run(&["grep", "^Sig", "/proc/self/status"], &[], &[], inherited);
        assert_eq!(group, pid, "a group of its own");
        assert_ne!(group, nix::unistd::getpgrp().as_raw());
        assert_eq!(
            field(&text, "SigBlk"),
            field(&ours, "SigBlk") | bit(libc::SIGUSR2),
            "{text}"
        );
        assert_ne!(field(&text, "SigIgn") & bit(libc::SIGPIPE), 0, "{text}");
    }

    #[test]
    fn a_launched_process_gets_argv_and_the_environment_changes() {
        // Cargo sets CARGO_MANIFEST_DIR for every test run.
        assert!(std::env::var_os("CARGO_MANIFEST_DIR").is_some());
        let script = "echo \"$1|$RESTARTD_TEST_ADDED|${CARGO_MANIFEST_DIR-gone}\"";
        let (_, _, text) = run(
            &["sh", "-c", script, "sh", "a b"],
            &[("RESTARTD_TEST_ADDED", "added")],
            &["CARGO_MANIFEST_DIR"],
            Inherited::capture(),
        );
        assert_eq!(text, "a b|added|gone\n");
    }

    #[test]
    fn a_command_that_is_not_found_is_a_not_found_error() {
        let argv = [OsString::from("restartd-test-no-such-command")];
        let err = launch(
            &Exec {
                argv: &argv,
                env: &[],
                remove: &[],
                watchdog_pid: false,
                listen: None,
                stdin: None,
                stdout: Output::Pipe,
                stderr: Output::Inherit,
                death_signal: None,
            },
            Inherited::capture(),
        )
        .err()
        .unwrap();
        assert_eq!(err.kind(), io::ErrorKind::NotFound);
    }
}

//! restartd's own signal handling: per-signal pending flags plus one self-pipe for poll(2).
//!
//! The handlers (registered through signal-hook) set a flag and write a byte; the event loop
//! drains the pipe, then takes the flags ("clear the pipe, then act", signal-hook's
//! `low_level::pipe` docs).
//!
//! One shortcut, for latency: while the loop sits in poll(2) with a running child that is not
//! being stopped, the loop names the child's process group (`direct_to`), and a handler sends a
//! forwarded signal (SIGHUP, SIGUSR1, SIGUSR2, SIGWINCH, SIGCONT) or the first stop signal
//! (SIGTERM, SIGINT, SIGQUIT) to that group itself, with kill(2), which is async-signal-safe: the
//! same signal to the same group the loop would send first, without waiting for the loop to wake
//! (after an idle spell its code has to be paged back in first). A forwarded signal sent this way
//! is not left to the loop; a stop signal still is, for everything else stopping involves, and
//! the loop does not send it to the group twice (`take_stop_sent`). The group is named only
//! around poll(2), so no handler can signal a group whose leader the loop has reaped.
//! `Inherited` records the signal mask and ignored signals restartd was started with, so the child
//! gets exactly those back (as tini's `restore_signals` does). This module decides nothing.

use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};

use nix::fcntl::OFlag;
use nix::libc::{self, c_int};

const MAX_SIGNAL: usize = 64;
static PENDING: [AtomicBool; MAX_SIGNAL + 1] = [const { AtomicBool::new(false) }; MAX_SIGNAL + 1];
/// Sent to the child's group by a handler, for the loop's debug log only.
static FORWARDED: [AtomicBool; MAX_SIGNAL + 1] = [const { AtomicBool::new(false) }; MAX_SIGNAL + 1];
/// The process group a handler may signal directly; 0: none (the loop decides).
static DIRECT: AtomicI32 = AtomicI32::new(0);
/// The stop signal a handler already sent to the `DIRECT` group; 0: none.
static STOP_SENT: AtomicI32 = AtomicI32::new(0);

/// The stop signals (SPEC §4): the first is sent on to the child's group.
pub const STOP: [c_int; 3] = [libc::SIGTERM, libc::SIGINT, libc::SIGQUIT];
/// The signals forwarded to the child's group as they are (SPEC §4).
pub const FORWARD: [c_int; 5] = [
    libc::SIGHUP,
    libc::SIGUSR1,
    libc::SIGUSR2,
    libc::SIGWINCH,
    libc::SIGCONT,
];

/// The signals restartd handles (SPEC §4); SIGCHLD only wakes the loop to reap.
pub const HANDLED: [c_int; 10] = [
    libc::SIGTERM,
    libc::SIGINT,
    libc::SIGQUIT,
    libc::SIGHUP,
    libc::SIGUSR1,
    libc::SIGUSR2,
    libc::SIGWINCH,
    libc::SIGTSTP,
    libc::SIGCONT,
    libc::SIGCHLD,
];

/// The read end of the self-pipe the handlers write to.
pub struct SignalPipe {
    read: OwnedFd,
}

/// Installs the handlers. Call after `Inherited::capture`.
pub fn install() -> io::Result<SignalPipe> {
    let (read, write) = nix::unistd::pipe2(OFlag::O_CLOEXEC | OFlag::O_NONBLOCK)?;
    // The write end lives as long as the handlers, that is for the rest of the process.
    let wake = std::os::fd::IntoRawFd::into_raw_fd(write);
    for sig in HANDLED {
        // SAFETY: the action only uses atomics, kill(2) and write(2), all async-signal-safe;
        // signal-hook saves and restores errno around it.
        unsafe { signal_hook::low_level::register(sig, move || on_signal(sig, wake)) }?;
    }
    Ok(SignalPipe { read })
}

/// The handler's work; runs in signal context.
fn on_signal(sig: c_int, wake: c_int) {
    if STOP.contains(&sig) {
        // swap: of two stop signals in a row only the first takes the shortcut.
        let group = DIRECT.swap(0, Ordering::SeqCst);
        if group > 0 {
            send(group, sig);
            STOP_SENT.store(sig, Ordering::SeqCst);
        }
        PENDING[sig as usize].store(true, Ordering::SeqCst);
    } else if FORWARD.contains(&sig) && DIRECT.load(Ordering::SeqCst) > 0 {
        send(DIRECT.load(Ordering::SeqCst), sig);
        FORWARDED[sig as usize].store(true, Ordering::SeqCst);
    } else {
        PENDING[sig as usize].store(true, Ordering::SeqCst);
    }
    // A full pipe already wakes the loop: the result does not matter.
    // SAFETY: write(2) of one byte from a valid buffer is async-signal-safe.
    unsafe { libc::write(wake, [1u8].as_ptr().cast(), 1) };
}

/// Sends `sig` to process group `group`, then yields the CPU: the child, woken on this CPU, runs
/// its handler first instead of waiting until restartd's bookkeeping (the log line, state.json)
/// blocks. Runs in signal context: kill(2) is async-signal-safe, sched_yield(2) a bare system call.
fn send(group: i32, sig: c_int) {
    // SAFETY: both are system calls without user-space state.
    unsafe {
        libc::kill(-group, sig);
        libc::sched_yield();
    }
}

/// Lets the handlers signal process group `group` themselves (see the module docs); 0 takes that
/// back. The loop names the group only while it waits in poll(2) with a running child that is
/// not being stopped, and takes it back before it reaps anything.
pub fn direct_to(group: i32) {
    DIRECT.store(group, Ordering::SeqCst);
}

/// The stop signal a handler sent to the child's group since the last call, if any.
pub fn take_stop_sent() -> Option<c_int> {
    match STOP_SENT.swap(0, Ordering::SeqCst) {
        0 => None,
        sig => Some(sig),
    }
}

/// Whether a handler forwarded `sig` to the child's group since the last call (and clears it).
pub fn take_forwarded(sig: c_int) -> bool {
    FORWARDED[sig as usize].swap(false, Ordering::SeqCst)
}

impl SignalPipe {
    /// The fd to poll for readability.
    pub fn fd(&self) -> BorrowedFd<'_> {
        self.read.as_fd()
    }

    /// Empties the pipe; call before `take`.
    pub fn drain(&self) {
        let mut buf = [0u8; 128];
        loop {
            match nix::unistd::read(&self.read, &mut buf) {
                Ok(n) if n == buf.len() => continue,
                Err(nix::errno::Errno::EINTR) => continue,
                _ => break,
            }
        }
    }
}

/// Whether `sig` arrived since the last call (and clears it).
pub fn take(sig: c_int) -> bool {
    PENDING[sig as usize].swap(false, Ordering::SeqCst)
}

/// Makes a write to a closed pipe or socket fail with EPIPE instead of ending restartd. Call after
/// `Inherited::capture`.
pub fn ignore_sigpipe() {
    // SAFETY: SIG_IGN needs no handler.
    unsafe { libc::signal(libc::SIGPIPE, libc::SIG_IGN) };
}

/// The signals whose disposition restartd changes: the handled ones and SIGPIPE. Every other
/// signal keeps the disposition restartd inherited, and exec(2) passes it on unchanged.
fn changed() -> impl Iterator<Item = c_int> {
    HANDLED.into_iter().chain([libc::SIGPIPE])
}

/// The signal mask restartd inherited, and which of the signals it changes were ignored.
#[derive(Clone, Copy)]
pub struct Inherited {
    mask: libc::sigset_t,
    /// Bit `n - 1` set: signal `n` was ignored.
    ignored: u64,
}

impl Inherited {
    /// Reads the current mask and dispositions. Call first thing in `main`, before any handler is
    /// installed or SIGPIPE ignored (restartd has its own C `main`, so nothing ran before).
    pub fn capture() -> Inherited {
        // SAFETY: querying the mask and dispositions with null "new" pointers changes nothing.
        unsafe {
            let mut mask: libc::sigset_t = std::mem::zeroed();
            libc::pthread_sigmask(libc::SIG_BLOCK, std::ptr::null(), &mut mask);
            let mut ignored = 0u64;
            for sig in changed() {
                let mut old: libc::sigaction = std::mem::zeroed();
                if libc::sigaction(sig, std::ptr::null(), &mut old) == 0
                    && old.sa_sigaction == libc::SIG_IGN
                {
                    ignored |= 1 << (sig - 1);
                }
            }
            Inherited { mask, ignored }
        }
    }

    /// Puts the inherited state back. Runs in the child before exec, which shares restartd's
    /// memory and starts with every signal blocked: restartd's handlers must be gone (default or
    /// ignored, as inherited) before the mask lets a signal in. Async-signal-safe calls only.
    pub fn restore(&self) -> io::Result<()> {
        for sig in changed() {
            let action = if self.ignored & (1 << (sig - 1)) != 0 {
                libc::SIG_IGN
            } else {
                libc::SIG_DFL
            };
            // SAFETY: signal(2) is async-signal-safe; SIG_IGN and SIG_DFL need no handler.
            if unsafe { libc::signal(sig, action) } == libc::SIG_ERR {
                return Err(io::Error::last_os_error());
            }
        }
        // SAFETY: sets the mask from a valid sigset_t.
        match unsafe { libc::pthread_sigmask(libc::SIG_SETMASK, &self.mask, std::ptr::null_mut()) }
        {
            0 => Ok(()),
            errno => Err(io::Error::from_raw_os_error(errno)),
        }
    }
}

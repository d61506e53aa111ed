//! restartd's own signal handling: per-signal pending flags plus one self-pipe for poll(2).
//!
//! The handlers (registered through signal-hook) count the signal and write a byte to wake the
//! loop, nothing else; the event loop drains the pipe, then takes the counts ("clear the pipe,
//! then act", signal-hook's `low_level::pipe` docs) and hands each signal to the machine, which
//! decides what it means. A count, not a flag: two SIGTERMs that arrive before the loop looks are
//! two stop requests, and the second one escalates (SPEC §4). `Inherited` records the signal mask and ignored signals restartd
//! was started with, so the child gets exactly those back (as tini's `restore_signals` does).
//! This module decides nothing.

use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::sync::atomic::{AtomicU32, Ordering};

use nix::fcntl::OFlag;
use nix::libc::{self, c_int};

const MAX_SIGNAL: usize = 64;
/// How many times each signal arrived since the loop last took it.
static PENDING: [AtomicU32; MAX_SIGNAL + 1] = [const { AtomicU32::new(0) }; MAX_SIGNAL + 1];

/// The signals restartd handles (SPEC §4), in the order the loop hands them to the machine: stop
/// requests first. SIGCHLD only wakes the loop to reap.
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
        // SAFETY: the action only stores to an atomic and calls write(2), both
        // async-signal-safe; signal-hook saves and restores errno around it.
        unsafe { signal_hook::low_level::register(sig, move || on_signal(sig, wake)) }?;
    }
    // Started with some of them blocked (a parent's mask is inherited), restartd would never
    // see them: a blocked SIGTERM would make it unstoppable. The child gets the inherited mask
    // back (`Inherited::restore`).
    let mut handled = nix::sys::signal::SigSet::empty();
    for sig in HANDLED {
        if let Ok(sig) = nix::sys::signal::Signal::try_from(sig) {
            handled.add(sig);
        }
    }
    handled.thread_unblock()?;
    Ok(SignalPipe { read })
}

/// The handler's work; runs in signal context: count, wake. An atomic add is async-signal-safe.
fn on_signal(sig: c_int, wake: c_int) {
    PENDING[sig as usize].fetch_add(1, Ordering::SeqCst);
    // A full pipe already wakes the loop: the result does not matter.
    // SAFETY: write(2) of one byte from a valid buffer is async-signal-safe.
    unsafe { libc::write(wake, [1u8].as_ptr().cast(), 1) };
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

/// How many times `sig` arrived since the last call (and clears the count).
pub fn take(sig: c_int) -> u32 {
    PENDING[sig as usize].swap(0, Ordering::SeqCst)
}

/// How many of `count` arrivals of `sig` in one turn the machine is to see: each one, up to two
/// (a second stop request escalates to SIGKILL, SPEC §4; a third adds nothing, and a forwarded
/// signal sent to the child twice at once is merged by its kernel anyway), but SIGTSTP and
/// SIGCONT once (Ctrl-Z pressed twice before restartd looked suspends once).
pub fn repeats(sig: c_int, count: u32) -> u32 {
    match sig {
        libc::SIGTSTP | libc::SIGCONT => count.min(1),
        _ => count.min(2),
    }
}

/// The signals whose disposition restartd changes: the handled ones, and those Rust's start-up
/// code changes before `main` (SIGPIPE ignored, so a write to a closed pipe is an EPIPE error;
/// SIGSEGV and SIGBUS handled, to name a stack overflow, when they were at their default). Every
/// other signal keeps the disposition restartd inherited, and exec(2) passes it on unchanged.
fn changed() -> impl Iterator<Item = c_int> {
    HANDLED
        .into_iter()
        .chain([libc::SIGPIPE, libc::SIGSEGV, libc::SIGBUS])
}

/// The signal mask restartd inherited, and which of the signals it changes were ignored.
#[derive(Clone, Copy)]
pub struct Inherited {
    mask: libc::sigset_t,
    /// Bit `n - 1` set: signal `n` was ignored.
    ignored: u64,
}

impl Inherited {
    /// Reads the current mask and dispositions. Call before Rust's start-up code runs (it ignores
    /// SIGPIPE before `main`): restartd's `main.rs` calls it from an `.init_array` entry.
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

//! restartd's own signal handling: per-signal pending flags plus one self-pipe for poll(2).
//!
//! The handlers (signal-hook) only set a flag and write a byte; the event loop drains the pipe,
//! then takes the flags ("clear the pipe, then act", signal-hook's `low_level::pipe` docs).
//! `Inherited` records the signal mask and ignored signals restartd was started with, so the child
//! gets exactly those back (as tini's `restore_signals` does). This module decides nothing.

use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::sync::atomic::{AtomicBool, Ordering};

use nix::fcntl::OFlag;
use nix::libc::{self, c_int};

const MAX_SIGNAL: usize = 64;
static PENDING: [AtomicBool; MAX_SIGNAL + 1] = [const { AtomicBool::new(false) }; MAX_SIGNAL + 1];

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
    for sig in HANDLED {
        signal_hook::flag::register(sig, &PENDING[sig as usize])?;
        signal_hook::low_level::pipe::register(sig, write.try_clone()?)?;
    }
    Ok(SignalPipe { read })
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

/// The signal mask and ignored signals restartd inherited.
#[derive(Clone, Copy)]
pub struct Inherited {
    mask: libc::sigset_t,
    /// Bit `n - 1` set: signal `n` was ignored.
    ignored: u64,
}

impl Inherited {
    /// Reads the current mask and dispositions. Call first thing in `main`, before any handler is
    /// installed. SIGPIPE is left out: Rust's runtime ignores it before `main` and std resets it
    /// to the default in every child, so what restartd inherited for it cannot be known.
    pub fn capture() -> Inherited {
        // SAFETY: querying the mask and dispositions with null "new" pointers changes nothing.
        unsafe {
            let mut mask: libc::sigset_t = std::mem::zeroed();
            libc::pthread_sigmask(libc::SIG_BLOCK, std::ptr::null(), &mut mask);
            let mut ignored = 0u64;
            for sig in 1..=MAX_SIGNAL as c_int {
                if sig == libc::SIGKILL || sig == libc::SIGSTOP || sig == libc::SIGPIPE {
                    continue;
                }
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

    /// Puts the inherited state back. Runs in the forked child before exec: async-signal-safe
    /// calls only.
    pub fn restore(&self) -> io::Result<()> {
        for sig in 1..=MAX_SIGNAL as c_int {
            if self.ignored & (1 << (sig - 1)) != 0 {
                // SAFETY: signal(2) is async-signal-safe; SIG_IGN needs no handler.
                unsafe { libc::signal(sig, libc::SIG_IGN) };
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

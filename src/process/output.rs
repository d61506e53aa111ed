//! The child's output on its way out: stderr (always) and stdout (with `--log-file`) are read
//! from pipes in big chunks and written on to restartd's own stderr/stdout, to the log file, and
//! (stderr) into the tail kept for crash records.
//!
//! This is the hot path: no per-line work, one read and one write per chunk. The pipes are
//! non-blocking and never waited on for EOF (a grandchild may hold them open).
//!
//! Without a log file, stderr takes a shorter way when restartd's own stderr accepts splice(2)
//! (a pipe, a socket, a file not opened for appending; not a terminal): of what waits in the
//! child's pipe, all but the last `tail::MAX_BYTES` move to restartd's stderr inside the kernel,
//! page by page, never copied through restartd; the rest is read and written as above, so the
//! tail still ends with the newest bytes. The child's stderr pipe is enlarged to `PIPE_BYTES`, so
//! a backlog can build up while restartd waits to be scheduled and then moves in one call.

use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};

use nix::errno::Errno;
use nix::fcntl::SpliceFFlags;
use nix::libc;
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};

use crate::process::logfile::LogFile;
use crate::process::tail::{self, Tail};

/// The capacity asked for the child's stderr pipe (the kernel's default is 64 KiB). Pipe pages
/// are allocated only while they hold data, but the capacity counts against the user's
/// /proc/sys/fs/pipe-user-pages-soft (64 MiB): 256 KiB lets 256 instances of one user stay
/// under it. Refused, the default size only costs speed.
const PIPE_BYTES: i32 = 256 * 1024;

/// One of the child's output pipes.
struct Pipe {
    fd: OwnedFd,
    /// restartd's stream to copy it to: 1 or 2.
    to: i32,
}

/// The current child's output.
pub struct Output {
    pipes: Vec<Pipe>,
    /// The last bytes of the current run's stderr.
    pub tail: Tail,
    log_file: Option<LogFile>,
    /// restartd's own stdout (index 0) or stderr (1) is gone: stop copying there.
    closed: [bool; 2],
    /// splice(2) to restartd's stderr has not failed (it does for a terminal, for example).
    splice: bool,
    /// Read buffer: 64 KiB of capacity, filled by `read_into`.
    buf: Vec<u8>,
}

impl Output {
    pub fn new(log_file: Option<LogFile>) -> Output {
        Output {
            pipes: Vec::new(),
            tail: Tail::new(tail::MAX_BYTES),
            log_file,
            closed: [false; 2],
            splice: true,
            buf: Vec::with_capacity(64 * 1024),
        }
    }

    /// Whether the child's stdout must be piped through restartd (for the log file).
    pub fn captures_stdout(&self) -> bool {
        self.log_file.is_some()
    }

    /// A new child: its pipes, and an empty tail.
    pub fn attach(&mut self, stderr: OwnedFd, stdout: Option<OwnedFd>) {
        self.pipes.clear();
        self.tail.clear();
        for (fd, to) in std::iter::once((stderr, 2)).chain(stdout.map(|fd| (fd, 1))) {
            let _ = nix::fcntl::fcntl(
                &fd,
                nix::fcntl::FcntlArg::F_SETFL(nix::fcntl::OFlag::O_NONBLOCK),
            );
            if to == 2 {
                let _ = nix::fcntl::fcntl(&fd, nix::fcntl::FcntlArg::F_SETPIPE_SZ(PIPE_BYTES));
            }
            self.pipes.push(Pipe { fd, to });
        }
    }

    /// The pipes to poll for readability.
    pub fn fds(&self) -> impl Iterator<Item = BorrowedFd<'_>> {
        self.pipes.iter().map(|p| p.fd.as_fd())
    }

    /// Copies what is readable now; returns problems to report (a failing log file).
    pub fn copy(&mut self) -> Vec<String> {
        let mut problems = Vec::new();
        let mut i = 0;
        while i < self.pipes.len() {
            if self.copy_pipe(i, &mut problems) {
                i += 1;
            } else {
                self.pipes.remove(i);
            }
        }
        problems
    }

    /// The child ended: copy its last words, then let the pipes go.
    pub fn detach(&mut self) -> Vec<String> {
        let problems = self.copy();
        self.pipes.clear();
        problems
    }

    /// Copies one pipe until it would block; false at EOF or on an error.
    fn copy_pipe(&mut self, i: usize, problems: &mut Vec<String>) -> bool {
        loop {
            if self.pipes[i].to == 2 && self.splice_backlog(i) {
                continue;
            }
            let n = match read_into(&self.pipes[i].fd, &mut self.buf) {
                Ok(0) => return false,
                Ok(n) => n,
                Err(Errno::EINTR) => continue,
                Err(Errno::EAGAIN) => return true,
                Err(_) => return false,
            };
            let to = self.pipes[i].to;
            let chunk = &self.buf[..n];
            if to == 2 {
                self.tail.push(chunk);
            }
            let slot = (to - 1) as usize;
            if !self.closed[slot] && write_all(to, chunk).is_err() {
                self.closed[slot] = true;
            }
            if let Some(log) = &mut self.log_file {
                problems.extend(log.write(chunk));
            }
            if n < self.buf.capacity() {
                return true;
            }
        }
    }

    /// Moves all but the last `tail::MAX_BYTES` waiting in stderr pipe `i` to restartd's stderr
    /// with splice(2); true when it moved something. Only without a log file (which needs every
    /// byte) and while restartd's stderr takes splices.
    fn splice_backlog(&mut self, i: usize) -> bool {
        if !self.splice || self.closed[1] || self.log_file.is_some() {
            return false;
        }
        let fd = &self.pipes[i].fd;
        let backlog = waiting(fd);
        if backlog <= tail::MAX_BYTES {
            return false;
        }
        // SAFETY: fd 2 stays open for restartd's whole life.
        let stderr = unsafe { BorrowedFd::borrow_raw(2) };
        let len = backlog - tail::MAX_BYTES;
        match nix::fcntl::splice(fd, None, stderr, None, len, SpliceFFlags::empty()) {
            Ok(0) => false,
            Ok(_) => {
                self.tail.skipped();
                true
            }
            Err(Errno::EINTR) => true,
            Err(Errno::EAGAIN) => {
                // The child's pipe is non-blocking, which makes a pipe-to-pipe splice
                // non-blocking at both ends: restartd's stderr is full (the backlog is there).
                // Wait for room, as a write to it would.
                let mut out = [PollFd::new(stderr, PollFlags::POLLOUT)];
                let _ = poll(&mut out, PollTimeout::NONE);
                true
            }
            Err(Errno::EPIPE) => {
                self.closed[1] = true;
                false
            }
            Err(_) => {
                // Not a pipe, socket or plain file (a terminal, an O_APPEND file): nothing was
                // moved; read and write from now on.
                self.splice = false;
                false
            }
        }
    }
}

/// Reads into `buf`'s capacity, which is never zeroed: a page of it is touched only once the
/// kernel writes output there (a quiet child costs none).
fn read_into(fd: &OwnedFd, buf: &mut Vec<u8>) -> nix::Result<usize> {
    buf.clear();
    // SAFETY: read(2) writes at most `capacity` bytes into the vector's own allocation, and the
    // length then covers exactly the bytes it wrote.
    unsafe {
        let n = Errno::result(libc::read(
            fd.as_raw_fd(),
            buf.as_mut_ptr().cast(),
            buf.capacity(),
        ))? as usize;
        buf.set_len(n);
        Ok(n)
    }
}

/// The bytes waiting in pipe `fd` (FIONREAD); 0 when that cannot be told.
fn waiting(fd: &OwnedFd) -> usize {
    let mut n: libc::c_int = 0;
    // SAFETY: FIONREAD writes one int to the valid pointer given.
    let rc = unsafe { libc::ioctl(fd.as_raw_fd(), libc::FIONREAD, &mut n) };
    if rc == 0 {
        n.max(0) as usize
    } else {
        0
    }
}

fn write_all(fd: i32, mut buf: &[u8]) -> nix::Result<()> {
    // SAFETY: fd 1 and 2 stay open for restartd's whole life.
    let fd = unsafe { BorrowedFd::borrow_raw(fd) };
    while !buf.is_empty() {
        match nix::unistd::write(fd, buf) {
            Ok(n) => buf = &buf[n..],
            Err(Errno::EINTR) => continue,
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

//! The child's output on its way out: stderr (always) and stdout (with `--log-file`) are read
//! from pipes in big chunks and written on to restartd's own stderr/stdout, to the log file, and
//! (stderr) into the tail kept for crash records.
//!
//! This is the hot path: no per-line work, one read and one write per chunk. The pipes are
//! non-blocking and never waited on for EOF (a grandchild may hold them open).

use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

use nix::errno::Errno;

use crate::logfile::LogFile;
use crate::tail::{self, Tail};

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
    buf: Vec<u8>,
}

impl Output {
    pub fn new(log_file: Option<LogFile>) -> Output {
        Output {
            pipes: Vec::new(),
            tail: Tail::new(tail::MAX_BYTES),
            log_file,
            closed: [false; 2],
            buf: vec![0; 64 * 1024],
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
            let n = match nix::unistd::read(&self.pipes[i].fd, &mut self.buf) {
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
            if n < self.buf.len() {
                return true;
            }
        }
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

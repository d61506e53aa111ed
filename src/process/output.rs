//! The child's output on its way out: stderr (always) and stdout (with `--log-file`) are read
//! from pipes in big chunks and written on to restartd's own stderr/stdout, to the log file, and
//! (stderr) into the tail kept for crash records.
//!
//! This is the hot path: no per-line work, one read and one write per chunk. The pipes are
//! non-blocking and never waited on for EOF (a grandchild may hold them open).
//!
//! restartd never blocks on its own output (SPEC §10): a reader that stops reading its stderr (a
//! terminal after Ctrl-S, a stuck `| logger`, a stalled journal) must not stop the loop. Every
//! write to restartd's stderr, and to its stdout when it carries the child's, goes through a
//! `Sink`, which writes what the stream takes now and queues the rest. While something waits,
//! the pipe feeding that stream is not read, so the child blocks on its full pipe as it would on
//! the stalled stream itself, and the loop polls the stream for POLLOUT instead; signals, timers,
//! control requests, health checks and reaping go on. How a write is kept from waiting depends
//! on the stream (`sink`):
//!
//! - Not O_NONBLOCK on fd 2 itself: that flag belongs to the open file description, which
//!   restartd shares with whoever gave it the stream: the shell, the other writers of a `2>&1`,
//!   and the child, whose stdout is restartd's (in a terminal fd 1 and fd 2 are one description).
//!   Their writes would fail with EAGAIN.
//! - A pipe, a FIFO or a terminal is opened again through /proc/self/fd/N with O_NONBLOCK: the
//!   same pipe or terminal, in a description of restartd's own. libuv's `uv_tty_init` reopens
//!   terminals for the same reason; a pty master is left alone (opened again it is a new pty).
//! - A socket (the journal) is written with send(2) and MSG_DONTWAIT: non-blocking for that call
//!   only.
//! - A regular file (or /dev/null) does not wait on a reader: plain write(2).
//! - When a pipe or terminal cannot be opened again (no /proc; a stream of another user, after
//!   `sudo -u`; a pty master), at most PIPE_BUF bytes are written after poll(2) says POLLOUT.
//!   A pipe takes that without blocking, unless another writer (the child's stdout with `2>&1`)
//!   fills it between the poll and the write. A terminal's room after POLLOUT may be smaller, so
//!   there a write can still wait while the terminal is stopped. These are the windows left, and
//!   only in this fallback.
//!
//! Not chosen: POLLOUT then at most PIPE_BUF everywhere (that window on every pipe, a terminal's
//! room is not PIPE_BUF, and two syscalls per 4 KiB), and pwritev2(RWF_NOWAIT) (pipes only since
//! Linux 6.4; not FIFOs, not terminals).
//!
//! restartd's own log lines go through the same stderr sink, in order with the child's output.
//! The queue is bounded: the child's bytes up to `sink::OUTPUT_QUEUE`, restartd's lines
//! `sink::LINES_QUEUE` beyond; what does not fit is dropped, counted, and reported in one line
//! once the stream has drained. In practice only restartd's lines are ever dropped: reading
//! stops while anything waits, so the child's bytes wait at most one read plus, at its end, what
//! was left in its pipe.
//!
//! At the child's end its pipes are read even while the stream is stalled, at most what the pipe
//! holds and a read more (`last_read`; never waiting for EOF): the tail gets the last lines for
//! the crash record, and the queue gets them for the stream, as far as it takes them. At exit the
//! queue gets `EXIT_GRACE` to drain, and never more than what is left of a requested stop's
//! `--stop-timeout`; the rest is dropped.
//!
//! Without a log file, stderr takes a shorter way when restartd's stderr accepts splice(2)
//! without ever waiting (a pipe, where SPLICE_F_NONBLOCK holds at both ends, or a file not
//! opened for appending; not a terminal or a socket): of what waits in the child's pipe, all but
//! the last `tail::MAX_BYTES` move to restartd's stderr inside the kernel, page by page, never
//! copied through restartd; the rest is read and written as above, so the tail still ends with
//! the newest bytes. With a log file, restartd's stream gets its copy by tee(2) when it is a pipe
//! and nothing waits for it: the bytes are duplicated inside the kernel, then read once for the
//! file and the tail; when the stream is full the pipe is not read until it drains.
//!
//! The child's pipes, and restartd's stderr and stdout when they are pipes of its own user, are
//! enlarged to `sink::PIPE_BYTES` and read `READ_BYTES` at a time, so a backlog can build up
//! while restartd waits to be scheduled and then moves in one call, waking the writer and the
//! reader once.

use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::libc;
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};

use crate::process::logfile::LogFile;
use crate::process::sink::{self, Shared, Sink};
use crate::process::tail::{self, Tail};

/// The read buffer: as big as the child's pipes (`sink::PIPE_BYTES`), so that one read takes
/// what a flood left there and wakes the child once. Its pages are touched only as output
/// arrives (`read_into`).
const READ_BYTES: usize = sink::PIPE_BYTES;

/// What is read from a pipe at the child's end, at most: what its pipe holds, and a read more.
/// A grandchild that keeps writing is not followed further. A child that made its pipe bigger
/// gets as much more (`last_read`).
const LAST_READ: usize = sink::PIPE_BYTES + READ_BYTES;

/// How long the queue may take to drain when restartd exits. A reader that reads drains
/// `sink::OUTPUT_QUEUE` in milliseconds; a stalled one costs this much, once.
pub const EXIT_GRACE: Duration = Duration::from_secs(1);

const _: () = assert!(LAST_READ + READ_BYTES <= sink::OUTPUT_QUEUE);

/// One of the child's output pipes.
struct Pipe {
    fd: OwnedFd,
    /// restartd's stream to copy it to: 1 or 2.
    to: i32,
    /// The pipe of a reload's second child (its stderr goes to `other_tail`).
    other: bool,
}

/// The current child's output.
pub struct Output {
    pipes: Vec<Pipe>,
    /// The last bytes of the current run's stderr.
    pub tail: Tail,
    /// The same for a reload's second child.
    pub other_tail: Tail,
    log_file: Option<LogFile>,
    /// restartd's stderr, shared with the logger.
    stderr: Shared,
    /// restartd's stdout, when it carries the child's (with the log file).
    stdout: Option<Sink>,
    /// Read buffer: `READ_BYTES` of capacity, filled by `read_into`.
    buf: Vec<u8>,
}

impl Output {
    /// The output of children to come, written on to `stderr` (shared with restartd's own log
    /// lines) and, with a log file, to restartd's stdout and the file.
    pub fn new(log_file: Option<LogFile>, stderr: Shared) -> Output {
        Output {
            pipes: Vec::new(),
            tail: Tail::new(tail::MAX_BYTES),
            other_tail: Tail::new(tail::MAX_BYTES),
            stdout: log_file.as_ref().map(|_| Sink::stdout()),
            log_file,
            stderr,
            buf: Vec::with_capacity(READ_BYTES),
        }
    }

    /// Whether the log file has work waiting (rotated files to compress): the loop then polls
    /// without blocking and calls `log_work` each turn.
    pub fn log_busy(&self) -> bool {
        self.log_file.as_ref().is_some_and(LogFile::busy)
    }

    /// One piece of the log file's waiting work; a problem to report.
    pub fn log_work(&mut self) -> Option<String> {
        self.log_file.as_mut()?.work()
    }

    /// Whether the child's stdout must be piped through restartd (for the log file).
    pub fn captures_stdout(&self) -> bool {
        self.log_file.is_some()
    }

    /// A new child: its pipes, and an empty tail.
    pub fn attach(&mut self, stderr: OwnedFd, stdout: Option<OwnedFd>) {
        self.pipes.retain(|p| p.other);
        self.tail.clear();
        self.add(stderr, stdout, false);
    }

    /// A reload's second child: its pipes, and an empty tail of its own.
    pub fn attach_other(&mut self, stderr: OwnedFd, stdout: Option<OwnedFd>) {
        self.pipes.retain(|p| !p.other);
        self.other_tail.clear();
        self.add(stderr, stdout, true);
    }

    /// A reload's switch: the second child's pipes and tail become the child's, and back.
    pub fn swap(&mut self) {
        for pipe in &mut self.pipes {
            pipe.other = !pipe.other;
        }
        std::mem::swap(&mut self.tail, &mut self.other_tail);
    }

    fn add(&mut self, stderr: OwnedFd, stdout: Option<OwnedFd>, other: bool) {
        for (fd, to) in std::iter::once((stderr, 2)).chain(stdout.map(|fd| (fd, 1))) {
            let _ = nix::fcntl::fcntl(
                &fd,
                nix::fcntl::FcntlArg::F_SETFL(nix::fcntl::OFlag::O_NONBLOCK),
            );
            self.pipes.push(Pipe { fd, to, other });
        }
    }

    /// What to poll: each pipe for POLLIN while its stream takes more, and each stalled stream
    /// for POLLOUT.
    pub fn fds(&self) -> Vec<(BorrowedFd<'_>, PollFlags)> {
        let mut fds: Vec<_> = self
            .pipes
            .iter()
            .filter(|p| !self.stalled(p.to))
            .map(|p| (p.fd.as_fd(), PollFlags::POLLIN))
            .collect();
        fds.extend(self.stalled_streams().map(|fd| (fd, PollFlags::POLLOUT)));
        fds
    }

    /// restartd's streams that take no more for now.
    fn stalled_streams(&self) -> impl Iterator<Item = BorrowedFd<'_>> {
        let stderr = self.stderr.borrow().poll_fd();
        let stdout = self.stdout.as_ref().and_then(Sink::poll_fd);
        // SAFETY: the sinks live as long as `self`, which holds them, and a sink keeps its
        // descriptor open as long as it lives.
        stderr
            .into_iter()
            .chain(stdout)
            .map(|raw| unsafe { BorrowedFd::borrow_raw(raw) })
    }

    /// Writes what waits for restartd's streams, then copies what is readable now from the pipes
    /// whose stream takes more; returns problems to report (a failing log file, output dropped).
    pub fn copy(&mut self) -> Vec<String> {
        self.copy_all(None)
    }

    /// The child ended: copy its last words, even into the queue of a stalled stream, then let
    /// the pipes go.
    pub fn detach(&mut self) -> Vec<String> {
        let mut problems = self.copy_all(Some(false));
        self.pipes.retain(|p| p.other);
        if let Some(log) = &mut self.log_file {
            problems.extend(log.end_run());
        }
        problems
    }

    /// As `detach`, for a reload's second child.
    pub fn detach_other(&mut self) -> Vec<String> {
        let mut problems = self.copy_all(Some(true));
        self.pipes.retain(|p| !p.other);
        if let Some(log) = &mut self.log_file {
            problems.extend(log.end_run());
        }
        problems
    }

    /// restartd is exiting: what waits gets up to `EXIT_GRACE` to go out, but never past
    /// `stop_by`, the end of a requested stop (SPEC §10: a stop is served within
    /// `--stop-timeout`, even with a stalled stderr). Rotated log files waiting to be
    /// compressed get as long again, within the same bound (no child waits on the loop any
    /// more; what is left stays plain, and the next start compresses it).
    pub fn finish(&mut self, stop_by: Option<Instant>) {
        self.finish_streams(stop_by);
        if let Some(log) = &mut self.log_file {
            let grace = Instant::now() + EXIT_GRACE;
            let deadline = stop_by.map_or(grace, |by| by.min(grace));
            while log.busy() && Instant::now() < deadline {
                if log.work().is_some() {
                    break;
                }
            }
        }
    }

    fn finish_streams(&mut self, stop_by: Option<Instant>) {
        let grace = Instant::now() + EXIT_GRACE;
        let deadline = stop_by.map_or(grace, |by| by.min(grace));
        loop {
            let done = self.stderr.borrow_mut().flush();
            let done = self.stdout.as_mut().is_none_or(Sink::flush) && done;
            let left = deadline.saturating_duration_since(Instant::now());
            if done || left.is_zero() {
                return;
            }
            let mut fds: Vec<_> = self
                .stalled_streams()
                .map(|fd| PollFd::new(fd, PollFlags::POLLOUT))
                .collect();
            let ms = left.as_millis().min(i32::MAX as u128) as i32 + 1;
            let _ = poll(
                &mut fds,
                PollTimeout::try_from(ms).unwrap_or(PollTimeout::MAX),
            );
        }
    }

    /// `ended`: which child ended (`Some(other)`): its pipes are read to their end even into a
    /// stalled stream's queue; the other child's, still running, wait for the stream as usual.
    fn copy_all(&mut self, ended: Option<bool>) -> Vec<String> {
        let mut problems = Vec::new();
        self.stderr.borrow_mut().flush();
        if let Some(stdout) = &mut self.stdout {
            stdout.flush();
        }
        let mut i = 0;
        while i < self.pipes.len() {
            // See: issue 21 (review). A reload's ending child had the running one's pipe read
            // into the stalled stream's queue too, where its bytes could be dropped.
            let last = ended == Some(self.pipes[i].other);
            if self.copy_pipe(i, last, &mut problems) {
                i += 1;
            } else {
                self.pipes.remove(i);
            }
        }
        if let Some((lines, bytes)) = self.stderr.borrow_mut().take_dropped() {
            problems.push(dropped("stderr", lines, bytes));
        }
        if let Some((lines, bytes)) = self.stdout.as_mut().and_then(Sink::take_dropped) {
            problems.push(dropped("stdout", lines, bytes) + " (the log file has every byte)");
        }
        problems
    }

    /// Whether restartd's stream `to` takes no more for now.
    fn stalled(&self, to: i32) -> bool {
        match to {
            1 => self.stdout.as_ref().is_some_and(Sink::stalled),
            _ => self.stderr.borrow().stalled(),
        }
    }

    /// Copies one pipe until it would block, or its stream stalls (`last`: until it would block,
    /// at most `last_read`); false at EOF or on an error.
    fn copy_pipe(&mut self, i: usize, last: bool, problems: &mut Vec<String>) -> bool {
        let mut budget = if last {
            last_read(self.pipes[i].fd.as_fd())
        } else {
            usize::MAX
        };
        loop {
            let to = self.pipes[i].to;
            if !last && self.stalled(to) {
                return true;
            }
            // With --log-compress, each read is bounded so that compression keeps up
            // (`read_budget`, asked again before each read: this turn's writes count).
            let room = match self.log_file.as_ref().and_then(LogFile::read_budget) {
                Some(room) if !last => budget.min(room),
                _ => budget,
            };
            if room == 0 {
                return true;
            }
            if to == 2 {
                let moved = self.splice_backlog(i, room);
                budget = budget.saturating_sub(moved);
                // Moved: more may wait. Refused for lack of room: stop (`last`: read instead).
                if moved > 0 || !last && self.stalled(to) {
                    continue;
                }
            }
            // With the log file, the stream gets its copy inside the kernel when it can
            // (`tee_stream`); exactly those bytes are read next, for the file and the tail.
            let teed = self.tee_stream(i, room);
            if teed == 0 && !last && self.stalled(to) {
                // The stream is full: wait for it rather than queue what it would have shared.
                return true;
            }
            let want = if teed > 0 { teed } else { room };
            let n = match read_into(&self.pipes[i].fd, &mut self.buf, want) {
                Ok(0) => return false,
                Ok(n) => n,
                Err(Errno::EINTR) => continue,
                Err(Errno::EAGAIN) => return true,
                Err(_) => return false,
            };
            budget = budget.saturating_sub(n);
            let chunk = std::mem::take(&mut self.buf);
            if to == 2 && self.pipes[i].other {
                self.other_tail.push(&chunk);
            } else if to == 2 {
                self.tail.push(&chunk);
            }
            if let Some(log) = &mut self.log_file {
                problems.extend(log.write(&chunk));
            }
            debug_assert!(teed == 0 || teed == n, "a pipe's reader is restartd alone");
            match (to, &mut self.stdout) {
                _ if teed > 0 => {}
                (1, Some(stdout)) => stdout.write(&chunk),
                _ => self.stderr.borrow_mut().write(&chunk),
            }
            self.buf = chunk;
            // Less than asked for: the pipe is empty for now.
            if n < self.buf.capacity().min(want) {
                return true;
            }
        }
    }

    /// With a log file: duplicates up to a read's worth (at most `budget`) of what waits in
    /// pipe `i` into its stream with tee(2), when the stream is a pipe and nothing waits for it;
    /// returns how much (0: read and write as usual, unless the stream is now `stalled` for lack
    /// of room). One copy less per byte than reading it and writing it to the stream.
    fn tee_stream(&mut self, i: usize, budget: usize) -> usize {
        if self.log_file.is_none() {
            return 0;
        }
        let fd = self.pipes[i].fd.as_fd();
        let len = self.buf.capacity().min(budget);
        match (self.pipes[i].to, &mut self.stdout) {
            (1, Some(stdout)) => stdout.tee_from(fd, len),
            _ => self.stderr.borrow_mut().tee_from(fd, len),
        }
    }

    /// Moves all but the last `tail::MAX_BYTES` waiting in stderr pipe `i` (at most `budget`) to
    /// restartd's stderr with splice(2); returns how much moved. Only without a log file (which
    /// needs every byte) and where the stderr sink splices without waiting.
    fn splice_backlog(&mut self, i: usize, budget: usize) -> usize {
        if self.log_file.is_some() {
            return 0;
        }
        let fd = &self.pipes[i].fd;
        let backlog = sink::waiting(fd.as_fd());
        if backlog <= tail::MAX_BYTES {
            return 0;
        }
        let len = (backlog - tail::MAX_BYTES).min(budget);
        let moved = self.stderr.borrow_mut().splice_from(fd.as_fd(), len);
        if moved > 0 && self.pipes[i].other {
            self.other_tail.skipped();
        } else if moved > 0 {
            self.tail.skipped();
        }
        moved
    }
}

/// The line that says what a stalled `stream` dropped.
fn dropped(stream: &str, lines: u64, bytes: u64) -> String {
    let mut what = Vec::new();
    if lines > 0 {
        what.push(format!("{lines} lines of restartd's own log"));
    }
    if bytes > 0 {
        what.push(format!("{bytes} bytes of the child's {stream}"));
    }
    format!(
        "restartd's {stream} took no more output for a while: dropped {}",
        what.join(" and ")
    )
}

/// What is read from pipe `fd` at the child's end: `LAST_READ`, or its capacity and a read more
/// if the child made it bigger (the tail must end with the newest bytes; what the queue cannot
/// take is dropped and counted).
fn last_read(fd: BorrowedFd<'_>) -> usize {
    let capacity = nix::fcntl::fcntl(fd, nix::fcntl::FcntlArg::F_GETPIPE_SZ).unwrap_or(0);
    LAST_READ.max(capacity.max(0) as usize + READ_BYTES)
}

/// Reads at most `limit` bytes into `buf`'s capacity, which is never zeroed: a page of it is
/// touched only once the kernel writes output there (a quiet child costs none).
fn read_into(fd: &OwnedFd, buf: &mut Vec<u8>, limit: usize) -> nix::Result<usize> {
    buf.clear();
    // SAFETY: read(2) writes at most `capacity` bytes into the vector's own allocation, and the
    // length then covers exactly the bytes it wrote.
    unsafe {
        let n = Errno::result(libc::read(
            fd.as_raw_fd(),
            buf.as_mut_ptr().cast(),
            buf.capacity().min(limit),
        ))? as usize;
        buf.set_len(n);
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use std::cell::RefCell;
    use std::rc::Rc;

    use nix::fcntl::OFlag;

    use super::*;

    #[test]
    fn the_end_of_one_child_leaves_the_running_childs_pipe_to_a_stalled_stream() {
        let (_reader, stream) = nix::unistd::pipe2(OFlag::O_CLOEXEC).unwrap();
        let stderr = Rc::new(RefCell::new(Sink::new(stream.as_raw_fd())));
        // Nobody reads the stream: it takes what fits, the rest waits, and it stalls.
        stderr.borrow_mut().write(&vec![b'x'; 2 * sink::PIPE_BYTES]);
        assert!(stderr.borrow().stalled());
        let mut output = Output::new(None, stderr);
        let (running, running_w) = nix::unistd::pipe2(OFlag::O_CLOEXEC).unwrap();
        let (ending, ending_w) = nix::unistd::pipe2(OFlag::O_CLOEXEC).unwrap();
        output.attach(running, None);
        output.attach_other(ending, None);
        nix::unistd::write(&running_w, &[b'r'; 1000]).unwrap();
        nix::unistd::write(&ending_w, b"last words\n").unwrap();
        drop(ending_w);
        output.detach_other();
        assert_eq!(output.other_tail.bytes(), b"last words\n");
        let running = &output.pipes[0];
        assert!(!running.other);
        assert_eq!(
            sink::waiting(running.fd.as_fd()),
            1000,
            "left for the stream"
        );
    }
}

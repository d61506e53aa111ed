//! restartd's own stderr, and its stdout while it carries the child's (`--log-file`), as the loop
//! writes to them: bytes go out as far as the reader takes them now, the rest waits in a bounded
//! queue until poll(2) says the file takes more. Nothing here ever blocks (SPEC §10); why each
//! kind of file is written the way it is, is in `output`'s module doc.
//!
//! One sink per stream, shared (`Shared`) by the child's output and restartd's own log lines, so
//! that both keep their order. The queue holds the child's output up to `OUTPUT_QUEUE` and
//! restartd's own lines up to `LINES_QUEUE` more; what does not fit is dropped and counted, and
//! the counts are told once the queue has drained (`take_dropped`).

use std::cell::RefCell;
use std::collections::VecDeque;
use std::os::fd::{AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::rc::Rc;

use nix::errno::Errno;
use nix::fcntl::{OFlag, SpliceFFlags};
use nix::libc;
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::stat::{fstat, Mode, SFlag};

/// A sink shared by the output copier and the logger.
pub type Shared = Rc<RefCell<Sink>>;

/// The child's output that may wait: one read and, when the child has ended, what is left in its
/// stderr pipe and a read more (256 KiB each). See `output`.
pub const OUTPUT_QUEUE: usize = 3 * PIPE_BYTES;

/// The capacity asked for the child's pipes and for a pipe of restartd's own user that it writes
/// to (the kernel's default is 64 KiB): one read, tee(2) or splice(2) then moves up to 256 KiB
/// and wakes the process at the other end once, not four times (with `--log-file`, a flood costs
/// restartd a fifth less CPU time: BENCHMARKS.md, session 11). Pipe pages are allocated only
/// while they hold data, but the capacity counts against the pipe creator's
/// /proc/sys/fs/pipe-user-pages-soft (64 MiB). Refused, the smaller size only costs speed.
pub const PIPE_BYTES: usize = 256 * 1024;

/// restartd's own lines may wait beyond `OUTPUT_QUEUE` up to this much (some hundreds of lines).
pub const LINES_QUEUE: usize = 64 * 1024;

/// Writes at most this much to a `Gated` file after one POLLOUT: PIPE_BUF, which a pipe that
/// reports POLLOUT takes without blocking (pipe(7)).
const GATED_CHUNK: usize = libc::PIPE_BUF;

/// How bytes reach the file.
#[derive(Debug)]
enum How {
    /// A regular file, a block device or a device that never waits on a reader (/dev/null):
    /// write(2) on the stream itself.
    Plain,
    /// A pipe, a FIFO or a terminal, opened again through /proc/self/fd with O_NONBLOCK: an open
    /// file description of restartd's own, so the flag reaches no one else.
    Own(OwnedFd),
    /// A socket: send(2) with MSG_DONTWAIT, which is non-blocking for this call only.
    Socket,
    /// A pipe or terminal that could not be opened again (/proc missing, the file belongs to
    /// another user, a pty master): write at most `GATED_CHUNK` bytes, and only when poll(2) says
    /// POLLOUT. Best effort: see `output`.
    Gated,
}

/// One of restartd's own output streams.
#[derive(Debug)]
pub struct Sink {
    /// The stream: 1 or 2 (a test's pipe in unit tests). Never closed here.
    fd: RawFd,
    how: How,
    /// splice(2) into the stream is possible and never blocks: a pipe (pipe to pipe honours
    /// SPLICE_F_NONBLOCK at both ends) or a regular file. Cleared when a splice is refused.
    splice: bool,
    /// tee(2) into the stream is possible: a pipe (of restartd's own description, which is
    /// non-blocking). Cleared when a tee is refused.
    tee: bool,
    /// Bytes accepted but not yet written, oldest first.
    pending: VecDeque<u8>,
    /// The last write, splice or tee was refused for lack of room.
    full: bool,
    /// Writing failed for good (EPIPE: nobody reads any more; EBADF…): everything is dropped.
    closed: bool,
    dropped_lines: u64,
    dropped_bytes: u64,
}

impl Sink {
    /// restartd's stderr. fd 2 is open for restartd's whole life (`main` opens /dev/null on a
    /// closed one).
    pub fn stderr() -> Sink {
        Sink::new(2)
    }

    /// restartd's stdout; see `stderr`.
    pub fn stdout() -> Sink {
        Sink::new(1)
    }

    /// `stderr()`, shared.
    pub fn shared_stderr() -> Shared {
        Rc::new(RefCell::new(Sink::stderr()))
    }

    /// A sink writing to `fd`, which must stay open as long as the sink.
    pub(super) fn new(fd: RawFd) -> Sink {
        // SAFETY: the caller keeps `fd` open as long as the sink.
        let stream = unsafe { BorrowedFd::borrow_raw(fd) };
        let (how, splice, closed) = match fstat(stream) {
            Err(_) => (How::Plain, false, true),
            Ok(st) => {
                let kind = SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT;
                if kind == SFlag::S_IFSOCK {
                    (How::Socket, false, false)
                } else if kind == SFlag::S_IFIFO {
                    // Not another user's pipe: its pages count against that user's limit.
                    if st.st_uid == nix::unistd::geteuid().as_raw() {
                        widen(stream);
                    }
                    (reopen(fd), true, false)
                } else if kind == SFlag::S_IFCHR && nix::unistd::isatty(stream).unwrap_or(false) {
                    // Opening a pty master again would make a new pty (libuv's uv_tty_init).
                    let how = if pty_master(fd) {
                        How::Gated
                    } else {
                        reopen(fd)
                    };
                    (how, false, false)
                } else {
                    (How::Plain, kind == SFlag::S_IFREG, false)
                }
            }
        };
        Sink {
            fd,
            tee: splice && matches!(how, How::Own(_)),
            how,
            splice,
            pending: VecDeque::new(),
            full: false,
            closed,
            dropped_lines: 0,
            dropped_bytes: 0,
        }
    }

    /// Writes the child's `data`: what the stream does not take now waits (after what already
    /// waits), up to `OUTPUT_QUEUE`; the rest is dropped and counted.
    pub fn write(&mut self, data: &[u8]) {
        let rest = self.write_now(data);
        if rest.is_empty() {
            return;
        }
        let keep = rest
            .len()
            .min(OUTPUT_QUEUE.saturating_sub(self.pending.len()));
        self.pending.extend(&rest[..keep]);
        self.dropped_bytes += (rest.len() - keep) as u64;
    }

    /// Writes one of restartd's own lines whole: if the stream does not take it now, it waits
    /// (the rest of a line begun always does), up to `OUTPUT_QUEUE + LINES_QUEUE`; a line that
    /// does not fit is dropped and counted.
    pub fn line(&mut self, line: &[u8]) {
        let rest = self.write_now(line);
        let begun = rest.len() < line.len();
        if rest.is_empty() {
            return;
        }
        if begun || self.pending.len() + rest.len() <= OUTPUT_QUEUE + LINES_QUEUE {
            self.pending.extend(rest);
        } else {
            self.dropped_lines += 1;
        }
    }

    /// Writes what waits, then as much of `data` as the stream takes now; returns the rest of
    /// `data` (all of it while something still waits). Closed: drops everything, returns nothing.
    fn write_now<'a>(&mut self, data: &'a [u8]) -> &'a [u8] {
        if !self.flush() {
            return data;
        }
        if self.closed {
            return &[];
        }
        let n = self.send(data);
        if self.closed {
            return &[];
        }
        &data[n..]
    }

    /// Writes what waits, as far as the stream takes it now; true when nothing waits any more.
    pub fn flush(&mut self) -> bool {
        while !self.pending.is_empty() && !self.closed {
            let (front, _) = self.pending.as_slices();
            let want = front.len();
            let (n, end) = send(&self.how, self.fd, front);
            self.pending.drain(..n);
            self.ended(end);
            if n < want {
                break;
            }
        }
        if self.pending.is_empty() {
            self.full = false;
            if self.pending.capacity() > 64 * 1024 {
                self.pending = VecDeque::new();
            }
        }
        self.closed || self.pending.is_empty()
    }

    /// Writes as much of `data` as the stream takes now; returns how much that was.
    fn send(&mut self, data: &[u8]) -> usize {
        let (n, end) = send(&self.how, self.fd, data);
        self.ended(end);
        n
    }

    /// Takes note of why a write stopped.
    fn ended(&mut self, end: End) {
        match end {
            End::Done => {}
            End::Full => self.full = true,
            End::Failed => self.close(),
        }
    }

    /// Moves up to `len` bytes from pipe `from` into the stream with splice(2), never waiting;
    /// returns how many moved (0: not possible here, or no room now). Only when nothing waits, so
    /// the order holds.
    pub fn splice_from(&mut self, from: BorrowedFd<'_>, len: usize) -> usize {
        if !self.splice || self.closed || !self.pending.is_empty() {
            return 0;
        }
        // SAFETY: the stream (or restartd's own description of it) outlives this call.
        let to = unsafe { BorrowedFd::borrow_raw(self.write_fd()) };
        loop {
            match nix::fcntl::splice(from, None, to, None, len, SpliceFFlags::SPLICE_F_NONBLOCK) {
                Ok(n) => return n,
                Err(Errno::EINTR) => continue,
                Err(Errno::EAGAIN) => {
                    self.full = true;
                    return 0;
                }
                Err(Errno::EPIPE) => {
                    self.close();
                    return 0;
                }
                Err(_) => {
                    // An O_APPEND file, for one: read and write from now on.
                    self.splice = false;
                    return 0;
                }
            }
        }
    }

    /// Duplicates up to `len` bytes waiting in pipe `from` into the stream with tee(2), never
    /// waiting and without taking them from `from` (the caller reads exactly that many next);
    /// returns how many (0: not possible here or nothing waits, and the caller reads and writes
    /// as usual; or no room now, and the sink is `stalled`). Only into a pipe, and only when
    /// nothing waits, so the order holds.
    pub fn tee_from(&mut self, from: BorrowedFd<'_>, len: usize) -> usize {
        if !self.tee || self.closed || !self.pending.is_empty() {
            return 0;
        }
        // SAFETY: the stream (or restartd's own description of it) outlives this call.
        let to = unsafe { BorrowedFd::borrow_raw(self.write_fd()) };
        loop {
            match nix::fcntl::tee(from, to, len, SpliceFFlags::SPLICE_F_NONBLOCK) {
                Ok(n) => return n,
                Err(Errno::EINTR) => continue,
                // Nothing to duplicate, or no room in the stream: the stream is full when bytes
                // wait (a write in between only costs one needless poll for POLLOUT).
                Err(Errno::EAGAIN) => {
                    self.full = waiting(from) > 0;
                    return 0;
                }
                Err(_) => {
                    self.tee = false;
                    return 0;
                }
            }
        }
    }

    /// The stream took less than it was given and has not drained since: read no more for it.
    pub fn stalled(&self) -> bool {
        !self.closed && (self.full || !self.pending.is_empty())
    }

    /// While `stalled`: the descriptor to poll for POLLOUT. It stays open as long as the sink.
    pub fn poll_fd(&self) -> Option<RawFd> {
        self.stalled().then(|| self.write_fd())
    }

    /// Once nothing waits: what was dropped since the last call, as (restartd's lines, bytes of
    /// the child's output), if anything was.
    pub fn take_dropped(&mut self) -> Option<(u64, u64)> {
        if !self.pending.is_empty() || self.dropped_lines + self.dropped_bytes == 0 {
            return None;
        }
        let dropped = (self.dropped_lines, self.dropped_bytes);
        (self.dropped_lines, self.dropped_bytes) = (0, 0);
        Some(dropped)
    }

    /// The descriptor written to.
    fn write_fd(&self) -> RawFd {
        match &self.how {
            How::Own(fd) => fd.as_raw_fd(),
            _ => self.fd,
        }
    }

    fn close(&mut self) {
        self.closed = true;
        self.pending = VecDeque::new();
    }
}

/// Why `send` stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum End {
    /// Everything was written.
    Done,
    /// The stream takes no more now.
    Full,
    /// Writing failed for good: EPIPE (nobody reads any more), EBADF, EIO…
    Failed,
}

/// Writes as much of `data` to the stream as it takes now, as `how` says; returns how much that
/// was, and why it stopped.
fn send(how: &How, fd: RawFd, mut data: &[u8]) -> (usize, End) {
    let total = data.len();
    while !data.is_empty() {
        let result = match how {
            How::Plain => raw_write(fd, data),
            How::Own(own) => raw_write(own.as_raw_fd(), data),
            How::Socket => {
                let flags = libc::MSG_DONTWAIT | libc::MSG_NOSIGNAL;
                // SAFETY: send(2) reads at most `len` bytes from the valid slice.
                let n = unsafe { libc::send(fd, data.as_ptr().cast(), data.len(), flags) };
                Errno::result(n).map(|n| n as usize)
            }
            How::Gated => match writable(fd) {
                true => raw_write(fd, &data[..data.len().min(GATED_CHUNK)]),
                false => Err(Errno::EAGAIN),
            },
        };
        match result {
            Ok(0) | Err(Errno::EAGAIN) => return (total - data.len(), End::Full),
            Ok(n) => data = &data[n..],
            Err(Errno::EINTR) => {}
            Err(_) => return (total - data.len(), End::Failed),
        }
    }
    (total, End::Done)
}

/// `fd` opened again through /proc/self/fd, write-only and non-blocking, as a description of
/// restartd's own (never the controlling terminal); `Gated` when that is not possible.
fn reopen(fd: RawFd) -> How {
    let flags = OFlag::O_WRONLY | OFlag::O_NONBLOCK | OFlag::O_NOCTTY | OFlag::O_CLOEXEC;
    match nix::fcntl::open(format!("/proc/self/fd/{fd}").as_str(), flags, Mode::empty()) {
        Ok(own) => How::Own(own),
        Err(_) => How::Gated,
    }
}

/// Whether terminal `fd` is a pty master (TIOCGPTN answers only there).
fn pty_master(fd: RawFd) -> bool {
    let mut n: libc::c_uint = 0;
    // SAFETY: TIOCGPTN writes one unsigned int to the valid pointer given.
    unsafe { libc::ioctl(fd, libc::TIOCGPTN, &mut n) == 0 }
}

/// Whether `fd` takes more without waiting now (poll(2) with no timeout).
fn writable(fd: RawFd) -> bool {
    // SAFETY: the caller's descriptor is open for the duration of the call.
    let fd = unsafe { BorrowedFd::borrow_raw(fd) };
    let mut fds = [PollFd::new(fd, PollFlags::POLLOUT)];
    matches!(poll(&mut fds, PollTimeout::ZERO), Ok(n) if n > 0)
}

fn raw_write(fd: RawFd, data: &[u8]) -> nix::Result<usize> {
    // SAFETY: the caller's descriptor is open for the duration of the call.
    nix::unistd::write(unsafe { BorrowedFd::borrow_raw(fd) }, data)
}

/// The bytes waiting in pipe `fd` (FIONREAD); 0 when that cannot be told.
pub fn waiting(fd: BorrowedFd<'_>) -> usize {
    let mut n: libc::c_int = 0;
    // SAFETY: FIONREAD writes one int to the valid pointer given.
    let rc = unsafe { libc::ioctl(fd.as_raw_fd(), libc::FIONREAD, &mut n) };
    if rc == 0 {
        n.max(0) as usize
    } else {
        0
    }
}

/// Enlarges pipe `fd` to `PIPE_BYTES` if it is smaller (never shrinks one that someone made
/// bigger); a refusal is left alone. The kernel charges the pages to the pipe's creator, and
/// checks that user's limit only when the caller is unprivileged: restartd's own streams are
/// widened only when they are pipes of its own user (`Sink::new`).
pub fn widen(fd: BorrowedFd<'_>) {
    use nix::fcntl::{fcntl, FcntlArg};
    if fcntl(fd, FcntlArg::F_GETPIPE_SZ).is_ok_and(|n| (n as usize) < PIPE_BYTES) {
        let _ = fcntl(fd, FcntlArg::F_SETPIPE_SZ(PIPE_BYTES as i32));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use std::os::fd::{AsFd, FromRawFd};

    /// A pipe whose read end the test holds: (read, write).
    fn pipe() -> (OwnedFd, OwnedFd) {
        nix::unistd::pipe2(OFlag::O_CLOEXEC).unwrap()
    }

    /// Reads everything waiting in `fd` (non-blocking) onto `out`.
    fn drain(fd: &OwnedFd, out: &mut Vec<u8>) {
        nix::fcntl::fcntl(fd, nix::fcntl::FcntlArg::F_SETFL(OFlag::O_NONBLOCK)).unwrap();
        let mut buf = [0u8; 65536];
        while let Ok(n) = nix::unistd::read(fd, &mut buf) {
            if n == 0 {
                break;
            }
            out.extend_from_slice(&buf[..n]);
        }
    }

    fn data(len: usize) -> Vec<u8> {
        (0..len).map(|i| (i % 251) as u8).collect()
    }

    #[test]
    fn a_pipe_nobody_reads_never_blocks_and_what_it_took_arrives_in_order() {
        let (r, w) = pipe();
        let mut sink = Sink::new(w.as_raw_fd());
        assert!(matches!(sink.how, How::Own(_)), "{:?}", sink.how);
        // More than the pipe (enlarged to PIPE_BYTES) and the queue take.
        let all = data(PIPE_BYTES + OUTPUT_QUEUE + 256 * 1024);
        for chunk in all.chunks(64 * 1024) {
            sink.write(chunk);
        }
        assert!(sink.stalled() && sink.poll_fd().is_some());
        assert_eq!(sink.pending.len(), OUTPUT_QUEUE);
        assert_eq!(sink.take_dropped(), None, "told only once drained");
        let mut got = Vec::new();
        while {
            drain(&r, &mut got);
            !sink.flush()
        } {}
        drain(&r, &mut got);
        assert!(!sink.stalled() && sink.poll_fd().is_none());
        assert_eq!(got, all[..got.len()], "a prefix, in order");
        let (lines, bytes) = sink.take_dropped().unwrap();
        assert_eq!((lines, bytes as usize), (0, all.len() - got.len()));
        assert_eq!(sink.take_dropped(), None);
        // The stream's own description was not made non-blocking: its other users (a child's
        // stdout sharing it) still wait as usual.
        let flags = nix::fcntl::fcntl(&w, nix::fcntl::FcntlArg::F_GETFL).unwrap();
        assert_eq!(flags & libc::O_NONBLOCK, 0);
    }

    #[test]
    fn lines_stay_whole_and_those_that_do_not_fit_are_counted() {
        let (r, w) = pipe();
        let mut sink = Sink::new(w.as_raw_fd());
        let line = |i: usize| format!("restartd[t]: line {i:06} {}\n", "y".repeat(80));
        let n = 20_000;
        for i in 0..n {
            sink.line(line(i).as_bytes());
        }
        assert!(sink.pending.len() <= OUTPUT_QUEUE + LINES_QUEUE);
        let mut got = Vec::new();
        while {
            drain(&r, &mut got);
            !sink.flush()
        } {}
        drain(&r, &mut got);
        let got = String::from_utf8(got).unwrap();
        let kept: Vec<&str> = got.lines().collect();
        for (i, l) in kept.iter().enumerate() {
            assert_eq!(format!("{l}\n"), line(i), "whole, in order");
        }
        assert_eq!(sink.take_dropped(), Some(((n - kept.len()) as u64, 0)));
    }

    #[test]
    fn a_socket_and_a_terminal_nobody_reads_never_block() {
        let (a, _b) = nix::sys::socket::socketpair(
            nix::sys::socket::AddressFamily::Unix,
            nix::sys::socket::SockType::Stream,
            None,
            nix::sys::socket::SockFlag::SOCK_CLOEXEC,
        )
        .unwrap();
        let (mut master, mut slave) = (-1, -1);
        // SAFETY: openpty writes two descriptors into the ints given.
        let rc = unsafe {
            libc::openpty(
                &mut master,
                &mut slave,
                std::ptr::null_mut(),
                std::ptr::null(),
                std::ptr::null(),
            )
        };
        assert_eq!(rc, 0);
        // SAFETY: just opened, owned by nothing else.
        let (master, slave) =
            unsafe { (OwnedFd::from_raw_fd(master), OwnedFd::from_raw_fd(slave)) };
        // A pty master is not opened again (that would make a new pty): it gets the fallback,
        // which a terminal can still block (see `output`), so it is not written here.
        assert!(matches!(Sink::new(master.as_raw_fd()).how, How::Gated));
        for (fd, how) in [(&a, "Socket"), (&slave, "Own")] {
            let mut sink = Sink::new(fd.as_raw_fd());
            assert!(format!("{:?}", sink.how).starts_with(how), "{:?}", sink.how);
            for chunk in data(1 << 20).chunks(64 * 1024) {
                sink.write(chunk);
            }
            assert!(sink.stalled(), "{how}");
            let flags = nix::fcntl::fcntl(fd.as_fd(), nix::fcntl::FcntlArg::F_GETFL).unwrap();
            assert_eq!(flags & libc::O_NONBLOCK, 0, "{how}");
        }
    }

    #[test]
    fn a_pipe_stream_is_enlarged_and_a_bigger_one_left_alone() {
        use nix::fcntl::{fcntl, FcntlArg};
        let (_r, w) = pipe();
        let _sink = Sink::new(w.as_raw_fd());
        assert_eq!(
            fcntl(&w, FcntlArg::F_GETPIPE_SZ).unwrap() as usize,
            PIPE_BYTES
        );
        let (_r, w) = pipe();
        fcntl(&w, FcntlArg::F_SETPIPE_SZ(4 * PIPE_BYTES as i32)).unwrap();
        let _sink = Sink::new(w.as_raw_fd());
        assert_eq!(
            fcntl(&w, FcntlArg::F_GETPIPE_SZ).unwrap() as usize,
            4 * PIPE_BYTES
        );
    }

    /// A pipe made by another user (`sudo restartd … | less`: the user's shell made it) is left
    /// as it is: its capacity is charged to that user's pipe-user-pages-soft, which a privileged
    /// restartd would pass by unchecked (the kernel checks the caller's capabilities).
    #[test]
    fn a_pipe_stream_of_another_user_is_left_alone() {
        use nix::fcntl::{fcntl, FcntlArg};
        if !nix::unistd::geteuid().is_root() {
            eprintln!("skipped: making a pipe as another user needs root");
            return;
        }
        // A pipe's owner is the fsuid of the thread that made it; fsuid is this thread's alone.
        // SAFETY: setfsuid(2) changes only this thread's file-system uid, set back at once.
        unsafe { libc::setfsuid(61234) };
        let made = nix::unistd::pipe2(OFlag::O_CLOEXEC);
        unsafe { libc::setfsuid(0) };
        let (_r, w) = made.unwrap();
        assert_eq!(fstat(&w).unwrap().st_uid, 61234);
        let _sink = Sink::new(w.as_raw_fd());
        assert_eq!(fcntl(&w, FcntlArg::F_GETPIPE_SZ).unwrap(), 64 * 1024);
    }

    #[test]
    fn without_a_private_description_writes_wait_for_pollout() {
        let (r, w) = pipe();
        let mut sink = Sink::new(w.as_raw_fd());
        sink.how = How::Gated;
        let all = data(2 * PIPE_BYTES);
        sink.write(&all);
        assert!(sink.stalled());
        let mut got = Vec::new();
        while {
            drain(&r, &mut got);
            !sink.flush()
        } {}
        drain(&r, &mut got);
        assert!(got == all);
    }

    #[test]
    fn a_stream_nobody_can_read_any_more_drops_everything_quietly() {
        let (r, w) = pipe();
        let mut sink = Sink::new(w.as_raw_fd());
        sink.write(&data(200 * 1024));
        drop(r);
        sink.write(b"more");
        sink.line(b"a line\n");
        assert!(!sink.stalled() && sink.flush());
        assert_eq!(sink.take_dropped(), None);
        assert_eq!(sink.pending.capacity(), 0);
    }
}

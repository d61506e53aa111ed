//! The control channel of a running instance: a unix stream socket `control` in the instance
//! directory, for `stop`, `restart`, `reload`, `signal` and `reset` (`reset crashes` for
//! `--crashes`).
//!
//! One request line in (the client may shut its sending side down after it; a line cut off by
//! the end of input is refused), one reply line out (`ok` or `error: …`). Only the owner (same
//! uid, or root) may use it: the directory is 0700, the socket 0600, and the peer's credentials
//! are checked. The server never blocks: connections are non-blocking, few and short-lived: a client
//! has `TIMEOUT` from its accept to send its line, then it is answered with an error and
//! dropped, so clients that connect and never send cannot hold the few places for good. The
//! deadline exists only while such a connection is open (an idle server costs no wakeups). When
//! accept fails for want of fds, the waiting clients that are gone are closed and it is tried
//! again, or else the listener rests `PAUSE` instead of being polled in a spin. A `stop`
//! connection is kept open until restartd exits, so the client can wait for the end; a waiting
//! client that is gone is closed when another one is made to wait (`Server::hold`), when a
//! reload's queued requests are answered, and when accept fails for want of fds.

use std::io::{self, BufRead, BufReader, Read, Write};
use std::os::fd::{AsFd, BorrowedFd};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use nix::sys::socket::{getsockopt, sockopt::PeerCredentials};

use crate::records::instance::CONTROL;

pub use crate::supervise::machine::Request;

/// The wire form of a request: one line.
trait Line: Sized {
    fn line(self) -> String;
    fn parse(line: &str) -> Option<Self>;
}

impl Line for Request {
    fn line(self) -> String {
        match self {
            Request::Stop => "stop\n".into(),
            Request::Restart => "restart\n".into(),
            Request::Reload => "reload\n".into(),
            Request::Signal(sig) => format!("signal {sig}\n"),
            Request::Reset { crashes: false } => "reset\n".into(),
            Request::Reset { crashes: true } => "reset crashes\n".into(),
        }
    }

    fn parse(line: &str) -> Option<Request> {
        let mut words = line.split_whitespace();
        let request = match (words.next()?, words.next()) {
            ("stop", None) => Request::Stop,
            ("restart", None) => Request::Restart,
            ("reload", None) => Request::Reload,
            ("reset", None) => Request::Reset { crashes: false },
            ("reset", Some("crashes")) => Request::Reset { crashes: true },
            ("signal", Some(n)) => Request::Signal(n.parse().ok()?),
            _ => return None,
        };
        words.next().is_none().then_some(request)
    }
}

/// At most this many connections are served at once; more are refused.
const MAX_CONNECTIONS: usize = 8;
/// A request line longer than this is refused.
const MAX_REQUEST: usize = 256;
/// How long a connection may take to send its request line (as the HTTP server's).
pub const TIMEOUT: Duration = Duration::from_secs(5);
/// How long the listener rests after accept failed for want of a resource (EMFILE, ENFILE):
/// the client stays in the backlog, the listener readable, and polling it would spin.
const PAUSE: Duration = Duration::from_secs(1);

struct Conn {
    stream: UnixStream,
    buf: Vec<u8>,
    /// Its request must have come by then.
    deadline: Instant,
}

/// The listening side, owned by the event loop.
pub struct Server {
    listener: UnixListener,
    conns: Vec<Conn>,
    /// `stop` clients waiting for restartd to exit.
    waiters: Vec<UnixStream>,
    /// `reload` clients waiting for the reload to be over.
    reloading: Vec<UnixStream>,
    /// `reload` clients that asked during a reload: they wait for it to end.
    queued: Vec<UnixStream>,
    /// `restart` clients that asked during a reload: they wait for it to end.
    queued_restarts: Vec<UnixStream>,
    /// The listener is left out of the poll until then (see `PAUSE`).
    paused_until: Option<Instant>,
}

/// A received request and the connection to answer on.
pub struct Pending {
    pub request: Request,
    stream: UnixStream,
}

impl Pending {
    /// Answers `ok` and closes.
    pub fn ok(mut self) {
        let _ = self.stream.write_all(b"ok\n");
    }

    /// Answers `error: msg` and closes.
    pub fn error(mut self, msg: &str) {
        let _ = self.stream.write_all(format!("error: {msg}\n").as_bytes());
    }

    /// Answers `ok: msg` and closes.
    pub fn ok_saying(mut self, msg: &str) {
        let _ = self.stream.write_all(format!("ok: {msg}\n").as_bytes());
    }

    /// Keeps the connection until the reload is over (`Server::reloaded`).
    pub fn wait_for_reload(self, server: &mut Server) {
        server.hold(self.stream, |s| &mut s.reloading);
    }

    /// Keeps the connection of a `reload` or `restart` asked for during a reload until that
    /// reload is over and the request that follows it is answered (`Server::reply_queued`).
    pub fn wait_behind_reload(self, server: &mut Server) {
        match self.request {
            Request::Restart => server.hold(self.stream, |s| &mut s.queued_restarts),
            _ => server.hold(self.stream, |s| &mut s.queued),
        }
    }

    /// Answers `ok` and keeps the connection until restartd exits.
    pub fn ok_and_wait(mut self, server: &mut Server) {
        if self.stream.write_all(b"ok\n").is_ok() {
            server.hold(self.stream, |s| &mut s.waiters);
        }
    }
}

impl Server {
    /// Listens on `DIR/control`, replacing a stale socket (the caller holds the instance lock).
    pub fn bind(dir: &Path) -> io::Result<Server> {
        let (path, _dir) = socket_path(dir)?;
        match std::fs::remove_file(&path) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
            _ => {}
        }
        let listener = UnixListener::bind(&path)?;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))?;
        listener.set_nonblocking(true)?;
        Ok(Server {
            listener,
            conns: Vec::new(),
            waiters: Vec::new(),
            reloading: Vec::new(),
            queued: Vec::new(),
            queued_restarts: Vec::new(),
            paused_until: None,
        })
    }

    /// Keeps `stream` in the list `waiting` picks until its answer. Any number of clients may
    /// wait so, each holding a descriptor of restartd's: the waiting clients already gone (a
    /// script's timeout, a Ctrl-C), in every list, are closed first, or enough of them would use
    /// up restartd's descriptors (RLIMIT_NOFILE) before what they waited for is over. A client
    /// that only shut its sending side down still waits.
    fn hold(&mut self, stream: UnixStream, waiting: fn(&mut Server) -> &mut Vec<UnixStream>) {
        self.close_gone();
        waiting(self).push(stream);
    }

    /// Closes the waiting clients that are gone, in every list; whether there were any.
    fn close_gone(&mut self) -> bool {
        let mut any = false;
        for list in [
            &mut self.waiters,
            &mut self.reloading,
            &mut self.queued,
            &mut self.queued_restarts,
        ] {
            let before = list.len();
            list.retain(|s| !hung_up(s));
            any |= list.len() < before;
        }
        any
    }

    /// The reload is over: `ok: …` (replaced) or `failed: …` (the old child kept running) to
    /// every `reload` client waiting.
    pub fn reloaded(&mut self, result: &Result<String, String>) {
        let line = match result {
            Ok(msg) => format!("ok: {msg}\n"),
            Err(msg) => format!("failed: {msg}\n"),
        };
        for mut stream in self.reloading.drain(..) {
            // The connection is non-blocking; a line this short fits in an empty socket buffer.
            let _ = stream.write_all(line.as_bytes());
        }
    }

    /// The `reload` and `restart` clients queued behind a reload that is over now: they wait
    /// for the next reload (`wait`; only `reload`s are queued then), or hear `line` (`ok`,
    /// `ok: …`, `error: …`) at once, the `restart` clients `restart_line`.
    pub fn reply_queued(&mut self, wait: bool, line: &str, restart_line: &str) {
        // Those gone are closed first: the reload that may start next needs descriptors.
        self.close_gone();
        if wait {
            self.reloading.append(&mut self.queued);
        }
        for mut stream in self.queued.drain(..) {
            let _ = stream.write_all(format!("{line}\n").as_bytes());
        }
        for mut stream in self.queued_restarts.drain(..) {
            let _ = stream.write_all(format!("{restart_line}\n").as_bytes());
        }
    }

    /// The fds to poll for readability.
    pub fn fds(&self) -> impl Iterator<Item = BorrowedFd<'_>> {
        let listener = self.paused_until.is_none().then(|| self.listener.as_fd());
        listener
            .into_iter()
            .chain(self.conns.iter().map(|c| c.stream.as_fd()))
    }

    /// The earliest deadline of a connection still waiting for its request, or the end of a
    /// pause.
    pub fn deadline(&self) -> Option<Instant> {
        self.conns
            .iter()
            .map(|c| c.deadline)
            .chain(self.paused_until)
            .min()
    }

    /// Accepts new connections and returns the complete requests received so far; drops, with
    /// an answer, the connections whose request did not come within `TIMEOUT`.
    pub fn requests(&mut self, now: Instant) -> Vec<Pending> {
        if self.paused_until.is_some_and(|until| now >= until) {
            self.paused_until = None;
        }
        while self.paused_until.is_none() {
            let stream = match self.listener.accept() {
                Ok((stream, _)) => stream,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) if e.kind() == io::ErrorKind::ConnectionAborted => continue,
                // Waiting clients that are gone may hold the descriptors (they are closed only
                // when another one is made to wait, which takes an accept): closed, it is tried
                // again.
                Err(_) if self.close_gone() => continue,
                // EMFILE, ENFILE, ENOBUFS, ENOMEM: rest until fds are free again.
                Err(_) => {
                    self.paused_until = Some(now + PAUSE);
                    break;
                }
            };
            if !owner(&stream) {
                let _ =
                    (&stream).write_all(b"error: permission denied: not the instance's owner\n");
                continue;
            }
            if self.conns.len() >= MAX_CONNECTIONS || stream.set_nonblocking(true).is_err() {
                let _ = (&stream).write_all(b"error: busy, try again\n");
                continue;
            }
            self.conns.push(Conn {
                stream,
                buf: Vec::new(),
                deadline: now + TIMEOUT,
            });
        }
        let mut done = Vec::new();
        let mut i = 0;
        while i < self.conns.len() {
            match read_line(&mut self.conns[i]) {
                LineState::Waiting if now >= self.conns[i].deadline => {
                    let conn = self.conns.swap_remove(i);
                    let said = format!("error: no request within {}s\n", TIMEOUT.as_secs());
                    let _ = (&conn.stream).write_all(said.as_bytes());
                }
                LineState::Waiting => i += 1,
                LineState::Closed => {
                    self.conns.swap_remove(i);
                }
                LineState::Cut => {
                    let conn = self.conns.swap_remove(i);
                    let _ = (&conn.stream).write_all(
                        b"error: incomplete request: the connection's input ended before its newline\n",
                    );
                }
                LineState::TooLong => {
                    let conn = self.conns.swap_remove(i);
                    let said =
                        format!("error: request too long: no newline within {MAX_REQUEST} bytes\n");
                    let _ = (&conn.stream).write_all(said.as_bytes());
                }
                LineState::Line(line) => {
                    let conn = self.conns.swap_remove(i);
                    match Request::parse(&line) {
                        Some(request) => done.push(Pending {
                            request,
                            stream: conn.stream,
                        }),
                        None => {
                            let _ = (&conn.stream).write_all(b"error: unknown request\n");
                        }
                    }
                }
            }
        }
        done
    }
}

enum LineState {
    Waiting,
    /// Gone before sending anything, or failed: no one to answer.
    Closed,
    /// The input ended in the middle of a line.
    Cut,
    /// More than `MAX_REQUEST` bytes without a newline.
    TooLong,
    Line(String),
}

/// Reads what came; a line is complete at its newline, whether or not the input ended after
/// it (`printf 'stop\n' | nc -N -U …` shuts its sending side down as soon as it wrote).
fn read_line(conn: &mut Conn) -> LineState {
    let mut buf = [0u8; 128];
    let mut ended = false;
    loop {
        match conn.stream.read(&mut buf) {
            Ok(0) => {
                ended = true;
                break;
            }
            Ok(n) => conn.buf.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
            Err(_) => return LineState::Closed,
        }
        if conn.buf.len() > MAX_REQUEST {
            // No more is read: a line within the limit is served, a longer one refused.
            break;
        }
    }
    match conn.buf.iter().position(|&b| b == b'\n') {
        Some(end) if end <= MAX_REQUEST => {
            LineState::Line(String::from_utf8_lossy(&conn.buf[..end]).into_owned())
        }
        Some(_) => LineState::TooLong,
        None if conn.buf.len() > MAX_REQUEST => LineState::TooLong,
        None if ended && conn.buf.is_empty() => LineState::Closed,
        None if ended => LineState::Cut,
        None => LineState::Waiting,
    }
}

/// Whether the client closed its end of a connection kept open for its answer (POLLHUP: a
/// unix stream socket whose peer is closed).
fn hung_up(stream: &UnixStream) -> bool {
    use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
    let mut fds = [PollFd::new(stream.as_fd(), PollFlags::empty())];
    matches!(poll(&mut fds, PollTimeout::ZERO), Ok(1))
        && fds[0]
            .revents()
            .is_some_and(|r| r.intersects(PollFlags::POLLHUP | PollFlags::POLLERR))
}

/// Whether the peer runs as restartd's user or as root.
fn owner(stream: &UnixStream) -> bool {
    let me = nix::unistd::geteuid().as_raw();
    getsockopt(stream, PeerCredentials).is_ok_and(|cred| cred.uid() == me || cred.uid() == 0)
}

/// The socket's path; a path too long for `sun_path` (108 bytes) goes through
/// `/proc/self/fd/N/control` of an open directory fd, which the caller keeps alive.
fn socket_path(dir: &Path) -> io::Result<(PathBuf, Option<std::fs::File>)> {
    let path = dir.join(CONTROL);
    if path.as_os_str().len() < 100 {
        return Ok((path, None));
    }
    let dir_fd = std::fs::File::open(dir)?;
    use std::os::fd::AsRawFd;
    let short = PathBuf::from(format!("/proc/self/fd/{}/{CONTROL}", dir_fd.as_raw_fd()));
    Ok((short, Some(dir_fd)))
}

/// Sends `request` to the instance in `dir`; returns its reply line. For `Stop`, waits until the
/// instance has exited. `Err` with `ErrorKind::NotFound`/`ConnectionRefused` means not running.
pub fn send(dir: &Path, request: Request) -> io::Result<String> {
    let (path, _dir) = socket_path(dir)?;
    let mut stream = UnixStream::connect(&path)?;
    stream.write_all(request.line().as_bytes())?;
    let mut reader = BufReader::new(stream);
    let mut reply = String::new();
    reader.read_line(&mut reply)?;
    if request == Request::Stop && reply.trim() == "ok" {
        // The server closes the connection when restartd exits.
        let mut rest = Vec::new();
        let _ = reader.read_to_end(&mut rest);
    }
    Ok(reply.trim_end().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_round_trip_and_junk_is_refused() {
        for r in [
            Request::Stop,
            Request::Restart,
            Request::Reload,
            Request::Reset { crashes: false },
            Request::Reset { crashes: true },
            Request::Signal(10),
        ] {
            assert_eq!(Request::parse(&r.line()), Some(r));
        }
        for junk in [
            "",
            "stop now",
            "signal",
            "signal x",
            "halt",
            "reset all",
            "reset crashes now",
        ] {
            assert_eq!(Request::parse(junk), None, "{junk:?}");
        }
    }

    #[test]
    fn a_request_is_served_over_the_socket() {
        let dir = tempfile::tempdir().unwrap();
        let mut server = Server::bind(dir.path()).unwrap();
        let path = dir.path().to_path_buf();
        let client = std::thread::spawn(move || send(&path, Request::Signal(1)).unwrap());
        let pending = loop {
            if let Some(p) = server.requests(Instant::now()).pop() {
                break p;
            }
            std::thread::sleep(std::time::Duration::from_millis(5));
        };
        assert_eq!(pending.request, Request::Signal(1));
        pending.ok();
        assert_eq!(client.join().unwrap(), "ok");
    }

    /// A client connected to the socket at `path` that sent `line`, and its request as the
    /// server took it.
    fn asked(server: &mut Server, path: &Path, line: &[u8]) -> (UnixStream, Pending) {
        let mut client = UnixStream::connect(path).unwrap();
        client.write_all(line).unwrap();
        loop {
            if let Some(p) = server.requests(Instant::now()).pop() {
                return (client, p);
            }
            std::thread::yield_now();
        }
    }

    /// Review of the queued reload: a queued client that is gone no longer holds a descriptor
    /// once the next one is queued; one that only shut its sending side down still waits.
    #[test]
    fn queued_clients_that_are_gone_are_closed() {
        let dir = tempfile::tempdir().unwrap();
        let mut server = Server::bind(dir.path()).unwrap();
        let path = dir.path().join(CONTROL);
        let queue = |server: &mut Server| {
            let (client, pending) = asked(server, &path, b"reload\n");
            pending.wait_behind_reload(server);
            client
        };
        let half = queue(&mut server);
        half.shutdown(std::net::Shutdown::Write).unwrap();
        for _ in 0..3 {
            drop(queue(&mut server));
        }
        let mut last = queue(&mut server);
        assert_eq!(
            server.queued.len(),
            2,
            "the half-closed one and the last one"
        );
        server.reply_queued(false, "ok", "ok");
        let mut reply = String::new();
        last.read_to_string(&mut reply).unwrap();
        assert_eq!(reply, "ok\n");
        let mut reply = String::new();
        (&half).read_to_string(&mut reply).unwrap();
        assert_eq!(reply, "ok\n");
    }

    /// Every list of waiting clients, not only the queued reloads: a client that is gone is
    /// closed when another one is made to wait, whatever either waits for. `stop` clients were
    /// kept until restartd exited, gone or not.
    #[test]
    fn waiting_clients_that_are_gone_are_closed_whatever_they_wait_for() {
        let dir = tempfile::tempdir().unwrap();
        let mut server = Server::bind(dir.path()).unwrap();
        let path = dir.path().join(CONTROL);
        let wait = |server: &mut Server, line: &[u8], how: fn(Pending, &mut Server)| {
            let (client, pending) = asked(server, &path, line);
            how(pending, server);
            client
        };
        let stop = |server: &mut Server| wait(server, b"stop\n", Pending::ok_and_wait);
        let reload = |server: &mut Server| wait(server, b"reload\n", Pending::wait_for_reload);
        let half = stop(&mut server);
        half.shutdown(std::net::Shutdown::Write).unwrap();
        for _ in 0..3 {
            drop(stop(&mut server));
        }
        let mut last = stop(&mut server);
        assert_eq!(
            server.waiters.len(),
            2,
            "the half-closed one and the last one"
        );
        drop(last);
        let reloading = reload(&mut server);
        assert_eq!(
            server.waiters.len(),
            1,
            "a reload client's wait closes a gone stop's"
        );
        drop(reloading);
        last = stop(&mut server);
        assert_eq!((server.waiters.len(), server.reloading.len()), (2, 0));
        drop(server);
        let mut said = String::new();
        last.read_to_string(&mut said).unwrap();
        assert_eq!(said, "ok\n");
    }

    /// A client that shuts its sending side down right after its line (`nc -N`, a script's
    /// shutdown(SHUT_WR)) is served; one whose line is cut off by the end is refused.
    #[test]
    fn a_request_followed_by_the_end_of_input_is_served() {
        let dir = tempfile::tempdir().unwrap();
        let mut server = Server::bind(dir.path()).unwrap();
        let path = dir.path().join(CONTROL);
        let mut whole = UnixStream::connect(&path).unwrap();
        whole.write_all(b"signal 1\n").unwrap();
        whole.shutdown(std::net::Shutdown::Write).unwrap();
        let mut cut = UnixStream::connect(&path).unwrap();
        cut.write_all(b"signal 1").unwrap();
        cut.shutdown(std::net::Shutdown::Write).unwrap();
        // Both are in the socket before the server reads: one pass sees line and end together.
        let mut pending = server.requests(Instant::now());
        assert_eq!(pending.len(), 1, "the whole request is served");
        let pending = pending.pop().unwrap();
        assert_eq!(pending.request, Request::Signal(1));
        pending.ok();
        let mut reply = String::new();
        whole.read_to_string(&mut reply).unwrap();
        assert_eq!(reply, "ok\n");
        let mut reply = String::new();
        cut.read_to_string(&mut reply).unwrap();
        assert_eq!(
            reply,
            "error: incomplete request: the connection's input ended before its newline\n"
        );
        assert!(server.conns.is_empty());
    }

    /// Review of the control socket: a request longer than `MAX_REQUEST` was dropped with no
    /// answer at all (the CLI printed an empty message); it is refused with one. A line of
    /// `MAX_REQUEST` bytes is served, also when more follows it in the same read.
    #[test]
    fn a_request_too_long_is_refused_with_an_answer() {
        let dir = tempfile::tempdir().unwrap();
        let mut server = Server::bind(dir.path()).unwrap();
        let path = dir.path().join(CONTROL);
        let mut long = UnixStream::connect(&path).unwrap();
        long.write_all(&[b'x'; MAX_REQUEST + 1]).unwrap();
        let mut limit = UnixStream::connect(&path).unwrap();
        let line = format!("signal 1{}\n", " ".repeat(MAX_REQUEST - 8));
        limit.write_all(line.as_bytes()).unwrap();
        limit.write_all(&[b'x'; MAX_REQUEST]).unwrap();
        let mut pending = server.requests(Instant::now());
        assert_eq!(pending.len(), 1, "the line within the limit is served");
        pending.pop().unwrap().ok();
        // What was not read makes the end a reset (ECONNRESET), after the reply line.
        let reply_line = |stream: UnixStream| {
            let mut reply = String::new();
            BufReader::new(stream).read_line(&mut reply).unwrap();
            reply
        };
        assert_eq!(reply_line(limit), "ok\n");
        let reply = reply_line(long);
        assert_eq!(
            reply,
            format!("error: request too long: no newline within {MAX_REQUEST} bytes\n")
        );
        assert!(server.conns.is_empty());
    }

    /// A connection that never sends is answered and dropped at its deadline, and no longer
    /// holds one of the `MAX_CONNECTIONS` places.
    #[test]
    fn a_silent_client_is_dropped_at_its_deadline() {
        let dir = tempfile::tempdir().unwrap();
        let mut server = Server::bind(dir.path()).unwrap();
        let path = dir.path().join(CONTROL);
        let t0 = Instant::now();
        let silent: Vec<UnixStream> = (0..MAX_CONNECTIONS)
            .map(|_| UnixStream::connect(&path).unwrap())
            .collect();
        assert!(server.requests(t0).is_empty());
        assert_eq!(server.deadline(), Some(t0 + TIMEOUT));
        let mut busy = UnixStream::connect(&path).unwrap();
        assert!(server.requests(t0).is_empty());
        let mut reply = String::new();
        busy.read_to_string(&mut reply).unwrap();
        assert_eq!(reply, "error: busy, try again\n");
        assert!(server.requests(t0 + TIMEOUT).is_empty());
        assert_eq!(server.deadline(), None);
        for mut s in silent {
            let mut reply = String::new();
            s.read_to_string(&mut reply).unwrap();
            assert_eq!(reply, "error: no request within 5s\n");
        }
    }
}

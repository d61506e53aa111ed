//! The `--listen` sockets: a non-blocking listener and at most `MAX_CONNECTIONS` non-blocking
//! connections, driven by the event loop's poll (SPEC §9). No threads, nothing that blocks.
//!
//! A connection reads one request (`http::parse`), gets one response from the loop, writes it
//! as the socket takes it (POLLOUT), then shuts down its write side and reads until the client
//! closes, so the client sees the whole response rather than a reset. Each connection has
//! `TIMEOUT` from its accept for all of that; a slow or half-open client is dropped then. The
//! deadline exists only while a connection is open, so an idle server costs no wakeups.
//! Connections beyond the limit are accepted, told `503` in one write, and closed. When accept
//! itself fails (out of file descriptors), the listener is left out of the poll for `PAUSE`:
//! the pending connection would keep it readable and the loop would spin.

use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::os::fd::{AsFd, BorrowedFd};
use std::time::{Duration, Instant};

use nix::poll::PollFlags;

use crate::observe::http::{self, Parsed, Request};

/// Open connections at most.
pub const MAX_CONNECTIONS: usize = 64;
/// From accept to close, at most.
pub const TIMEOUT: Duration = Duration::from_secs(5);
/// How long the listener rests after accept failed for want of a resource (EMFILE, ENFILE).
pub const PAUSE: Duration = Duration::from_secs(1);
/// Accepts in one turn at most, so a flood cannot hold the loop.
const ACCEPTS_PER_TURN: usize = 256;

#[derive(Debug, PartialEq, Eq)]
enum Phase {
    Reading,
    /// A request is parsed and waits for its response.
    Answering,
    Writing,
    /// The response is out: reading until the client closes.
    Draining,
    Done,
}

struct Conn {
    stream: TcpStream,
    input: Vec<u8>,
    output: Vec<u8>,
    sent: usize,
    deadline: Instant,
    phase: Phase,
}

/// The listener and its connections.
pub struct Server {
    listener: TcpListener,
    conns: Vec<Conn>,
    /// Accept failed: the listener is not polled until then.
    paused_until: Option<Instant>,
    /// Connections turned away with 503 because the limit was reached.
    pub turned_away: u64,
}

/// Something the loop must answer: a request, or a status to send for a bad one.
pub enum Incoming {
    Request(Request),
    Bad(u16, &'static str),
}

impl Server {
    /// Binds `addr` (port 0: any free port).
    pub fn bind(addr: SocketAddr) -> io::Result<Server> {
        let listener = TcpListener::bind(addr)?;
        listener.set_nonblocking(true)?;
        Ok(Server {
            listener,
            conns: Vec::new(),
            paused_until: None,
            turned_away: 0,
        })
    }

    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// What to poll: the listener for accepts, each connection for what it waits for.
    pub fn fds(&self) -> impl Iterator<Item = (BorrowedFd<'_>, PollFlags)> {
        let listener = self.paused_until.is_none().then(|| self.listener.as_fd());
        listener
            .map(|fd| (fd, PollFlags::POLLIN))
            .into_iter()
            .chain(self.conns.iter().filter_map(|c| match c.phase {
                Phase::Reading | Phase::Draining => Some((c.stream.as_fd(), PollFlags::POLLIN)),
                Phase::Writing => Some((c.stream.as_fd(), PollFlags::POLLOUT)),
                Phase::Answering | Phase::Done => None,
            }))
    }

    /// The earliest connection deadline or end of a pause; `None` with neither.
    pub fn deadline(&self) -> Option<Instant> {
        self.conns
            .iter()
            .map(|c| c.deadline)
            .chain(self.paused_until)
            .min()
    }

    pub fn connections(&self) -> usize {
        self.conns.len()
    }

    /// Accepts and reads what is ready; returns what must be answered, by slot. Call `reply`
    /// for each, then `finish`.
    pub fn io(&mut self, now: Instant) -> Vec<(usize, Incoming)> {
        if self.paused_until.is_some_and(|until| now >= until) {
            self.paused_until = None;
        }
        if self.paused_until.is_none() {
            self.accept(now);
        }
        let mut incoming = Vec::new();
        for (slot, conn) in self.conns.iter_mut().enumerate() {
            match conn.phase {
                Phase::Reading => {
                    if let Some(what) = conn.read_request() {
                        conn.phase = Phase::Answering;
                        incoming.push((slot, what));
                    }
                }
                Phase::Draining => conn.drain(),
                _ => {}
            }
        }
        incoming
    }

    /// Sets the response of `slot` and starts writing it.
    pub fn reply(&mut self, slot: usize, response: Vec<u8>) {
        if let Some(conn) = self.conns.get_mut(slot) {
            conn.output = response;
            conn.sent = 0;
            conn.phase = Phase::Writing;
        }
    }

    /// Writes what the sockets take, and closes finished or overdue connections.
    pub fn finish(&mut self, now: Instant) {
        for conn in &mut self.conns {
            if conn.phase == Phase::Writing {
                conn.write();
            }
            if now >= conn.deadline {
                conn.phase = Phase::Done;
            }
        }
        self.conns.retain(|c| c.phase != Phase::Done);
    }

    fn accept(&mut self, now: Instant) {
        for _ in 0..ACCEPTS_PER_TURN {
            let stream = match self.listener.accept() {
                Ok((stream, _)) => stream,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                // The client gave up before we took it: take the next.
                Err(e) if e.kind() == io::ErrorKind::ConnectionAborted => continue,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                // EMFILE, ENFILE, ENOBUFS, ENOMEM: rest until connections close.
                Err(_) => {
                    self.paused_until = Some(now + PAUSE);
                    return;
                }
            };
            if stream.set_nonblocking(true).is_err() {
                continue;
            }
            if self.conns.len() >= MAX_CONNECTIONS {
                self.turned_away += 1;
                let busy = http::error(503, "too many connections; try again", false);
                // An empty send buffer takes this whole; if not, the client misses nothing it
                // could have used.
                let mut stream = stream;
                let _ = stream.write(&busy);
                let _ = stream.shutdown(Shutdown::Write);
                continue;
            }
            self.conns.push(Conn {
                stream,
                input: Vec::new(),
                output: Vec::new(),
                sent: 0,
                deadline: now + TIMEOUT,
                phase: Phase::Reading,
            });
        }
    }
}

impl Conn {
    /// Reads what is there; a whole request, or the status for a bad one, once it is known.
    fn read_request(&mut self) -> Option<Incoming> {
        let mut buf = [0u8; 4096];
        loop {
            // Never more than the limit (and one byte to see it was passed).
            let room = (http::MAX_REQUEST + 1).saturating_sub(self.input.len());
            let want = room.min(buf.len());
            if want == 0 {
                break;
            }
            match self.stream.read(&mut buf[..want]) {
                Ok(0) => {
                    // The client closed its side: answer a whole request it sent before
                    // (the response can still go out), drop anything less.
                    return match http::parse(&self.input) {
                        Parsed::Request(request) => Some(Incoming::Request(request)),
                        _ => {
                            self.phase = Phase::Done;
                            None
                        }
                    };
                }
                Ok(n) => self.input.extend_from_slice(&buf[..n]),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(_) => {
                    self.phase = Phase::Done;
                    return None;
                }
            }
        }
        match http::parse(&self.input) {
            Parsed::Partial => None,
            Parsed::Request(request) => Some(Incoming::Request(request)),
            Parsed::Reject(status, why) => Some(Incoming::Bad(status, why)),
        }
    }

    fn write(&mut self) {
        while self.sent < self.output.len() {
            match self.stream.write(&self.output[self.sent..]) {
                Ok(0) => break,
                Ok(n) => self.sent += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(_) => {
                    self.phase = Phase::Done;
                    return;
                }
            }
        }
        self.output = Vec::new();
        self.input = Vec::new();
        let _ = self.stream.shutdown(Shutdown::Write);
        self.phase = Phase::Draining;
        self.drain();
    }

    /// Reads and drops what the client still sends, until it closes.
    fn drain(&mut self) {
        let mut buf = [0u8; 4096];
        loop {
            match self.stream.read(&mut buf) {
                Ok(0) => break,
                Ok(_) => continue,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(_) => break,
            }
        }
        self.phase = Phase::Done;
    }
}

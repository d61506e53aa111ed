//! Health checks (SPEC §5, §13): `--health-cmd` run as `sh -c`, a plain HTTP GET of
//! `--health-url`, or a TCP connect to `--health-tcp`, every `--health-interval`, as Docker's
//! HEALTHCHECK does.
//!
//! A check never blocks the loop: the command is a child of restartd whose output goes to an
//! in-memory file, and the HTTP and TCP probes are non-blocking sockets the loop polls. After
//! `--health-retries` consecutive failures outside the start period the checker reports the child
//! unhealthy (once per run of the child); restartd's machine decides what follows.
//!
//! Until a run's first check passes, checks come every `min(--health-interval, 1s)` (Docker's
//! `--start-interval`), so a child is ready, and reported ready to systemd, about a second after
//! it can serve, not one whole interval later. These early checks only look for readiness: a
//! failure among them counts toward `--health-retries` at the pace of `--health-interval` (at most
//! one per interval, the first one interval after the start), outside `--health-start-period`,
//! and never while `--ready-timeout` waits for the first pass (no `--notify`), which then alone
//! decides a child that never gets ready. After the first pass, checks come every interval and every failure counts (Docker: a
//! pass ends the start period).

use std::ffi::OsString;
use std::fs::File;
use std::io::{Read, Seek};
use std::net::SocketAddr;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::libc;
use nix::poll::PollFlags;
use nix::sys::socket::{self, AddressFamily, SockFlag, SockType, SockaddrIn, SockaddrIn6};

use crate::base::config::{HealthConfig, Probe};
use crate::base::exit::ProcessEnd;
use crate::base::files;
use crate::base::values::fmt_duration;
use crate::process::child::{self, Exec, Output};
use crate::process::procs;
use crate::process::signals::Inherited;

/// `state.json`'s `health`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HealthState {
    Starting,
    Healthy,
    Unhealthy,
}

impl HealthState {
    pub fn as_str(self) -> &'static str {
        match self {
            HealthState::Starting => "starting",
            HealthState::Healthy => "healthy",
            HealthState::Unhealthy => "unhealthy",
        }
    }
}

/// What a finished check changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// The state changed (save `state.json`).
    Changed,
    /// `--health-retries` failures in a row: the detail of the last one.
    Unhealthy(String),
}

/// The longest wait between checks until a run's first check passes (Docker's
/// `--start-interval`, here fixed): readiness is seen within about this much.
pub const START_INTERVAL: Duration = Duration::from_secs(1);

/// The most of a check's output kept for the crash record.
const MAX_OUTPUT: usize = 4096;

enum Check {
    Command {
        pid: i32,
        output: File,
        deadline: Instant,
    },
    Http {
        sock: OwnedFd,
        /// The index in `addrs` of the address `sock` connects to.
        at: usize,
        sent: bool,
        response: Vec<u8>,
        deadline: Instant,
    },
    /// `--health-tcp`: connected once the socket is writable without a pending error.
    Tcp {
        sock: OwnedFd,
        at: usize,
        deadline: Instant,
    },
}

/// The checker of one instance.
pub struct Health {
    cfg: HealthConfig,
    /// `--health-url`'s or `--health-tcp`'s addresses, resolved once at start, in the
    /// resolver's order: a check tries the next when one refuses (`localhost` is often `::1`
    /// first, and a server may listen on 127.0.0.1 only).
    addrs: Vec<SocketAddr>,
    state: HealthState,
    failures: u32,
    started: Option<Instant>,
    /// Before the first pass: the earliest time a failed check counts toward the retries.
    counts_from: Option<Instant>,
    next_at: Option<Instant>,
    check: Option<Check>,
    /// Whether this run of the child was reported unhealthy already.
    reported: bool,
    /// The signal state restartd inherited, which a check command gets back as the child does.
    inherited: Inherited,
}

impl Health {
    /// A checker; resolves `--health-url`'s or `--health-tcp`'s host now (once, so a check
    /// never waits on DNS).
    pub fn new(cfg: HealthConfig, inherited: Inherited) -> Result<Health, String> {
        let addrs = match &cfg.probe {
            Probe::Http(url) => resolve("--health-url", &url.host, url.port)?,
            Probe::Tcp(tcp) => resolve("--health-tcp", &tcp.host, tcp.port)?,
            Probe::Command(_) => Vec::new(),
        };
        Ok(Health {
            cfg,
            addrs,
            state: HealthState::Starting,
            failures: 0,
            started: None,
            counts_from: None,
            next_at: None,
            check: None,
            reported: false,
            inherited,
        })
    }

    pub fn state(&self) -> HealthState {
        self.state
    }

    /// A child started: the first check comes `min(--health-interval, 1s)` from now.
    pub fn child_started(&mut self, now: Instant) {
        self.cancel();
        self.state = HealthState::Starting;
        self.failures = 0;
        self.reported = false;
        self.started = Some(now);
        self.counts_from = Some(now + self.cfg.interval.max(self.cfg.start_period));
        self.next_at = Some(now + self.start_interval());
    }

    /// The time between checks until the first passes.
    fn start_interval(&self) -> Duration {
        self.cfg.interval.min(START_INTERVAL)
    }

    /// The child ended or is being stopped: no more checks until the next start.
    pub fn child_stopped(&mut self) {
        self.cancel();
        self.next_at = None;
    }

    fn cancel(&mut self) {
        if let Some(Check::Command { pid, .. }) = self.check.take() {
            procs::signal_group(pid, libc::SIGKILL);
            // Reaped by the loop like any child; `owns` no longer claims it, so it is an orphan.
        }
    }

    /// When the checker next needs the loop: the next check, or a running check's timeout.
    pub fn deadline(&self) -> Option<Instant> {
        match &self.check {
            Some(
                Check::Command { deadline, .. }
                | Check::Http { deadline, .. }
                | Check::Tcp { deadline, .. },
            ) => Some(*deadline),
            None => self.next_at,
        }
    }

    /// The fd and events to poll while an HTTP check runs.
    pub fn poll_fd(&self) -> Option<(BorrowedFd<'_>, PollFlags)> {
        match &self.check {
            Some(Check::Http { sock, sent, .. }) => {
                let events = if *sent {
                    PollFlags::POLLIN
                } else {
                    PollFlags::POLLOUT
                };
                Some((sock.as_fd(), events))
            }
            Some(Check::Tcp { sock, .. }) => Some((sock.as_fd(), PollFlags::POLLOUT)),
            _ => None,
        }
    }

    /// Whether `pid` is a running check command.
    pub fn owns(&self, pid: i32) -> bool {
        matches!(self.check, Some(Check::Command { pid: p, .. }) if p == pid)
    }

    /// Starts a due check and times out a slow one.
    pub fn tick(&mut self, now: Instant) -> Option<Event> {
        match &self.check {
            Some(Check::Command { deadline, pid, .. }) if *deadline <= now => {
                procs::signal_group(*pid, libc::SIGKILL);
                self.check = None;
                self.finish(false, self.timed_out(), now)
            }
            Some(Check::Http { deadline, .. } | Check::Tcp { deadline, .. })
                if *deadline <= now =>
            {
                self.check = None;
                self.finish(false, self.timed_out(), now)
            }
            Some(_) => None,
            None if self.next_at.is_some_and(|at| at <= now) => {
                self.next_at = None;
                match self.start(now) {
                    Ok(check) => {
                        self.check = Some(check);
                        None
                    }
                    Err(e) => self.finish(false, e, now),
                }
            }
            None => None,
        }
    }

    fn timed_out(&self) -> String {
        format!("timed out after {}", fmt_duration(self.cfg.timeout))
    }

    fn start(&self, now: Instant) -> Result<Check, String> {
        let deadline = now + self.cfg.timeout;
        match &self.cfg.probe {
            Probe::Command(cmd) => {
                let output = files::memfd(c"restartd-health", &[])
                    .map_err(|e| format!("cannot run the check: {e}"))?;
                let argv = ["/bin/sh", "-c", cmd].map(OsString::from);
                let launched = child::launch(
                    &Exec {
                        argv: &argv,
                        env: &[],
                        remove: &[],
                        watchdog_pid: false,
                        listen: None,
                        stdin: None,
                        stdout: Output::To(output.as_fd()),
                        stderr: Output::To(output.as_fd()),
                        // Nobody reads a check's answer once restartd is gone.
                        death_signal: Some(libc::SIGKILL),
                    },
                    self.inherited,
                )
                .map_err(|e| format!("cannot run the check: {e}"))?;
                Ok(Check::Command {
                    pid: launched.pid,
                    output,
                    deadline,
                })
            }
            Probe::Http(_) => {
                let (sock, at) = self.connect_from(0)?;
                Ok(Check::Http {
                    sock,
                    at,
                    sent: false,
                    response: Vec::new(),
                    deadline,
                })
            }
            Probe::Tcp(_) => {
                let (sock, at) = self.connect_from(0)?;
                Ok(Check::Tcp { sock, at, deadline })
            }
        }
    }

    /// A connecting socket to the first of `addrs[from..]` that does not fail at once, and its
    /// index; else the last address's error.
    fn connect_from(&self, from: usize) -> Result<(OwnedFd, usize), String> {
        let mut error = String::from("no address to connect to");
        for (at, addr) in self.addrs.iter().enumerate().skip(from) {
            match connect(*addr) {
                Ok(sock) => return Ok((sock, at)),
                Err(e) => error = e,
            }
        }
        Err(error)
    }

    /// A check command was reaped.
    pub fn reaped(&mut self, pid: i32, end: ProcessEnd, now: Instant) -> Option<Event> {
        let Some(Check::Command { output, .. }) = self
            .check
            .take_if(|c| matches!(c, Check::Command { pid: p, .. } if *p == pid))
        else {
            return None;
        };
        let mut text = read_capped(output);
        if end != ProcessEnd::Exited(0) {
            let what = end.describe();
            text = if text.is_empty() {
                what
            } else {
                format!("{what}: {text}")
            };
        }
        self.finish(end == ProcessEnd::Exited(0), text, now)
    }

    /// The HTTP or TCP check's socket is ready: the TCP check is over; the HTTP check sends the
    /// request, or reads the status line.
    pub fn ready(&mut self, now: Instant) -> Option<Event> {
        if let Some(Check::Tcp { sock, at, deadline }) = &self.check {
            let (at, deadline) = (*at, *deadline);
            let addr = self.addrs[at];
            let result = match socket::getsockopt(sock, socket::sockopt::SocketError) {
                Ok(0) => Ok(format!("connected to {addr}")),
                Ok(err) => Err(format!(
                    "cannot connect to {addr}: {}",
                    Errno::from_raw(err).desc()
                )),
                Err(e) => Err(format!("cannot connect to {addr}: {}", e.desc())),
            };
            // Refused: the next address, if any, within the same timeout.
            if result.is_err() {
                if let Ok((sock, at)) = self.connect_from(at + 1) {
                    self.check = Some(Check::Tcp { sock, at, deadline });
                    return None;
                }
            }
            // Dropping the socket closes the connection: a check only connects.
            self.check = None;
            return match result {
                Ok(text) => self.finish(true, text, now),
                Err(text) => self.finish(false, text, now),
            };
        }
        let url = match &self.cfg.probe {
            Probe::Http(url) => url.clone(),
            Probe::Command(_) | Probe::Tcp(_) => return None,
        };
        if let Some(Check::Http {
            sock,
            at,
            sent: false,
            deadline,
            ..
        }) = &self.check
        {
            if let Ok(err) = socket::getsockopt(sock, socket::sockopt::SocketError) {
                if err != 0 {
                    // Refused: the next address, if any, within the same timeout.
                    let deadline = *deadline;
                    if let Ok((sock, at)) = self.connect_from(at + 1) {
                        self.check = Some(Check::Http {
                            sock,
                            at,
                            sent: false,
                            response: Vec::new(),
                            deadline,
                        });
                        return None;
                    }
                    let e = Errno::from_raw(err);
                    self.check = None;
                    return self.finish(false, format!("cannot connect: {}", e.desc()), now);
                }
            }
        }
        let Some(Check::Http {
            sock,
            sent,
            response,
            ..
        }) = &mut self.check
        else {
            return None;
        };
        if !*sent {
            let request = format!(
                "GET {} HTTP/1.1\r\nHost: {}\r\nUser-Agent: restartd/{}\r\nConnection: close\r\n\r\n",
                url.path,
                url.host,
                env!("CARGO_PKG_VERSION")
            );
            return match nix::unistd::write(&*sock, request.as_bytes()) {
                Ok(n) if n == request.len() => {
                    *sent = true;
                    None
                }
                Ok(_) | Err(Errno::EAGAIN) => None,
                Err(e) => {
                    self.check = None;
                    self.finish(false, format!("cannot send the request: {}", e.desc()), now)
                }
            };
        }
        let mut buf = [0u8; 1024];
        let outcome = match nix::unistd::read(&*sock, &mut buf) {
            Ok(0) => Some(Err("the connection closed before a status line".to_string())),
            Ok(n) => {
                response.extend_from_slice(&buf[..n]);
                status_line(response)
                    .map(|code| {
                        if (200..400).contains(&code) {
                            Ok(format!("HTTP {code}"))
                        } else {
                            Err(format!("HTTP {code}"))
                        }
                    })
                    .or_else(|| (response.len() > 8192).then(|| Err("no status line".to_string())))
            }
            Err(Errno::EAGAIN | Errno::EINTR) => None,
            Err(e) => Some(Err(format!("cannot read the answer: {}", e.desc()))),
        };
        match outcome {
            None => None,
            Some(result) => {
                self.check = None;
                match result {
                    Ok(text) => self.finish(true, text, now),
                    Err(text) => self.finish(false, text, now),
                }
            }
        }
    }

    /// Counts a finished check and schedules the next.
    fn finish(&mut self, ok: bool, detail: String, now: Instant) -> Option<Event> {
        if self.started.is_none() || self.reported {
            return None;
        }
        let before = self.state;
        if ok {
            self.failures = 0;
            self.state = HealthState::Healthy;
            self.next_at = Some(now + self.cfg.interval);
            return (self.state != before).then_some(Event::Changed);
        }
        if self.state == HealthState::Starting {
            // Not ready yet: a fast check; see the module's doc for which failures count.
            self.next_at = Some(now + self.start_interval());
            let counts = !self.cfg.ready_timeout && self.counts_from.is_some_and(|at| at <= now);
            if !counts {
                return None;
            }
            self.counts_from = Some(now + self.cfg.interval);
        } else {
            self.next_at = Some(now + self.cfg.interval);
        }
        self.failures += 1;
        if self.failures >= self.cfg.retries {
            self.state = HealthState::Unhealthy;
            self.reported = true;
            self.next_at = None;
            let detail = format!(
                "{} failed health checks in a row; last: {}",
                self.failures,
                detail.trim()
            );
            return Some(Event::Unhealthy(detail));
        }
        None
    }
}

/// `HTTP/1.1 200 OK\r\n` → 200, once the line is complete.
fn status_line(response: &[u8]) -> Option<u16> {
    let end = response.windows(2).position(|w| w == b"\r\n")?;
    let line = std::str::from_utf8(&response[..end]).ok()?;
    let mut words = line.split_whitespace();
    words.next().filter(|v| v.starts_with("HTTP/"))?;
    words.next()?.parse().ok()
}

fn resolve(flag: &str, host: &str, port: u16) -> Result<Vec<SocketAddr>, String> {
    use std::net::ToSocketAddrs;
    let mut addrs: Vec<SocketAddr> = Vec::new();
    for addr in (host, port)
        .to_socket_addrs()
        .map_err(|e| format!("{flag}: cannot resolve '{host}': {e}"))?
    {
        if !addrs.contains(&addr) {
            addrs.push(addr);
        }
    }
    match addrs.is_empty() {
        true => Err(format!("{flag}: '{host}' has no address")),
        false => Ok(addrs),
    }
}

/// A non-blocking socket connecting to `addr`; the loop polls it for POLLOUT.
fn connect(addr: SocketAddr) -> Result<OwnedFd, String> {
    let family = if addr.is_ipv4() {
        AddressFamily::Inet
    } else {
        AddressFamily::Inet6
    };
    let sock = socket::socket(
        family,
        SockType::Stream,
        SockFlag::SOCK_NONBLOCK | SockFlag::SOCK_CLOEXEC,
        None,
    )
    .map_err(|e| format!("cannot connect: {e}"))?;
    let fd = std::os::fd::AsRawFd::as_raw_fd(&sock);
    let connected = match addr {
        SocketAddr::V4(a) => socket::connect(fd, &SockaddrIn::from(a)),
        SocketAddr::V6(a) => socket::connect(fd, &SockaddrIn6::from(a)),
    };
    match connected {
        Ok(()) | Err(Errno::EINPROGRESS) => Ok(sock),
        Err(e) => Err(format!("cannot connect to {addr}: {}", e.desc())),
    }
}

fn read_capped(mut file: File) -> String {
    let mut bytes = Vec::new();
    if file.rewind().is_ok() {
        let _ = file.take(MAX_OUTPUT as u64).read_to_end(&mut bytes);
    }
    String::from_utf8_lossy(&bytes).trim().to_string()
}

#[cfg(test)]
mod tests;

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
mod tests {
    use super::*;
    use std::time::Duration;

    fn checker(retries: u32, start_period: Duration) -> Health {
        Health::new(
            HealthConfig {
                probe: Probe::Command("true".into()),
                interval: Duration::from_secs(10),
                timeout: Duration::from_secs(5),
                retries,
                start_period,
                ready_timeout: false,
            },
            Inherited::capture(),
        )
        .unwrap()
    }

    #[test]
    fn retries_consecutive_failures_make_it_unhealthy_once() {
        let t0 = Instant::now();
        let mut h = checker(3, Duration::ZERO);
        h.child_started(t0);
        assert_eq!(h.state(), HealthState::Starting);
        assert_eq!(h.deadline(), Some(t0 + Duration::from_secs(1)));
        assert_eq!(h.finish(false, "x".into(), t0), None);
        assert_eq!(h.finish(true, "ok".into(), t0), Some(Event::Changed));
        assert_eq!(h.state(), HealthState::Healthy);
        assert_eq!(h.finish(false, "a".into(), t0), None);
        assert_eq!(h.finish(false, "b".into(), t0), None);
        assert_eq!(
            h.finish(false, "exit 1: refused\n".into(), t0),
            Some(Event::Unhealthy(
                "3 failed health checks in a row; last: exit 1: refused".into()
            ))
        );
        assert_eq!(h.state(), HealthState::Unhealthy);
        assert_eq!(h.deadline(), None, "no checks after unhealthy");
        assert_eq!(h.finish(false, "c".into(), t0), None, "reported once");
    }

    #[test]
    fn failures_in_the_start_period_do_not_count() {
        let t0 = Instant::now();
        let mut h = checker(1, Duration::from_secs(60));
        h.child_started(t0);
        assert_eq!(
            h.finish(false, "x".into(), t0 + Duration::from_secs(59)),
            None
        );
        assert_eq!(h.state(), HealthState::Starting);
        assert!(matches!(
            h.finish(false, "x".into(), t0 + Duration::from_secs(60)),
            Some(Event::Unhealthy(_))
        ));
    }

    /// A failing command checker with `--health-interval interval`, `--health-retries 2`.
    fn early(interval: Duration, start_period: Duration, ready_timeout: bool) -> Health {
        Health::new(
            HealthConfig {
                probe: Probe::Command("false".into()),
                interval,
                timeout: Duration::from_secs(5),
                retries: 2,
                start_period,
                ready_timeout,
            },
            Inherited::capture(),
        )
        .unwrap()
    }

    /// Fails the check due at the checker's deadline, as the loop would; returns that time.
    fn fail_next(h: &mut Health) -> (Instant, Option<Event>) {
        let at = h.deadline().expect("a check is due");
        (at, h.finish(false, "refused".into(), at))
    }

    // See: issue 19 (review): readiness waited a whole --health-interval for the first check.
    #[test]
    fn until_the_first_pass_checks_come_every_second_and_then_every_interval() {
        let s = Duration::from_secs;
        let t0 = Instant::now();
        let mut h = early(s(30), Duration::ZERO, false);
        h.child_started(t0);
        assert_eq!(
            h.deadline(),
            Some(t0 + s(1)),
            "the first check 1 s after spawn"
        );
        assert_eq!(h.finish(false, "refused".into(), t0 + s(1)), None);
        assert_eq!(h.deadline(), Some(t0 + s(2)));
        assert_eq!(h.finish(true, "ok".into(), t0 + s(2)), Some(Event::Changed));
        assert_eq!(h.state(), HealthState::Healthy);
        assert_eq!(h.deadline(), Some(t0 + s(32)), "then every interval");
        // A shorter interval than 1 s is kept from the start.
        let mut h = early(Duration::from_millis(200), Duration::ZERO, false);
        h.child_started(t0);
        assert_eq!(h.deadline(), Some(t0 + Duration::from_millis(200)));
        // A new start starts fast again.
        let mut h = early(s(90), Duration::ZERO, false);
        h.child_started(t0);
        h.finish(true, "ok".into(), t0 + s(1));
        h.child_started(t0 + s(500));
        assert_eq!(h.deadline(), Some(t0 + s(501)));
        assert_eq!(h.state(), HealthState::Starting);
    }

    #[test]
    fn early_failures_count_once_per_interval_outside_the_start_period() {
        let s = Duration::from_secs;
        let t0 = Instant::now();
        let mut h = early(s(10), Duration::ZERO, false);
        h.child_started(t0);
        // Checks at 1 s … 9 s do not count; the one at 10 s is the first that does.
        for k in 1..10 {
            assert_eq!(fail_next(&mut h), (t0 + s(k), None));
        }
        assert_eq!(fail_next(&mut h), (t0 + s(10), None));
        assert_eq!(h.failures, 1);
        // The next counted one is an interval later: unhealthy at 20 s, as without fast checks.
        for k in 11..20 {
            assert_eq!(fail_next(&mut h), (t0 + s(k), None));
            assert_eq!(h.failures, 1);
        }
        let (at, event) = fail_next(&mut h);
        assert_eq!(at, t0 + s(20));
        assert!(matches!(event, Some(Event::Unhealthy(_))), "{event:?}");
        // The start period delays the first counted failure further.
        let mut h = early(s(10), s(25), false);
        h.child_started(t0);
        while h.deadline() < Some(t0 + s(25)) {
            fail_next(&mut h);
        }
        assert_eq!(h.failures, 0);
        assert_eq!(fail_next(&mut h), (t0 + s(25), None));
        assert_eq!(h.failures, 1);
    }

    #[test]
    fn with_a_ready_timeout_early_failures_never_count_but_later_ones_do() {
        let s = Duration::from_secs;
        let t0 = Instant::now();
        let mut h = early(s(2), Duration::ZERO, true);
        h.child_started(t0);
        for k in 1..=100 {
            assert_eq!(fail_next(&mut h), (t0 + s(k), None));
        }
        assert_eq!(h.state(), HealthState::Starting);
        assert_eq!(h.failures, 0);
        // Ready: from now on every failure counts, every interval.
        assert_eq!(
            h.finish(true, "ok".into(), t0 + s(101)),
            Some(Event::Changed)
        );
        assert_eq!(fail_next(&mut h), (t0 + s(103), None));
        let (at, event) = fail_next(&mut h);
        assert_eq!(at, t0 + s(105));
        assert!(matches!(event, Some(Event::Unhealthy(_))), "{event:?}");
    }

    #[test]
    fn a_pass_in_the_start_period_ends_it() {
        // Docker: once a check passed, every failure counts, start period or not.
        let s = Duration::from_secs;
        let t0 = Instant::now();
        let mut h = early(s(1), s(60), false);
        h.child_started(t0);
        h.finish(true, "ok".into(), t0 + s(1));
        assert_eq!(fail_next(&mut h), (t0 + s(2), None));
        let (_, event) = fail_next(&mut h);
        assert!(matches!(event, Some(Event::Unhealthy(_))), "{event:?}");
    }

    /// Runs one TCP check against `port` to its end, waiting on the socket as the loop does.
    fn tcp_check(h: &mut Health, at: Instant) -> Option<Event> {
        assert_eq!(h.tick(at), None, "the check starts");
        let (fd, events) = h.poll_fd().expect("a socket to poll");
        assert_eq!(events, PollFlags::POLLOUT);
        let mut fds = [nix::poll::PollFd::new(fd, events)];
        nix::poll::poll(&mut fds, nix::poll::PollTimeout::from(5000u16)).unwrap();
        h.ready(at)
    }

    #[test]
    fn a_tcp_check_connects_and_a_refused_connect_fails() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let mut h = Health::new(
            HealthConfig {
                probe: Probe::Tcp(crate::base::values::HealthTcp {
                    host: "localhost".into(),
                    port,
                }),
                interval: Duration::from_secs(1),
                timeout: Duration::from_secs(5),
                retries: 1,
                start_period: Duration::ZERO,
                ready_timeout: false,
            },
            Inherited::capture(),
        )
        .unwrap();
        let t0 = Instant::now();
        h.child_started(t0);
        let t1 = t0 + Duration::from_secs(1);
        assert_eq!(tcp_check(&mut h, t1), Some(Event::Changed));
        assert_eq!(h.state(), HealthState::Healthy);
        assert!(h.poll_fd().is_none(), "the connection is closed at once");
        // The listener's backlog got the connection; nothing was sent on it.
        listener.set_nonblocking(true).unwrap();
        let (mut conn, _) = listener.accept().unwrap();
        let mut buf = [0u8; 8];
        assert_eq!(conn.read(&mut buf).unwrap(), 0, "closed without a byte");
        drop(listener);
        let t2 = t1 + Duration::from_secs(1);
        match tcp_check(&mut h, t2) {
            Some(Event::Unhealthy(detail)) => assert!(
                detail.contains(&format!(
                    "cannot connect to 127.0.0.1:{port}: Connection refused"
                )),
                "{detail}"
            ),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_refused_address_gives_way_to_the_next_one() {
        // `localhost` is often ::1 first (Debian's /etc/hosts); a server on 127.0.0.1 only
        // must still pass the check.
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let mut h = Health::new(
            HealthConfig {
                probe: Probe::Tcp(crate::base::values::HealthTcp {
                    host: "127.0.0.1".into(),
                    port,
                }),
                interval: Duration::from_secs(1),
                timeout: Duration::from_secs(5),
                retries: 1,
                start_period: Duration::ZERO,
                ready_timeout: false,
            },
            Inherited::capture(),
        )
        .unwrap();
        let v4: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
        let v6: SocketAddr = format!("[::1]:{port}").parse().unwrap();
        h.addrs = vec![v6, v4];
        let t0 = Instant::now();
        h.child_started(t0);
        let t1 = t0 + Duration::from_secs(1);
        assert_eq!(h.tick(t1), None, "the check starts");
        // ::1 refuses (or fails at once without IPv6); 127.0.0.1 is tried within the check.
        let mut event = None;
        for _ in 0..3 {
            let Some((fd, events)) = h.poll_fd() else {
                break;
            };
            let mut fds = [nix::poll::PollFd::new(fd, events)];
            nix::poll::poll(&mut fds, nix::poll::PollTimeout::from(5000u16)).unwrap();
            event = h.ready(t1);
        }
        assert_eq!(event, Some(Event::Changed));
        assert_eq!(h.state(), HealthState::Healthy);
        // Nothing listens on either: the last address's error.
        drop(listener);
        let t2 = t1 + Duration::from_secs(1);
        assert_eq!(h.tick(t2), None);
        let mut event = None;
        for _ in 0..3 {
            let Some((fd, events)) = h.poll_fd() else {
                break;
            };
            let mut fds = [nix::poll::PollFd::new(fd, events)];
            nix::poll::poll(&mut fds, nix::poll::PollTimeout::from(5000u16)).unwrap();
            event = h.ready(t2);
        }
        match event {
            Some(Event::Unhealthy(detail)) => assert!(
                detail.contains(&format!("cannot connect to {v4}: Connection refused")),
                "{detail}"
            ),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn an_unknown_tcp_host_is_refused_at_start() {
        let cfg = HealthConfig {
            probe: Probe::Tcp(crate::base::values::HealthTcp {
                host: "no-such-host.invalid".into(),
                port: 80,
            }),
            interval: Duration::from_secs(1),
            timeout: Duration::from_secs(1),
            retries: 1,
            start_period: Duration::ZERO,
            ready_timeout: false,
        };
        let err = Health::new(cfg, Inherited::capture()).err().unwrap();
        assert!(
            err.starts_with("--health-tcp: cannot resolve 'no-such-host.invalid'"),
            "{err}"
        );
    }

    #[test]
    fn status_lines() {
        assert_eq!(status_line(b"HTTP/1.1 200 OK\r\n"), Some(200));
        assert_eq!(
            status_line(b"HTTP/1.0 503 Service Unavailable\r\nX: y"),
            Some(503)
        );
        assert_eq!(status_line(b"HTTP/1.1 200"), None);
        assert_eq!(status_line(b"SSH-2.0\r\n"), None);
    }
}

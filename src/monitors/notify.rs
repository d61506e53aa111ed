//! sd_notify in both directions (SPEC §5, §14).
//!
//! Downward (`--notify`): a unix datagram socket in the instance directory, passed to the child
//! as `NOTIFY_SOCKET`; only datagrams from the child's process group count (the sender's pid comes
//! from SCM_CREDENTIALS). `Watchdog` is the `--watchdog` clock the child's pings restart.
//! Upward: when restartd itself runs under systemd (`NOTIFY_SOCKET` in its environment), it tells
//! systemd `READY=1`, `STATUS=`, `STOPPING=1`, forwards the child's `EXTEND_TIMEOUT_USEC=` (before
//! ready) and `RELOADING=1` (with `MONOTONIC_USEC=`), and pings systemd's watchdog. Nothing here
//! decides supervision: a missed ping becomes an input to the machine.

use std::io::{self, IoSliceMut};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd};
use std::os::linux::net::SocketAddrExt;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::{SocketAddr, UnixDatagram};
use std::path::Path;
use std::time::{Duration, Instant};

use nix::sys::socket::{recvmsg, setsockopt, sockopt, ControlMessageOwned, MsgFlags, UnixAddr};

/// One thing a child said, from a `KEY=VALUE` line of a datagram.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message {
    Ready,
    Status(String),
    Watchdog,
    WatchdogUsec(u64),
    Stopping,
    /// `RESTART_RESET=1`: forget the restarts so far.
    RestartReset,
    /// `WATCHDOG=trigger`: a watchdog failure now.
    WatchdogTrigger,
    /// `EXTEND_TIMEOUT_USEC=N`: the start (or stop) takes up to N µs more.
    ExtendTimeoutUsec(u64),
    /// `RELOADING=1`: the child reloads its configuration; a `READY=1` follows.
    Reloading,
    /// `MONOTONIC_USEC=N`, sent with `RELOADING=1`.
    MonotonicUsec(u64),
    /// `ERRNO=N`: the child's reason for failing, as an errno.
    Errno(i32),
    /// `EXIT_STATUS=…`: the status the child is about to exit with.
    ExitStatus(String),
}

/// The messages of one datagram; unknown keys are ignored, as systemd does.
pub fn parse(datagram: &[u8]) -> Vec<Message> {
    String::from_utf8_lossy(datagram)
        .lines()
        .filter_map(|line| match line.split_once('=')? {
            ("READY", "1") => Some(Message::Ready),
            ("STATUS", text) => Some(Message::Status(text.to_string())),
            ("WATCHDOG", "1") => Some(Message::Watchdog),
            ("WATCHDOG_USEC", usec) => usec.parse().ok().map(Message::WatchdogUsec),
            ("STOPPING", "1") => Some(Message::Stopping),
            ("RESTART_RESET", "1") => Some(Message::RestartReset),
            ("WATCHDOG", "trigger") => Some(Message::WatchdogTrigger),
            ("EXTEND_TIMEOUT_USEC", usec) => usec.parse().ok().map(Message::ExtendTimeoutUsec),
            ("RELOADING", "1") => Some(Message::Reloading),
            ("MONOTONIC_USEC", usec) => usec.parse().ok().map(Message::MonotonicUsec),
            ("ERRNO", n) => n.trim().parse().ok().map(Message::Errno),
            ("EXIT_STATUS", status) if !status.trim().is_empty() => {
                Some(Message::ExitStatus(status.trim().to_string()))
            }
            _ => None,
        })
        .collect()
}

/// The socket the child's `NOTIFY_SOCKET` names.
pub struct NotifySocket {
    sock: UnixDatagram,
    address: String,
}

impl NotifySocket {
    /// Binds `DIR/notify` (mode 0600), or an abstract address when that path is too long for
    /// `sun_path`. The caller holds the instance lock, so a stale socket file may be replaced.
    pub fn bind(dir: &Path) -> io::Result<NotifySocket> {
        let path = dir.join("notify");
        let (sock, address) = if path.as_os_str().len() < 100 {
            match std::fs::remove_file(&path) {
                Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
                _ => {}
            }
            let sock = UnixDatagram::bind(&path)?;
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))?;
            (sock, path.to_string_lossy().into_owned())
        } else {
            let name = format!("restartd/{}/notify", std::process::id());
            let addr = SocketAddr::from_abstract_name(name.as_bytes())?;
            (UnixDatagram::bind_addr(&addr)?, format!("@{name}"))
        };
        sock.set_nonblocking(true)?;
        setsockopt(&sock, sockopt::PassCred, &true).map_err(io::Error::from)?;
        Ok(NotifySocket { sock, address })
    }

    /// The value for the child's `NOTIFY_SOCKET`.
    pub fn address(&self) -> &str {
        &self.address
    }

    /// The fd to poll for readability.
    pub fn fd(&self) -> BorrowedFd<'_> {
        self.sock.as_fd()
    }

    /// Every datagram waiting, with the sender's pid (None when the kernel gave none).
    pub fn receive(&self) -> Vec<(Option<i32>, Vec<Message>)> {
        let mut out = Vec::new();
        loop {
            let mut buf = [0u8; 4096];
            let mut cmsg = nix::cmsg_space!(nix::sys::socket::UnixCredentials);
            let (bytes, pid) = {
                let mut iov = [IoSliceMut::new(&mut buf)];
                let msg = match recvmsg::<UnixAddr>(
                    self.sock.as_raw_fd(),
                    &mut iov,
                    Some(&mut cmsg),
                    MsgFlags::MSG_DONTWAIT | MsgFlags::MSG_CMSG_CLOEXEC,
                ) {
                    Ok(msg) => msg,
                    Err(nix::errno::Errno::EINTR) => continue,
                    Err(_) => break,
                };
                let pid = msg.cmsgs().ok().and_then(|mut c| {
                    c.find_map(|c| match c {
                        ControlMessageOwned::ScmCredentials(cred) => Some(cred.pid()),
                        _ => None,
                    })
                });
                (msg.bytes, pid)
            };
            out.push((pid, parse(&buf[..bytes])));
        }
        out
    }
}

/// The `--watchdog` clock: it starts at spawn, and every `READY=1` or `WATCHDOG=1` restarts it.
pub struct Watchdog {
    interval: Duration,
    due: Option<Instant>,
}

impl Watchdog {
    pub fn new(interval: Duration) -> Watchdog {
        Watchdog {
            interval,
            due: None,
        }
    }

    /// A child started, or pinged: the next ping is due one interval from `now`.
    pub fn restart(&mut self, now: Instant) {
        self.due = Some(now + self.interval);
    }

    /// `WATCHDOG_USEC=N` from the child: a new interval, from now.
    pub fn set_interval(&mut self, interval: Duration, now: Instant) {
        self.interval = interval;
        self.restart(now);
    }

    /// The child is gone, or being stopped: no more pings expected.
    pub fn disarm(&mut self) {
        self.due = None;
    }

    pub fn deadline(&self) -> Option<Instant> {
        self.due
    }

    /// Whether the ping is overdue at `now` (then the clock is disarmed).
    pub fn missed(&mut self, now: Instant) -> Option<Duration> {
        match self.due {
            Some(due) if due <= now => {
                self.due = None;
                Some(self.interval)
            }
            _ => None,
        }
    }
}

/// What goes up to systemd, in the order the child and the machine said it.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Up {
    /// Sent as it is (`STATUS=…`).
    Text(String),
    /// The child said `READY=1` here.
    ChildReady,
    Extend(u64),
    Reloading(u64),
    /// restartd's own reload: `RELOADING=1` with this `MONOTONIC_USEC=`, then `READY=1`.
    ReloadStarts(u64),
    ReloadEnds,
}

/// restartd's own channel to systemd, from `NOTIFY_SOCKET` in its environment.
///
/// What the child says is forwarded in its order, and restartd's own `READY=1` goes where the
/// child's stood: the child's datagrams of one loop turn are read before the machine decides
/// on them, so messages wait in `queue` until `flush` at the end of the turn (or a `STOPPING=1`).
pub struct Upward {
    sock: UnixDatagram,
    addr: SocketAddr,
    queue: Vec<Up>,
    /// The machine said the child is ready (`Tell::Ready`); `READY=1` goes up at the flush.
    told_ready: bool,
    ready_sent: bool,
    /// A `RELOADING=1` was forwarded: the child's next `READY=1` is forwarded too.
    reloading: bool,
    ping_every: Option<Duration>,
    next_ping: Option<Instant>,
}

impl Upward {
    /// The channel, when restartd runs under a service manager that gave it `NOTIFY_SOCKET`
    /// (a path, or `@name` for an abstract socket). `WATCHDOG_USEC` asks for pings, unless
    /// `WATCHDOG_PID` names another process.
    pub fn from_env(env: &dyn Fn(&str) -> Option<String>, now: Instant) -> Option<Upward> {
        let target = env("NOTIFY_SOCKET").filter(|s| !s.is_empty())?;
        let addr = match target.strip_prefix('@') {
            Some(name) => SocketAddr::from_abstract_name(name.as_bytes()).ok()?,
            None => SocketAddr::from_pathname(&target).ok()?,
        };
        let sock = UnixDatagram::unbound().ok()?;
        sock.set_nonblocking(true).ok()?;
        let for_us =
            env("WATCHDOG_PID").is_none_or(|pid| pid.trim() == std::process::id().to_string());
        let ping_every = env("WATCHDOG_USEC")
            .and_then(|usec| usec.trim().parse::<u64>().ok())
            .filter(|&usec| usec > 0 && for_us)
            .map(|usec| Duration::from_micros(usec) / 2);
        Some(Upward {
            sock,
            addr,
            queue: Vec::new(),
            told_ready: false,
            ready_sent: false,
            reloading: false,
            ping_every,
            next_ping: ping_every.map(|every| now + every),
        })
    }

    fn send(&self, text: &str) {
        // Best effort: systemd reads the socket; a full buffer only loses a status line.
        let _ = self.sock.send_to_addr(text.as_bytes(), &self.addr);
    }

    /// The machine's `Tell::Ready`: `READY=1`, once per restartd run, at the next `flush`.
    pub fn ready(&mut self) {
        self.told_ready = true;
    }

    /// The child's `READY=1`, where it stands among its messages: restartd's own goes there if
    /// the machine says ready, and after a forwarded `RELOADING=1` it ends the reload (SPEC §14).
    pub fn child_ready(&mut self) {
        self.queue.push(Up::ChildReady);
    }

    /// The child's `EXTEND_TIMEOUT_USEC=`: forwarded while systemd still waits for restartd's
    /// `READY=1` (SPEC §14); after it, systemd's start timeout is over and there is nothing to
    /// extend.
    pub fn extend_timeout(&mut self, usec: u64) {
        self.queue.push(Up::Extend(usec));
    }

    /// The child's `RELOADING=1`, with its `MONOTONIC_USEC=` or else the time of forwarding
    /// (systemd's Type=notify-reload wants both in one datagram).
    pub fn reloading(&mut self, monotonic_usec: u64) {
        self.queue.push(Up::Reloading(monotonic_usec));
    }

    /// restartd's own reload starts (`Tell::Reloading`): `RELOADING=1` with `MONOTONIC_USEC=`,
    /// in the turn's order; only once systemd heard `READY=1` (before it, the unit is still
    /// starting and a reload means nothing to it).
    pub fn reload_starts(&mut self, monotonic_usec: u64) {
        self.queue.push(Up::ReloadStarts(monotonic_usec));
    }

    /// restartd's own reload is over (`Tell::Reloaded`): `READY=1` again.
    pub fn reload_ends(&mut self) {
        self.queue.push(Up::ReloadEnds);
    }

    /// `STATUS=text`.
    pub fn status(&mut self, text: &str) {
        self.queue
            .push(Up::Text(format!("STATUS={}", text.replace('\n', " "))));
    }

    /// `STOPPING=1`, after everything said before it.
    pub fn stopping(&mut self) {
        self.flush();
        self.send("STOPPING=1");
    }

    /// Sends what waits, in order. Called by the loop once the machine has had the turn's
    /// facts, before it blocks again.
    pub fn flush(&mut self) {
        for up in std::mem::take(&mut self.queue) {
            match up {
                Up::Text(text) => self.send(&text),
                Up::ChildReady if self.told_ready && !self.ready_sent => {
                    self.ready_sent = true;
                    self.send("READY=1");
                }
                Up::ChildReady if self.reloading && self.ready_sent => {
                    self.reloading = false;
                    self.send("READY=1");
                }
                Up::ChildReady => {}
                Up::Extend(usec) if !self.ready_sent => {
                    self.send(&format!("EXTEND_TIMEOUT_USEC={usec}"));
                }
                Up::Extend(_) => {}
                Up::ReloadStarts(usec) if self.ready_sent => {
                    self.send(&format!("RELOADING=1\nMONOTONIC_USEC={usec}"));
                }
                Up::ReloadEnds if self.ready_sent => self.send("READY=1"),
                Up::ReloadStarts(_) | Up::ReloadEnds => {}
                Up::Reloading(usec) => {
                    self.reloading = true;
                    self.send(&format!("RELOADING=1\nMONOTONIC_USEC={usec}"));
                }
            }
        }
        // Ready without a READY=1 of the child's: at spawn, or at a passing health check.
        if self.told_ready && !self.ready_sent {
            self.ready_sent = true;
            self.send("READY=1");
        }
    }

    /// When the next watchdog ping is due.
    pub fn deadline(&self) -> Option<Instant> {
        self.next_ping
    }

    /// Pings systemd's watchdog if due.
    pub fn tick(&mut self, now: Instant) {
        if let (Some(due), Some(every)) = (self.next_ping, self.ping_every) {
            if due <= now {
                self.send("WATCHDOG=1");
                self.next_ping = Some(now + every);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_keys_restartd_understands() {
        let got = parse(b"READY=1\nSTATUS=listening on :8080\nWATCHDOG=1\nWATCHDOG_USEC=2000000\nSTOPPING=1\nMAINPID=4\nREADY=0\ngarbage");
        assert_eq!(
            got,
            vec![
                Message::Ready,
                Message::Status("listening on :8080".into()),
                Message::Watchdog,
                Message::WatchdogUsec(2_000_000),
                Message::Stopping,
            ]
        );
        assert!(parse(&[0xff, 0xfe]).is_empty());
    }

    #[test]
    fn parses_the_rest_of_sd_notify() {
        let got = parse(b"RESTART_RESET=1\nWATCHDOG=trigger\nEXTEND_TIMEOUT_USEC=5000000\nRELOADING=1\nMONOTONIC_USEC=123\nERRNO=2\nEXIT_STATUS=3\nERRNO=x\nEXIT_STATUS=\nRESTART_RESET=0");
        assert_eq!(
            got,
            vec![
                Message::RestartReset,
                Message::WatchdogTrigger,
                Message::ExtendTimeoutUsec(5_000_000),
                Message::Reloading,
                Message::MonotonicUsec(123),
                Message::Errno(2),
                Message::ExitStatus("3".into()),
            ]
        );
    }

    #[test]
    fn extend_timeout_is_forwarded_until_ready() {
        let dir = tempfile::tempdir().unwrap();
        let upper = dir.path().join("systemd");
        let systemd = UnixDatagram::bind(&upper).unwrap();
        systemd.set_nonblocking(true).unwrap();
        let path = upper.to_string_lossy().into_owned();
        let env = |k: &str| (k == "NOTIFY_SOCKET").then(|| path.clone());
        let mut up = Upward::from_env(&env, Instant::now()).unwrap();
        assert_eq!(up.deadline(), None, "no WATCHDOG_USEC, no pings");
        // One turn: the child extends, says READY=1, extends again; the machine says ready.
        up.extend_timeout(1);
        up.child_ready();
        up.extend_timeout(2);
        up.ready();
        up.flush();
        // A later turn: restartd is ready, there is no start left to extend.
        up.extend_timeout(3);
        up.flush();
        let mut buf = [0u8; 64];
        let mut got = Vec::new();
        while let Ok(n) = systemd.recv(&mut buf) {
            got.push(String::from_utf8_lossy(&buf[..n]).into_owned());
        }
        assert_eq!(got, ["EXTEND_TIMEOUT_USEC=1", "READY=1"]);
    }

    #[test]
    fn the_watchdog_clock_restarts_on_pings() {
        let t0 = Instant::now();
        let s = Duration::from_secs(1);
        let mut w = Watchdog::new(s);
        assert_eq!(w.deadline(), None);
        w.restart(t0);
        assert_eq!(w.missed(t0 + s / 2), None);
        w.restart(t0 + s / 2);
        assert_eq!(w.missed(t0 + s), None);
        assert_eq!(w.missed(t0 + s * 3 / 2), Some(s));
        assert_eq!(w.deadline(), None, "disarmed after a miss");
        w.set_interval(s * 2, t0);
        assert_eq!(w.deadline(), Some(t0 + s * 2));
    }

    #[test]
    fn datagrams_carry_the_sender_pid_and_upward_messages_arrive() {
        let dir = tempfile::tempdir().unwrap();
        let sock = NotifySocket::bind(dir.path()).unwrap();
        let client = UnixDatagram::unbound().unwrap();
        client
            .send_to(b"READY=1\nSTATUS=up", sock.address())
            .unwrap();
        let got = sock.receive();
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].0, Some(std::process::id() as i32));
        assert_eq!(got[0].1, vec![Message::Ready, Message::Status("up".into())]);

        // restartd under a "systemd" that is this test.
        let upper = dir.path().join("systemd");
        let systemd = UnixDatagram::bind(&upper).unwrap();
        systemd
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        let vars = [
            ("NOTIFY_SOCKET", upper.to_string_lossy().into_owned()),
            ("WATCHDOG_USEC", "1000000".to_string()),
        ];
        let env = |k: &str| {
            vars.iter()
                .find(|(key, _)| *key == k)
                .map(|(_, v)| v.clone())
        };
        let t0 = Instant::now();
        let mut up = Upward::from_env(&env, t0).unwrap();
        up.ready();
        up.ready();
        up.flush();
        up.status("restarts: 1");
        up.flush();
        up.tick(t0 + Duration::from_millis(499));
        up.tick(t0 + Duration::from_millis(500));
        up.extend_timeout(5_000_000);
        up.reloading(42);
        up.child_ready();
        up.child_ready();
        up.flush();
        up.status("bye");
        up.stopping();
        let mut got = Vec::new();
        let mut buf = [0u8; 256];
        for _ in 0..7 {
            let n = systemd.recv(&mut buf).unwrap();
            got.push(String::from_utf8_lossy(&buf[..n]).into_owned());
        }
        assert_eq!(
            got,
            [
                "READY=1",
                "STATUS=restarts: 1",
                "WATCHDOG=1",
                "RELOADING=1\nMONOTONIC_USEC=42",
                "READY=1",
                "STATUS=bye",
                "STOPPING=1"
            ],
            "EXTEND_TIMEOUT_USEC= after READY=1 is not forwarded"
        );
        assert_eq!(up.deadline(), Some(t0 + Duration::from_millis(1000)));
    }
}

//! The `--socket`s (SPEC §11): bound and listening once, before the first start, and held open
//! until restartd exits, so that connections arriving while no child runs wait in the kernel's
//! backlog. restartd never accepts on them; every child gets them as fds 3, 4, … (`child`).
//!
//! The descriptors are close-on-exec in restartd, so hooks and health checks never see them;
//! `child::launch` puts copies without the flag in place for the child only.
//!
//! A reload gives the new child a socket of its own (issue 20). It gets no connection until the
//! switch, then every new one, while the old socket's queue empties into the old child before
//! that child is asked to stop. A server that closes what it accepted but had not read yet when
//! it is stopped (uvicorn) so loses nothing. TCP: bound on the same address into the first
//! socket's SO_REUSEPORT group, and steered to at the switch (`steer`). Unix: bound at a
//! temporary name beside PATH and renamed over it at the switch (`unix`).

use std::io;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::os::unix::fs::FileTypeExt;
use std::os::unix::net::UnixListener;

use nix::libc;

use crate::base::sockets::{SocketAddress, SocketSpec};

mod steer;
mod unix;

/// The backlog asked for; the kernel caps it at net.core.somaxconn (4096 since Linux 5.4).
pub const BACKLOG: libc::c_int = 4096;

/// One bound, listening socket.
pub struct Listener {
    /// The name the child sees in `LISTEN_FDNAMES`.
    pub name: String,
    /// The address it listens on (a TCP port 0 replaced by the port the kernel chose).
    pub address: SocketAddress,
    fd: OwnedFd,
    /// During a reload: the new child's own socket on the same address.
    next: Option<OwnedFd>,
    /// Unix: the file restartd's socket has at PATH (the first bind's, then each switch's).
    file: Option<unix::FileId>,
    /// Unix, during a reload until the switch: the new socket's temporary name.
    pending: Option<unix::Pending>,
}

/// The sockets, in the order given: the child's fds 3, 4, …
#[derive(Default)]
pub struct Listeners {
    pub list: Vec<Listener>,
}

impl Listeners {
    /// Binds and listens on every spec, in order. The error names the address and what failed.
    pub fn bind(specs: &[SocketSpec]) -> Result<Listeners, String> {
        let mut list = Vec::with_capacity(specs.len());
        for (i, spec) in specs.iter().enumerate() {
            let (fd, address) = bind_one(&spec.address)
                .map_err(|e| format!("cannot bind --socket {}: {e}", spec.address))?;
            let file = match &address {
                SocketAddress::Unix(path) => unix::socket_at(path),
                SocketAddress::Tcp(_) => None,
            };
            // SAFETY: listen(2) on a socket this function owns.
            if unsafe { libc::listen(fd.as_raw_fd(), BACKLOG) } != 0 {
                let e = io::Error::last_os_error();
                return Err(format!("cannot listen on --socket {}: {e}", spec.address));
            }
            list.push(Listener {
                name: spec.name_at(i),
                address,
                fd,
                next: None,
                file,
                pending: None,
            });
        }
        Ok(Listeners { list })
    }

    /// Before a start with no other child running: a TCP socket that no longer listens is bound
    /// and listened on again at its address. A child that shuts its inherited socket down
    /// (`shutdown(2)`, as some servers do at stop to wake their accept threads) stops it for
    /// every holder of the description, restartd too, and every later child would get a socket
    /// that refuses all. Returns what was found and done, to be logged.
    pub fn listen_again(&mut self) -> Vec<String> {
        let mut said = Vec::new();
        for l in &mut self.list {
            let SocketAddress::Tcp(addr) = l.address else {
                continue;
            };
            if steer::listening(&l.fd) {
                continue;
            }
            let what = format!(
                "--socket {} no longer listened (a child shut it down)",
                l.address
            );
            match steer::bind_tcp(&addr, BACKLOG, false) {
                Ok(fd) => {
                    let _ = steer::steer(&fd, 0);
                    l.fd = fd;
                    said.push(format!("{what}: bound and listening again"));
                }
                Err(e) => said.push(format!("{what}, and it cannot be bound again: {e}")),
            }
        }
        said
    }

    /// The descriptors in order, for the child's fds 3, 4, …
    pub fn fds(&self) -> Vec<RawFd> {
        self.list.iter().map(|l| l.fd.as_raw_fd()).collect()
    }

    /// The descriptors for a reload's new child: its own sockets where they were opened.
    pub fn next_fds(&self) -> Vec<RawFd> {
        let fd = |l: &Listener| l.next.as_ref().unwrap_or(&l.fd).as_raw_fd();
        self.list.iter().map(fd).collect()
    }

    /// At a reload's start: a socket of its own for the new child on each address, which gets
    /// no connection until `to_next` (TCP: in the group of the old one, which keeps every new
    /// connection; unix: at a temporary name). An error (nothing stays opened) names the address
    /// and why; the reload then shares the sockets, as every reload did before issue 20.
    pub fn open_next(&mut self) -> Result<(), String> {
        for i in 0..self.list.len() {
            let addr = match &self.list[i].address {
                SocketAddress::Tcp(addr) => *addr,
                SocketAddress::Unix(path) => match unix::open(path, BACKLOG) {
                    Ok((fd, pending)) => {
                        self.list[i].next = Some(fd);
                        self.list[i].pending = Some(pending);
                        continue;
                    }
                    Err(e) => {
                        self.keep_old();
                        return Err(format!("--socket {}: {e}", self.list[i].address));
                    }
                },
            };
            let result = match steer::listeners_on(&addr) {
                Ok(1) => steer::steer(&self.list[i].fd, 0)
                    .and_then(|()| steer::bind_tcp(&addr, BACKLOG, true))
                    .map_err(|e| e.to_string()),
                Ok(n) => Err(format!(
                    "{n} sockets listen on it, restartd's and {} of another process of this \
                     user (SO_REUSEPORT); stop it",
                    n.saturating_sub(1)
                )),
                Err(e) => Err(format!("cannot read /proc/net: {e}")),
            };
            match result {
                Ok(fd) => self.list[i].next = Some(fd),
                Err(e) => {
                    self.keep_old();
                    return Err(format!("--socket {}: {e}", self.list[i].address));
                }
            }
        }
        Ok(())
    }

    /// The switch: every new connection goes to the new child's sockets from now on. `Err`:
    /// refused, and nothing was changed (the old sockets keep every new connection): a unix
    /// PATH or its temporary name is no longer restartd's (checked for every socket before any
    /// is renamed: a rename cannot be undone, the old socket has no name left), or a TCP group's
    /// program could not be replaced (setsockopt(2); another process cannot make the switch
    /// fail: it only joins the group after the new socket, which keeps its place). `Ok(Some)`:
    /// switched, with a problem to log (a rename that failed after another was done).
    pub fn to_next(&mut self) -> Result<Option<String>, String> {
        for l in &self.list {
            if let (SocketAddress::Unix(path), Some(pending)) = (&l.address, &l.pending) {
                unix::check(path, l.file, pending)
                    .map_err(|e| format!("--socket {}: {e}", l.address))?;
            }
        }
        // The old socket is first in the group, the new one second.
        let tcp = |l: &Listener| matches!(l.address, SocketAddress::Tcp(_)) && l.next.is_some();
        for i in 0..self.list.len() {
            let l = &self.list[i];
            let Some(next) = l.next.as_ref().filter(|_| tcp(l)) else {
                continue;
            };
            if let Err(e) = steer::steer(next, 1) {
                let why = format!("cannot steer --socket {} to the new child: {e}", l.address);
                self.steer_back(i);
                return Err(why);
            }
        }
        let mut renamed = false;
        let mut problem = None;
        for i in 0..self.list.len() {
            let l = &mut self.list[i];
            let (SocketAddress::Unix(path), Some(pending)) = (&l.address, &l.pending) else {
                continue;
            };
            match unix::switch(path, l.file, pending) {
                Ok(file) => {
                    l.file = Some(file);
                    l.pending = None;
                    renamed = true;
                }
                Err(e) if !renamed => {
                    let why = format!("--socket {}: {e}", l.address);
                    self.steer_back(self.list.len());
                    return Err(why);
                }
                Err(e) => problem = Some(format!("--socket {}: {e}", l.address)),
            }
        }
        Ok(problem)
    }

    /// A refused switch: the TCP sockets before `end` that were steered to the new child are
    /// steered back to the old one.
    fn steer_back(&self, end: usize) {
        for l in &self.list[..end] {
            if matches!(l.address, SocketAddress::Tcp(_)) && l.next.is_some() {
                let _ = steer::steer(&l.fd, 0);
            }
        }
    }

    /// Connections waiting in the old sockets' queues, which only the old child can take (a
    /// unix socket counts 1 while its queue is not empty).
    pub fn old_queued(&self) -> u32 {
        let old = self.list.iter().filter(|l| l.next.is_some());
        old.map(|l| match l.address {
            SocketAddress::Tcp(_) => steer::queued(&l.fd).unwrap_or(0),
            // Not renamed: the old socket stays (PATH names it unless something else was put there).
            SocketAddress::Unix(_) if l.pending.is_some() => 0,
            SocketAddress::Unix(_) => unix::queued(&l.fd) as u32,
        })
        .sum()
    }

    /// The reload is over and the new child serves: the old sockets stop listening (for the
    /// old child too, if anything of it holds them still) and the new ones take their place.
    pub fn keep_next(&mut self) -> Option<String> {
        let mut problem = None;
        for l in &mut self.list {
            let Some(next) = l.next.take() else {
                continue;
            };
            if let SocketAddress::Unix(path) = &l.address {
                // The old socket, nameless since the switch, is closed with what its queue
                // still holds.
                match l.pending.take() {
                    None => l.fd = next,
                    // The switch failed: the old socket stays, named by PATH unless something
                    // else was put there.
                    Some(pending) => {
                        unix::remove(&pending);
                        problem = Some(match unix::socket_at(path) == l.file {
                            true => format!(
                                "{} still names the old socket, which no child serves now; \
                                 connections wait in its queue until `restartd restart` starts \
                                 a child on it",
                                path.display()
                            ),
                            // `restart` starts a child on the same, nameless socket; a
                            // reload renames its new socket over PATH once PATH is free.
                            false => format!(
                                "{} no longer names restartd's socket: no child can be reached \
                                 there; remove what was put there and reload",
                                path.display()
                            ),
                        });
                    }
                }
                continue;
            }
            // The group is [old, new, …]: sockets of another process that joined during the
            // reload come after the new one. When the old socket leaves, the group's last socket
            // takes its slot 0: the new one when alone with it, else the last intruder's, and
            // the new one stays at slot 1.
            let others = match l.address {
                SocketAddress::Tcp(addr) => steer::listeners_on(&addr).map_or(0, |n| n - n.min(2)),
                SocketAddress::Unix(_) => 0,
            };
            steer::stop_listening(&l.fd);
            l.fd = next;
            let index = match others {
                0 => 0,
                _ => 1,
            };
            if let Err(e) = steer::steer(&l.fd, index) {
                problem = Some(format!("cannot steer --socket {}: {e}", l.address));
            } else if others > 0 {
                problem = Some(format!(
                    "--socket {}: {others} socket(s) of another process of this user joined its \
                     SO_REUSEPORT group during the reload; they get no connection now, but the \
                     next reload shares the socket; stop that process",
                    l.address
                ));
            }
        }
        problem
    }

    /// The reload failed or was abandoned before the switch: the new sockets, which got no
    /// connection, are closed.
    pub fn keep_old(&mut self) {
        for l in &mut self.list {
            if let Some(pending) = l.pending.take() {
                unix::remove(&pending);
            }
            if let Some(next) = l.next.take() {
                steer::stop_listening(&next);
            }
        }
    }

    /// `LISTEN_FDNAMES`: the names, `:`-separated.
    pub fn names(&self) -> String {
        let names: Vec<&str> = self.list.iter().map(|l| l.name.as_str()).collect();
        names.join(":")
    }

    pub fn is_empty(&self) -> bool {
        self.list.is_empty()
    }
}

fn bind_one(address: &SocketAddress) -> io::Result<(OwnedFd, SocketAddress)> {
    match address {
        SocketAddress::Tcp(addr) => {
            // Exclusive, as std's bind; SO_REUSEPORT only once bound (see `steer`).
            let fd = steer::bind_tcp(addr, BACKLOG, false)?;
            let bound =
                nix::sys::socket::getsockname::<nix::sys::socket::SockaddrStorage>(fd.as_raw_fd())
                    .map_err(io::Error::from)?;
            let bound = match (bound.as_sockaddr_in(), bound.as_sockaddr_in6()) {
                (Some(v4), _) => std::net::SocketAddr::from((v4.ip(), v4.port())),
                (None, Some(v6)) => std::net::SocketAddr::from((v6.ip(), v6.port())),
                (None, None) => *addr,
            };
            // Every connection to this socket, whoever joins its group (a later reload's
            // socket, or another process of this user with SO_REUSEPORT).
            let _ = steer::steer(&fd, 0);
            Ok((fd, SocketAddress::Tcp(bound)))
        }
        SocketAddress::Unix(path) => {
            match std::fs::symlink_metadata(path) {
                Ok(meta) if meta.file_type().is_socket() => {
                    // A socket file: in use if something accepts on it, else left over.
                    let listened = unix::listening(path).map_err(|e| {
                        io::Error::new(
                            e.kind(),
                            format!(
                                "cannot tell whether a process listens on it ({e}); \
                                 remove it if it is left over"
                            ),
                        )
                    })?;
                    if listened {
                        return Err(io::Error::new(
                            io::ErrorKind::AddrInUse,
                            "a process is listening on it; stop it or choose another path",
                        ));
                    }
                    std::fs::remove_file(path)?;
                }
                Ok(_) => {
                    return Err(io::Error::new(
                        io::ErrorKind::AlreadyExists,
                        "the path exists and is not a socket; remove it or choose another path",
                    ))
                }
                Err(_) => {}
            }
            let listener = UnixListener::bind(path)?;
            Ok((listener.into(), address.clone()))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::base::sockets::parse_socket;
    use std::os::unix::net::UnixStream;

    #[test]
    fn a_tcp_port_0_gets_the_chosen_port_and_a_name_by_position() {
        let specs = [
            parse_socket("tcp://127.0.0.1:0").unwrap(),
            parse_socket("admin=tcp://127.0.0.1:0").unwrap(),
        ];
        let l = Listeners::bind(&specs).unwrap();
        assert_eq!(l.names(), "socket1:admin");
        for listener in &l.list {
            let SocketAddress::Tcp(addr) = listener.address else {
                panic!("tcp")
            };
            assert_ne!(addr.port(), 0);
            // Listening already: a connect succeeds with nobody accepting.
            std::net::TcpStream::connect(addr).unwrap();
        }
    }

    #[test]
    fn ipv6_loopback_binds_when_the_host_has_ipv6() {
        let spec = parse_socket("tcp://[::1]:0").unwrap();
        match Listeners::bind(std::slice::from_ref(&spec)) {
            Ok(l) => {
                let SocketAddress::Tcp(addr) = l.list[0].address else {
                    panic!("tcp")
                };
                assert!(addr.is_ipv6());
                std::net::TcpStream::connect(addr).unwrap();
            }
            // A host without IPv6 (some containers): nothing to test.
            Err(e) if e.contains("Cannot assign requested address") => {
                eprintln!("skipped: no IPv6 loopback here ({e})")
            }
            Err(e) => panic!("{e}"),
        }
    }

    /// Review of issue 20: a listener with a full queue at the path made restartd's start wait
    /// in connect(2) until that listener went away.
    #[test]
    fn a_full_listener_at_the_path_is_an_error_at_once() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.sock");
        let _full = unix::tests::full_listener(&path);
        let spec = parse_socket(&format!("unix:{}", path.display())).unwrap();
        let result = unix::tests::within_3s(move || Listeners::bind(&[spec]).err());
        let err = result.expect("bind blocked on a full listener").unwrap();
        assert!(err.contains("a process is listening on it"), "{err}");
        assert!(unix::socket_at(&path).is_some(), "left alone");
    }

    #[test]
    fn a_stale_unix_socket_is_replaced_and_a_live_one_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.sock");
        let spec = parse_socket(&format!("unix:{}", path.display())).unwrap();
        // Stale: bound once, its listener gone.
        drop(UnixListener::bind(&path).unwrap());
        let held = Listeners::bind(std::slice::from_ref(&spec)).unwrap();
        UnixStream::connect(&path).unwrap();
        let err = Listeners::bind(std::slice::from_ref(&spec)).err().unwrap();
        assert!(err.contains("a process is listening on it"), "{err}");
        assert!(err.starts_with(&format!("cannot bind --socket unix:{}", path.display())));
        drop(held);
        std::fs::write(dir.path().join("f"), "x").unwrap();
        let file = parse_socket(&format!("unix:{}", dir.path().join("f").display())).unwrap();
        let err = Listeners::bind(&[file]).err().unwrap();
        assert!(err.contains("not a socket"), "{err}");
    }

    /// Issue 20 follow-up: a switch refused on one socket changes none: the unix socket before
    /// it is not renamed (a rename cannot be undone) and the TCP group still sends every new
    /// connection to the old socket.
    #[test]
    fn a_refused_switch_changes_no_socket() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b) = (dir.path().join("a.sock"), dir.path().join("b.sock"));
        let specs: Vec<SocketSpec> = [
            "tcp://127.0.0.1:0".to_string(),
            format!("unix:{}", a.display()),
            format!("unix:{}", b.display()),
        ]
        .iter()
        .map(|s| parse_socket(s).unwrap())
        .collect();
        let mut held = Listeners::bind(&specs).unwrap();
        let SocketAddress::Tcp(addr) = held.list[0].address else {
            panic!("tcp")
        };
        let old_a = unix::socket_at(&a);
        held.open_next().unwrap();
        std::fs::remove_file(&b).unwrap();
        std::fs::write(&b, "someone else's").unwrap();
        let err = held.to_next().unwrap_err();
        assert!(
            err.starts_with(&format!("--socket unix:{}: ", b.display()))
                && err.contains("is no longer restartd's socket"),
            "{err}"
        );
        assert_eq!(unix::socket_at(&a), old_a, "a.sock not renamed");
        assert!(unix::socket_at(&unix::temp_name(&a)).is_some());
        // A TCP connection still lands in the old socket's queue.
        let _c = std::net::TcpStream::connect(addr).unwrap();
        assert!(wait_queued(
            || steer::queued(&held.list[0].fd).unwrap_or(0) > 0
        ));
        held.keep_old();
        assert!(unix::socket_at(&unix::temp_name(&a)).is_none());
        assert_eq!(std::fs::read_to_string(&b).unwrap(), "someone else's");
    }

    /// The kernel queues a connection as its handshake completes, at once on loopback; at
    /// most 1 s.
    fn wait_queued(mut cond: impl FnMut() -> bool) -> bool {
        let until = std::time::Instant::now() + std::time::Duration::from_secs(1);
        while std::time::Instant::now() < until {
            if cond() {
                return true;
            }
            std::thread::yield_now();
        }
        false
    }
}

//! The `--socket`s (SPEC §11): bound and listening once, before the first start, and held open
//! until restartd exits, so that connections arriving while no child runs wait in the kernel's
//! backlog. restartd never accepts on them; every child gets them as fds 3, 4, … (`child`).
//!
//! The descriptors are close-on-exec in restartd, so hooks and health checks never see them;
//! `child::launch` puts copies without the flag in place for the child only.

use std::io;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::os::unix::fs::FileTypeExt;
use std::os::unix::net::{UnixListener, UnixStream};

use nix::libc;

use crate::base::sockets::{SocketAddress, SocketSpec};

/// The backlog asked for; the kernel caps it at net.core.somaxconn (4096 since Linux 5.4).
pub const BACKLOG: libc::c_int = 4096;

/// One bound, listening socket.
pub struct Listener {
    /// The name the child sees in `LISTEN_FDNAMES`.
    pub name: String,
    /// The address it listens on (a TCP port 0 replaced by the port the kernel chose).
    pub address: SocketAddress,
    fd: OwnedFd,
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
            // SAFETY: listen(2) on a socket this function owns.
            if unsafe { libc::listen(fd.as_raw_fd(), BACKLOG) } != 0 {
                let e = io::Error::last_os_error();
                return Err(format!("cannot listen on --socket {}: {e}", spec.address));
            }
            list.push(Listener {
                name: spec.name_at(i),
                address,
                fd,
            });
        }
        Ok(Listeners { list })
    }

    /// The descriptors in order, for the child's fds 3, 4, …
    pub fn fds(&self) -> Vec<RawFd> {
        self.list.iter().map(|l| l.fd.as_raw_fd()).collect()
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
            // std sets SO_REUSEADDR (on Unix) and close-on-exec; the backlog is raised after.
            let listener = std::net::TcpListener::bind(addr)?;
            let bound = SocketAddress::Tcp(listener.local_addr()?);
            Ok((listener.into(), bound))
        }
        SocketAddress::Unix(path) => {
            match std::fs::symlink_metadata(path) {
                Ok(meta) if meta.file_type().is_socket() => {
                    // A socket file: in use if something accepts on it, else left over.
                    if UnixStream::connect(path).is_ok() {
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
}

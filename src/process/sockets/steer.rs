//! The kernel side of a reload's own socket (issue 20): TCP `--socket`s join a SO_REUSEPORT
//! group, and a classic BPF program attached to the group chooses which of its sockets gets each
//! new connection. The kernel keeps a group's sockets in `listen()` order; when one leaves, the
//! last one takes its slot (net/core/sock_reuseport.c); a program's answer at or past the number
//! of sockets falls back to the kernel's hash. The tests below check each of these on the kernel
//! they run on (written on Linux 6.18): steering, the fallback, leaving, and the accept queue's
//! length in `TCP_INFO`'s `tcpi_unacked` on a listener.
//!
//! No allocation here matters to the spawn path: all of this runs in the loop, before or after a
//! spawn, never between fork and exec.

use std::io;
use std::net::SocketAddr;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

use nix::libc;

/// `SO_ATTACH_REUSEPORT_CBPF` (asm-generic/socket.h; not in every libc crate).
const SO_ATTACH_REUSEPORT_CBPF: libc::c_int = 51;

/// A TCP socket bound to `addr` and listening. `join`: with SO_REUSEPORT set before the bind,
/// so that it joins the group of the socket restartd already holds there. Without `join` the
/// bind is exclusive (another process's socket there, SO_REUSEPORT or not, is `EADDRINUSE`,
/// as it always was), and SO_REUSEPORT is set between bind and listen: the socket starts a
/// group of its own that later reload sockets can join.
pub fn bind_tcp(addr: &SocketAddr, backlog: libc::c_int, join: bool) -> io::Result<OwnedFd> {
    let family = match addr {
        SocketAddr::V4(_) => libc::AF_INET,
        SocketAddr::V6(_) => libc::AF_INET6,
    };
    // SAFETY: socket(2); the result is owned at once.
    let raw = unsafe { libc::socket(family, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0) };
    if raw < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: a fresh descriptor nobody else owns.
    let fd = unsafe { OwnedFd::from_raw_fd(raw) };
    set_flag(&fd, libc::SO_REUSEADDR)?;
    if join {
        set_flag(&fd, libc::SO_REUSEPORT)?;
    }
    let sockaddr = nix::sys::socket::SockaddrStorage::from(*addr);
    use nix::sys::socket::SockaddrLike;
    // SAFETY: bind(2) with an address and its length from nix.
    if unsafe { libc::bind(fd.as_raw_fd(), sockaddr.as_ptr(), sockaddr.len()) } != 0 {
        return Err(io::Error::last_os_error());
    }
    if !join {
        set_flag(&fd, libc::SO_REUSEPORT)?;
    }
    // SAFETY: listen(2) on the socket owned here.
    if unsafe { libc::listen(fd.as_raw_fd(), backlog) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(fd)
}

fn set_flag(fd: &OwnedFd, option: libc::c_int) -> io::Result<()> {
    set_option(fd, option, &(1 as libc::c_int))
}

/// setsockopt(2) at SOL_SOCKET with `value` as the option's bytes.
fn set_option<T>(fd: &OwnedFd, option: libc::c_int, value: &T) -> io::Result<()> {
    // SAFETY: `value` is a live `T` for the whole call, and its size is passed with it; the
    // kernel copies what it needs.
    let r = unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            libc::SOL_SOCKET,
            option,
            (value as *const T).cast(),
            std::mem::size_of::<T>() as libc::socklen_t,
        )
    };
    match r {
        0 => Ok(()),
        _ => Err(io::Error::last_os_error()),
    }
}

/// Attaches to the group of `fd` a program that sends every new connection to the group's socket
/// at `index` (in listen order). The program replaces the group's previous one.
pub fn steer(fd: &OwnedFd, index: u32) -> io::Result<()> {
    // One instruction: BPF_RET | BPF_K with `index`.
    let mut filter = [libc::sock_filter {
        code: (libc::BPF_RET | libc::BPF_K) as u16,
        jt: 0,
        jf: 0,
        k: index,
    }];
    let program = libc::sock_fprog {
        len: 1,
        filter: filter.as_mut_ptr(),
    };
    // The kernel copies the program; `filter` outlives the call.
    set_option(fd, SO_ATTACH_REUSEPORT_CBPF, &program)
}

/// How many connections wait in the listener's accept queue (established, not accepted yet):
/// on a listening socket `TCP_INFO`'s `tcpi_unacked` is the queue's length (tcp_get_info).
pub fn queued(fd: &OwnedFd) -> io::Result<u32> {
    // SAFETY: tcp_info is plain data; zeroes are a valid value.
    let mut info: libc::tcp_info = unsafe { std::mem::zeroed() };
    let mut len = std::mem::size_of::<libc::tcp_info>() as libc::socklen_t;
    // SAFETY: getsockopt(2) into a buffer of `len` bytes.
    let r = unsafe {
        libc::getsockopt(
            fd.as_raw_fd(),
            libc::IPPROTO_TCP,
            libc::TCP_INFO,
            (&mut info as *mut libc::tcp_info).cast(),
            &mut len,
        )
    };
    match r {
        0 => Ok(info.tcpi_unacked),
        _ => Err(io::Error::last_os_error()),
    }
}

/// Whether the socket listens (SO_ACCEPTCONN): a listener that a holder of its description
/// shut down does not. An error counts as listening (nothing to repair that restartd can see).
pub fn listening(fd: &OwnedFd) -> bool {
    let mut value: libc::c_int = 1;
    let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
    // SAFETY: getsockopt(2) into a c_int of `len` bytes.
    let r = unsafe {
        libc::getsockopt(
            fd.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_ACCEPTCONN,
            (&mut value as *mut libc::c_int).cast(),
            &mut len,
        )
    };
    r != 0 || value != 0
}

/// Stops the listener for every holder of its description (a child that still has it open too)
/// and so takes it out of its reuseport group at once: `shutdown(SHUT_RD)` on a listening TCP
/// socket disconnects it. What waited in its queue is reset.
pub fn stop_listening(fd: &OwnedFd) {
    // SAFETY: shutdown(2) on a socket restartd owns.
    unsafe { libc::shutdown(fd.as_raw_fd(), libc::SHUT_RD) };
}

/// How many TCP sockets listen on `addr` in restartd's network namespace (/proc/net/tcp or
/// tcp6): a process of the same user that joined the group with SO_REUSEPORT shows here.
pub fn listeners_on(addr: &SocketAddr) -> io::Result<usize> {
    let (path, want) = match addr {
        SocketAddr::V4(a) => (
            "/proc/net/tcp",
            format!(
                "{:08X}:{:04X}",
                u32::from_ne_bytes(a.ip().octets()),
                a.port()
            ),
        ),
        SocketAddr::V6(a) => {
            let words: String = a
                .ip()
                .octets()
                .chunks(4)
                .map(|c| format!("{:08X}", u32::from_ne_bytes([c[0], c[1], c[2], c[3]])))
                .collect();
            ("/proc/net/tcp6", format!("{words}:{:04X}", a.port()))
        }
    };
    let text = std::fs::read_to_string(path)?;
    // `sl local_address rem_address st …`; 0A is TCP_LISTEN.
    Ok(text
        .lines()
        .skip(1)
        .filter(|line| {
            let mut fields = line.split_whitespace().skip(1);
            fields.next() == Some(want.as_str()) && fields.nth(1) == Some("0A")
        })
        .count())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpStream;

    fn port_of(fd: &OwnedFd) -> SocketAddr {
        let addr: nix::sys::socket::SockaddrStorage =
            nix::sys::socket::getsockname(fd.as_raw_fd()).unwrap();
        let v4 = addr.as_sockaddr_in().unwrap();
        SocketAddr::from((v4.ip(), v4.port()))
    }

    /// The design of a reload's socket, on this kernel: the program steers, the queue's length
    /// is readable, and when the first socket leaves the second takes slot 0.
    #[test]
    fn a_program_steers_new_connections_and_the_queue_length_is_read() {
        let old = bind_tcp(&"127.0.0.1:0".parse().unwrap(), 64, false).unwrap();
        let addr = port_of(&old);
        assert_eq!(listeners_on(&addr).unwrap(), 1);
        let new = bind_tcp(&addr, 64, true).unwrap();
        assert_eq!(listeners_on(&addr).unwrap(), 2);
        steer(&old, 0).unwrap();
        let mut held = Vec::new();
        for _ in 0..3 {
            held.push(TcpStream::connect(addr).unwrap());
        }
        assert_eq!((queued(&old).unwrap(), queued(&new).unwrap()), (3, 0));
        steer(&new, 1).unwrap();
        for _ in 0..2 {
            held.push(TcpStream::connect(addr).unwrap());
        }
        assert_eq!((queued(&old).unwrap(), queued(&new).unwrap()), (3, 2));
        assert!(listening(&old));
        stop_listening(&old);
        assert!(!listening(&old));
        drop(old);
        assert_eq!(listeners_on(&addr).unwrap(), 1);
        // Index 1 is past the end now: the hash, which has one socket to choose.
        held.push(TcpStream::connect(addr).unwrap());
        steer(&new, 0).unwrap();
        held.push(TcpStream::connect(addr).unwrap());
        assert_eq!(queued(&new).unwrap(), 4);
    }

    /// The first bind is exclusive, as it always was: a socket of this user with SO_REUSEPORT
    /// on the port is not joined silently.
    #[test]
    fn the_first_bind_joins_no_group_of_anyone_else() {
        let other = bind_tcp(&"127.0.0.1:0".parse().unwrap(), 8, false).unwrap();
        let addr = port_of(&other);
        let err = bind_tcp(&addr, 8, false).unwrap_err();
        assert_eq!(err.raw_os_error(), Some(libc::EADDRINUSE));
    }
}

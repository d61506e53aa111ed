//! A reload's own socket for a `unix:PATH` `--socket` (issue 20), the way nginx replaces its
//! listening sockets: the new child's socket is bound at a temporary name beside PATH
//! (`PATH.restartd-reload`), and the switch renames it over PATH. rename(2) is atomic: every
//! connect(2) from then on reaches the new socket, while the old one, nameless now, keeps what
//! already waits in its queue for the old child. A listening unix socket is readable (POLLIN)
//! while its accept queue is non-empty (unix_poll), which tells when that queue is empty.
//!
//! No name is followed: bind(2), rename(2) and unlink(2) never follow a symlink, and a file
//! is touched only while it is the one restartd bound (device and inode, `FileId`).

use std::ffi::OsString;
use std::io;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};

use nix::libc;

/// What names a file: its device and inode.
pub type FileId = (u64, u64);

/// The suffix of the temporary name.
const SUFFIX: &str = ".restartd-reload";

/// A new socket bound at the temporary name, not renamed over PATH yet.
#[derive(Debug)]
pub struct Pending {
    pub temp: PathBuf,
    pub file: FileId,
}

/// The temporary name of `path`'s reload socket.
pub fn temp_name(path: &Path) -> PathBuf {
    let mut name = OsString::from(path.as_os_str());
    name.push(SUFFIX);
    PathBuf::from(name)
}

/// The identity of the socket file at `path` (not followed), if a socket is there.
pub fn socket_at(path: &Path) -> Option<FileId> {
    let meta = std::fs::symlink_metadata(path).ok()?;
    meta.file_type()
        .is_socket()
        .then_some((meta.dev(), meta.ino()))
}

/// Whether something listens on the socket file at `path`, asked without waiting: a blocking
/// connect to a listener whose queue is full waits until that listener goes away, and the
/// loop with it. Connected, or told to wait (EAGAIN): a listener. Refused (ECONNREFUSED):
/// nothing listens, the file is left over. Anything else (EACCES: another user's socket) is
/// not known, and the file must be left alone.
pub fn listening(path: &Path) -> io::Result<bool> {
    use nix::errno::Errno;
    use nix::sys::socket::{self as ns, AddressFamily, SockFlag, SockType, UnixAddr};
    let flags = SockFlag::SOCK_NONBLOCK | SockFlag::SOCK_CLOEXEC;
    let fd = ns::socket(AddressFamily::Unix, SockType::Stream, flags, None)?;
    match ns::connect(fd.as_raw_fd(), &UnixAddr::new(path)?) {
        Ok(()) | Err(Errno::EAGAIN | Errno::EINPROGRESS) => Ok(true),
        Err(Errno::ECONNREFUSED) => Ok(false),
        Err(e) => Err(e.into()),
    }
}

/// Binds and listens on a new socket at `path`'s temporary name, with the mode and owner of
/// the socket file at `path`. A socket left at that name by an earlier restartd (nothing
/// listens on it) is replaced; anything else there is an error, and left alone. On an error
/// nothing stays bound or named.
pub fn open(path: &Path, backlog: libc::c_int) -> Result<(OwnedFd, Pending), String> {
    let temp = temp_name(path);
    let shown = temp.display().to_string();
    match std::fs::symlink_metadata(&temp) {
        Ok(meta) if meta.file_type().is_socket() => {
            match listening(&temp) {
                Ok(false) => {}
                Ok(true) => {
                    return Err(format!(
                        "a process listens on {shown}, the reload's temporary name; stop it"
                    ))
                }
                Err(e) => {
                    return Err(format!(
                        "cannot tell whether a process listens on {shown}, the reload's \
                         temporary name ({e}); remove it if it is left over"
                    ))
                }
            }
            std::fs::remove_file(&temp)
                .map_err(|e| format!("cannot remove the stale socket {shown}: {e}"))?;
        }
        Ok(_) => {
            return Err(format!(
                "{shown} is not a socket restartd left (the reload's temporary name); \
                 remove it or choose another path"
            ))
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(format!("cannot look at {shown}: {e}")),
    }
    let fd: OwnedFd = UnixListener::bind(&temp)
        .map_err(|e| format!("cannot bind {shown}: {e}"))?
        .into();
    let Some(file) = socket_at(&temp) else {
        return Err(format!("{shown} was replaced right after it was bound"));
    };
    let pending = Pending { temp, file };
    let set_up = like(path, &pending).and_then(|()| {
        // SAFETY: listen(2) on the socket owned here.
        match unsafe { libc::listen(fd.as_raw_fd(), backlog) } {
            0 => Ok(()),
            _ => Err(format!(
                "cannot listen on {shown}: {}",
                io::Error::last_os_error()
            )),
        }
    });
    match set_up {
        Ok(()) => Ok((fd, pending)),
        Err(e) => {
            remove(&pending);
            Err(e)
        }
    }
}

/// Gives the new socket file the mode and owner of the one at `path` (a deploy may have set
/// them for the clients' group), through a descriptor of the file itself (O_PATH, not followed).
fn like(path: &Path, pending: &Pending) -> Result<(), String> {
    let Ok(old) = std::fs::symlink_metadata(path) else {
        return Ok(());
    };
    if !old.file_type().is_socket() {
        return Ok(());
    }
    let shown = pending.temp.display();
    let file = nix::fcntl::open(
        &pending.temp,
        nix::fcntl::OFlag::O_PATH | nix::fcntl::OFlag::O_NOFOLLOW | nix::fcntl::OFlag::O_CLOEXEC,
        nix::sys::stat::Mode::empty(),
    )
    .map_err(|e| format!("cannot open {shown}: {e}"))?;
    let meta = nix::sys::stat::fstat(file.as_fd()).map_err(|e| format!("{shown}: {e}"))?;
    if (meta.st_dev, meta.st_ino) != pending.file {
        return Err(format!("{shown} was replaced right after it was bound"));
    }
    let mode = old.mode() & 0o7777;
    if meta.st_mode & 0o7777 != mode {
        // chmod(2) has no descriptor form for an O_PATH file but its /proc link, which names
        // this very file whatever happens to the name.
        let link = format!("/proc/self/fd/{}", file.as_raw_fd());
        nix::sys::stat::fchmodat(
            nix::fcntl::AT_FDCWD,
            link.as_str(),
            nix::sys::stat::Mode::from_bits_truncate(mode),
            nix::sys::stat::FchmodatFlags::FollowSymlink,
        )
        .map_err(|e| {
            format!(
                "cannot give {shown} the mode {mode:o} of {}: {e}",
                path.display()
            )
        })?;
    }
    if (meta.st_uid, meta.st_gid) != (old.uid(), old.gid()) {
        // SAFETY: fchownat(2) on the descriptor itself (AT_EMPTY_PATH with an empty name).
        let r = unsafe {
            libc::fchownat(
                file.as_raw_fd(),
                c"".as_ptr(),
                old.uid(),
                old.gid(),
                libc::AT_EMPTY_PATH,
            )
        };
        if r != 0 {
            return Err(format!(
                "cannot give {shown} the owner {}:{} of {}: {}",
                old.uid(),
                old.gid(),
                path.display(),
                io::Error::last_os_error()
            ));
        }
    }
    Ok(())
}

/// Whether the switch may rename the new socket over PATH: refused when PATH names a file that
/// is not restartd's socket (`current`: what the last bind or switch put there), so that nothing
/// of anyone else's is replaced, or when the temporary name no longer names the new socket.
pub fn check(path: &Path, current: Option<FileId>, pending: &Pending) -> Result<(), String> {
    let at_path = std::fs::symlink_metadata(path)
        .ok()
        .map(|m| (m.dev(), m.ino()));
    if at_path.is_some() && at_path != current {
        return Err(format!(
            "{} is no longer restartd's socket (something else was put there), so the new \
             child's socket {} was not renamed over it; no child can be reached at {} until \
             what was put there is removed and restartd reloads",
            path.display(),
            pending.temp.display(),
            path.display()
        ));
    }
    if socket_at(&pending.temp) != Some(pending.file) {
        return Err(format!(
            "{} is no longer the new child's socket (it was removed or replaced during the \
             reload); reload again",
            pending.temp.display()
        ));
    }
    Ok(())
}

/// The switch: the new socket's file takes PATH's name, if `check` allows. `Ok`: the identity
/// of the file at PATH now.
pub fn switch(path: &Path, current: Option<FileId>, pending: &Pending) -> Result<FileId, String> {
    check(path, current, pending)?;
    std::fs::rename(&pending.temp, path).map_err(|e| {
        format!(
            "cannot rename {} over {}: {e}",
            pending.temp.display(),
            path.display()
        )
    })?;
    Ok(pending.file)
}

/// Removes the temporary name if it still names the new socket's file (a reload rolled back).
pub fn remove(pending: &Pending) {
    if socket_at(&pending.temp) == Some(pending.file) {
        let _ = std::fs::remove_file(&pending.temp);
    }
}

/// Whether a connection waits in the listener's accept queue.
pub fn queued(fd: &OwnedFd) -> bool {
    let mut poll = [nix::poll::PollFd::new(
        fd.as_fd(),
        nix::poll::PollFlags::POLLIN,
    )];
    matches!(nix::poll::poll(&mut poll, nix::poll::PollTimeout::ZERO), Ok(n) if n > 0)
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use std::io::{Read, Write};
    use std::os::unix::fs::PermissionsExt;
    use std::os::unix::net::UnixStream;

    fn listener(path: &Path) -> OwnedFd {
        UnixListener::bind(path).unwrap().into()
    }

    fn accept(fd: &OwnedFd) -> UnixStream {
        let listener = UnixListener::from(fd.try_clone().unwrap());
        listener.accept().unwrap().0
    }

    /// The design on this kernel: a renamed socket takes every new connection, the old one
    /// keeps its queue, and POLLIN on a unix listener says whether that queue is empty.
    #[test]
    fn the_rename_moves_new_connections_and_poll_sees_the_old_queue() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.sock");
        let old = listener(&path);
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o640)).unwrap();
        assert!(!queued(&old));
        let mut early = UnixStream::connect(&path).unwrap();
        assert!(queued(&old));
        let (new, pending) = open(&path, 16).unwrap();
        assert_eq!(pending.temp, dir.path().join("s.sock.restartd-reload"));
        let mode = std::fs::symlink_metadata(&pending.temp).unwrap().mode() & 0o7777;
        assert_eq!(mode, 0o640, "the mode of the socket it replaces");
        let current = socket_at(&path);
        assert_eq!(switch(&path, current, &pending), Ok(pending.file));
        assert!(socket_at(&pending.temp).is_none());
        assert_eq!(socket_at(&path), Some(pending.file));
        let mut late = UnixStream::connect(&path).unwrap();
        assert!(queued(&new));
        // The old queue still holds the early connection only, and serves it.
        let mut served = accept(&old);
        assert!(!queued(&old));
        early.write_all(b"early").unwrap();
        let mut buf = [0u8; 5];
        served.read_exact(&mut buf).unwrap();
        assert_eq!(&buf, b"early");
        let mut served = accept(&new);
        late.write_all(b"late!").unwrap();
        served.read_exact(&mut buf).unwrap();
        assert_eq!(&buf, b"late!");
    }

    /// The owner too, where restartd may give one (root; a deploy chowns the socket to the
    /// web server's user).
    #[test]
    fn the_new_socket_gets_the_owner_of_the_old_one() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.sock");
        let _old = listener(&path);
        if let Err(e) = std::os::unix::fs::lchown(&path, Some(65534), Some(65534)) {
            eprintln!("skipped: cannot chown here ({e})");
            return;
        }
        let (_new, pending) = open(&path, 16).unwrap();
        let meta = std::fs::symlink_metadata(&pending.temp).unwrap();
        assert_eq!((meta.uid(), meta.gid()), (65534, 65534));
    }

    /// A listener at `path` whose queue is full (backlog 0, one connection waiting): a
    /// blocking connect to it waits until the listener goes away.
    pub fn full_listener(path: &Path) -> (OwnedFd, OwnedFd) {
        use nix::sys::socket::{self as ns, AddressFamily, Backlog, SockFlag, SockType, UnixAddr};
        let fd = ns::socket(
            AddressFamily::Unix,
            SockType::Stream,
            SockFlag::SOCK_CLOEXEC,
            None,
        )
        .unwrap();
        ns::bind(fd.as_raw_fd(), &UnixAddr::new(path).unwrap()).unwrap();
        ns::listen(&fd, Backlog::new(0).unwrap()).unwrap();
        let waiting = ns::socket(
            AddressFamily::Unix,
            SockType::Stream,
            SockFlag::SOCK_CLOEXEC | SockFlag::SOCK_NONBLOCK,
            None,
        )
        .unwrap();
        let _ = ns::connect(waiting.as_raw_fd(), &UnixAddr::new(path).unwrap());
        (fd, waiting)
    }

    /// Runs `f` on a thread; its result if it came within 3 s (a call that blocks fails the
    /// test instead of hanging it).
    pub fn within_3s<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> Option<T> {
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let _ = tx.send(f());
        });
        rx.recv_timeout(std::time::Duration::from_secs(3)).ok()
    }

    /// Review of issue 20: a listener with a full queue at the temporary name made the reload's
    /// check (a blocking connect) wait until that listener went away: the whole loop froze.
    #[test]
    fn a_full_listener_at_the_temporary_name_does_not_block_and_is_left() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.sock");
        let temp = temp_name(&path);
        let _full = full_listener(&temp);
        let before = socket_at(&temp);
        let moved = path.clone();
        let result = within_3s(move || open(&moved, 16).map(|_| ()));
        let err = result
            .expect("open blocked on a full listener")
            .unwrap_err();
        assert!(err.contains("a process listens on"), "{err}");
        assert_eq!(socket_at(&temp), before, "left alone");
    }

    #[test]
    fn a_stale_temporary_socket_is_replaced_and_a_live_one_or_anything_else_is_left() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.sock");
        let temp = temp_name(&path);
        drop(listener(&temp));
        let (_new, pending) = open(&path, 16).unwrap();
        let err = open(&path, 16).unwrap_err();
        assert!(err.contains("a process listens on"), "{err}");
        assert_eq!(socket_at(&temp), Some(pending.file), "left alone");
        remove(&pending);
        assert!(socket_at(&temp).is_none());
        let target = dir.path().join("precious");
        std::fs::write(&target, "x").unwrap();
        std::os::unix::fs::symlink(&target, &temp).unwrap();
        let err = open(&path, 16).unwrap_err();
        assert!(err.contains("is not a socket restartd left"), "{err}");
        assert!(std::fs::symlink_metadata(&temp)
            .unwrap()
            .file_type()
            .is_symlink());
        assert_eq!(std::fs::read_to_string(&target).unwrap(), "x");
    }

    /// What is not restartd's is never replaced or removed: another file put at PATH, or at the
    /// temporary name after the bind.
    #[test]
    fn the_switch_and_the_rollback_touch_only_restartds_own_files() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.sock");
        let _old = listener(&path);
        let current = socket_at(&path);
        let (_new, pending) = open(&path, 16).unwrap();
        std::fs::remove_file(&path).unwrap();
        std::fs::write(&path, "someone else's").unwrap();
        let err = switch(&path, current, &pending).unwrap_err();
        assert!(err.contains("is no longer restartd's socket"), "{err}");
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "someone else's");
        std::fs::remove_file(&pending.temp).unwrap();
        std::fs::write(&pending.temp, "mine now").unwrap();
        remove(&pending);
        assert_eq!(std::fs::read_to_string(&pending.temp).unwrap(), "mine now");
    }
}

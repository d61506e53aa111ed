//! Files restartd writes: private files in the instance directory.
//!
//! Plain system calls over paths and descriptors it is given; it knows nothing of which file is
//! which, and imports nothing of the crate.

use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use nix::libc;

/// Opens a file in the instance directory for writing, mode 0600, never through a symlink.
pub fn open_private(path: &Path, append: bool) -> io::Result<File> {
    OpenOptions::new()
        .write(true)
        .create(true)
        .append(append)
        .truncate(!append)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(path)
}

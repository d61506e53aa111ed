//! The instance directory `STATE_DIR/NAME/` (mode 0700, files 0600) and its `lock`.
//!
//! The running restartd holds an exclusive flock on `lock` (std's `File::try_lock`) and writes
//! its pid there for the "already running" message. Anyone may test the lock to learn whether an
//! instance runs; a state file whose lock is free belongs to a restartd that is gone.

use std::fs::{self, DirBuilder, File, OpenOptions, TryLockError};
use std::io::{self, Read, Seek};
use std::os::unix::fs::{DirBuilderExt, FileExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{bail, Context};

/// Files in the instance directory.
pub const LOCK: &str = "lock";
pub const STATE: &str = "state.json";
pub const CONTROL: &str = "control";

/// An instance directory whose lock this process holds. The lock is released on drop.
pub struct Instance {
    pub dir: PathBuf,
    _lock: File,
}

/// Why an instance could not be taken.
pub enum AcquireError {
    /// Another restartd holds the lock.
    AlreadyRunning { pid: Option<u32> },
    /// The directory or lock file is unusable.
    Unusable(anyhow::Error),
}

/// `STATE_DIR/NAME`.
pub fn dir(state_dir: &Path, name: &str) -> PathBuf {
    state_dir.join(name)
}

/// Creates `STATE_DIR/NAME/` if needed and takes its lock.
pub fn acquire(state_dir: &Path, name: &str) -> Result<Instance, AcquireError> {
    let dir = dir(state_dir, name);
    prepare_dir(state_dir, &dir).map_err(AcquireError::Unusable)?;
    let path = dir.join(LOCK);
    let mut lock = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .custom_flags(nix::libc::O_NOFOLLOW | nix::libc::O_CLOEXEC)
        .open(&path)
        .with_context(|| format!("unable to open {}", path.display()))
        .map_err(AcquireError::Unusable)?;
    // `status` takes the lock for a moment to test it: retry briefly before giving up.
    let mut tries = 0;
    loop {
        match lock.try_lock() {
            Ok(()) => break,
            Err(TryLockError::WouldBlock) if tries < 10 => {
                tries += 1;
                std::thread::sleep(Duration::from_millis(20));
            }
            Err(TryLockError::WouldBlock) => {
                return Err(AcquireError::AlreadyRunning {
                    pid: read_pid(&mut lock),
                })
            }
            Err(TryLockError::Error(e)) => {
                return Err(AcquireError::Unusable(
                    anyhow::Error::new(e).context(format!("unable to lock {}", path.display())),
                ))
            }
        }
    }
    // Overwritten in place, then cut to length: truncating to 0 first frees the file's block,
    // which costs ext4 about 0.2 ms at every start (BENCHMARKS.md, goal 4).
    let pid = std::process::id().to_string();
    lock.write_all_at(pid.as_bytes(), 0)
        .and_then(|()| lock.set_len(pid.len() as u64))
        .with_context(|| format!("unable to write {}", path.display()))
        .map_err(AcquireError::Unusable)?;
    Ok(Instance { dir, _lock: lock })
}

fn read_pid(lock: &mut File) -> Option<u32> {
    let mut text = String::new();
    lock.rewind().ok()?;
    lock.read_to_string(&mut text).ok()?;
    text.trim().parse().ok()
}

/// Creates the state directory and the instance directory 0700; refuses an instance path that
/// is a symlink or not a directory.
fn prepare_dir(state_dir: &Path, dir: &Path) -> anyhow::Result<()> {
    let hint = "pass --state-dir or set RESTARTD_STATE_DIR";
    DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(state_dir)
        .with_context(|| format!("unable to create {}; {hint}", state_dir.display()))?;
    check_state_dir(state_dir)?;
    match DirBuilder::new().mode(0o700).create(dir) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
        Err(e) => {
            return Err(anyhow::Error::new(e)
                .context(format!("unable to create {}; {hint}", dir.display())))
        }
    }
    let meta =
        fs::symlink_metadata(dir).with_context(|| format!("unable to read {}", dir.display()))?;
    if !meta.is_dir() {
        bail!(
            "{} is not a directory (a symlink or a file); remove it or pass --name",
            dir.display()
        );
    }
    let me = nix::unistd::geteuid().as_raw();
    if meta.uid() != me {
        bail!(
            "{} is owned by uid {}, not by this user (uid {me}); remove it or pass --name",
            dir.display(),
            meta.uid()
        );
    }
    if meta.permissions().mode() & 0o077 != 0 {
        fs::set_permissions(dir, fs::Permissions::from_mode(0o700))
            .with_context(|| format!("unable to set mode 0700 on {}", dir.display()))?;
    }
    Ok(())
}

/// Refuses, like ssh's StrictModes, a state directory that another user could change: owned by
/// a user other than this one or root, or writable by group or others without the sticky bit
/// (a sticky directory such as /tmp is fine: others cannot rename or remove what is ours in it).
fn check_state_dir(state_dir: &Path) -> anyhow::Result<()> {
    let meta = fs::metadata(state_dir)
        .with_context(|| format!("unable to read {}", state_dir.display()))?;
    let me = nix::unistd::geteuid().as_raw();
    let mode = meta.mode() & 0o7777;
    if meta.uid() != me && meta.uid() != 0 {
        bail!(
            "state directory {} is owned by uid {} (mode {mode:04o}), not by this user (uid {me}) \
             or root; pass a --state-dir of your own",
            state_dir.display(),
            meta.uid()
        );
    }
    if mode & 0o022 != 0 && mode & 0o1000 == 0 {
        bail!(
            "state directory {} is writable by other users (mode {mode:04o}, owner uid {}); \
             run `chmod go-w {}` or pass another --state-dir",
            state_dir.display(),
            meta.uid(),
            state_dir.display()
        );
    }
    Ok(())
}

/// Whether a restartd holds the instance's lock: `Some(pid)` if so (pid when known).
/// An instance without a lock file is not running.
pub fn running(dir: &Path) -> Option<Option<u32>> {
    let mut lock = OpenOptions::new()
        .read(true)
        .custom_flags(nix::libc::O_NOFOLLOW | nix::libc::O_CLOEXEC)
        .open(dir.join(LOCK))
        .ok()?;
    match lock.try_lock_shared() {
        Ok(()) => None,
        Err(TryLockError::WouldBlock) => Some(read_pid(&mut lock)),
        Err(TryLockError::Error(_)) => None,
    }
}

/// The names of the instance directories under `state_dir`, sorted.
pub fn names(state_dir: &Path) -> io::Result<Vec<String>> {
    let mut names = Vec::new();
    for entry in fs::read_dir(state_dir)? {
        let entry = entry?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        if entry.file_type()?.is_dir() && entry.path().join(STATE).exists() {
            names.push(name.to_string());
        }
    }
    names.sort();
    Ok(names)
}

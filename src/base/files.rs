//! Files restartd writes: private files in the instance directory, whole files replaced
//! atomically (`state.json`, `--metrics-file`), and in-memory files (a hook's stdin, a health
//! check's output).
//!
//! Plain system calls over paths and descriptors it is given; it knows nothing of which file is
//! which (the callers choose the mode and whether to fsync), and imports nothing of the crate.

use std::ffi::{CStr, OsString};
use std::fs::{self, File, OpenOptions};
use std::io::{self, Seek, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use nix::libc;

/// Opens a file in the instance directory for writing (and reading back, e.g. the end of an
/// appended file), mode 0600, never through a symlink.
pub fn open_private(path: &Path, append: bool) -> io::Result<File> {
    OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .append(append)
        .truncate(!append)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(path)
}

/// fsyncs the directory `dir`, so that what was created, renamed or removed in it survives a
/// power loss (fsync(2): syncing a file does not sync the entry that names it).
pub fn sync_dir(dir: &Path) -> io::Result<()> {
    OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_DIRECTORY | libc::O_CLOEXEC)
        .open(dir)?
        .sync_all()
}

/// Replaces `path` with `bytes`, so that a reader sees the old content or the new, never a mix:
/// the bytes go to a temporary file beside `path` (`temp_path`), which is then renamed over it.
///
/// The temporary file is created with `mode` (less the umask) exclusively and never through a
/// symlink (SPEC §9: the directory may be shared), and a stale one left by a restartd that died
/// mid-write is cleared (see `create_temp`). With `sync`, the data is fsync'd before the rename,
/// so that after a power loss `path` holds the old or the new content; without it the rename may
/// reach the disk before the data, and `path` may come back empty. The directory is not fsync'd:
/// after a power loss the rename itself may be undone. A symlink at `path` is replaced, never
/// written through. On failure the temporary file is removed and `path` is as it was.
pub fn replace(path: &Path, bytes: &[u8], mode: u32, sync: bool) -> io::Result<()> {
    let tmp = temp_path(path)?;
    let mut file = create_temp(&tmp, mode)?;
    let written = file
        .write_all(bytes)
        .and_then(|()| if sync { file.sync_data() } else { Ok(()) });
    drop(file);
    let result = written.and_then(|()| fs::rename(&tmp, path));
    if result.is_err() {
        // The name was ours (created exclusively); unlink(2) never follows a symlink.
        let _ = fs::remove_file(&tmp);
    }
    result
}

/// Where `replace` writes before the rename: `.NAME.PID.tmp` beside `path`. Hidden, so that a
/// collector reading `*.prom` or a person listing the directory passes over it; named after the
/// writer's pid, so that two restartds (different instances writing beside each other, or a new
/// one while an old one finishes) never take each other's temporary file.
pub fn temp_path(path: &Path) -> io::Result<PathBuf> {
    let file_name = path
        .file_name()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "the path names no file"))?;
    let mut name = OsString::from(".");
    name.push(file_name);
    name.push(format!(".{}.tmp", std::process::id()));
    Ok(path.with_file_name(name))
}

/// Creates `tmp` for writing: O_CREAT|O_EXCL|O_NOFOLLOW, so whatever is already at that name (a
/// file, or a symlink someone planted to make restartd write elsewhere) is never opened.
///
/// Something at that name is a regular file of this user when a restartd with this pid died
/// between create and rename (as PID 1 in a container, every restartd has the same pid): it is
/// unlinked and the create tried once more, so a crash never blocks writing for good. Anything
/// else (a symlink, a directory, another user's file) was not left by restartd, which creates
/// only regular files there: it is reported and left alone, for a person to look at. The lstat
/// before the unlink guards nothing, as the name may change in between; what keeps the write
/// safe is that the second create is exclusive and no-follow too, and unlink(2) removes a name,
/// never what a symlink points to. A third party that keeps re-creating the name makes the
/// write fail instead of looping. Not guarded against: two live restartds with the same pid (in
/// different pid namespaces) writing the same `--metrics-file` could unlink each other's
/// temporary file mid-write; such a pair overwrites each other's metrics anyway, and state.json
/// has one writer, the holder of the instance lock.
fn create_temp(tmp: &Path, mode: u32) -> io::Result<File> {
    let create = || {
        OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(mode)
            .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
            .open(tmp)
    };
    match create() {
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
            let meta = fs::symlink_metadata(tmp)?;
            // SAFETY: geteuid(2) cannot fail and touches no memory.
            let me = unsafe { libc::geteuid() };
            if !meta.file_type().is_file() || meta.uid() != me {
                return Err(io::Error::new(
                    io::ErrorKind::AlreadyExists,
                    format!(
                        "{} is in the way and was not left by restartd (a symlink, not a file, \
                         or not owned by uid {me}); remove it",
                        tmp.display()
                    ),
                ));
            }
            fs::remove_file(tmp)?;
            create()
        }
        result => result,
    }
}

/// An anonymous in-memory file (memfd_create(2), close-on-exec) holding `bytes`, positioned at
/// its start; `name` shows in /proc/PID/fd. Given to a helper process as stdin or output, it never
/// blocks restartd as a pipe would, however much is written or however slowly it is read.
pub fn memfd(name: &CStr, bytes: &[u8]) -> io::Result<File> {
    // SAFETY: a valid NUL-terminated name; the returned fd is checked and owned at once.
    let fd = unsafe { libc::memfd_create(name.as_ptr(), libc::MFD_CLOEXEC) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: a fresh descriptor that nothing else owns.
    let mut file = File::from(unsafe { OwnedFd::from_raw_fd(fd) });
    if !bytes.is_empty() {
        file.write_all(bytes)?;
        file.rewind()?;
    }
    Ok(file)
}

/// An empty anonymous file that takes at most `limit` bytes: sized to `limit` and sealed against
/// growing (F_SEAL_GROW), so a write beyond it fails (EPERM) at once instead of waiting or
/// filling memory. Read back what was written with `written`.
pub fn bounded_memfd(name: &CStr, limit: u64) -> io::Result<File> {
    // SAFETY: a valid NUL-terminated name; the returned fd is checked and owned at once.
    let fd =
        unsafe { libc::memfd_create(name.as_ptr(), libc::MFD_CLOEXEC | libc::MFD_ALLOW_SEALING) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: a fresh descriptor that nothing else owns.
    let file = File::from(unsafe { OwnedFd::from_raw_fd(fd) });
    file.set_len(limit)?;
    // SAFETY: fcntl on a descriptor this function owns.
    if unsafe { libc::fcntl(file.as_raw_fd(), libc::F_ADD_SEALS, libc::F_SEAL_GROW) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(file)
}

/// What was written to a `bounded_memfd` through descriptors sharing its offset (the ones a
/// child got by dup2): the bytes before the offset; and the room left. A write that does not fit
/// in that room is refused whole.
pub fn written(file: &File) -> io::Result<(Vec<u8>, u64)> {
    use std::os::unix::fs::FileExt;
    let end = (&*file).stream_position()?;
    let size = file.metadata()?.len();
    let mut bytes = vec![0; end.min(size) as usize];
    file.read_exact_at(&mut bytes, 0)?;
    Ok((bytes, size.saturating_sub(end)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;
    use std::os::unix::fs::{symlink, PermissionsExt};

    fn names(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }

    #[test]
    fn a_directory_is_synced_and_a_missing_one_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        sync_dir(dir.path()).unwrap();
        assert!(sync_dir(&dir.path().join("missing")).is_err());
        let file = dir.path().join("file");
        fs::write(&file, "").unwrap();
        assert!(sync_dir(&file).is_err(), "not a directory");
    }

    #[test]
    fn a_memfd_reads_back_from_the_start() {
        let mut text = String::new();
        memfd(c"restartd-test", b"one line\n")
            .unwrap()
            .read_to_string(&mut text)
            .unwrap();
        assert_eq!(text, "one line\n");
        let mut empty = memfd(c"restartd-test", b"").unwrap();
        empty.write_all(b"out").unwrap();
        empty.rewind().unwrap();
        text.clear();
        empty.read_to_string(&mut text).unwrap();
        assert_eq!(text, "out");
    }

    #[test]
    fn the_temporary_file_is_hidden_beside_the_target_and_named_after_the_pid() {
        assert_eq!(
            temp_path(Path::new("/a/b/restartd.prom")).unwrap(),
            PathBuf::from(format!("/a/b/.restartd.prom.{}.tmp", std::process::id()))
        );
        assert!(temp_path(Path::new("/")).is_err());
    }

    #[test]
    fn content_is_replaced_by_a_rename_not_rewritten_in_place() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.json");
        replace(&path, b"old\n", 0o600, true).unwrap();
        // A reader that opened the old file keeps reading all of it: the new content is another
        // inode, renamed over the name, so no reader can see half of one and half of the other.
        let mut reader = File::open(&path).unwrap();
        let before = fs::metadata(&path).unwrap().ino();
        replace(&path, b"new and longer\n", 0o600, false).unwrap();
        let mut old = String::new();
        reader.read_to_string(&mut old).unwrap();
        assert_eq!(old, "old\n");
        assert_eq!(fs::read_to_string(&path).unwrap(), "new and longer\n");
        assert_ne!(fs::metadata(&path).unwrap().ino(), before);
        assert_eq!(
            fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o600
        );
        assert_eq!(names(dir.path()), ["state.json"], "no temporary file left");
    }

    #[test]
    fn a_symlink_at_the_temporary_name_is_not_followed() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("restartd.prom");
        let victim = dir.path().join("victim");
        fs::write(&victim, "precious\n").unwrap();
        let tmp = temp_path(&path).unwrap();
        for target in [&victim, &dir.path().join("absent")] {
            let _ = fs::remove_file(&tmp);
            symlink(target, &tmp).unwrap();
            let err = replace(&path, b"a 1\n", 0o644, true).unwrap_err();
            assert!(
                err.to_string().contains("was not left by restartd"),
                "{err}"
            );
            assert_eq!(fs::read_to_string(&victim).unwrap(), "precious\n");
            assert!(
                !dir.path().join("absent").exists(),
                "created through a symlink"
            );
            assert!(!path.exists());
            assert!(
                fs::symlink_metadata(&tmp).unwrap().file_type().is_symlink(),
                "left alone"
            );
        }
    }

    #[test]
    fn a_stale_temporary_file_of_ours_is_replaced() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.json");
        fs::write(temp_path(&path).unwrap(), "half a state fi").unwrap();
        replace(&path, b"{}\n", 0o600, true).unwrap();
        assert_eq!(fs::read_to_string(&path).unwrap(), "{}\n");
        assert_eq!(names(dir.path()), ["state.json"]);
    }

    #[test]
    fn a_directory_at_the_temporary_name_is_left_alone() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.json");
        fs::create_dir(temp_path(&path).unwrap()).unwrap();
        assert!(replace(&path, b"{}\n", 0o600, true).is_err());
        assert!(temp_path(&path).unwrap().is_dir());
        assert!(!path.exists());
    }

    #[test]
    fn a_symlink_at_the_target_is_replaced_not_written_through() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("restartd.prom");
        let victim = dir.path().join("victim");
        fs::write(&victim, "precious\n").unwrap();
        symlink(&victim, &path).unwrap();
        replace(&path, b"a 1\n", 0o644, true).unwrap();
        assert_eq!(fs::read_to_string(&victim).unwrap(), "precious\n");
        assert!(fs::symlink_metadata(&path).unwrap().file_type().is_file());
        assert_eq!(fs::read_to_string(&path).unwrap(), "a 1\n");
    }

    #[test]
    fn a_failed_rename_leaves_the_target_and_no_temporary_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("busy");
        fs::create_dir(&path).unwrap();
        fs::write(path.join("inside"), "x").unwrap();
        assert!(replace(&path, b"a 1\n", 0o600, true).is_err());
        assert_eq!(names(dir.path()), ["busy"]);
        assert_eq!(names(&path), ["inside"]);
    }

    #[test]
    fn a_bounded_memfd_keeps_what_fits_and_refuses_the_rest_at_once() {
        let file = bounded_memfd(c"t", 8).unwrap();
        let mut copy = file.try_clone().unwrap();
        assert_eq!(written(&file).unwrap(), (Vec::new(), 8));
        copy.write_all(b"abc").unwrap();
        assert_eq!(written(&file).unwrap(), (b"abc".to_vec(), 5));
        let err = copy.write_all(b"defghijk").unwrap_err();
        assert_eq!(err.raw_os_error(), Some(libc::EPERM), "{err}");
        copy.write_all(b"defgh").unwrap();
        assert_eq!(written(&file).unwrap(), (b"abcdefgh".to_vec(), 0));
    }
}

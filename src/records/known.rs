//! The errors an instance has already seen: `STATE_DIR/NAME/fingerprints`, one fingerprint a
//! line, appended (and fsync'd) the first time a fingerprint is recorded. The file is opened for
//! each append and closed again (new errors are rare): it never holds a descriptor that the
//! crash log or the child's pipes may need. A crash record's
//! `first_seen` (SPEC §6) is "no earlier record has this fingerprint"; the crash files alone
//! cannot answer that once `crashes.jsonl.1` has rotated away, so this file remembers every
//! fingerprint ever recorded, across restarts of restartd and rotations. Without the file (an
//! instance from before it existed) it is built once from the crash files. `reset --crashes`
//! removes it with the crash history: after that every error is new again.

use std::collections::HashSet;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::ops::ControlFlow;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use nix::libc;

use crate::base::files::{open_private, sync_dir};
use crate::records::crashlog;

pub const FILE: &str = "fingerprints";

/// At most this much of the file is read: a million errors, 17 bytes each.
const MAX_SIZE: u64 = 16 << 20;

/// The set of fingerprints recorded so far, and its file.
pub struct Known {
    path: PathBuf,
    seen: HashSet<String>,
    /// The last write failed and was reported.
    failing: bool,
}

impl Known {
    /// Loads `dir/fingerprints`, or builds it from the crash files when it does not exist.
    /// `Err` says what could not be read or written; the set is then what could be read, and
    /// restartd goes on (a fingerprint may be called new twice).
    pub fn load(dir: &Path) -> (Known, Option<String>) {
        let path = dir.join(FILE);
        let mut known = Known {
            path,
            seen: HashSet::new(),
            failing: false,
        };
        let problem = match read(&known.path) {
            Ok((text, whole)) => {
                known.seen = text
                    .lines()
                    .map(str::trim)
                    .filter(|l| is_fingerprint(l))
                    .map(str::to_string)
                    .collect();
                (!whole).then(|| {
                    io::Error::other(format!(
                        "larger than {} MiB, only the start is read",
                        MAX_SIZE >> 20
                    ))
                })
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => known.rebuild(dir).err(),
            Err(e) => Some(e),
        };
        let problem = problem.map(|e| {
            format!(
                "unable to read the known errors in {}: {e}; an error seen before may be called new",
                known.path.display()
            )
        });
        (known, problem)
    }

    /// Whether `fingerprint` was recorded before.
    pub fn contains(&self, fingerprint: &str) -> bool {
        self.seen.contains(fingerprint)
    }

    /// Remembers `fingerprint` (after its record was written). `Err` says why it is not on
    /// disk, for the first failure in a row only (as the crash log reports).
    pub fn insert(&mut self, fingerprint: &str) -> Result<(), String> {
        if !self.seen.insert(fingerprint.to_string()) {
            return Ok(());
        }
        match self.append(&[fingerprint]) {
            Ok(()) => {
                self.failing = false;
                Ok(())
            }
            Err(_) if self.failing => Ok(()),
            Err(e) => {
                self.failing = true;
                Err(format!(
                    "unable to write {}: {e}; an error first seen now may be called new again after a restart",
                    self.path.display()
                ))
            }
        }
    }

    /// Forgets every fingerprint (`reset --crashes`).
    pub fn clear(&mut self) -> io::Result<()> {
        self.seen.clear();
        remove(self.path.parent().unwrap_or(Path::new(".")))
    }

    fn rebuild(&mut self, dir: &Path) -> io::Result<()> {
        let mut found = Vec::new();
        crashlog::newest_first(dir, |line| {
            if let Some(f) = crashlog::Brief::parse(line).and_then(|b| b.fingerprint) {
                let f = f.as_ref();
                if is_fingerprint(f) && self.seen.insert(f.to_string()) {
                    found.push(f.to_string());
                }
            }
            ControlFlow::<()>::Continue(())
        })?;
        let found: Vec<&str> = found.iter().map(String::as_str).collect();
        self.append(&found)
    }

    fn append(&mut self, fingerprints: &[&str]) -> io::Result<()> {
        let mut file: File = open_private(&self.path, true)?;
        if file.metadata()?.len() == 0 {
            // Just created: its name must outlive a power loss as its lines do.
            if let Some(dir) = self.path.parent() {
                sync_dir(dir)?;
            }
        }
        let mut text = String::new();
        for f in fingerprints {
            text.push_str(f);
            text.push('\n');
        }
        file.write_all(text.as_bytes())?;
        file.sync_data()
    }
}

/// The file's text, never through a symlink, never waiting on a FIFO, and at most `MAX_SIZE`
/// bytes of it (`false`: there was more).
fn read(path: &Path) -> io::Result<(String, bool)> {
    let file = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_CLOEXEC)
        .open(path)?;
    if !file.metadata()?.is_file() {
        return Err(io::Error::other("not a regular file"));
    }
    let mut bytes = Vec::new();
    file.take(MAX_SIZE + 1).read_to_end(&mut bytes)?;
    let whole = bytes.len() as u64 <= MAX_SIZE;
    bytes.truncate(MAX_SIZE as usize);
    Ok((String::from_utf8_lossy(&bytes).into_owned(), whole))
}

/// Removes `dir/fingerprints` (missing is fine): for `reset --crashes` while no instance runs.
pub fn remove(dir: &Path) -> io::Result<()> {
    match fs::remove_file(dir.join(FILE)) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

fn is_fingerprint(s: &str) -> bool {
    s.len() == 16 && s.bytes().all(|b| b.is_ascii_hexdigit())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::records::crashlog::{tests::record, CrashLog};

    fn dir() -> tempfile::TempDir {
        tempfile::tempdir().unwrap()
    }

    #[test]
    fn remembered_across_loads_and_cleared_by_a_reset() {
        let d = dir();
        let (mut k, problem) = Known::load(d.path());
        assert_eq!(problem, None);
        assert!(!k.contains("00000000000000aa"));
        k.insert("00000000000000aa").unwrap();
        k.insert("00000000000000aa").unwrap();
        let (k2, _) = Known::load(d.path());
        assert!(k2.contains("00000000000000aa"));
        assert_eq!(
            fs::read_to_string(d.path().join(FILE)).unwrap(),
            "00000000000000aa\n"
        );
        k.clear().unwrap();
        assert!(!k.contains("00000000000000aa"));
        assert!(!d.path().join(FILE).exists());
        k.insert("00000000000000bb").unwrap();
        assert!(Known::load(d.path()).0.contains("00000000000000bb"));
    }

    #[test]
    fn never_read_through_a_symlink_a_fifo_or_past_its_size() {
        // See: issue 18 (review). A `fingerprints` planted as a symlink was read through
        // (`-> /dev/zero` grew restartd's memory without end at start), a FIFO blocked the
        // start for good, and a file of any size was read whole.
        let d = dir();
        let elsewhere = d.path().join("elsewhere");
        fs::write(&elsewhere, "00000000000000aa\n").unwrap();
        std::os::unix::fs::symlink(&elsewhere, d.path().join(FILE)).unwrap();
        let (k, problem) = Known::load(d.path());
        assert!(!k.contains("00000000000000aa"));
        assert!(problem.is_some_and(|p| p.contains("unable to read the known errors")));
        fs::remove_file(d.path().join(FILE)).unwrap();
        nix::unistd::mkfifo(&d.path().join(FILE), nix::sys::stat::Mode::S_IRWXU).unwrap();
        let (_, problem) = Known::load(d.path());
        assert!(problem.is_some_and(|p| p.contains("not a regular file")));
        fs::remove_file(d.path().join(FILE)).unwrap();
        let mut big = "00000000000000bb\n".repeat((MAX_SIZE / 17) as usize);
        big.push_str("00000000000000cc\n");
        fs::write(d.path().join(FILE), big).unwrap();
        let (k, problem) = Known::load(d.path());
        assert!(k.contains("00000000000000bb") && !k.contains("00000000000000cc"));
        assert!(problem.is_some_and(|p| p.contains("larger than 16 MiB")));
    }

    #[test]
    fn built_from_the_crash_files_of_an_older_instance() {
        let d = dir();
        let mut log = CrashLog::new(d.path());
        let mut r = record("20261205T000000.000Z-1-1");
        r.fingerprint = Some("0123456789abcdef".into());
        log.append(&r).unwrap();
        r.fingerprint = None;
        log.append(&r).unwrap();
        let (k, problem) = Known::load(d.path());
        assert_eq!(problem, None);
        assert!(k.contains("0123456789abcdef"));
        assert_eq!(
            fs::read_to_string(d.path().join(FILE)).unwrap(),
            "0123456789abcdef\n"
        );
    }
}

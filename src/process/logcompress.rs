//! `--log-compress`: rotated log files gzipped to PATH.N.gz a piece at a time, between the
//! loop's other work, so the child's output never waits for a whole file to be compressed.
//!
//! restartd is one thread with one poll loop. A rotated file is not compressed at once (10 MiB
//! take about 0.1 s at level 1, 0.3 s at gzip's default level 6; all that time the child's
//! pipes would go unread). Instead the loop asks `busy()` before it blocks, polls with a zero
//! timeout while it is, and after copying the child's output gives `work()` as much input as
//! the turn wrote to the log (plus one `STEP_BYTES` piece, at most `logfile::TURN_BYTES`), so
//! the queue drains as fast as rotation fills it. Should a flood still outrun it, the loop
//! bounds each read so that it rotates at most once, and once the oldest waiting file is a
//! rotation away from falling off `--log-keep` writes no more in a turn than the turn
//! compresses (`LogFile::read_budget`, in bytes written, timestamps counted): the child is
//! paced to the compression rate (a read every turn,
//! never a stall), and no file is lost half compressed.
//! Not chosen: a thread (restartd has none, and the file's rename would race the log writer)
//! and a forked helper (a process restartd must tell apart from the child's leftovers, reap,
//! and kill at exit, for work this small). A rotation while a file is still being compressed
//! only renumbers the queue; a file removed by `--log-max-age` before its turn is dropped with
//! its half-written output, and so is one the user removes while it is being compressed.
//!
//! Level 1 (`Compression::fast`): on access-log-like lines it is about 2.7 times faster than
//! gzip's default level 6 for a 15 % larger file (zlib, 64 KiB pieces: 0.67 ms against 1.83 ms
//! a piece, ratio 4.6 against 5.4; BENCHMARKS.md), so the queue keeps up with a faster child
//! and each turn's piece is shorter.
//!
//! The output goes to PATH.gz.tmp and is renamed to PATH.N.gz once complete, with the source's
//! modification time (so `--log-max-age` and `logs --since` see when its lines were written),
//! then the source is removed: a crash in between leaves the plain file, which the next start
//! compresses again.

use std::collections::VecDeque;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use flate2::write::GzEncoder;
use flate2::Compression;

/// The input compressed per loop turn.
pub const STEP_BYTES: usize = 64 * 1024;

/// A file being compressed.
struct Job {
    /// PATH.n, as it is numbered now.
    n: u32,
    src: File,
    enc: GzEncoder<File>,
}

/// The queue of rotated files waiting to be gzipped, oldest rotation first.
pub struct Compressor {
    path: PathBuf,
    pending: VecDeque<u32>,
    job: Option<Job>,
    buf: Vec<u8>,
    /// Files that fell off `--log-keep` before they were compressed (tests tell pacing by it).
    lost: u64,
}

impl Compressor {
    pub fn new(path: PathBuf) -> Compressor {
        Compressor {
            path,
            pending: VecDeque::new(),
            job: None,
            buf: Vec::new(),
            lost: 0,
        }
    }

    /// Whether work waits: the loop then polls without blocking.
    pub fn busy(&self) -> bool {
        self.job.is_some() || !self.pending.is_empty()
    }

    /// PATH.n (plain) is to be compressed.
    pub fn push(&mut self, n: u32) {
        if !self.pending.contains(&n) && self.job.as_ref().is_none_or(|j| j.n != n) {
            self.pending.push_back(n);
        }
    }

    /// Every rotated file moved up one number; those past `keep` are gone.
    pub fn shifted(&mut self, keep: u32) {
        for n in self.pending.iter_mut() {
            *n += 1;
        }
        let before = self.pending.len();
        self.pending.retain(|&n| n <= keep);
        self.lost += (before - self.pending.len()) as u64;
        if let Some(job) = &mut self.job {
            job.n += 1;
        }
        if self.job.as_ref().is_some_and(|j| j.n > keep) {
            self.lost += 1;
            self.drop_job();
        }
    }

    /// PATH.n was removed (too old): forget it.
    pub fn forget(&mut self, n: u32) {
        self.pending.retain(|&p| p != n);
        if self.job.as_ref().is_some_and(|j| j.n == n) {
            self.drop_job();
        }
    }

    /// The number of the oldest rotated file still to compress (the one under way first).
    pub fn oldest(&self) -> Option<u32> {
        self.job
            .as_ref()
            .map(|j| j.n)
            .or(self.pending.front().copied())
    }

    /// Compresses about `budget` bytes of input, a `STEP_BYTES` piece at a time (at least one
    /// piece, never more than the queue holds); returns the input taken. `Err` as `step`.
    pub fn work(&mut self, budget: usize) -> Result<usize, String> {
        let mut done = 0;
        loop {
            done += self.step()?;
            if done >= budget || !self.busy() {
                return Ok(done);
            }
        }
    }

    /// Compresses the next `STEP_BYTES` of the current file (starting the next file when none
    /// is under way); returns the input taken. `Err` names the file; the file is then left as
    /// it is, uncompressed.
    pub fn step(&mut self) -> Result<usize, String> {
        if self.job.is_none() {
            let Some(n) = self.pending.pop_front() else {
                return Ok(0);
            };
            let src = numbered(&self.path, n);
            match self.start(&src) {
                Ok(job) => self.job = Some(Job { n, ..job }),
                Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(0),
                Err(e) => return Err(format!("unable to compress {}: {e}", src.display())),
            }
        }
        let job = self.job.as_mut().expect("started above");
        self.buf.resize(STEP_BYTES, 0);
        let result = match job.src.read(&mut self.buf) {
            Ok(0) => self.finish().map(|()| 0),
            Ok(n) => job.enc.write_all(&self.buf[..n]).map(|()| n),
            Err(e) => Err(e),
        };
        result.map_err(|e| {
            let n = self.job.as_ref().map_or(0, |j| j.n);
            self.drop_job();
            format!(
                "unable to compress {}: {e}; it stays uncompressed",
                numbered(&self.path, n).display()
            )
        })
    }

    fn start(&self, src: &Path) -> io::Result<Job> {
        let file = File::open(src)?;
        let out = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o640)
            .custom_flags(nix::libc::O_CLOEXEC | nix::libc::O_NOFOLLOW)
            .open(self.temp())?;
        Ok(Job {
            n: 0,
            src: file,
            enc: GzEncoder::new(out, Compression::fast()),
        })
    }

    /// The whole file is in: PATH.gz.tmp → PATH.n.gz, with the source's time; the source goes.
    /// A source that is no longer at PATH.n (the user removed it meanwhile) is not brought
    /// back as PATH.n.gz: the output is dropped.
    fn finish(&mut self) -> io::Result<()> {
        let job = self.job.take().expect("a job is under way");
        let out = job.enc.finish()?;
        let meta = job.src.metadata()?;
        if let Ok(modified) = meta.modified() {
            let _ = out.set_modified(modified);
        }
        drop(out);
        let src = numbered(&self.path, job.n);
        let same = |m: fs::Metadata| (m.dev(), m.ino()) == (meta.dev(), meta.ino());
        if !fs::symlink_metadata(&src).is_ok_and(same) {
            let _ = fs::remove_file(self.temp());
            return Ok(());
        }
        fs::rename(self.temp(), gz(&src))?;
        match fs::remove_file(&src) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        }
    }

    fn drop_job(&mut self) {
        if self.job.take().is_some() {
            let _ = fs::remove_file(self.temp());
        }
    }

    /// How many files fell off `--log-keep` before they were compressed.
    #[cfg(test)]
    pub fn lost(&self) -> u64 {
        self.lost
    }

    /// Finishes everything now (tests only: in restartd it would stall the loop).
    #[cfg(test)]
    pub fn run_all(&mut self) {
        while self.busy() {
            self.step().unwrap();
        }
    }

    fn temp(&self) -> PathBuf {
        let mut s = self.path.as_os_str().to_owned();
        s.push(".gz.tmp");
        PathBuf::from(s)
    }
}

impl Drop for Compressor {
    /// restartd exits with a file half compressed: the half goes, the plain file stays (the
    /// next start compresses it).
    fn drop(&mut self) {
        self.drop_job();
    }
}

/// PATH.n.
pub fn numbered(path: &Path, n: u32) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(format!(".{n}"));
    PathBuf::from(s)
}

/// FILE.gz.
pub fn gz(file: &Path) -> PathBuf {
    let mut s = file.as_os_str().to_owned();
    s.push(".gz");
    PathBuf::from(s)
}

#[cfg(test)]
mod tests {
    use super::*;
    use flate2::read::GzDecoder;

    fn gunzip(path: &Path) -> Vec<u8> {
        let mut out = Vec::new();
        GzDecoder::new(File::open(path).unwrap())
            .read_to_end(&mut out)
            .unwrap();
        out
    }

    #[test]
    fn compresses_in_steps_and_follows_renumbering() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("app.log");
        let big: Vec<u8> = (0..3 * STEP_BYTES).map(|i| b"abcdefgh\n"[i % 9]).collect();
        fs::write(numbered(&path, 1), &big).unwrap();
        let mut c = Compressor::new(path.clone());
        c.push(1);
        assert!(c.busy());
        c.step().unwrap();
        assert!(c.busy(), "one step is not a whole file");
        // A rotation meanwhile: the file is now PATH.2.
        fs::rename(numbered(&path, 1), numbered(&path, 2)).unwrap();
        c.shifted(5);
        fs::write(numbered(&path, 1), b"newer\n").unwrap();
        c.push(1);
        c.run_all();
        assert_eq!(gunzip(&gz(&numbered(&path, 2))), big);
        assert_eq!(gunzip(&gz(&numbered(&path, 1))), b"newer\n");
        assert!(!numbered(&path, 1).exists() && !numbered(&path, 2).exists());
        assert!(!c.temp().exists());
    }

    /// Review of issue 21: a rotated file the user removes while it is being compressed stays
    /// removed (its PATH.n.gz appeared all the same, with the lines the user deleted).
    #[test]
    fn a_file_removed_while_compressed_does_not_come_back() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("app.log");
        fs::write(numbered(&path, 1), vec![b'x'; 3 * STEP_BYTES]).unwrap();
        let mut c = Compressor::new(path.clone());
        c.push(1);
        c.step().unwrap();
        fs::remove_file(numbered(&path, 1)).unwrap();
        c.run_all();
        assert!(
            !gz(&numbered(&path, 1)).exists(),
            "the deleted file came back as .gz"
        );
        assert!(!c.temp().exists());
    }

    #[test]
    fn a_file_that_falls_off_is_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("app.log");
        fs::write(numbered(&path, 1), vec![b'x'; 2 * STEP_BYTES]).unwrap();
        let mut c = Compressor::new(path.clone());
        c.push(1);
        c.step().unwrap();
        c.shifted(1);
        assert!(!c.busy());
        assert!(!c.temp().exists());
        c.push(1);
        c.forget(1);
        assert!(!c.busy());
    }
}

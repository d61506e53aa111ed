//! `--log-file`: the child's stdout and stderr appended to a file, rotated past `--log-max-size`
//! to PATH.1 (newest) … PATH.N (`--log-keep`); with `--log-timestamps` each line starts with its
//! time, with `--log-max-age` old rotated files are deleted, with `--log-compress` they are
//! gzipped (`logcompress`, in each loop turn as much as the turn wrote).
//!
//! Rotation happens between writes, at the last newline that fits, so no byte is lost or written
//! twice and lines stay whole unless one line alone exceeds the size. A failing write is reported
//! once (until writing works again) and never stops supervision.
//!
//! A timestamp is the time of the read that brought the line's first byte: it is written then,
//! so a line that arrives in pieces keeps the time of its first piece. Stdout and stderr share
//! the file, and a line is what lies between two newlines in it, as without timestamps.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use crate::base::config::LogFileConfig;
use crate::process::logcompress::{gz, numbered, Compressor, STEP_BYTES};

/// The length of `2026-12-05T07:35:08.099Z ` (RFC 3339 UTC, milliseconds, a space).
pub const STAMP_LEN: usize = 25;

/// The most input compressed in one loop turn (a few milliseconds at level 1), and the most
/// read from the child's pipes in a turn while compression is behind (`read_budget`).
pub const TURN_BYTES: usize = 512 * 1024;

/// The open log file.
pub struct LogFile {
    cfg: LogFileConfig,
    file: Option<File>,
    size: u64,
    failing: bool,
    /// The next byte written starts a line (gets a timestamp).
    at_line_start: bool,
    /// The last timestamp made, and the millisecond it is for.
    stamp: (u128, [u8; STAMP_LEN]),
    /// The stamped copy of a chunk.
    scratch: Vec<u8>,
    compressor: Option<Compressor>,
    /// Bytes written since compression last worked, while it had work: what the next turn's
    /// compression owes (`work`).
    owed: usize,
}

impl LogFile {
    /// The log file of `cfg`, opened (created) at once; also at once deletes rotated files past
    /// `--log-max-age` and, with `--log-compress`, queues the rotated files a previous run left
    /// uncompressed.
    pub fn new(cfg: LogFileConfig) -> LogFile {
        let compressor = cfg.compress.then(|| Compressor::new(cfg.path.clone()));
        let mut log = LogFile {
            cfg,
            file: None,
            size: 0,
            failing: false,
            at_line_start: true,
            stamp: (u128::MAX, [b' '; STAMP_LEN]),
            scratch: Vec::new(),
            compressor,
            owed: 0,
        };
        // The file exists from the start, so that `restartd logs -f` follows it from its first
        // line (a failure is reported at the first write).
        if let Ok(file) = open(&log.cfg.path) {
            log.size = file.metadata().map_or(0, |m| m.len());
            log.file = Some(file);
        }
        log.prune(SystemTime::now());
        if let Some(c) = &mut log.compressor {
            let _ = fs::remove_file(gz(&log.cfg.path).with_extension("gz.tmp"));
            for r in rotated(&log.cfg.path).unwrap_or_default() {
                if r.gz || r.n > log.cfg.keep {
                    continue;
                }
                if gz(&r.path).exists() {
                    // Compressed completely (the .gz is renamed into place whole) before a
                    // crash removed the source.
                    let _ = fs::remove_file(&r.path);
                } else {
                    c.push(r.n);
                }
            }
        }
        log
    }

    /// Appends `data`, read just now; `Some(message)` for the first failure in a row.
    pub fn write(&mut self, data: &[u8]) -> Option<String> {
        let now = match self.cfg.timestamps {
            true => SystemTime::now(),
            false => SystemTime::UNIX_EPOCH,
        };
        self.write_at(data, now)
    }

    /// Appends `data`, which arrived at `now`.
    pub fn write_at(&mut self, data: &[u8], now: SystemTime) -> Option<String> {
        let result = if self.cfg.timestamps {
            let mut stamped = std::mem::take(&mut self.scratch);
            self.stamped(data, now, &mut stamped);
            let result = self.try_write(&stamped, now);
            self.scratch = stamped;
            result
        } else {
            self.try_write(data, now)
        };
        match result {
            Ok(()) => {
                self.failing = false;
                None
            }
            Err(e) => {
                self.file = None;
                if self.failing {
                    return None;
                }
                self.failing = true;
                Some(format!(
                    "unable to write {}: {e}; output goes on to the terminal only",
                    self.cfg.path.display()
                ))
            }
        }
    }

    /// The child's run is over: with timestamps, a last line it left unterminated is ended
    /// here, so the next run's first line starts with a time of its own instead of being glued
    /// to it. A problem to report, as `write`.
    pub fn end_run(&mut self) -> Option<String> {
        if !self.cfg.timestamps || self.at_line_start {
            return None;
        }
        let problem = self.write_at(b"\n", SystemTime::now());
        self.at_line_start = true;
        problem
    }

    /// Whether rotated files wait to be compressed (the loop then does not block).
    pub fn busy(&self) -> bool {
        self.compressor.as_ref().is_some_and(Compressor::busy)
    }

    /// A turn's compression: as much input as was written since the last turn (plus a
    /// piece), at most `TURN_BYTES`, so that under a sustained flood the queue drains as fast as
    /// rotation fills it; a problem to report.
    pub fn work(&mut self) -> Option<String> {
        let c = self.compressor.as_mut()?;
        if !c.busy() {
            self.owed = 0;
            return None;
        }
        let budget = (self.owed + STEP_BYTES).min(TURN_BYTES);
        match c.work(budget) {
            Ok(done) => {
                self.owed = self.owed.saturating_sub(done);
                None
            }
            Err(e) => Some(e),
        }
    }

    /// How much the loop may read from the child's pipes this turn: `TURN_BYTES` once the
    /// oldest file waiting to be compressed is one rotation from falling off `--log-keep`
    /// (compression then sets the pace, so no file is lost half done), else no bound.
    pub fn read_budget(&self) -> Option<usize> {
        let oldest = self.compressor.as_ref()?.oldest()?;
        (oldest >= self.cfg.keep.saturating_sub(1).max(1)).then_some(TURN_BYTES - STEP_BYTES)
    }

    /// `data` into `out` with the timestamp of `now` at the start of each line.
    fn stamped(&mut self, mut data: &[u8], now: SystemTime, out: &mut Vec<u8>) {
        out.clear();
        out.reserve(data.len() + 8 * STAMP_LEN);
        let ms = now
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis());
        if self.stamp.0 != ms {
            let text = humantime::format_rfc3339_millis(now).to_string();
            let mut stamp = [b' '; STAMP_LEN];
            let n = text.len().min(STAMP_LEN - 1);
            stamp[..n].copy_from_slice(&text.as_bytes()[..n]);
            self.stamp = (ms, stamp);
        }
        while !data.is_empty() {
            if self.at_line_start {
                out.extend_from_slice(&self.stamp.1);
            }
            match memchr::memchr(b'\n', data) {
                Some(nl) => {
                    out.extend_from_slice(&data[..=nl]);
                    data = &data[nl + 1..];
                    self.at_line_start = true;
                }
                None => {
                    out.extend_from_slice(data);
                    self.at_line_start = false;
                    return;
                }
            }
        }
    }

    fn try_write(&mut self, mut data: &[u8], now: SystemTime) -> io::Result<()> {
        while !data.is_empty() {
            if self.file.is_none() {
                let file = open(&self.cfg.path)?;
                self.size = file.metadata()?.len();
                self.file = Some(file);
            }
            let room = self.cfg.max_size.saturating_sub(self.size) as usize;
            let take = if data.len() <= room {
                data.len()
            } else {
                // The most that fits, ending at a newline; a line longer than the file goes whole
                // into a file of its own.
                match data[..room].iter().rposition(|&b| b == b'\n') {
                    Some(nl) => nl + 1,
                    None if self.size == 0 => data.len(),
                    None => 0,
                }
            };
            if take > 0 {
                let file = self.file.as_mut().expect("opened above");
                file.write_all(&data[..take])?;
                self.size += take as u64;
                if self.busy() {
                    self.owed += take;
                }
                data = &data[take..];
            }
            if !data.is_empty() {
                self.rotate(now)?;
            }
        }
        Ok(())
    }

    /// PATH.(N-1) → PATH.N, …, PATH → PATH.1 (each with its .gz), then a fresh PATH; with
    /// compression PATH.1 is queued, with a maximum age the old files go.
    fn rotate(&mut self, now: SystemTime) -> io::Result<()> {
        self.file = None;
        let keep = self.cfg.keep;
        let path = &self.cfg.path;
        if keep == 0 {
            fs::remove_file(path)?;
        } else {
            for gone in [numbered(path, keep), gz(&numbered(path, keep))] {
                remove_if_there(&gone)?;
            }
            if let Some(c) = &mut self.compressor {
                c.shifted(keep);
            }
            // Only the files there are renamed (one directory read, not 2 × --log-keep
            // renames that mostly fail), from the highest number down.
            let mut there = rotated(path)?;
            there.retain(|r| r.n < keep);
            for r in there.iter().rev() {
                match fs::rename(&r.path, rotated_path(path, r.n + 1, r.gz)) {
                    Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
                    _ => {}
                }
            }
            fs::rename(path, numbered(path, 1))?;
            if let Some(c) = &mut self.compressor {
                c.push(1);
            }
        }
        self.file = Some(open(path)?);
        self.size = 0;
        self.prune(if now == SystemTime::UNIX_EPOCH {
            SystemTime::now()
        } else {
            now
        });
        Ok(())
    }

    /// Deletes rotated files last written more than `--log-max-age` before `now`.
    fn prune(&mut self, now: SystemTime) {
        let Some(max_age) = self.cfg.max_age else {
            return;
        };
        for r in rotated(&self.cfg.path).unwrap_or_default() {
            let old = fs::symlink_metadata(&r.path)
                .and_then(|m| m.modified())
                .is_ok_and(|t| now.duration_since(t).unwrap_or(Duration::ZERO) > max_age);
            if old && fs::remove_file(&r.path).is_ok() {
                if let Some(c) = &mut self.compressor {
                    if !r.gz {
                        c.forget(r.n);
                    }
                }
            }
        }
    }
}

/// A rotated file of a log: PATH.n, or PATH.n.gz.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rotated {
    pub n: u32,
    pub path: PathBuf,
    pub gz: bool,
}

/// The rotated files of the log at `path` that exist, by number (newest first), plain before
/// gzipped for the same number.
pub fn rotated(path: &Path) -> io::Result<Vec<Rotated>> {
    use std::os::unix::ffi::OsStrExt;
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let base = path.file_name().unwrap_or_default().as_bytes();
    let mut found = Vec::new();
    for entry in fs::read_dir(dir)? {
        let name = entry?.file_name();
        let name = name.as_bytes();
        let Some(rest) = name.strip_prefix(base).and_then(|r| r.strip_prefix(b".")) else {
            continue;
        };
        let (digits, gz) = match rest.strip_suffix(b".gz") {
            Some(d) => (d, true),
            None => (rest, false),
        };
        if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) || digits[0] == b'0' {
            continue;
        }
        let Some(n) = std::str::from_utf8(digits)
            .ok()
            .and_then(|d| d.parse().ok())
        else {
            continue;
        };
        found.push(Rotated {
            n,
            path: dir.join(std::ffi::OsStr::from_bytes(name)),
            gz,
        });
    }
    found.sort_by_key(|r| (r.n, r.gz));
    Ok(found)
}

/// PATH.n, or PATH.n.gz.
pub fn rotated_path(path: &Path, n: u32, gzipped: bool) -> PathBuf {
    match gzipped {
        true => gz(&numbered(path, n)),
        false => numbered(path, n),
    }
}

fn remove_if_there(path: &Path) -> io::Result<()> {
    match fs::remove_file(path) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

fn open(path: &Path) -> io::Result<File> {
    OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o640)
        .custom_flags(nix::libc::O_CLOEXEC | nix::libc::O_NOFOLLOW)
        .open(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn log(dir: &Path, max: u64, keep: u32) -> LogFile {
        LogFile::new(LogFileConfig {
            path: dir.join("app.log"),
            max_size: max,
            keep,
            ..Default::default()
        })
    }

    #[test]
    fn rotates_at_newlines_without_losing_or_repeating_a_byte() {
        let dir = tempfile::tempdir().unwrap();
        let mut l = log(dir.path(), 100, 3);
        let mut all = Vec::new();
        for i in 0..60 {
            let line = format!("line {i:03} {}\n", "x".repeat(i % 7));
            all.extend_from_slice(line.as_bytes());
            // Uneven chunks, as pipes deliver them.
            assert_eq!(l.write(line.as_bytes()), None);
        }
        let read = |n: u32| {
            let p = if n == 0 {
                dir.path().join("app.log")
            } else {
                numbered(&dir.path().join("app.log"), n)
            };
            fs::read(p).unwrap_or_default()
        };
        for n in 0..=3 {
            let f = read(n);
            assert!(f.len() <= 100, "file {n} has {} bytes", f.len());
            assert!(f.is_empty() || f.ends_with(b"\n"), "file {n} ends mid-line");
        }
        assert!(!numbered(&dir.path().join("app.log"), 4).exists(), "keep 3");
        // The kept files, oldest first, are exactly the end of everything written.
        let kept: Vec<u8> = [3, 2, 1, 0].iter().flat_map(|&n| read(n)).collect();
        assert!(all.ends_with(&kept), "lost or repeated bytes");
        assert!(kept.len() > 250);
    }

    #[test]
    fn a_line_longer_than_the_limit_gets_a_file_of_its_own() {
        let dir = tempfile::tempdir().unwrap();
        let mut l = log(dir.path(), 10, 2);
        l.write(b"short\n");
        l.write(&[b'y'; 25]);
        l.write(b"\nend\n");
        let cur = fs::read(dir.path().join("app.log")).unwrap();
        let one = fs::read(numbered(&dir.path().join("app.log"), 1)).unwrap();
        let two = fs::read(numbered(&dir.path().join("app.log"), 2)).unwrap();
        assert_eq!(
            [two, one, cur].concat(),
            [b"short\n".as_slice(), &[b'y'; 25], b"\nend\n"].concat()
        );
    }

    #[test]
    fn a_failing_write_is_reported_once() {
        let dir = tempfile::tempdir().unwrap();
        let mut l = LogFile::new(LogFileConfig {
            path: dir.path().join("missing/app.log"),
            max_size: 100,
            keep: 1,
            ..Default::default()
        });
        assert!(l.write(b"a\n").is_some());
        assert!(l.write(b"b\n").is_none());
        fs::create_dir(dir.path().join("missing")).unwrap();
        assert!(l.write(b"c\n").is_none());
        assert_eq!(
            fs::read(dir.path().join("missing/app.log")).unwrap(),
            b"c\n"
        );
    }
}

#[cfg(test)]
mod lifecycle_tests;

//! `--log-file`: the child's stdout and stderr appended to a file, rotated past `--log-max-size`
//! to PATH.1 (newest) … PATH.N (`--log-keep`).
//!
//! Rotation happens between writes, at the last newline that fits, so no byte is lost or written
//! twice and lines stay whole unless one line alone exceeds the size. A failing write is reported
//! once (until writing works again) and never stops supervision.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use crate::base::config::LogFileConfig;

/// The open log file.
pub struct LogFile {
    cfg: LogFileConfig,
    file: Option<File>,
    size: u64,
    failing: bool,
}

impl LogFile {
    pub fn new(cfg: LogFileConfig) -> LogFile {
        LogFile {
            cfg,
            file: None,
            size: 0,
            failing: false,
        }
    }

    /// Appends `data`; `Some(message)` for the first failure in a row.
    pub fn write(&mut self, data: &[u8]) -> Option<String> {
        match self.try_write(data) {
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

    fn try_write(&mut self, mut data: &[u8]) -> io::Result<()> {
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
                data = &data[take..];
            }
            if !data.is_empty() {
                self.rotate()?;
            }
        }
        Ok(())
    }

    /// PATH.(N-1) → PATH.N, …, PATH → PATH.1, then a fresh PATH.
    fn rotate(&mut self) -> io::Result<()> {
        self.file = None;
        let keep = self.cfg.keep;
        if keep == 0 {
            fs::remove_file(&self.cfg.path)?;
        } else {
            for n in (1..keep).rev() {
                match fs::rename(numbered(&self.cfg.path, n), numbered(&self.cfg.path, n + 1)) {
                    Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
                    _ => {}
                }
            }
            fs::rename(&self.cfg.path, numbered(&self.cfg.path, 1))?;
        }
        self.file = Some(open(&self.cfg.path)?);
        self.size = 0;
        Ok(())
    }
}

fn numbered(path: &Path, n: u32) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(format!(".{n}"));
    PathBuf::from(s)
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

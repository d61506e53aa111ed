//! `crashes.jsonl`: one crash record per line, appended and fsync'd before restartd acts on the
//! crash, rotated to `crashes.jsonl.1` past 10 MiB; and reading them back, newest first.
//!
//! Writing never stops supervision: a record that cannot be written is reported (once until
//! writing works again) and the crash is handled anyway. Reading streams over the lines from the
//! end and parses only what a query needs, so 100,000 records answer quickly.

use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use serde::{Deserialize, Serialize};

use crate::instance::open_private;

pub const FILE: &str = "crashes.jsonl";
pub const ROTATED: &str = "crashes.jsonl.1";
/// Rotate before a write would grow the file past this.
pub const MAX_SIZE: u64 = 10 * 1024 * 1024;

/// One crash record (SPEC §6). Every field is always present; unknown ones are null.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CrashRecord {
    pub id: String,
    pub name: String,
    pub time: String,
    pub reason: String,
    pub exit_code: Option<i32>,
    pub signal: Option<String>,
    pub core_dumped: bool,
    pub expected: bool,
    pub pid: Option<i32>,
    pub uptime_ms: u64,
    pub restarts: u64,
    pub action: String,
    pub next_delay_ms: Option<u64>,
    pub error_type: Option<String>,
    pub error_message: Option<String>,
    pub stack_trace: Option<String>,
    pub stderr_tail: Option<String>,
    pub max_rss_kb: Option<u64>,
    pub user_cpu_ms: Option<u64>,
    pub sys_cpu_ms: Option<u64>,
    pub command: Vec<String>,
    pub cwd: Option<String>,
    pub host: Option<String>,
    pub restartd_version: String,
    pub detail: Option<String>,
    /// `--label`s (SPEC §9); `{}` in records written before labels existed.
    #[serde(default)]
    pub labels: std::collections::BTreeMap<String, String>,
}

/// A record id: the time to the millisecond, then the pid and a sequence number, so ids sort by
/// time and never repeat (e.g. `20261123T040710.677Z-4200-1`).
pub fn new_id(time: SystemTime, pid: u32, seq: u64) -> String {
    let stamp = crate::state::rfc3339(time).replace(['-', ':'], "");
    format!("{stamp}-{pid}-{seq}")
}

/// Appends records to `DIR/crashes.jsonl`.
pub struct CrashLog {
    dir: PathBuf,
    file: Option<File>,
    size: u64,
    /// The last write failed and was reported.
    failing: bool,
}

impl CrashLog {
    /// A log in `dir`; the file is opened at the first write.
    pub fn new(dir: &Path) -> CrashLog {
        CrashLog {
            dir: dir.to_path_buf(),
            file: None,
            size: 0,
            failing: false,
        }
    }

    /// Appends `record` as one line and fsyncs it. `Err(msg)` only for the first failure in a
    /// row (report it); later failures return `Ok(false)` until a write succeeds again.
    pub fn append(&mut self, record: &CrashRecord) -> Result<bool, String> {
        match self.try_append(record) {
            Ok(()) => {
                self.failing = false;
                Ok(true)
            }
            Err(e) => {
                self.file = None;
                if self.failing {
                    Ok(false)
                } else {
                    self.failing = true;
                    Err(format!(
                        "unable to write a crash record to {}: {e}; the record is lost, supervision goes on",
                        self.dir.join(FILE).display()
                    ))
                }
            }
        }
    }

    fn try_append(&mut self, record: &CrashRecord) -> io::Result<()> {
        let mut line = serde_json::to_vec(record).map_err(io::Error::other)?;
        line.push(b'\n');
        if self.file.is_none() {
            let file = open_private(&self.dir.join(FILE), true)?;
            self.size = file.metadata()?.len();
            self.file = Some(file);
        }
        if self.size > 0 && self.size + line.len() as u64 > MAX_SIZE {
            fs::rename(self.dir.join(FILE), self.dir.join(ROTATED))?;
            self.file = Some(open_private(&self.dir.join(FILE), true)?);
            self.size = 0;
        }
        let file = self.file.as_mut().expect("opened above");
        file.write_all(&line)?;
        file.sync_data()?;
        self.size += line.len() as u64;
        Ok(())
    }
}

/// The raw lines of both files, newest first, without parsing them.
pub struct Lines {
    chunks: Vec<Vec<u8>>,
}

impl Lines {
    /// Reads `crashes.jsonl` and `crashes.jsonl.1` of `dir` (missing files are empty).
    pub fn read(dir: &Path) -> io::Result<Lines> {
        let mut chunks = Vec::new();
        for name in [FILE, ROTATED] {
            match fs::read(dir.join(name)) {
                Ok(bytes) => chunks.push(bytes),
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(e),
            }
        }
        Ok(Lines { chunks })
    }

    /// Each non-empty line, newest first.
    pub fn newest_first(&self) -> impl Iterator<Item = &[u8]> {
        self.chunks
            .iter()
            .flat_map(|c| c.rsplit(|&b| b == b'\n'))
            .filter(|l| !l.is_empty())
    }
}

/// The fields `crashes --stats` needs, parsed without building the rest.
#[derive(Deserialize)]
pub struct Brief<'a> {
    #[serde(borrow)]
    pub time: &'a str,
    #[serde(borrow)]
    pub reason: &'a str,
    /// A `Cow`: borrowed, unless the name holds a JSON escape.
    #[serde(borrow)]
    pub error_type: Option<std::borrow::Cow<'a, str>>,
}

/// Where restartd's own record lines can be cut: the fields before it are the short ones.
const HEAD_END: &[u8] = b",\"stack_trace\":";

impl<'a> Brief<'a> {
    /// Parses one record line, in place. restartd writes the fields in `CrashRecord`'s order, so
    /// for its own lines only the part before `"stack_trace"` is parsed (the `,` there is
    /// overwritten with `}`); the long traces and tails after it are skipped. Any other line is
    /// parsed whole.
    pub fn parse(line: &'a mut [u8]) -> Option<Brief<'a>> {
        if let Some(at) = find(line, HEAD_END) {
            let head = &line[..at];
            if find(head, b"\"time\":").is_some() && find(head, b"\"reason\":").is_some() {
                line[at] = b'}';
                return serde_json::from_slice(&line[..=at]).ok();
            }
        }
        serde_json::from_slice(line).ok()
    }
}

/// The first position of `needle` in `haystack`.
fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    let first = needle[0];
    let mut from = 0;
    while let Some(i) = haystack[from..].iter().position(|&b| b == first) {
        let at = from + i;
        if haystack[at..].starts_with(needle) {
            return Some(at);
        }
        from = at + 1;
    }
    None
}

impl Lines {
    /// Each non-empty line, newest first, as mutable bytes (for in-place parsing).
    pub fn newest_first_mut(&mut self) -> Vec<&mut [u8]> {
        let mut out = Vec::new();
        for chunk in self.chunks.iter_mut() {
            // Newline positions, found with the str search where the file is valid UTF-8.
            let ends: Vec<usize> = match std::str::from_utf8(chunk) {
                Ok(text) => text.match_indices('\n').map(|(i, _)| i).collect(),
                Err(_) => chunk
                    .iter()
                    .enumerate()
                    .filter(|(_, &b)| b == b'\n')
                    .map(|(i, _)| i)
                    .collect(),
            };
            let mut lines = Vec::with_capacity(ends.len() + 1);
            let mut rest: &mut [u8] = chunk;
            let mut consumed = 0;
            for end in ends {
                let (line, tail) = rest.split_at_mut(end - consumed);
                lines.push(line);
                rest = &mut tail[1..];
                consumed = end + 1;
            }
            lines.push(rest);
            out.extend(lines.into_iter().rev().filter(|l| !l.is_empty()));
        }
        out
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) fn record(id: &str) -> CrashRecord {
        CrashRecord {
            id: id.into(),
            name: "t".into(),
            time: "2026-11-23T04:07:10.677Z".into(),
            reason: "exit".into(),
            exit_code: Some(1),
            signal: None,
            core_dumped: false,
            expected: false,
            pid: Some(42),
            uptime_ms: 5,
            restarts: 0,
            action: "restart".into(),
            next_delay_ms: Some(1000),
            error_type: None,
            error_message: Some("boom".into()),
            stack_trace: None,
            stderr_tail: Some("boom\n".into()),
            max_rss_kb: Some(1000),
            user_cpu_ms: Some(1),
            sys_cpu_ms: Some(0),
            command: vec!["x".into()],
            cwd: Some("/".into()),
            host: Some("h".into()),
            restartd_version: "0".into(),
            detail: None,
            labels: Default::default(),
        }
    }

    #[test]
    fn ids_sort_by_time() {
        let t = SystemTime::UNIX_EPOCH + std::time::Duration::from_millis(1_795_428_000_123);
        let a = new_id(t, 99999, 1);
        let b = new_id(t + std::time::Duration::from_millis(1), 1, 1);
        assert_eq!(a, "20261123T100000.123Z-99999-1");
        assert!(a < b);
    }

    #[test]
    fn appends_rotates_and_reads_newest_first() {
        let dir = tempfile::tempdir().unwrap();
        let mut log = CrashLog::new(dir.path());
        let big = "x".repeat(1024 * 1024);
        for i in 0..12 {
            let mut r = record(&format!("id{i:02}"));
            r.stderr_tail = Some(big.clone());
            assert_eq!(log.append(&r), Ok(true));
        }
        assert!(fs::metadata(dir.path().join(FILE)).unwrap().len() <= MAX_SIZE);
        assert!(dir.path().join(ROTATED).exists());
        let lines = Lines::read(dir.path()).unwrap();
        let ids: Vec<String> = lines
            .newest_first()
            .map(|l| serde_json::from_slice::<CrashRecord>(l).unwrap().id)
            .collect();
        assert_eq!(ids.len(), 12);
        assert_eq!(ids[0], "id11");
        assert!(ids.windows(2).all(|w| w[0] > w[1]), "{ids:?}");
    }

    #[test]
    fn brief_parses_own_lines_by_their_head_and_others_whole() {
        let mut r = record("a");
        r.error_type = Some("ValueError".into());
        r.stack_trace = Some("\"stack_trace\": tricky".into());
        let mut line = serde_json::to_vec(&r).unwrap();
        let b = Brief::parse(&mut line).unwrap();
        assert_eq!(
            (b.time, b.reason, b.error_type.as_deref()),
            (r.time.as_str(), "exit", Some("ValueError"))
        );
        // Another field order (e.g. written by a tool): still parsed, whole.
        let mut other =
            br#"{"stack_trace":null,"reason":"signal","time":"t","error_type":null}"#.to_vec();
        let b = Brief::parse(&mut other).unwrap();
        assert_eq!((b.reason, b.error_type), ("signal", None));
        assert!(Brief::parse(&mut b"{not json".to_vec()).is_none());
    }

    #[test]
    fn mutable_lines_come_newest_first() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join(ROTATED), "a\nb\n").unwrap();
        fs::write(dir.path().join(FILE), "c\n\nd").unwrap();
        let mut lines = Lines::read(dir.path()).unwrap();
        let got: Vec<Vec<u8>> = lines
            .newest_first_mut()
            .into_iter()
            .map(|l| l.to_vec())
            .collect();
        assert_eq!(
            got,
            [b"d".to_vec(), b"c".to_vec(), b"b".to_vec(), b"a".to_vec()]
        );
    }

    #[test]
    fn a_failing_write_is_reported_once() {
        let dir = tempfile::tempdir().unwrap();
        let gone = dir.path().join("gone");
        let mut log = CrashLog::new(&gone);
        assert!(log.append(&record("a")).is_err());
        assert_eq!(log.append(&record("b")), Ok(false));
        fs::create_dir(&gone).unwrap();
        assert_eq!(log.append(&record("c")), Ok(true));
        assert!(log.append(&record("d")).is_ok());
    }
}

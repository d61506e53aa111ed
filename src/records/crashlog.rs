//! `crashes.jsonl`: one crash record per line, appended and fsync'd before restartd acts on the
//! crash, rotated to `crashes.jsonl.1` past 10 MiB; and reading them back, newest first. The
//! directory is fsync'd after the file is created and after a rotation, so a power loss cannot
//! take away a file whose records were fsync'd.
//!
//! Writing never stops supervision: a record that cannot be written is reported (once until
//! writing works again) and the crash is handled anyway; what part of it reached the file (a
//! full disk) is cut back, so the next record starts on a line of its own. Reading streams over
//! the lines from the end and parses only what a query needs, so 100,000 records answer quickly.

use std::fs::{self, File};
use std::io::{self, Write};
use std::ops::ControlFlow;
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use nix::libc;
use serde::{Deserialize, Serialize};

use crate::base::files::{open_private, sync_dir};

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
    /// 16 hex digits naming the error (`records::fingerprint`); null when nothing names it. Before
    /// `stack_trace`, so `Brief` reads it without parsing the long fields.
    #[serde(default)]
    pub fingerprint: Option<String>,
    /// No earlier record of the instance has this fingerprint (`records::known`).
    #[serde(default)]
    pub first_seen: bool,
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
    let stamp = crate::records::state::rfc3339(time).replace(['-', ':'], "");
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

    /// Removes `crashes.jsonl` and `crashes.jsonl.1` (`reset --crashes` on a running instance)
    /// and forgets the open file, so the next record starts a new one instead of going on into
    /// the removed file. `Err` says what could not be removed.
    pub fn clear(&mut self) -> Result<(), String> {
        self.file = None;
        self.size = 0;
        remove(&self.dir).map_err(|e| {
            format!(
                "unable to remove the crash history in {}: {e}",
                self.dir.display()
            )
        })
    }

    fn try_append(&mut self, record: &CrashRecord) -> io::Result<()> {
        let mut line = serde_json::to_vec(record).map_err(io::Error::other)?;
        line.push(b'\n');
        if self.file.is_none() {
            let file = open_private(&self.dir.join(FILE), true)?;
            self.size = file.metadata()?.len();
            if self.size == 0 {
                // Just created (or empty): its name must outlive a power loss as its records do.
                sync_dir(&self.dir)?;
            }
            if !ends_a_line(&file, self.size)? {
                // A record torn by a crash of restartd (or an append that could not be cut
                // back): end its line, so this record is one of its own.
                line.insert(0, b'\n');
            }
            self.file = Some(file);
        }
        if self.size > 0 && self.size + line.len() as u64 > MAX_SIZE {
            fs::rename(self.dir.join(FILE), self.dir.join(ROTATED))?;
            self.file = Some(open_private(&self.dir.join(FILE), true)?);
            self.size = 0;
            // The rename and the new file, in one directory fsync.
            sync_dir(&self.dir)?;
            if line[0] == b'\n' {
                line.remove(0);
            }
        }
        let file = self.file.as_mut().expect("opened above");
        // The length from the file itself, not `size`: what is cut back is this append only.
        let before = file.metadata()?.len();
        if let Err(e) = file.write_all(&line).and_then(|()| file.sync_data()) {
            // Part of the line may be in the file (a full disk takes what fits): cut it back,
            // so the next record starts on a line of its own (SPEC §6).
            let _ = file.set_len(before);
            return Err(e);
        }
        self.size = before + line.len() as u64;
        Ok(())
    }
}

/// Removes the crash files in `dir`; missing ones are fine. Only for the holder of the instance
/// lock: a running restartd (`CrashLog::clear`), or `reset --crashes` while none runs.
pub fn remove(dir: &Path) -> io::Result<()> {
    for file in [FILE, ROTATED] {
        match fs::remove_file(dir.join(file)) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
            _ => {}
        }
    }
    Ok(())
}

/// Bytes read at a time, from the end of a file towards its start.
const BLOCK: usize = 64 * 1024;

/// Calls `f` with each non-empty line of `crashes.jsonl`, then of `crashes.jsonl.1`, newest
/// first, until `f` breaks; returns what it broke with. The files are read backwards a block at
/// a time, so the newest records cost what they take, not what the files hold; lines are lent
/// mutable, for in-place parsing ([`Brief::parse`]). Missing files are empty; a file that
/// shrinks while it is read ends there.
pub fn newest_first<T>(
    dir: &Path,
    mut f: impl FnMut(&mut [u8]) -> ControlFlow<T>,
) -> io::Result<Option<T>> {
    let current = open_existing(&dir.join(FILE))?;
    let rotated = open_existing(&dir.join(ROTATED))?;
    // Rotated between the two opens: both are the same file, read once.
    let rotated = rotated.filter(|r| current.as_ref().is_none_or(|c| !same_file(c, r)));
    let (mut block, mut carry) = (Vec::new(), Vec::new());
    for file in current.iter().chain(&rotated) {
        if let ControlFlow::Break(t) = backwards(file, &mut block, &mut carry, &mut f)? {
            return Ok(Some(t));
        }
    }
    Ok(None)
}

/// One file of [`newest_first`]. `carry` holds the start of the file's newest line not yet
/// handed out: the bytes before the first newline of the block read last.
fn backwards<T>(
    file: &File,
    block: &mut Vec<u8>,
    carry: &mut Vec<u8>,
    f: &mut impl FnMut(&mut [u8]) -> ControlFlow<T>,
) -> io::Result<ControlFlow<T>> {
    let mut pos = file.metadata()?.len();
    carry.clear();
    while pos > 0 {
        // At least as much as is carried: a line longer than a block costs a copy of each byte a
        // few times, not once per block.
        let n = pos.min(BLOCK.max(carry.len()) as u64);
        pos -= n;
        block.clear();
        block.resize(n as usize, 0);
        match file.read_exact_at(block, pos) {
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => {
                return Ok(ControlFlow::Continue(()))
            }
            other => other?,
        }
        block.extend_from_slice(carry);
        // Every piece after the block's first newline is a whole line.
        let Some(first) = memchr(block, b'\n') else {
            std::mem::swap(block, carry);
            continue;
        };
        let mut end = block.len();
        while let Some(at) = memrchr(&block[first..end], b'\n') {
            let line = &mut block[first + at + 1..end];
            if !line.is_empty() {
                if let ControlFlow::Break(t) = f(line) {
                    return Ok(ControlFlow::Break(t));
                }
            }
            end = first + at;
        }
        carry.clear();
        carry.extend_from_slice(&block[..first]);
    }
    if carry.is_empty() {
        return Ok(ControlFlow::Continue(()));
    }
    Ok(f(carry))
}

/// Whether the `len` bytes of `file` are empty or end with a newline.
fn ends_a_line(file: &File, len: u64) -> io::Result<bool> {
    if len == 0 {
        return Ok(true);
    }
    let mut last = [0u8];
    file.read_exact_at(&mut last, len - 1)?;
    Ok(last[0] == b'\n')
}

fn open_existing(path: &Path) -> io::Result<Option<File>> {
    match File::open(path) {
        Ok(file) => Ok(Some(file)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

fn same_file(a: &File, b: &File) -> bool {
    match (a.metadata(), b.metadata()) {
        (Ok(a), Ok(b)) => (a.dev(), a.ino()) == (b.dev(), b.ino()),
        _ => false,
    }
}

/// The first `byte` in `haystack`: libc's vectorised search, as newlines are most of the work
/// of reading 100,000 records.
fn memchr(haystack: &[u8], byte: u8) -> Option<usize> {
    // SAFETY: memchr reads only the `haystack.len()` bytes of the live slice.
    let p = unsafe { libc::memchr(haystack.as_ptr().cast(), byte.into(), haystack.len()) };
    (!p.is_null()).then(|| p as usize - haystack.as_ptr() as usize)
}

/// The last `byte` in `haystack`.
fn memrchr(haystack: &[u8], byte: u8) -> Option<usize> {
    // SAFETY: as for memchr.
    let p = unsafe { libc::memrchr(haystack.as_ptr().cast(), byte.into(), haystack.len()) };
    (!p.is_null()).then(|| p as usize - haystack.as_ptr() as usize)
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
    #[serde(borrow, default)]
    pub error_message: Option<std::borrow::Cow<'a, str>>,
    #[serde(borrow, default)]
    pub fingerprint: Option<std::borrow::Cow<'a, str>>,
    #[serde(default)]
    pub first_seen: bool,
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
pub fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    let first = needle[0];
    let mut from = 0;
    while let Some(i) = memchr(&haystack[from..], first) {
        let at = from + i;
        if haystack[at..].starts_with(needle) {
            return Some(at);
        }
        from = at + 1;
    }
    None
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
            fingerprint: None,
            first_seen: false,
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
        let ids: Vec<String> = lines(dir.path())
            .iter()
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

    /// Every line `newest_first` hands out, in order.
    fn lines(dir: &Path) -> Vec<Vec<u8>> {
        let mut got = Vec::new();
        let none = newest_first(dir, |l| {
            got.push(l.to_vec());
            ControlFlow::<()>::Continue(())
        });
        assert!(none.unwrap().is_none());
        got
    }

    #[test]
    fn lines_come_newest_first_across_blocks_and_files() {
        let dir = tempfile::tempdir().unwrap();
        assert!(lines(dir.path()).is_empty(), "no files: no lines");
        fs::write(dir.path().join(ROTATED), "a\nb\n").unwrap();
        fs::write(dir.path().join(FILE), "c\n\nd").unwrap();
        assert_eq!(lines(dir.path()), [&b"d"[..], b"c", b"b", b"a"]);
        // Lines shorter than, as long as and longer than a block, cut anywhere by the blocks.
        let want: Vec<Vec<u8>> = [1, BLOCK - 1, BLOCK, BLOCK + 1, 3 * BLOCK + 7, 2, 0, 5]
            .iter()
            .enumerate()
            .map(|(i, &n)| vec![b'a' + i as u8; n])
            .collect();
        let text: Vec<u8> = want.join(&b'\n').into_iter().chain([b'\n']).collect();
        fs::write(dir.path().join(FILE), &text).unwrap();
        fs::remove_file(dir.path().join(ROTATED)).unwrap();
        let mut newest: Vec<Vec<u8>> = want.into_iter().filter(|l| !l.is_empty()).collect();
        newest.reverse();
        assert_eq!(lines(dir.path()), newest);
    }

    #[test]
    fn reading_stops_where_the_caller_breaks() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join(ROTATED), "a\nb\n").unwrap();
        fs::write(dir.path().join(FILE), "c\nd\n").unwrap();
        let mut seen = 0;
        let found = newest_first(dir.path(), |l| {
            seen += 1;
            if l == b"b" {
                ControlFlow::Break(seen)
            } else {
                ControlFlow::Continue(())
            }
        });
        assert_eq!(found.unwrap(), Some(3));
        assert_eq!(seen, 3, "a was never read");
    }

    #[test]
    fn a_rotated_file_that_is_the_current_one_is_read_once() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join(FILE), "a\n").unwrap();
        fs::hard_link(dir.path().join(FILE), dir.path().join(ROTATED)).unwrap();
        assert_eq!(lines(dir.path()), [b"a"]);
    }

    #[test]
    fn after_a_clear_the_next_record_starts_a_new_file() {
        let dir = tempfile::tempdir().unwrap();
        let mut log = CrashLog::new(dir.path());
        log.append(&record("a")).unwrap();
        fs::write(dir.path().join(ROTATED), "old\n").unwrap();
        log.clear().unwrap();
        assert!(!dir.path().join(FILE).exists());
        assert!(!dir.path().join(ROTATED).exists());
        log.append(&record("b")).unwrap();
        let ids: Vec<String> = lines(dir.path())
            .iter()
            .map(|l| serde_json::from_slice::<CrashRecord>(l).unwrap().id)
            .collect();
        assert_eq!(ids, ["b"]);
        log.clear().unwrap();
        log.clear().unwrap();
    }

    #[test]
    fn a_torn_last_line_is_ended_before_the_next_record() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join(FILE), "{\"id\":\"torn").unwrap();
        let mut log = CrashLog::new(dir.path());
        log.append(&record("a")).unwrap();
        log.append(&record("b")).unwrap();
        let text = fs::read_to_string(dir.path().join(FILE)).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 3, "{text}");
        assert_eq!(lines[0], "{\"id\":\"torn");
        for (line, id) in lines[1..].iter().zip(["a", "b"]) {
            assert_eq!(serde_json::from_str::<CrashRecord>(line).unwrap().id, id);
        }
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

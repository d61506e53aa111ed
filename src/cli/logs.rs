//! `restartd logs NAME [-n N] [-f] [--since DUR]`: the last lines of an instance's `--log-file`
//! (SPEC §8), the rotated files included, gzipped or not; `-f` follows the live file across
//! rotations until the instance's restartd exits.
//!
//! The file is found through `state.json`'s `log_file`. Lines are bytes, printed as written.
//! `--since` goes by a line's own time when it starts with one (`--log-timestamps`); a file whose
//! last write is older than the cutoff is skipped whole, so without timestamps a file is shown
//! whole or not at all. Following waits on inotify (the log's directory and the instance
//! directory, where `state.json` is replaced when restartd exits), with a one-second check of
//! the instance's lock as a fallback; it never holds a rotated file back: on a rotation the old
//! file is read to its end before the new one is opened.

use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::os::fd::AsFd;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::inotify::{AddWatchFlags, InitFlags, Inotify};

use crate::base::exit::code;
use crate::cli::args_lifecycle::LogsArgs;
use crate::process::logfile::{self, STAMP_LEN};
use crate::records::instance;
use crate::records::state::{self, Loaded};

/// Runs `logs`; the exit status.
pub fn run(state_dir: &Path, args: &LogsArgs) -> io::Result<u8> {
    let name = &args.name;
    let dir = instance::dir(state_dir, name);
    let state = match state::load(&dir) {
        Loaded::Found(s) => s,
        Loaded::Missing => {
            eprintln!("restartd: no instance '{name}' in {}", state_dir.display());
            return Ok(code::NO_SUCH);
        }
        Loaded::Corrupt(why) => {
            return Err(io::Error::other(format!(
                "{} is unreadable: {why}",
                dir.join(instance::STATE).display()
            )))
        }
    };
    let Some(path) = state.log_file.map(PathBuf::from) else {
        eprintln!(
            "restartd: {name} has no --log-file: its output goes to the stdout and stderr of its \
             restartd (the terminal it runs in; under systemd the journal: journalctl -u UNIT). \
             Run it with --log-file PATH to keep the output in a file that 'restartd logs' reads."
        );
        return Ok(code::NO_SUCH);
    };
    let cutoff = args.since.and_then(|d| SystemTime::now().checked_sub(d));
    let mut out = io::BufWriter::new(io::stdout().lock());
    // The live file is opened first and read through that descriptor: following goes on from
    // exactly where the last lines ended.
    let mut live = File::open(&path).ok();
    let mut files = Vec::new();
    if let Some(f) = &mut live {
        let mut text = Vec::new();
        f.read_to_end(&mut text)?;
        files.push((text, f.metadata()?.modified().ok()));
    }
    let live_ino = live
        .as_ref()
        .and_then(|f| f.metadata().ok())
        .map(|m| m.ino());
    for r in logfile::rotated(&path).unwrap_or_default() {
        if args.n != 0 && enough(&files, args.n, cutoff) {
            break;
        }
        let Ok(meta) = fs::metadata(&r.path) else {
            continue;
        };
        // Rotated between the open above and this listing: it is the live file read already.
        if Some(meta.ino()) == live_ino
            || cutoff.is_some_and(|c| meta.modified().is_ok_and(|m| m < c))
        {
            continue;
        }
        match read_file(&r.path, r.gz) {
            Ok(text) => files.push((text, meta.modified().ok())),
            Err(e) => eprintln!("restartd: unable to read {}: {e}", r.path.display()),
        }
    }
    let lines = last_lines(&files, args.n, cutoff);
    for line in &lines {
        out.write_all(line)?;
    }
    if !args.follow {
        if lines.last().is_some_and(|l| !l.ends_with(b"\n")) {
            out.write_all(b"\n")?;
        }
        out.flush()?;
        return Ok(0);
    }
    out.flush()?;
    follow(&path, &dir, live, &mut out)?;
    Ok(0)
}

/// Whether the files read so far (newest first) already hold `n` lines after the cutoff.
fn enough(files: &[(Vec<u8>, Option<SystemTime>)], n: usize, cutoff: Option<SystemTime>) -> bool {
    last_lines(files, n, cutoff).len() >= n
}

/// The last `n` lines (0: all) of `files`, given newest first, oldest line first; with a
/// cutoff, files last written before it and stamped lines older than it are left out.
pub fn last_lines(
    files: &[(Vec<u8>, Option<SystemTime>)],
    n: usize,
    cutoff: Option<SystemTime>,
) -> Vec<&[u8]> {
    let mut lines = Vec::new();
    'files: for (text, modified) in files {
        if let (Some(c), Some(m)) = (cutoff, modified) {
            if *m < c {
                continue;
            }
        }
        let mut end = text.len();
        while end > 0 {
            let start = text[..end - 1]
                .iter()
                .rposition(|&b| b == b'\n')
                .map_or(0, |i| i + 1);
            let line = &text[start..end];
            end = start;
            if cutoff.is_some_and(|c| stamp_of(line).is_some_and(|t| t < c)) {
                continue;
            }
            lines.push(line);
            if n != 0 && lines.len() == n {
                break 'files;
            }
        }
    }
    lines.reverse();
    lines
}

/// The `--log-timestamps` time a line starts with.
fn stamp_of(line: &[u8]) -> Option<SystemTime> {
    let head = line.get(..STAMP_LEN)?;
    if head[STAMP_LEN - 1] != b' ' {
        return None;
    }
    let text = std::str::from_utf8(&head[..STAMP_LEN - 1]).ok()?;
    humantime::parse_rfc3339(text).ok()
}

fn read_file(path: &Path, gz: bool) -> io::Result<Vec<u8>> {
    decode(File::open(path)?, gz)
}

/// The whole text of an open log file, gunzipped when `gz`.
fn decode(file: File, gz: bool) -> io::Result<Vec<u8>> {
    let mut text = Vec::new();
    if gz {
        flate2::read::MultiGzDecoder::new(file).read_to_end(&mut text)?;
    } else {
        io::BufReader::new(file).read_to_end(&mut text)?;
    }
    Ok(text)
}

/// Copies what is added to the live log until the instance's restartd exits; a rotation
/// (the path names another file) reads the old file to its end, then the new one from its
/// start.
fn follow(path: &Path, dir: &Path, mut live: Option<File>, out: &mut dyn Write) -> io::Result<()> {
    let notify = Inotify::init(InitFlags::IN_CLOEXEC | InitFlags::IN_NONBLOCK).ok();
    if let Some(n) = &notify {
        let log_dir = path.parent().unwrap_or(Path::new("/"));
        let changes = AddWatchFlags::IN_MODIFY
            | AddWatchFlags::IN_CREATE
            | AddWatchFlags::IN_MOVED_TO
            | AddWatchFlags::IN_MOVED_FROM
            | AddWatchFlags::IN_DELETE;
        let _ = n.add_watch(log_dir, changes);
        let _ = n.add_watch(dir, changes | AddWatchFlags::IN_CLOSE_WRITE);
    }
    let mut buf = vec![0; 64 * 1024];
    let mut last_round = false;
    // The last bytes read from the live file: with its size and time, they tell it apart from
    // other rotated files once it is gzipped (a new inode).
    let mut tail = Vec::new();
    loop {
        // The path is looked at before the old file is read to its end: once it names another
        // file, restartd writes no more to the old one.
        let now_ino = fs::metadata(path).ok().map(|m| m.ino());
        if let Some(f) = &mut live {
            copy_to_end(f, &mut buf, &mut tail, out)?;
        }
        let old = live.as_ref().and_then(|f| f.metadata().ok());
        if now_ino.is_some() && now_ino != old.as_ref().map(|m| m.ino()) {
            live = match &old {
                Some(old) => between(path, old, &tail, out)?,
                None => File::open(path).ok(),
            };
            tail.clear();
            continue;
        }
        out.flush()?;
        if last_round {
            return Ok(());
        }
        if instance::running(dir).is_none() {
            // restartd has exited: one more round for what it wrote last.
            last_round = true;
            continue;
        }
        match &notify {
            Some(n) => {
                let mut fds = [PollFd::new(n.as_fd(), PollFlags::POLLIN)];
                let _ = poll(&mut fds, PollTimeout::from(1000u16));
                let _ = n.read_events();
            }
            None => std::thread::sleep(Duration::from_millis(250)),
        }
    }
}

/// How many bytes of the followed file's end are kept to recognise it once gzipped.
const TAIL: usize = 256;

/// After a rotation: the files rotated after `old` (the file followed so far, read to its end,
/// whose last bytes are `tail`), which a burst of output can have filled and rotated before the
/// reader looked. `old` is PATH.k: found by its inode while plain; once gzipped, by its
/// modification time (the .gz keeps the source's), its size (the gzip trailer's) and its last
/// bytes. PATH.(k-1) … PATH.1 are opened, and PATH, the live file to follow next (returned),
/// and each is checked to be the file the listing named (its inode); then the directory is
/// listed again. A listing read while restartd renames is not trusted: any difference between
/// the two (a rotation, a file gzipped) and the whole is tried again. The rotated files are
/// printed oldest first.
fn between(
    path: &Path,
    old: &fs::Metadata,
    tail: &[u8],
    out: &mut dyn Write,
) -> io::Result<Option<File>> {
    for _ in 0..1000 {
        let before = snapshot(path);
        let k = position(&before, old, tail);
        let mut opened = Vec::new();
        let mut same = true;
        for n in (1..k.unwrap_or(1)).rev() {
            let Some(e) = before.files.iter().find(|e| e.n == n) else {
                continue;
            };
            match File::open(&e.path) {
                Ok(f) if f.metadata().is_ok_and(|m| m.ino() == e.ino) => {
                    opened.push((f, e.gz, e.path.clone()))
                }
                _ => same = false,
            }
        }
        let live = File::open(path).ok();
        let live_ino = live
            .as_ref()
            .and_then(|f| f.metadata().ok())
            .map(|m| m.ino());
        // PATH is missing for a moment in each rotation (renamed, not yet created again).
        if !same || live_ino.is_none() || live_ino != before.live || snapshot(path) != before {
            continue;
        }
        if k.is_none() {
            // Gone (past --log-keep or --log-max-age): nothing tells what followed it.
            return Ok(live);
        }
        for (file, gz, name) in opened {
            match decode(file, gz) {
                Ok(text) => out.write_all(&text)?,
                Err(e) => eprintln!("restartd: unable to read {}: {e}", name.display()),
            }
        }
        return Ok(live);
    }
    eprintln!(
        "restartd: {} rotates faster than it can be followed; some lines were skipped",
        path.display()
    );
    Ok(File::open(path).ok())
}

/// A rotated file as one listing saw it.
#[derive(Debug, PartialEq, Eq)]
struct Entry {
    n: u32,
    gz: bool,
    path: PathBuf,
    ino: u64,
    modified: Option<SystemTime>,
}

/// The log's rotated files (for each number the plain one when both are there) and the live
/// file's inode, as one look at the directory saw them.
#[derive(Debug, PartialEq, Eq)]
struct Snapshot {
    files: Vec<Entry>,
    live: Option<u64>,
}

fn snapshot(path: &Path) -> Snapshot {
    let live = fs::metadata(path).ok().map(|m| m.ino());
    let mut files: Vec<Entry> = Vec::new();
    for r in logfile::rotated(path).unwrap_or_default() {
        if files.last().is_some_and(|e| e.n == r.n) {
            continue; // the plain one is listed first; the .gz is its copy being made
        }
        if let Ok(m) = fs::metadata(&r.path) {
            files.push(Entry {
                n: r.n,
                gz: r.gz,
                path: r.path,
                ino: m.ino(),
                modified: m.modified().ok(),
            });
        }
    }
    Snapshot { files, live }
}

/// The number N of the rotated file that is `old` (see `between`).
fn position(snap: &Snapshot, old: &fs::Metadata, tail: &[u8]) -> Option<u32> {
    if let Some(e) = snap.files.iter().find(|e| !e.gz && e.ino == old.ino()) {
        return Some(e.n);
    }
    snap.files
        .iter()
        .filter(|e| e.gz && e.modified == old.modified().ok())
        .filter(|e| gz_size(&e.path) == Some(old.len() as u32))
        .find(|e| {
            File::open(&e.path)
                .and_then(|f| decode(f, true))
                .is_ok_and(|text| text.ends_with(tail))
        })
        .map(|e| e.n)
}

/// A gzip file's uncompressed size modulo 2^32 (its trailer's ISIZE).
fn gz_size(path: &Path) -> Option<u32> {
    use std::io::{Seek, SeekFrom};
    let mut f = File::open(path).ok()?;
    f.seek(SeekFrom::End(-4)).ok()?;
    let mut b = [0; 4];
    f.read_exact(&mut b).ok()?;
    Some(u32::from_le_bytes(b))
}

fn copy_to_end(
    f: &mut File,
    buf: &mut [u8],
    tail: &mut Vec<u8>,
    out: &mut dyn Write,
) -> io::Result<()> {
    loop {
        match f.read(buf) {
            Ok(0) => return Ok(()),
            Ok(n) => {
                out.write_all(&buf[..n])?;
                tail.extend_from_slice(&buf[n.saturating_sub(TAIL)..n]);
                let cut = tail.len().saturating_sub(TAIL);
                tail.drain(..cut);
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(secs: u64) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(1_796_000_000 + secs)
    }

    #[test]
    fn the_last_lines_across_files_oldest_first() {
        let files = vec![
            (b"d\ne\npartial".to_vec(), None),
            (b"b\nc\n".to_vec(), None),
            (b"a\n".to_vec(), None),
        ];
        let all: Vec<&[u8]> = vec![b"a\n", b"b\n", b"c\n", b"d\n", b"e\n", b"partial"];
        assert_eq!(last_lines(&files, 0, None), all);
        assert_eq!(last_lines(&files, 4, None), all[2..]);
        assert_eq!(last_lines(&files, 100, None), all);
        assert_eq!(last_lines(&[], 5, None), Vec::<&[u8]>::new());
    }

    #[test]
    fn since_goes_by_the_line_stamp_or_else_the_file_time() {
        let stamped = b"2026-11-30T00:53:20.000Z old\n2026-11-30T00:55:00.000Z new\nno stamp\n";
        let files = vec![
            (stamped.to_vec(), Some(t(200))),
            (b"rotated long ago\n".to_vec(), Some(t(10))),
        ];
        let lines = last_lines(&files, 0, Some(t(60)));
        assert_eq!(
            lines,
            [&b"2026-11-30T00:55:00.000Z new\n"[..], b"no stamp\n"]
        );
        assert_eq!(last_lines(&files, 0, None).len(), 4);
        assert_eq!(stamp_of(b"2026-11-30T00:53:20.000Z x"), Some(t(0)));
        assert_eq!(stamp_of(b"2026-11-30T00:53:20.000Zx"), None);
        assert_eq!(stamp_of(b"short"), None);
    }

    /// A burst rotated the followed file twice before the reader looked: the file in between
    /// is printed (found by the old file's inode, or, once gzipped, by its time).
    #[test]
    fn the_files_rotated_in_between_are_read() {
        use std::io::Write as _;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("app.log");
        let num = |n: u32, gz: bool| logfile::rotated_path(&path, n, gz);
        fs::write(&path, b"live\n").unwrap();
        fs::write(num(3, false), b"old\n").unwrap();
        let old = fs::metadata(num(3, false)).unwrap();
        let mut enc = flate2::write::GzEncoder::new(
            File::create(num(2, true)).unwrap(),
            flate2::Compression::fast(),
        );
        enc.write_all(b"two\n").unwrap();
        enc.finish().unwrap();
        fs::write(num(1, false), b"one\n").unwrap();
        let mut out = Vec::new();
        let live = between(&path, &old, b"old\n", &mut out).unwrap();
        assert_eq!(out, b"two\none\n");
        let mut text = String::new();
        live.expect("the live file")
            .read_to_string(&mut text)
            .unwrap();
        assert_eq!(text, "live\n");

        // The old file gzipped meanwhile: found by its modification time.
        let mut enc = flate2::write::GzEncoder::new(
            File::create(num(3, true)).unwrap(),
            flate2::Compression::fast(),
        );
        enc.write_all(b"old\n").unwrap();
        let gz = enc.finish().unwrap();
        gz.set_modified(old.modified().unwrap()).unwrap();
        drop(gz);
        fs::remove_file(num(3, false)).unwrap();
        let mut out = Vec::new();
        let live = between(&path, &old, b"old\n", &mut out).unwrap();
        assert_eq!(out, b"two\none\n");
        let mut text = String::new();
        live.expect("the live file")
            .read_to_string(&mut text)
            .unwrap();
        assert_eq!(text, "live\n");
    }
}

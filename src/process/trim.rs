//! Gives back the resident pages that only startup needed.
//!
//! Parsing the command line and setting up run code (clap, serde, the loader) that the idle loop
//! never runs again, the kernel maps file pages in 64 KiB batches around each fault, and freed
//! heap stays with the process: all of it would count in restartd's RSS for its whole life. When
//! the loop has had nothing to do for a second and nothing is timed (the child runs), at most once
//! every 10 s, restartd unmaps the pages of its read-only file mappings that were never written
//! (`MADV_DONTNEED`; they fault back in from the page cache when used) and returns free heap to
//! the kernel (`malloc_trim`). A mapping holding any page written since it was mapped (relocated
//! read-only data shows as `Anonymous:` in smaps) is left alone: dropping it would lose data.

use std::fs;
use std::time::{Duration, Instant};

/// How long the loop must have had nothing to do before it trims: a short run (`--restart no --
/// /bin/true`, a crash loop) never pays for a trim, a long-running child costs one wakeup.
pub const QUIET: Duration = Duration::from_secs(1);

/// At most one trim in this time: a crash loop re-runs the spawn path hundreds of times a
/// second, and trimming after each spawn would cost it more than it gives back.
pub const EVERY: Duration = Duration::from_secs(10);

/// Whether a trim is due at `now`, the last one having been at `last`.
pub fn due(last: Option<Instant>, now: Instant) -> bool {
    last.is_none_or(|last| now.duration_since(last) >= EVERY)
}

/// Drops the clean file-backed pages and free heap; errors are ignored (a failure costs only
/// memory).
pub fn give_back() {
    if let Ok(smaps) = fs::read_to_string("/proc/self/smaps") {
        for (start, end) in clean_file_mappings(&smaps) {
            // SAFETY: the range is a whole private mapping of a file, not writable, with no
            // page that differs from the file (`Anonymous: 0 kB`): dropping its pages loses
            // nothing, they fault back in from the file on the next use.
            unsafe {
                nix::libc::madvise(start as *mut _, end - start, nix::libc::MADV_DONTNEED);
            }
        }
    }
    // SAFETY: malloc_trim only returns free memory of the allocator to the kernel.
    unsafe {
        nix::libc::malloc_trim(0);
    }
}

/// The address ranges of `/proc/self/smaps` mappings that are backed by a file, not writable,
/// and hold no anonymous (copied-on-write) page.
fn clean_file_mappings(smaps: &str) -> Vec<(usize, usize)> {
    let mut found = Vec::new();
    let mut current: Option<(usize, usize)> = None;
    for line in smaps.lines() {
        let mut fields = line.split_whitespace();
        let Some(first) = fields.next() else {
            continue;
        };
        if let Some((start, end)) = first.split_once('-') {
            // A mapping's header: `start-end perms offset dev inode [path]`.
            let perms = fields.next().unwrap_or("");
            let path = fields.nth(3).unwrap_or("");
            let eligible = perms == "r--p" || perms == "r-xp";
            current = match (
                usize::from_str_radix(start, 16),
                usize::from_str_radix(end, 16),
            ) {
                (Ok(start), Ok(end)) if eligible && path.starts_with('/') => Some((start, end)),
                _ => None,
            };
        } else if first == "Anonymous:" {
            if let Some(range) = current.take() {
                if fields.next() == Some("0") {
                    found.push(range);
                }
            }
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn due_first_then_at_most_once_per_period() {
        let t0 = Instant::now();
        assert!(due(None, t0));
        assert!(!due(Some(t0), t0 + EVERY - Duration::from_millis(1)));
        assert!(due(Some(t0), t0 + EVERY));
    }

    #[test]
    fn only_clean_read_only_file_mappings_are_dropped() {
        let smaps = "\
1000-2000 r--p 00000000 08:01 42 /usr/bin/restartd
Rss:                 8 kB
Anonymous:           0 kB
2000-3000 r-xp 00001000 08:01 42 /usr/bin/restartd
Anonymous:           0 kB
3000-4000 r--p 00002000 08:01 42 /usr/bin/restartd
Anonymous:           4 kB
4000-5000 rw-p 00003000 08:01 42 /usr/bin/restartd
Anonymous:           0 kB
5000-6000 rw-p 00000000 00:00 0 [heap]
Anonymous:           4 kB
6000-7000 r-xp 00000000 00:00 0 [vdso]
Anonymous:           0 kB
7000-8000 r-xs 00000000 00:05 7 /memfd:x (deleted)
Anonymous:           0 kB
";
        assert_eq!(
            clean_file_mappings(smaps),
            [(0x1000, 0x2000), (0x2000, 0x3000)]
        );
    }

    #[test]
    fn this_process_keeps_working_after_giving_back() {
        let own = fs::read_to_string("/proc/self/smaps").unwrap();
        assert!(!clean_file_mappings(&own).is_empty());
        give_back();
        // Code and read-only data fault back in: formatting and allocation still run.
        assert_eq!(format!("{:?}", vec![1, 2]), "[1, 2]");
    }
}

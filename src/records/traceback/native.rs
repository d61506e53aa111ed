//! Native crashes, as the C and C++ runtimes and the sanitizers print them before the process
//! dies (most often of SIGABRT): C++ `terminate`, a failed `assert`, glibc's heap checks and
//! `*** stack smashing detected ***`, and AddressSanitizer, LeakSanitizer and
//! UndefinedBehaviorSanitizer reports.
//!
//! None of these prints a type name except C++ (the thrown class), so the type is a fixed name
//! for the kind of report: `assertion failed`, `heap corruption`, `stack smashing` (or what
//! `*** … detected ***` names), and the sanitizer's own name (`AddressSanitizer`).

use super::{run_of, Found};

/// `terminate called after throwing an instance of 'std::runtime_error'`, then
/// `  what():  message` when the exception derives from `std::exception`.
pub(super) fn cxx_terminate(lines: &[&str]) -> Option<Found> {
    const THROWING: &str = "terminate called after throwing an instance of '";
    const NONE: &str = "terminate called without an active exception";
    let start = lines
        .iter()
        .rposition(|l| l.starts_with(THROWING) || l.starts_with(NONE))?;
    let Some(rest) = lines[start].strip_prefix(THROWING) else {
        return Some(Found {
            start,
            end: start,
            error_type: Some("std::terminate".into()),
            message: Some(NONE.into()),
        });
    };
    let class = rest.strip_suffix('\'').unwrap_or(rest);
    let what = lines
        .get(start + 1)
        .and_then(|l| l.strip_prefix("  what():"))
        .map(|m| m.trim_start().to_string());
    Some(Found {
        start,
        end: start + usize::from(what.is_some()),
        error_type: (!class.is_empty()).then(|| class.to_string()),
        message: what,
    })
}

/// glibc's `assert`: `prog: file.c:4: main: Assertion `n > 0' failed.`; the message is the
/// expression, the line keeps where it failed.
pub(super) fn assert(lines: &[&str]) -> Option<Found> {
    let at = lines
        .iter()
        .rposition(|l| l.contains(": Assertion `") && l.ends_with("' failed."))?;
    let line = lines[at];
    let from = line.find(": Assertion `")? + ": Assertion `".len();
    let expression = line.get(from..line.len() - "' failed.".len())?;
    Some(Found {
        start: at,
        end: at,
        error_type: Some("assertion failed".into()),
        message: Some(expression.to_string()),
    })
}

/// glibc's heap checks (`malloc_printerr`): one line, then abort.
const HEAP_CHECKS: &[&str] = &[
    "free(): ",
    "malloc(): ",
    "realloc(): ",
    "calloc(): ",
    "double free or corruption",
    "munmap_chunk(): ",
    "malloc_consolidate(): ",
    "corrupted size vs. prev_size",
    "corrupted double-linked list",
    "_int_malloc(): ",
    "_int_free(): ",
    "tcache_thread_shutdown(): ",
];

/// `free(): double free detected in tcache 2` and the other lines of `HEAP_CHECKS`.
pub(super) fn glibc_heap(lines: &[&str]) -> Option<Found> {
    let at = lines
        .iter()
        .rposition(|l| HEAP_CHECKS.iter().any(|p| l.starts_with(p)))?;
    Some(Found {
        start: at,
        end: at,
        error_type: Some("heap corruption".into()),
        message: Some(lines[at].trim_end().to_string()),
    })
}

/// `*** stack smashing detected ***: terminated` (also `*** buffer overflow detected ***`, from
/// `_FORTIFY_SOURCE`): the type is what was detected.
pub(super) fn glibc_detected(lines: &[&str]) -> Option<Found> {
    let at = lines
        .iter()
        .rposition(|l| l.starts_with("*** ") && l.contains(" detected ***"))?;
    let what = lines[at]["*** ".len()..].split(" detected ***").next()?;
    if what.is_empty() {
        return None;
    }
    Some(Found {
        start: at,
        end: at,
        error_type: Some(what.to_string()),
        message: Some(lines[at].trim_end().to_string()),
    })
}

/// `==PID==ERROR: AddressSanitizer: heap-use-after-free on address …` (also LeakSanitizer,
/// ThreadSanitizer, MemorySanitizer): type the sanitizer, message the kind of error; the report
/// runs to its `SUMMARY:` line.
pub(super) fn sanitizer(lines: &[&str]) -> Option<Found> {
    let (at, name, rest) = lines.iter().enumerate().rev().find_map(|(i, l)| {
        let rest = l.strip_prefix("==")?;
        let (_pid, rest) = rest.split_once("==ERROR: ")?;
        let (name, rest) = rest.split_once(": ")?;
        name.ends_with("Sanitizer").then_some((i, name, rest))
    })?;
    let kind = rest
        .split(" on address ")
        .next()
        .and_then(|k| k.split(" on unknown address").next())
        .unwrap_or(rest)
        .trim();
    let mut start = at;
    if start > 0 && lines[start - 1].chars().all(|c| c == '=') && !lines[start - 1].is_empty() {
        start -= 1;
    }
    let end = lines[at..]
        .iter()
        .position(|l| l.starts_with("SUMMARY: "))
        .map_or_else(
            || at + run_of(lines, at + 1, |l| l.is_empty() || l.starts_with(' ')),
            |i| at + i,
        );
    Some(Found {
        start,
        end,
        error_type: Some(name.to_string()),
        message: Some(kind.to_string()),
    })
}

/// UBSan: `file.c:3:35: runtime error: signed integer overflow: …`, maybe followed by frames
/// (`UBSAN_OPTIONS=print_stacktrace=1`) and a `SUMMARY: UndefinedBehaviorSanitizer` line.
pub(super) fn ubsan(lines: &[&str]) -> Option<Found> {
    let at = lines
        .iter()
        .rposition(|l| l.contains(": runtime error: "))?;
    let line = lines[at];
    let location = &line[..line.find(": runtime error: ")?];
    // `file:line:col`: a path, then two numbers.
    let mut parts = location.rsplitn(3, ':');
    let numbers = parts
        .by_ref()
        .take(2)
        .all(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()));
    if !numbers || parts.next().is_none_or(|f| f.is_empty() || f.contains(' ')) {
        return None;
    }
    let message = &line[line.find(": runtime error: ")? + ": runtime error: ".len()..];
    let end = at
        + run_of(lines, at + 1, |l| {
            l.starts_with("    #") || l.starts_with("SUMMARY: UndefinedBehaviorSanitizer")
        });
    Some(Found {
        start: at,
        end,
        error_type: Some("UndefinedBehaviorSanitizer".into()),
        message: Some(message.to_string()),
    })
}

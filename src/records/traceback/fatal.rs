//! Reports a runtime prints when it dies itself rather than through an exception: Python's
//! `Fatal Python error:` (faulthandler), Node's `FATAL ERROR:` (heap exhausted), the JVM's
//! `OutOfMemoryError` exits and its fatal error banner (`hs_err`), and Rust's
//! `fatal runtime error:` (stack overflow). Go's `fatal error:` is read with Go's panics.

use super::{run_of, type_and_message, Found};

/// `Fatal Python error: Segmentation fault`, then the threads' `File "…", line N in f` frames.
pub(super) fn python_fatal(lines: &[&str]) -> Option<Found> {
    let start = lines
        .iter()
        .rposition(|l| l.starts_with("Fatal Python error: "))?;
    let message = &lines[start]["Fatal Python error: ".len()..];
    let dump = |l: &str| {
        l.trim().is_empty()
            || l.starts_with(' ')
            || l.starts_with("Current thread ")
            || l.starts_with("Thread 0x")
            || l.starts_with("Python runtime state:")
            || l.starts_with("Extension modules:")
            || l.starts_with("<no Python frame>")
    };
    let end = trim_blank(lines, start, start + run_of(lines, start + 1, dump));
    Some(Found {
        start,
        end,
        error_type: Some("Fatal Python error".into()),
        message: Some(message.trim().to_string()),
    })
}

/// `FATAL ERROR: Reached heap limit Allocation failed - JavaScript heap out of memory`, then
/// `----- Native stack trace -----` and ` 1: 0x… node::Abort()` frames.
pub(super) fn node_fatal(lines: &[&str]) -> Option<Found> {
    let start = lines.iter().rposition(|l| l.starts_with("FATAL ERROR: "))?;
    let message = &lines[start]["FATAL ERROR: ".len()..];
    let frame = |l: &str| {
        let t = l.trim_start();
        let digits = t.bytes().take_while(u8::is_ascii_digit).count();
        digits > 0 && t[digits..].starts_with(": ")
    };
    let dump = |l: &str| {
        l.trim().is_empty() || l.starts_with("----- Native stack trace -----") || frame(l)
    };
    let end = trim_blank(lines, start, start + run_of(lines, start + 1, dump));
    Some(Found {
        start,
        end,
        error_type: Some("FATAL ERROR".into()),
        message: Some(message.trim().to_string()),
    })
}

/// The JVM: `Terminating due to java.lang.OutOfMemoryError: Java heap space`
/// (`-XX:+ExitOnOutOfMemoryError`), and the `# A fatal error has been detected by the Java
/// Runtime Environment:` banner (a crash with an `hs_err` file; `Aborting due to …` right above
/// it with `-XX:+CrashOnOutOfMemoryError`).
pub(super) fn jvm_fatal(lines: &[&str]) -> Option<Found> {
    const BANNER: &str = "# A fatal error has been detected by the Java Runtime Environment:";
    let due = |l: &str| {
        l.strip_prefix("Terminating due to ")
            .or_else(|| l.strip_prefix("Aborting due to "))
            .and_then(type_and_message)
    };
    let at = lines
        .iter()
        .rposition(|l| *l == BANNER || due(l).is_some())?;
    if lines[at] != BANNER {
        return Some(Found {
            start: at,
            end: at,
            error_type: due(lines[at]).map(|d| d.0),
            message: due(lines[at]).and_then(|d| d.1),
        });
    }
    let end = at + run_of(lines, at + 1, |l| l.starts_with('#'));
    let mut start = at;
    if start > 0 && lines[start - 1] == "#" {
        start -= 1;
    }
    let banner = &lines[at..=end];
    // `#  SIGSEGV (0xb) at pc=…` or `#  Internal Error (debug.cpp:362), pid=…`, the line after
    // the blank `#` under the banner.
    let what = banner.iter().skip(1).find_map(|l| {
        let t = l.strip_prefix("#  ")?.trim_start();
        (!t.is_empty()).then_some(t)
    });
    let (mut error_type, mut message) = match what {
        Some(w) if w.starts_with("SIG") => {
            let signal = w.split([' ', '(']).next().unwrap_or(w);
            let frame = banner
                .iter()
                .position(|l| *l == "# Problematic frame:")
                .and_then(|i| banner.get(i + 1))
                .and_then(|l| l.strip_prefix("# "))
                .map(|f| f.split_whitespace().collect::<Vec<_>>().join(" "));
            (Some(signal.to_string()), frame)
        }
        Some(w) => {
            let kind = w.split(['(', ',']).next().unwrap_or(w).trim();
            // A banner cut or garbled where the kind was (`#  (0xb) at pc=…`): no name.
            let kind = if kind.is_empty() {
                "JVM fatal error"
            } else {
                kind
            };
            let detail = banner
                .iter()
                .skip_while(|l| !l.contains(w))
                .nth(1)
                .and_then(|l| l.strip_prefix("#  "))
                .map(|l| l.trim().to_string())
                .filter(|l| !l.is_empty());
            (Some(kind.to_string()), detail)
        }
        None => (Some("JVM fatal error".into()), None),
    };
    if let Some((t, m)) = start.checked_sub(1).and_then(|i| due(lines[i])) {
        start -= 1;
        (error_type, message) = (Some(t), m);
    }
    Some(Found {
        start,
        end,
        error_type,
        message,
    })
}

/// Rust: `thread 'main' has overflowed its stack` then `fatal runtime error: stack overflow`
/// (`, aborting` since Rust 1.87); other `fatal runtime error:` lines alike.
pub(super) fn rust_fatal(lines: &[&str]) -> Option<Found> {
    let at = lines
        .iter()
        .rposition(|l| l.starts_with("fatal runtime error: "))?;
    let message = lines[at]["fatal runtime error: ".len()..].trim();
    let message = message.strip_suffix(", aborting").unwrap_or(message);
    let overflowed =
        |l: &str| l.starts_with("thread '") && l.ends_with(" has overflowed its stack");
    let start = match at.checked_sub(1) {
        Some(i) if overflowed(lines[i]) => i,
        _ => at,
    };
    Some(Found {
        start,
        end: at,
        error_type: Some("fatal runtime error".into()),
        message: Some(message.to_string()),
    })
}

/// `end` moved up over blank lines, not above `start`.
pub(super) fn trim_blank(lines: &[&str], start: usize, mut end: usize) -> usize {
    while end > start && lines[end].trim().is_empty() {
        end -= 1;
    }
    end
}

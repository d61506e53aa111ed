//! The message of an exit when no report was recognised: the last line that says something,
//! not an access-log line or an INFO/DEBUG/TRACE line (SPEC §6).

use super::cap;

/// The last non-empty line that is not an access-log or INFO/DEBUG/TRACE line, without Node's
/// and Go's trailers and Go's log timestamp.
pub(super) fn last_line(lines: &[&str]) -> Option<String> {
    let line = lines.iter().rev().map(|l| l.trim()).find(|l| {
        !l.is_empty()
            && !l.starts_with("Node.js v")
            && !l.starts_with("(Use `node --trace-")
            && !l.starts_with("exit status ")
            && !is_access_log(l)
            && !is_chatter(l)
    })?;
    Some(strip_go_log_time(line).to_string())
}

/// An HTTP access-log line: a quoted request (`"GET / HTTP/1.1"`), as the common and combined
/// log formats, Python's `http.server`, gunicorn, uvicorn and nginx print it.
pub(super) fn is_access_log(line: &str) -> bool {
    const METHODS: [&str; 9] = [
        "GET", "POST", "PUT", "DELETE", "HEAD", "OPTIONS", "PATCH", "CONNECT", "TRACE",
    ];
    line.match_indices('"').any(|(i, _)| {
        let request = &line[i + 1..];
        METHODS.iter().any(|m| {
            request
                .strip_prefix(m)
                .is_some_and(|r| r.starts_with(' ') && r.contains(" HTTP/"))
        })
    })
}

/// A log line at level INFO, DEBUG or TRACE: the level as a word of its own in the line's first
/// 80 bytes (`INFO:root:…`, `[DEBUG]`, `2026-… TRACE …`), or `level=info`, `"level":"debug"`.
pub(super) fn is_chatter(line: &str) -> bool {
    let head = cap(line, 80);
    let levels = ["INFO", "DEBUG", "TRACE"];
    let word = head
        .split(|c: char| !c.is_ascii_alphanumeric())
        .any(|w| levels.contains(&w));
    let lower = head.to_ascii_lowercase();
    let keyed = ["info", "debug", "trace"].iter().any(|l| {
        lower.contains(&format!("level={l}"))
            || lower.contains(&format!("\"level\":\"{l}\""))
            || lower.contains(&format!("\"level\": \"{l}\""))
    });
    word || keyed
}

/// `2026/11/23 04:28:53 message` (Go's `log` default) → `message`.
fn strip_go_log_time(line: &str) -> &str {
    let b = line.as_bytes();
    let shape = b"dddd/dd/dd dd:dd:dd";
    let matches = b.len() > shape.len()
        && shape.iter().zip(b).all(|(&s, &c)| match s {
            b'd' => c.is_ascii_digit(),
            s => s == c,
        });
    if !matches {
        return line;
    }
    let rest = &line[shape.len()..];
    // Optional microseconds (`log.Lmicroseconds`).
    let rest = rest
        .strip_prefix('.')
        .map_or(rest, |r| r.trim_start_matches(|c: char| c.is_ascii_digit()));
    rest.strip_prefix(' ').unwrap_or(line)
}

//! Recognises the last traceback, panic or fatal report in a crashed program's stderr tail:
//! Python, Node.js, Rust, Go, Java/JVM, Ruby, PHP, .NET, Elixir and Deno, the runtimes' own fatal
//! reports, and native crashes (SPEC §6; `native`, `fatal` and `runtimes` hold the newer finders). It owns only the reading of text; it is pure: no IO,
//! no clock, and it never panics, whatever the bytes (invalid UTF-8 is replaced, ANSI escapes and
//! carriage returns are removed, lines are cut at 4 KiB). Each runtime has small finders that
//! locate its last report; the report that starts last wins, even when other lines follow it.
//!
//! Choices where the SPEC is silent:
//! - The error is the one that ended the program: Java `Caused by:`, Node `[cause]`/`[errors]`
//!   and Ruby cause blocks are skipped; of a Python chain, the last traceback printed wins.
//! - Messages are the first line of what the runtime prints (Python, Node, Ruby, Java and Rust
//!   messages may span lines); a type printed without a message gives `error_message: None`.
//! - Rust's `main` returning `Err` prints `Error: …`: type `Error`, message the rest of the line,
//!   for an exit only (before a death by signal such a line is only what the program logged).
//!   Go's `fatal error: …` (deadlock, concurrent map writes) has type `fatal error`.
//! - A Node value thrown that is not an Error (`throw "boom"`) has no type; the message is the
//!   value as Node prints it, on one line. Go's `log.Fatal` is no report: the last line, with
//!   its `2006/01/02 15:04:05 ` timestamp removed, is the message.
//! - A JVM or Ruby report whose first line was cut off the tail is still found (its lines are the
//!   stack trace) but its type and message are `None`: the thrown exception is not in the tail.
//! - Nothing recognised: the message is the last line that is not empty, an access-log line or
//!   an INFO/DEBUG/TRACE log line, and only for an exit (`recognise_end`): a death by signal is
//!   not explained by whatever the program logged last.

mod fallback;
mod fatal;
mod native;
mod runtimes;

use fallback::last_line;
#[cfg(test)]
use fallback::{is_access_log, is_chatter};

/// What the recogniser found in a stderr tail.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Recognised {
    pub error_type: Option<String>,
    pub error_message: Option<String>,
    /// The report as printed (ANSI stripped); `None` when no report was found.
    pub stack_trace: Option<String>,
}

/// Lines longer than this are cut before matching (a tail is at most 64 KiB anyway).
const MAX_LINE: usize = 4096;

/// How far above its frames a report's first line is looked for when its message spans lines.
const MESSAGE_LINES: usize = 10;

/// What the recogniser makes of the tail of a child that ended this way (SPEC §6): with no
/// report found, the fallback message counts for an exit only, never for a death by signal.
/// Rust's `Error: …` of a `main` that returned `Err` is printed on the way to an exit, so it
/// explains no death by signal: there it is only a line the program logged.
pub fn recognise_end(tail: &[u8], by_signal: bool) -> Recognised {
    let found = find(tail, !by_signal);
    match found.stack_trace {
        None if by_signal => Recognised::default(),
        _ => found,
    }
}

/// Recognises the last traceback or panic in `tail` (raw bytes of the last stderr lines); with
/// none, the message is the fallback line of an exit.
pub fn recognise(tail: &[u8]) -> Recognised {
    find(tail, true)
}

/// `recognise`, with the reports printed only on the way to an exit when `exit` is true.
fn find(tail: &[u8], exit: bool) -> Recognised {
    let text = clean(tail);
    let lines: Vec<&str> = text.lines().map(|l| cap(l, MAX_LINE)).collect();
    let exit_only: &[Finder] = if exit { &[rust_main_err] } else { &[] };
    let finders: [Finder; 21] = [
        python,
        python_group,
        node_error,
        node_value,
        rust_panic,
        go,
        java,
        ruby,
        fatal::python_fatal,
        fatal::node_fatal,
        fatal::jvm_fatal,
        fatal::rust_fatal,
        runtimes::php,
        runtimes::dotnet,
        runtimes::elixir,
        native::cxx_terminate,
        native::assert,
        native::glibc_heap,
        native::glibc_detected,
        native::sanitizer,
        native::ubsan,
    ];
    // The report that starts last; on a tie, the finder listed first.
    let best = finders
        .iter()
        .chain(exit_only)
        .filter_map(|find| find(&lines))
        .min_by_key(|f| std::cmp::Reverse(f.start));
    match best {
        Some(f) => Recognised {
            error_type: f.error_type,
            error_message: f.message.filter(|m| !m.is_empty()),
            stack_trace: lines
                .get(f.start..=f.end.min(lines.len().saturating_sub(1)).max(f.start))
                .map(|l| l.join("\n")),
        },
        None => Recognised {
            error_type: None,
            error_message: last_line(&lines),
            stack_trace: None,
        },
    }
}

/// Looks for one runtime's last report.
type Finder = fn(&[&str]) -> Option<Found>;

/// One runtime's report: its lines `start..=end`, and what it names.
struct Found {
    start: usize,
    end: usize,
    error_type: Option<String>,
    message: Option<String>,
}

/// Lossy UTF-8 without ANSI escape sequences or carriage returns.
fn clean(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(bytes);
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\u{1b}' => match chars.next() {
                // CSI: parameters and intermediates, then one final byte in @..~.
                Some('[') => {
                    for c in chars.by_ref() {
                        if ('@'..='~').contains(&c) {
                            break;
                        }
                    }
                }
                // OSC: up to BEL or ST (ESC \).
                Some(']') => {
                    while let Some(c) = chars.next() {
                        if c == '\u{7}' || (c == '\u{1b}' && chars.next_if_eq(&'\\').is_some()) {
                            break;
                        }
                    }
                }
                _ => {}
            },
            '\r' => {}
            c => out.push(c),
        }
    }
    out
}

fn cap(line: &str, max: usize) -> &str {
    if line.len() <= max {
        return line;
    }
    let mut end = max;
    while !line.is_char_boundary(end) {
        end -= 1;
    }
    &line[..end]
}

/// `Name` or `a.b.Name`: what runtimes print as an exception's type.
fn is_type_name(s: &str) -> bool {
    !s.is_empty()
        && s.split('.').all(|part| {
            let mut chars = part.chars();
            chars
                .next()
                .is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || c == '$')
                && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '$')
        })
}

/// `Type: message` or `Type` → (type, message).
fn type_and_message(line: &str) -> Option<(String, Option<String>)> {
    let line = line.trim_end();
    match line.split_once(": ") {
        Some((name, message)) if is_type_name(name) => {
            Some((name.to_string(), Some(message.to_string())))
        }
        _ if is_type_name(line.trim_end_matches(':')) => {
            Some((line.trim_end_matches(':').to_string(), None))
        }
        _ => None,
    }
}

/// A report whose first line is `lines[start]`, with its type and message parsed from it.
fn found(start: usize, end: usize, parsed: (String, Option<String>)) -> Found {
    Found {
        start,
        end,
        error_type: Some(parsed.0),
        message: parsed.1,
    }
}

/// How many lines from `from` on satisfy `pred`.
fn run_of(lines: &[&str], from: usize, pred: impl Fn(&str) -> bool) -> usize {
    lines
        .get(from..)
        .map_or(0, |rest| rest.iter().take_while(|l| pred(l)).count())
}

/// Python: the last `  File "…"` frame, and the exception line after it (the first line that is
/// not indented). Anchoring on the frame, not on `Traceback (most recent call last):`, keeps a
/// traceback whose header was cut off the tail, and a `SyntaxError`, which has no header.
fn python(lines: &[&str]) -> Option<Found> {
    let frame = lines.iter().rposition(|l| l.starts_with("  File \""))?;
    let at = frame + run_of(lines, frame, |l| l.starts_with(' '));
    let parsed = type_and_message(lines.get(at)?)?;
    let mut start = frame;
    while start > 0 && lines[start - 1].starts_with("  ") {
        start -= 1;
    }
    if start > 0 && lines[start - 1].trim_end() == "Traceback (most recent call last):" {
        start -= 1;
    }
    Some(found(start, at, parsed))
}

/// Python ≥ 3.11 exception groups: `  + Exception Group Traceback…`, then `  | ` lines; the
/// group's own exception is the first of them that is not a frame, and nested boxes follow.
fn python_group(lines: &[&str]) -> Option<Found> {
    let start = lines
        .iter()
        .rposition(|l| l.trim() == "+ Exception Group Traceback (most recent call last):")?;
    let indent = lines[start].len() - lines[start].trim_start().len();
    let margin = &lines[start][..indent];
    let bar = format!("{margin}| ");
    let exception = lines[start + 1..]
        .iter()
        .take_while(|l| l.starts_with(&bar))
        .map(|l| &l[bar.len()..])
        .find(|l| !l.starts_with(' '))?;
    let parsed = type_and_message(exception)?;
    // The box: `| ` and `+-` lines at the group's indent, and nested boxes further in.
    let end = start
        + run_of(lines, start + 1, |l| {
            l.strip_prefix(margin)
                .is_some_and(|r| r.starts_with(['|', '+']) || r.starts_with("  "))
        });
    Some(found(start, end, parsed))
}

/// Node.js: `Name: message` (or `Name [CODE]: message`), maybe more message lines, then
/// `    at` frames; the source excerpt above it and the `{ … [cause] … }` block below belong to it.
fn node_error(lines: &[&str]) -> Option<Found> {
    let is_frame =
        |l: &str| l.starts_with("    at ") || (l.starts_with("    ... ") && l.ends_with(" ..."));
    let last = lines.iter().rposition(|l| l.starts_with("    at "))?;
    let first = lines[..last]
        .iter()
        .rposition(|l| !is_frame(l))
        .map_or(0, |i| i + 1);
    // Node prints the source excerpt and a blank line right above the error: the line after them
    // is its first line, whatever the message holds (`execSync` puts the child's stderr there).
    let below_excerpt = (first.saturating_sub(5 * MESSAGE_LINES)..first)
        .rev()
        .find(|&i| excerpt_above(lines, i).is_some())
        .map(|blank| blank + 1)
        .filter(|&h| h < first && js_header(lines[h]).is_some())
        .filter(|&h| !lines[h..first].iter().any(|l| l.starts_with("    at ")));
    let header = match below_excerpt {
        Some(h) => h,
        None => nearest_above(lines, first, |l| js_header(l).is_some())?,
    };
    let end = last + run_of(lines, last + 1, |l| l.starts_with(' ') || l == "}");
    let start = header
        .checked_sub(1)
        .and_then(|blank| excerpt_above(lines, blank))
        .unwrap_or(header);
    Some(found(start, end, js_header(lines[header])?))
}

/// A thrown non-Error: Node prints the value right under the excerpt's `^` (no blank line), then
/// maybe a `(Use \`node --trace-uncaught ...\`…)` hint. The value's lines make one message.
fn node_value(lines: &[&str]) -> Option<Found> {
    let caret = lines.iter().rposition(|l| is_marker(l))?;
    let start = excerpt_start(lines, caret)?;
    let hint = |l: &str| l.starts_with("(Use `node --trace-uncaught");
    let n = run_of(lines, caret + 1, |l| !l.trim().is_empty() && !hint(l));
    if n == 0 {
        return None;
    }
    let value = &lines[caret + 1..caret + 1 + n];
    let end = caret + n + usize::from(lines.get(caret + 1 + n).is_some_and(|l| hint(l)));
    let message: Vec<&str> = value.iter().map(|l| l.trim()).collect();
    Some(Found {
        start,
        end,
        error_type: None,
        message: Some(message.join(" ")),
    })
}

fn js_header(line: &str) -> Option<(String, Option<String>)> {
    if line.starts_with(' ') {
        return None;
    }
    // Deno: `error: Uncaught (in promise) TypeError: message`.
    let line = line
        .strip_prefix("error: Uncaught (in promise) ")
        .or_else(|| line.strip_prefix("error: Uncaught "))
        .unwrap_or(line);
    // `Error [ERR_X]: message`: the code is not part of the type.
    if let (Some(a), Some(b)) = (line.find(" ["), line.find("]: ")) {
        if a < b && is_type_name(&line[..a]) {
            return Some((line[..a].to_string(), Some(line[b + 3..].to_string())));
        }
    }
    type_and_message(line)
}

/// A line of `^` (or `~`) markers under a source line.
fn is_marker(line: &str) -> bool {
    let t = line.trim();
    !t.is_empty() && t.chars().all(|c| c == '^' || c == '~')
}

/// Node's excerpt is `FILE:LINE`, the source line, then the `^` line at `caret`: its first line.
fn excerpt_start(lines: &[&str], caret: usize) -> Option<usize> {
    let location = lines.get(caret.checked_sub(2)?)?;
    let (file, line) = location.rsplit_once(':')?;
    let is_location = !file.is_empty()
        && !file.starts_with(' ')
        && !line.is_empty()
        && line.bytes().all(|b| b.is_ascii_digit());
    (is_marker(lines[caret]) && is_location).then_some(caret - 2)
}

/// The excerpt that ends right above the blank line at `blank`, if any: its first line.
fn excerpt_above(lines: &[&str], blank: usize) -> Option<usize> {
    if !lines.get(blank)?.is_empty() {
        return None;
    }
    excerpt_start(lines, blank.checked_sub(1)?)
}

/// The nearest line above `below` that `is_header` accepts, looking up a few message lines (not
/// across a blank line or a frame).
fn nearest_above(lines: &[&str], below: usize, is_header: impl Fn(&str) -> bool) -> Option<usize> {
    (below.saturating_sub(MESSAGE_LINES)..below)
        .rev()
        .take_while(|&i| !lines[i].trim().is_empty() && !lines[i].starts_with('\t'))
        .find(|&i| is_header(lines[i]))
}

/// Rust: `thread 'NAME' panicked at FILE:L:C:` then the message (Rust ≥ 1.73; the thread id in
/// parentheses is Rust ≥ 1.90), or `panicked at 'message', FILE` (older), then the backtrace.
fn rust_panic(lines: &[&str]) -> Option<Found> {
    let start = lines
        .iter()
        .rposition(|l| l.starts_with("thread '") && l.contains(" panicked at "))?;
    let after = &lines[start][lines[start].find(" panicked at ")? + " panicked at ".len()..];
    let trailer = |l: &str| {
        l.starts_with("stack backtrace:") || l.starts_with("note: ") || l.starts_with("thread '")
    };
    let (message, message_end) = match after.strip_prefix('\'') {
        // Old format: `panicked at 'message', src/main.rs:2:5`.
        Some(rest) => (rest.rfind("', ").map(|q| rest[..q].to_string()), start),
        None => (
            lines.get(start + 1).map(|m| m.to_string()),
            start + run_of(lines, start + 1, |l| !l.is_empty() && !trailer(l)),
        ),
    };
    let end = message_end
        + run_of(lines, message_end + 1, |l| {
            l.starts_with(' ') || l.starts_with("stack backtrace:") || l.starts_with("note: ")
        });
    Some(Found {
        start,
        end,
        error_type: Some("panic".into()),
        message,
    })
}

/// Rust's `main` returned an `Err`: `Error: {err:?}` is the last thing printed, maybe with an
/// anyhow-style `Caused by:` or `Stack backtrace:` section (indented lines) after it.
fn rust_main_err(lines: &[&str]) -> Option<Found> {
    let at = lines.iter().rposition(|l| l.starts_with("Error: "))?;
    let only_sections = lines[at + 1..].iter().all(|l| {
        l.trim().is_empty()
            || *l == "Caused by:"
            || *l == "Stack backtrace:"
            || (l.starts_with(' ') && !l.starts_with("    at "))
    });
    if !only_sections {
        return None;
    }
    let end = lines.iter().rposition(|l| !l.trim().is_empty())?;
    Some(Found {
        start: at,
        end,
        error_type: Some("Error".into()),
        message: Some(lines[at]["Error: ".len()..].to_string()),
    })
}

/// Go: `panic: message` (the last `\tpanic:` line of a re-panic is the one that ended it, and
/// ` [recovered]` is dropped), then the goroutine dump; `fatal error: message` likewise.
fn go(lines: &[&str]) -> Option<Found> {
    let start = lines
        .iter()
        .rposition(|l| l.starts_with("panic: ") || l.starts_with("fatal error: "))?;
    let (kind, first) = lines[start].split_once(": ")?;
    let nested = run_of(lines, start + 1, |l| l.starts_with("\tpanic: "));
    let message = match nested {
        0 => first,
        n => &lines[start + n]["\tpanic: ".len()..],
    };
    let message = message
        .strip_suffix(" [recovered]")
        .or_else(|| message.strip_suffix(" [recovered, repanicked]"))
        .unwrap_or(message);
    // The dump: goroutine headers, `function(args)` lines each followed by a `\tfile:line` line,
    // `created by` lines, blank lines.
    let mut end = start;
    while let Some(line) = lines.get(end + 1) {
        let function = lines.get(end + 2).is_some_and(|l| l.starts_with('\t'));
        let dump = line.is_empty()
            || line.starts_with('\t')
            || line.starts_with("goroutine ")
            || line.starts_with("[signal ")
            || line.starts_with("...");
        if !(dump || function) {
            break;
        }
        end += 1;
    }
    while end > start && lines[end].trim().is_empty() {
        end -= 1;
    }
    Some(Found {
        start,
        end,
        error_type: Some(kind.to_string()),
        message: Some(message.to_string()),
    })
}

/// JVM: `Exception in thread "NAME" class: message` (or `class: message` alone, as
/// `printStackTrace` prints it), then `\tat` frames, `Caused by:` sections and `\t... N more`.
fn java(lines: &[&str]) -> Option<Found> {
    let last = lines.iter().rposition(|l| l.starts_with("\tat "))?;
    let end = last + run_of(lines, last + 1, |l| l.starts_with('\t'));
    let in_chain = |l: &str| l.starts_with('\t') || l.starts_with("Caused by: ");
    let first = lines[..last]
        .iter()
        .rposition(|l| !in_chain(l))
        .map_or(0, |i| i + 1);
    // The line right above the chain, or an `Exception in thread` line a few lines up when the
    // message spans lines.
    let header = first
        .checked_sub(1)
        .filter(|&i| java_header(lines[i]).is_some())
        .or_else(|| nearest_above(lines, first, |l| l.starts_with("Exception in thread \"")));
    match header.and_then(|h| Some((h, java_header(lines[h])?))) {
        Some((start, parsed)) => Some(found(start, end, parsed)),
        None => Some(cut_off(first, end)),
    }
}

fn java_header(line: &str) -> Option<(String, Option<String>)> {
    let thrown = match line.strip_prefix("Exception in thread \"") {
        Some(rest) => &rest[rest.find("\" ")? + 2..],
        None => line,
    };
    type_and_message(thrown)
}

/// A report whose first line is not in the tail: its lines, but no type and no message.
fn cut_off(start: usize, end: usize) -> Found {
    Found {
        start,
        end,
        error_type: None,
        message: None,
    }
}

/// Ruby: `FILE:LINE:in 'METHOD': message (Class)`, maybe more message lines, then `\tfrom` lines
/// (and `\t ... N levels...`). Causes follow as blocks of the same shape: the first block of the
/// last run of blocks is the error that was raised.
fn ruby(lines: &[&str]) -> Option<Found> {
    let last = lines
        .iter()
        .rposition(|l| l.starts_with("\tfrom ") || is_ruby_header(l))?;
    let end = last + run_of(lines, last + 1, |l| l.starts_with('\t'));
    // Walk up block by block: over the `\t` lines, then to the block's header.
    let mut top = end;
    loop {
        while top > 0 && lines[top].starts_with('\t') {
            top -= 1;
        }
        let header = (!lines[top].starts_with('\t'))
            .then(|| nearest_above(lines, top + 1, is_ruby_header))
            .flatten();
        match header {
            Some(h)
                if h > 0 && (lines[h - 1].starts_with('\t') || is_ruby_header(lines[h - 1])) =>
            {
                top = h - 1
            }
            Some(h) => return Some(found(h, end, ruby_header(lines[h])?)),
            // Frames without a header: the raised error's first line was cut off the tail.
            None => {
                let first = top + usize::from(!lines[top].starts_with('\t'));
                return Some(cut_off(first, end));
            }
        }
    }
}

fn is_ruby_header(line: &str) -> bool {
    ruby_header(line).is_some()
}

/// `file.rb:2:in 'method': message (Class)` → (Class, message); backquote or quote both.
fn ruby_header(line: &str) -> Option<(String, Option<String>)> {
    if line.starts_with(['\t', ' ']) {
        return None;
    }
    let rest = &line[line.find(":in ")? + 4..];
    let rest = rest.strip_prefix(['`', '\''])?;
    let rest = &rest[rest.find("': ")? + 3..];
    let open = rest.rfind(" (")?;
    let class = rest[open + 2..].strip_suffix(')')?;
    let constant = class.starts_with(|c: char| c.is_ascii_uppercase())
        && class
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':');
    constant.then(|| (class.to_string(), Some(rest[..open].to_string())))
}

#[cfg(test)]
mod tests;

//! Recognises the last traceback or panic in a crashed program's stderr tail: Python, Node.js,
//! Rust, Go, Java/JVM and Ruby (SPEC §6). It owns only the reading of text; it is pure: no IO,
//! no clock, and it never panics, whatever the bytes (invalid UTF-8 is replaced, ANSI escapes and
//! carriage returns are removed, lines are cut at 4 KiB). Each runtime has small finders that
//! locate its last report; the report that starts last wins, even when other lines follow it.
//!
//! Choices where the SPEC is silent:
//! - The error is the one that ended the program: Java `Caused by:`, Node `[cause]`/`[errors]`
//!   and Ruby cause blocks are skipped; of a Python chain, the last traceback printed wins.
//! - Messages are the first line of what the runtime prints (Python, Node, Ruby, Java and Rust
//!   messages may span lines); a type printed without a message gives `error_message: None`.
//! - Rust's `main` returning `Err` prints `Error: …`: type `Error`, message the rest of the line.
//!   Go's `fatal error: …` (deadlock, concurrent map writes) has type `fatal error`.
//! - A Node value thrown that is not an Error (`throw "boom"`) has no type; the message is the
//!   value as Node prints it, on one line. Go's `log.Fatal` is no report: the last line, with
//!   its `2006/01/02 15:04:05 ` timestamp removed, is the message.
//! - A JVM or Ruby report whose first line was cut off the tail is still found (its lines are the
//!   stack trace) but its type and message are `None`: the thrown exception is not in the tail.

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

/// Recognises the last traceback or panic in `tail` (raw bytes of the last stderr lines).
pub fn recognise(tail: &[u8]) -> Recognised {
    let text = clean(tail);
    let lines: Vec<&str> = text.lines().map(|l| cap(l, MAX_LINE)).collect();
    let finders: [Finder; 9] = [
        python,
        python_group,
        node_error,
        node_value,
        rust_panic,
        rust_main_err,
        go,
        java,
        ruby,
    ];
    // The report that starts last; on a tie, the finder listed first.
    let best = finders
        .iter()
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

/// The last non-empty line, without Node's and Go's trailers and Go's log timestamp.
fn last_line(lines: &[&str]) -> Option<String> {
    let line = lines.iter().rev().map(|l| l.trim()).find(|l| {
        !l.is_empty()
            && !l.starts_with("Node.js v")
            && !l.starts_with("(Use `node --trace-")
            && !l.starts_with("exit status ")
    })?;
    Some(strip_go_log_time(line).to_string())
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

#[cfg(test)]
mod tests {
    use super::*;

    /// A fixture from `tests/data/tracebacks/` (its README says how each was produced), what it
    /// must be recognised as, and a line of the report the stack trace must hold (`None`: no
    /// report, so no stack trace).
    struct Case {
        file: &'static str,
        bytes: &'static [u8],
        error_type: Option<&'static str>,
        message: Option<&'static str>,
        frame: Option<&'static str>,
    }

    macro_rules! case {
        ($file:literal, $type:expr, $message:expr, $frame:expr) => {
            Case {
                file: $file,
                bytes: include_bytes!(concat!("../../tests/data/tracebacks/", $file, ".txt")),
                error_type: $type,
                message: $message,
                frame: $frame,
            }
        };
    }

    #[rustfmt::skip]
    const CASES: &[Case] = &[
        case!("py_zero", Some("ZeroDivisionError"), Some("division by zero"), Some(r#"  File "/app/zero.py", line 2, in ratio"#)),
        case!("py_chain_from", Some("ValueError"), Some("bad config: no port"), Some(r#"  File "/app/chain_from.py", line 5, in <module>"#)),
        case!("py_chain_during", Some("RuntimeError"), Some("cleanup failed"), Some(r#"  File "/app/chain_during.py", line 4, in <module>"#)),
        case!("py_module_error", Some("pkg.errors.DiskFull"), Some("no space left on /var"), Some(r#"  File "/app/module_error.py", line 2, in <module>"#)),
        case!("py_multiline", Some("ValueError"), Some("first line"), Some(r#"  File "/app/multiline.py", line 1, in <module>"#)),
        case!("py_no_message", Some("RuntimeError"), None, Some(r#"  File "/app/no_message.py", line 1, in <module>"#)),
        case!("py_carets", Some("KeyError"), Some("'c'"), Some("          ~~~~~~~~~~~~~^^^^^")),
        case!("py_exception_group", Some("ExceptionGroup"), Some("startup failed (2 sub-exceptions)"), Some("    | TypeError: bad host")),
        case!("py_syntax_error", Some("SyntaxError"), Some("invalid syntax"), Some(r#"  File "/app/syntax.py", line 1"#)),
        case!("py_two_tracebacks", Some("KeyError"), Some("'missing'"), Some(r#"  File "/app/logged_then_crash.py", line 7, in <module>"#)),
        case!("py_trailing_noise", Some("KeyError"), Some("'db_url'"), Some(r#"  File "/app/trailing_noise.py", line 4, in <module>"#)),
        case!("py_deep", Some("LookupError"), Some("depth reached"), Some(r#"  File "/app/deep.py", line 6, in fail"#)),
        case!("ansi_python", Some("ValueError"), Some("coloured"), Some(r#"  File "/app/x.py", line 1, in <module>"#)),
        case!("node_type_error", Some("TypeError"), Some("input must be a string"), Some("    at parse (/app/type_error.js:2:40)")),
        case!("node_unhandled_rejection", Some("Error"), Some("connection refused"), Some("    at connect (/app/rejection.js:1:34)")),
        case!("node_cause", Some("Error"), Some("config unreadable"), Some("  [cause]: SyntaxError: Expected property name or '}' in JSON at position 1")),
        case!("node_throw_string", None, Some("boom"), Some("/app/throw_string.js:1")),
        case!("node_throw_object", None, Some("{ code: 'E_CONFIG', retry: false }"), Some("/app/throw_object.js:1")),
        case!("node_reject_string", Some("UnhandledPromiseRejection"), Some("This error originated either by throwing inside of an async function without a catch block, or by rejecting a promise which was not handled with .catch(). The promise rejected with the reason \"boom\"."), Some("    at throwUnhandledRejectionsMode (node:internal/process/promises:389:7)")),
        case!("node_custom_error", Some("ValidationError"), Some("email is required"), Some("    at Object.<anonymous> (/app/custom.js:2:7)")),
        case!("node_multiline", Some("Error"), Some("cannot start"), Some("    at Object.<anonymous> (/app/multiline.js:1:7)")),
        case!("node_require_stack", Some("Error"), Some("Cannot find module './missing'"), Some("    at Object.<anonymous> (/app/b.js:1:1)")),
        case!("node_exec_sync", Some("Error"), Some("Command failed: sh -c 'echo fatal: not a git repository >&2; exit 128'"), Some("    at Object.<anonymous> (/app/exec_sync.js:1:26)")),
        case!("node_exit", None, Some("fatal: database unreachable"), None),
        case!("rust_panic", Some("panic"), Some("no workers configured"), Some("panicked at /app/rust_panic.rs:1:60:")),
        case!("rust_unwrap", Some("panic"), Some("called `Result::unwrap()` on an `Err` value: ParseIntError { kind: InvalidDigit }"), Some("panicked at /app/rust_unwrap.rs:1:40:")),
        case!("rust_unwrap_none", Some("panic"), Some("called `Option::unwrap()` on a `None` value"), Some("panicked at /app/rust_unwrap_none.rs:1:78:")),
        case!("rust_index", Some("panic"), Some("index out of bounds: the len is 3 but the index is 5"), Some("panicked at /app/rust_index.rs:1:73:")),
        case!("rust_backtrace", Some("panic"), Some("token missing"), Some("   5: rust_backtrace::main")),
        case!("rust_multiline", Some("panic"), Some("config invalid:"), Some("   2: rust_multiline::main")),
        case!("rust_thread", Some("panic"), Some("called `Result::unwrap()` on an `Err` value: Any { .. }"), Some("panicked at /app/rust_thread.rs:1:123:")),
        case!("rust_main_err", Some("Error"), Some("ParseIntError { kind: InvalidDigit }"), Some("Error: ParseIntError { kind: InvalidDigit }")),
        case!("rust_main_err_box", Some("Error"), Some("\"config file missing\""), Some("Error: \"config file missing\"")),
        case!("go_panic", Some("panic"), Some("boom"), Some("\t/app/go_panic/main.go:2 +0x27")),
        case!("go_index", Some("panic"), Some("runtime error: index out of range [5] with length 3"), Some("\t/app/go_index/main.go:3 +0x1d")),
        case!("go_nil_map", Some("panic"), Some("assignment to entry in nil map"), Some("\t/app/go_nil_map/main.go:2 +0x2e")),
        case!("go_error_value", Some("panic"), Some("open /etc/app.conf: permission denied"), Some("\t/app/go_error_value/main.go:3 +0x5e")),
        case!("go_repanic", Some("panic"), Some("cleanup failed"), Some("\t/app/go_repanic/main.go:4 +0x49")),
        case!("go_nil_pointer", Some("panic"), Some("runtime error: invalid memory address or nil pointer dereference"), Some("[signal SIGSEGV: segmentation violation code=0x1 addr=0x0 pc=0x457c76]")),
        case!("go_goroutine", Some("panic"), Some("worker 7: queue closed"), Some("goroutine 18 [running]:")),
        case!("go_deadlock", Some("fatal error"), Some("all goroutines are asleep - deadlock!"), Some("goroutine 1 [chan receive]:")),
        case!("go_log_fatal", None, Some("listen tcp :8080: bind: address already in use"), None),
        case!("java_caused_by", Some("java.lang.IllegalStateException"), Some("config failed"), Some("Caused by: java.lang.IllegalArgumentException: port must be a number")),
        case!("java_npe", Some("java.lang.NullPointerException"), Some("Cannot invoke \"String.length()\" because \"<local1>\" is null"), Some("\tat Main.main(Main.java:2)")),
        case!("java_no_message", Some("java.lang.RuntimeException"), None, Some("\tat Main.main(Main.java:2)")),
        case!("java_thread", Some("java.lang.UnsupportedOperationException"), Some("worker died"), Some("\tat java.base/java.lang.Thread.run(Thread.java:840)")),
        case!("java_more", Some("Main$StartupException"), Some("startup failed"), Some("\t... 3 more")),
        case!("java_print_stack_trace", Some("java.lang.NumberFormatException"), Some("For input string: \"x\""), Some("\tat Main.main(Main.java:3)")),
        case!("java_deep", Some("java.lang.IllegalStateException"), Some("depth reached"), Some("\tat Main.main(Main.java:3)")),
        case!("ruby_argument", Some("ArgumentError"), Some("port out of range"), Some("\tfrom argument.rb:4:in `<main>'")),
        case!("ruby_cause", Some("IOError"), Some("could not read settings"), Some("cause.rb:2:in `Integer': invalid value for Integer(): \"abc\" (ArgumentError)")),
        case!("ruby_cause_chain", Some("ArgumentError"), Some("startup failed"), Some("(Errno::ENOENT)")),
        case!("ruby_plain", Some("RuntimeError"), Some("plain failure"), Some("plain.rb:1:in `<main>'")),
        case!("ruby_zero", Some("ZeroDivisionError"), Some("divided by 0"), Some("\tfrom zero.rb:2:in `<main>'")),
        case!("ruby_custom_class", Some("Billing::PaymentError"), Some("card declined"), Some("\tfrom custom_class.rb:5:in `<main>'")),
        case!("ruby_stack_overflow", Some("SystemStackError"), Some("stack level too deep"), Some("\tfrom stack_overflow.rb:2:in `<main>'")),
        case!("ruby_multiline", Some("ArgumentError"), Some("invalid config"), Some("\tfrom multiline.rb:2:in `<main>'")),
        case!("ruby_deep", Some("IndexError"), Some("depth reached"), Some("\tfrom deep.rb:2:in `<main>'")),
        case!("plain_last_line", None, Some("fatal: cannot open /etc/app.conf"), None),
    ];

    fn fixture(file: &str) -> &'static [u8] {
        CASES
            .iter()
            .find(|c| c.file == file)
            .expect("a fixture")
            .bytes
    }

    /// What a case must give: (type, message) and the stack trace's check.
    fn check(case: &Case, r: &Recognised) -> Result<(), String> {
        let got = (r.error_type.as_deref(), r.error_message.as_deref());
        if got != (case.error_type, case.message) {
            return Err(format!("got {got:?}"));
        }
        match (case.frame, r.stack_trace.as_deref()) {
            (None, None) => Ok(()),
            // The report as printed: whole lines of the tail, holding the frame.
            (Some(frame), Some(stack))
                if stack.lines().any(|l| l.contains(frame))
                    && clean(case.bytes).contains(stack) =>
            {
                Ok(())
            }
            (_, stack) => Err(format!("stack trace {stack:?}")),
        }
    }

    fn check_all(variant: &str, change: impl Fn(&Case) -> Option<Vec<u8>>) {
        let failures: Vec<String> = CASES
            .iter()
            .filter_map(|case| {
                let bytes = change(case)?;
                let r = recognise(&bytes);
                check(case, &r)
                    .err()
                    .map(|e| format!("{variant} {}: {e}", case.file))
            })
            .collect();
        assert!(failures.is_empty(), "{}", failures.join("\n"));
    }

    #[test]
    fn every_fixture_is_recognised_with_its_exact_type_message_and_frames() {
        check_all("as printed", |case| Some(case.bytes.to_vec()));
    }

    #[test]
    fn colours_crlf_and_lines_before_change_nothing() {
        check_all("with ANSI colours", |case| {
            let mut out = Vec::new();
            for line in case.bytes.split(|&b| b == b'\n') {
                out.extend_from_slice(b"\x1b[1;31m");
                out.extend_from_slice(line);
                out.extend_from_slice(b"\x1b[0m\x1b]8;;http://x\x07\n");
            }
            Some(out)
        });
        check_all("with CRLF", |case| {
            Some(
                String::from_utf8_lossy(case.bytes)
                    .replace('\n', "\r\n")
                    .into_bytes(),
            )
        });
        check_all("after other output", |case| {
            let mut out = b"starting server on :8080\nINFO: ready\n\n".to_vec();
            out.extend_from_slice(case.bytes);
            Some(out)
        });
    }

    #[test]
    fn the_last_report_wins_even_with_output_after_it() {
        // Rust's `Error: …` counts only as the very last thing printed, and a tail without a
        // report ends with its message: both change when output follows.
        check_all("with trailing output", |case| {
            if case.frame.is_none() || case.file.starts_with("rust_main_err") {
                return None;
            }
            let mut out = case.bytes.to_vec();
            out.extend_from_slice(b"\nshutting down\nbye\n");
            Some(out)
        });
        let mut mixed = fixture("go_panic").to_vec();
        mixed.extend_from_slice(fixture("java_more"));
        mixed.extend_from_slice(fixture("py_zero"));
        mixed.extend_from_slice(b"stdout noise\n");
        let r = recognise(&mixed);
        assert_eq!(r.error_type.as_deref(), Some("ZeroDivisionError"));
        let mut mixed = fixture("py_zero").to_vec();
        mixed.extend_from_slice(fixture("ruby_cause"));
        let r = recognise(&mixed);
        assert_eq!(r.error_type.as_deref(), Some("IOError"));
    }

    #[test]
    fn stack_traces_keep_causes_and_backtraces_but_not_earlier_tracebacks() {
        let stack = |file| recognise(fixture(file)).stack_trace.unwrap();
        let java = stack("java_caused_by");
        assert!(
            java.starts_with("Exception in thread \"main\"") && java.ends_with("Main.java:132)"),
            "{java}"
        );
        let node = stack("node_cause");
        assert!(
            node.starts_with("/app/cause.js:1") && node.ends_with('}'),
            "{node}"
        );
        let rust = stack("rust_multiline");
        assert!(
            rust.contains("  port: not a number") && rust.ends_with("verbose backtrace."),
            "{rust}"
        );
        let py = stack("py_chain_during");
        assert!(
            py.starts_with("Traceback") && !py.contains("line 2"),
            "{py}"
        );
        let py = stack("py_trailing_noise");
        assert!(py.ends_with("KeyError: 'db_url'"), "{py}");
        let ruby = stack("ruby_stack_overflow");
        assert!(
            ruby.contains(" levels...") && ruby.ends_with("`<main>'"),
            "{ruby}"
        );
        let go = stack("go_repanic");
        assert!(go.starts_with("panic: first failure [recovered]"), "{go}");
    }

    /// The last `n` lines, as the caller's tail keeps them.
    fn last_lines(bytes: &[u8], n: usize) -> Vec<u8> {
        let text = String::from_utf8_lossy(bytes);
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(n)..]
            .join("\n")
            .into_bytes()
    }

    #[test]
    fn a_report_cut_by_the_tail_keeps_what_is_certain() {
        // Python prints the exception last, so it survives the cut.
        let r = recognise(&last_lines(fixture("py_deep"), 100));
        assert_eq!(r.error_type.as_deref(), Some("LookupError"));
        assert!(!r.stack_trace.unwrap().starts_with("Traceback"));
        // JVM and Ruby print it first: the frames are kept, the error is unknown.
        for file in ["java_deep", "ruby_deep"] {
            let r = recognise(&last_lines(fixture(file), 100));
            assert_eq!((r.error_type, r.error_message), (None, None), "{file}");
            assert_eq!(
                r.stack_trace.map(|s| s.lines().count()),
                Some(100),
                "{file}"
            );
        }
    }

    #[test]
    fn empty_and_blank_tails_find_nothing() {
        assert_eq!(recognise(b""), Recognised::default());
        assert_eq!(recognise(b"\n  \n\t\n\r\n"), Recognised::default());
        assert_eq!(recognise(b"\x1b[0m\n"), Recognised::default());
    }

    #[test]
    fn garbage_never_panics() {
        // A 1 MiB line is cut, not matched in full.
        let mut huge = vec![b'x'; 1 << 20];
        huge.extend_from_slice(b"\nTraceback (most recent call last):\n");
        let r = recognise(&huge);
        assert_eq!(r.error_type, None);
        let huge = recognise(&vec![b'y'; 1 << 20]).error_message.unwrap();
        assert_eq!(huge.len(), MAX_LINE);
        // Invalid UTF-8 is replaced.
        let r = recognise(b"thread 'main' panicked at a.rs:1:1:\nbad \xff\xfe byte\n");
        assert_eq!(
            r.error_message.as_deref(),
            Some("bad \u{fffd}\u{fffd} byte")
        );
        recognise(&[0xff, 0xfe, b'\n', 0xc3, b'\n', 0x1b, b'[', 0x1b, b']', 0x1b]);
        recognise("é".repeat(5000).as_bytes());
        // Each anchor repeated over 1 MiB: no panic, and no quadratic time.
        for line in [
            "    at f (x.js:1:1)\n",
            "\tat A.b(A.java:1)\n",
            "\tfrom x.rb:1:in `f'\n",
            "x.rb:1:in `f': m (E)\n",
            "  File \"x.py\", line 1\n",
            "Error: x\n",
            "panic: x\n",
            "thread 'main' panicked at x.rs:1:1:\n",
            "^\n",
            "x.js:1\n",
            "  + Exception Group Traceback (most recent call last):\n",
        ] {
            recognise(line.repeat((1 << 20) / line.len()).as_bytes());
        }
        // Every fixture cut anywhere.
        for case in CASES {
            for cut in (0..case.bytes.len()).step_by(7) {
                recognise(&case.bytes[..cut]);
                recognise(&case.bytes[cut..]);
            }
        }
        // Random bytes: half from the characters the finders look for, half anything.
        let alphabet = b"Traceback (most recent call last):\n  File|+ at\tpanic: thread ' panicked at Error: in `': (X)\x1b[m\xff^~0:";
        let mut seed = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        for round in 0..6000 {
            let len = (next() % 400) as usize;
            let bytes: Vec<u8> = (0..len)
                .map(|_| match round % 2 {
                    0 => alphabet[(next() % alphabet.len() as u64) as usize],
                    _ => next() as u8,
                })
                .collect();
            recognise(&bytes);
        }
    }
}

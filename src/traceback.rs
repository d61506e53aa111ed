//! Recognises the last traceback or panic in a crashed program's stderr tail: Python, Node.js,
//! Rust, Go, Java/JVM and Ruby (SPEC §6).
//!
//! Pure: no IO, no clock, and it never panics, whatever the bytes (invalid UTF-8 is replaced,
//! ANSI escapes are stripped, lines are capped). Each runtime has one small function that finds
//! its last report and where that report starts; the report that starts last wins. The error
//! reported is the one that ended the program: Java `Caused by:`, Node `[cause]` and Ruby cause
//! blocks are skipped; for Python chains the last traceback printed is the final exception.
//! Messages are the first line of the runtime's message. With no report, the last non-empty line
//! is the message (Node's and Go's trailer lines and Go's log timestamps are dropped first) and
//! the type is `None`.

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

/// Recognises the last traceback or panic in `tail` (raw bytes of the last stderr lines).
pub fn recognise(tail: &[u8]) -> Recognised {
    let text = clean(tail);
    let lines: Vec<&str> = text.lines().map(|l| cap(l, MAX_LINE)).collect();
    let finders: [Finder; 6] = [python, node, rust, go, java, ruby];
    let best = finders
        .iter()
        .filter_map(|find| find(&lines))
        .max_by_key(|f| f.start);
    match best {
        Some(f) => Recognised {
            error_type: f.error_type,
            error_message: f.message.filter(|m| !m.is_empty()),
            stack_trace: Some(lines[f.start..=f.end.min(lines.len() - 1)].join("\n")),
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

/// Python: the last `Traceback (most recent call last):` (or exception group) and its exception
/// line; a `SyntaxError` report without a traceback header too.
fn python(lines: &[&str]) -> Option<Found> {
    let header = lines.iter().rposition(|l| {
        let l = l.trim_end();
        l == "Traceback (most recent call last):"
            || l.trim_start() == "+ Exception Group Traceback (most recent call last):"
    });
    let Some(start) = header else {
        return python_syntax_error(lines);
    };
    if lines[start].starts_with("Traceback") {
        // Frames are indented; the first line that is not is the exception.
        let at = start
            + 1
            + lines[start + 1..]
                .iter()
                .position(|l| !l.starts_with(' '))?;
        let (error_type, message) = type_and_message(lines[at])?;
        return Some(Found {
            start,
            end: at,
            error_type: Some(error_type),
            message,
        });
    }
    // An exception group: `  + Exception Group…`, then `  | ` lines; the group's own exception is
    // the first of them that is not a frame, and the box closes with the last `+---` line.
    let indent = lines[start].len() - lines[start].trim_start().len();
    let bar = format!("{}| ", " ".repeat(indent));
    let exception = lines[start + 1..]
        .iter()
        .take_while(|l| l.starts_with(&bar))
        .map(|l| &l[bar.len()..])
        .find(|l| !l.starts_with(' '))?;
    let (error_type, message) = type_and_message(exception)?;
    // The box: `| ` and `+-` lines at the group's indent, and nested boxes further in.
    let margin = " ".repeat(indent);
    let end = start
        + lines[start + 1..]
            .iter()
            .take_while(|l| {
                l.strip_prefix(margin.as_str())
                    .is_some_and(|r| r.starts_with(['|', '+']) || r.starts_with("  "))
            })
            .count();
    Some(Found {
        start,
        end,
        error_type: Some(error_type),
        message,
    })
}

/// `  File "x.py", line 1` … `SyntaxError: invalid syntax`, printed without a traceback header.
fn python_syntax_error(lines: &[&str]) -> Option<Found> {
    let at = lines.iter().rposition(|l| {
        ["SyntaxError", "IndentationError", "TabError"]
            .iter()
            .any(|t| l.starts_with(t) && l[t.len()..].starts_with(':'))
    })?;
    let start = lines[..at]
        .iter()
        .rposition(|l| l.starts_with("  File \""))?;
    if lines[start + 1..at].iter().any(|l| !l.starts_with(' ')) {
        return None;
    }
    let (error_type, message) = type_and_message(lines[at])?;
    Some(Found {
        start,
        end: at,
        error_type: Some(error_type),
        message,
    })
}

/// Node.js: `Name: message` (or `Name [CODE]: message`) at the start of a line, followed by
/// `    at` frames; the source excerpt above it and the `{ … [cause] … }` block below belong to it.
/// A thrown non-Error prints the value alone, then a `(Use \`node --trace-uncaught …\`` hint.
fn node(lines: &[&str]) -> Option<Found> {
    let header = (0..lines.len().saturating_sub(1))
        .rev()
        .find(|&i| lines[i + 1].starts_with("    at ") && js_header(lines[i]).is_some());
    let hint = lines
        .iter()
        .rposition(|l| l.starts_with("(Use `node --trace-uncaught"));
    match (header, hint) {
        (Some(i), hint) if hint.is_none_or(|h| h < i) => {
            let (error_type, message) = js_header(lines[i])?;
            let mut end = i + 1;
            while end + 1 < lines.len()
                && (lines[end + 1].starts_with(' ') || lines[end + 1] == "}")
            {
                end += 1;
            }
            Some(Found {
                start: source_excerpt_start(lines, i),
                end,
                error_type: Some(error_type),
                message,
            })
        }
        (_, Some(h)) if h >= 1 => Some(Found {
            start: source_excerpt_start(lines, h - 1),
            end: h,
            error_type: None,
            message: Some(lines[h - 1].trim().to_string()),
        }),
        _ => None,
    }
}

fn js_header(line: &str) -> Option<(String, Option<String>)> {
    if line.starts_with(' ') {
        return None;
    }
    // `Error [ERR_X]: message`: the code is not part of the type.
    let line = match (line.find(" ["), line.find("]: ")) {
        (Some(a), Some(b)) if a < b && is_type_name(&line[..a]) => {
            return Some((line[..a].to_string(), Some(line[b + 3..].to_string())));
        }
        _ => line,
    };
    type_and_message(line)
}

/// Node prints `file:line`, the source line, a `^` marker and a blank line before the error.
fn source_excerpt_start(lines: &[&str], header: usize) -> usize {
    let mut i = header;
    if i >= 1 && lines[i - 1].is_empty() {
        i -= 1;
    }
    let marker = |l: &str| {
        let t = l.trim();
        !t.is_empty() && t.chars().all(|c| c == '^' || c == '~')
    };
    if i >= 3 && marker(lines[i - 1]) && lines[i - 3].contains(':') {
        return i - 3;
    }
    header
}

/// Rust: `thread 'NAME' panicked at FILE:L:C:` then the message (Rust ≥ 1.73; the thread id in
/// parentheses is Rust ≥ 1.90), or `panicked at 'message', FILE` (older); `Error: …` when `main`
/// returned an `Err`.
fn rust(lines: &[&str]) -> Option<Found> {
    let panic = lines
        .iter()
        .rposition(|l| l.starts_with("thread '") && l.contains(" panicked at "));
    let main_err = lines
        .iter()
        .rposition(|l| l.starts_with("Error: "))
        .filter(|&i| {
            // Only an `Err` from main: nothing but its `Caused by:` section may follow.
            lines[i + 1..]
                .iter()
                .all(|l| l.trim().is_empty() || l.starts_with(' ') || *l == "Caused by:")
        });
    if let (Some(e), p) = (main_err, panic) {
        if p.is_none_or(|p| p < e) {
            let end = lines.len()
                - 1
                - lines[e..]
                    .iter()
                    .rev()
                    .take_while(|l| l.trim().is_empty())
                    .count();
            return Some(Found {
                start: e,
                end: end.max(e),
                error_type: Some("Error".into()),
                message: Some(lines[e]["Error: ".len()..].to_string()),
            });
        }
    }
    let start = panic?;
    let after = &lines[start][lines[start].find(" panicked at ")? + " panicked at ".len()..];
    let message = if let Some(rest) = after.strip_prefix('\'') {
        // Old format: `panicked at 'message', src/main.rs:2:5`.
        rest.rfind("', ").map(|q| rest[..q].to_string())
    } else {
        lines.get(start + 1).map(|m| m.to_string())
    };
    let mut end = start;
    while end + 1 < lines.len() {
        let next = lines[end + 1];
        let part = (end == start && !after.starts_with('\''))
            || next.starts_with(' ')
            || next.starts_with("stack backtrace:")
            || next.starts_with("note: ");
        if !part || next.starts_with("thread '") {
            break;
        }
        end += 1;
    }
    Some(Found {
        start,
        end,
        error_type: Some("panic".into()),
        message,
    })
}

/// Go: `panic: message` (the last `\tpanic:` line of a re-panic is the one that ended it, and
/// ` [recovered]` is dropped), then the goroutine dump; `fatal error: message` likewise.
fn go(lines: &[&str]) -> Option<Found> {
    let start = lines
        .iter()
        .rposition(|l| l.starts_with("panic: ") || l.starts_with("fatal error: "))?;
    let (kind, first) = lines[start].split_once(": ")?;
    let last_nested = lines[start + 1..]
        .iter()
        .take_while(|l| l.starts_with("\tpanic: "))
        .last()
        .map(|l| &l["\tpanic: ".len()..]);
    let message = last_nested.unwrap_or(first);
    let message = message
        .strip_suffix(" [recovered]")
        .or_else(|| message.strip_suffix(" [recovered, repanicked]"))
        .unwrap_or(message);
    // The dump runs to the end; `go run` adds `exit status N`.
    let mut end = lines.len() - 1;
    while end > start && (lines[end].trim().is_empty() || lines[end].starts_with("exit status ")) {
        end -= 1;
    }
    Some(Found {
        start,
        end,
        error_type: Some(kind.to_string()),
        message: Some(message.to_string()),
    })
}

/// Java and other JVM languages: `Exception in thread "NAME" class: message`, then `\tat` frames,
/// `Caused by:` sections and `\t... N more`.
fn java(lines: &[&str]) -> Option<Found> {
    let start = lines
        .iter()
        .rposition(|l| l.starts_with("Exception in thread \""))?;
    let rest = &lines[start]["Exception in thread \"".len()..];
    let after_name = &rest[rest.find("\" ")? + 2..];
    let (error_type, message) = type_and_message(after_name)?;
    let mut end = start;
    while end + 1 < lines.len() {
        let next = lines[end + 1];
        if !(next.starts_with('\t') || next.starts_with("Caused by: ")) {
            break;
        }
        end += 1;
    }
    Some(Found {
        start,
        end,
        error_type: Some(error_type),
        message,
    })
}

/// Ruby: `FILE:LINE:in 'METHOD': message (Class)` then `\tfrom` lines. Causes follow as blocks of
/// the same shape: the first block of the last run of blocks is the error that was raised.
fn ruby(lines: &[&str]) -> Option<Found> {
    let last = lines.iter().rposition(|l| ruby_header(l).is_some())?;
    let block_end = |h: usize| {
        h + lines[h + 1..]
            .iter()
            .take_while(|l| l.starts_with("\tfrom "))
            .count()
    };
    let mut start = last;
    loop {
        let before = start.checked_sub(1).map(|i| lines[i]);
        let Some(prev) = before else { break };
        if !(prev.starts_with("\tfrom ") || ruby_header(prev).is_some()) {
            break;
        }
        let mut h = start - 1;
        while h > 0 && lines[h].starts_with("\tfrom ") {
            h -= 1;
        }
        if ruby_header(lines[h]).is_none() || block_end(h) != start - 1 {
            break;
        }
        start = h;
    }
    let (error_type, message) = ruby_header(lines[start])?;
    Some(Found {
        start,
        end: block_end(last),
        error_type: Some(error_type),
        message: Some(message),
    })
}

/// `file.rb:2:in 'method': message (Class)` → (Class, message); backquote or quote both.
fn ruby_header(line: &str) -> Option<(String, String)> {
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
    constant.then(|| (class.to_string(), rest[..open].to_string()))
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

    /// Every fixture from `tests/data/tracebacks/` (see its README for how each was produced)
    /// with the type and message it must be recognised as.
    /// (file, its bytes, expected type, expected message).
    type Fixture = (
        &'static str,
        &'static [u8],
        Option<&'static str>,
        Option<&'static str>,
    );

    const FIXTURES: &[Fixture] = &[
        ("py_zero", include_bytes!("../tests/data/tracebacks/py_zero.txt"), Some("ZeroDivisionError"), Some("division by zero")),
        ("py_chain_from", include_bytes!("../tests/data/tracebacks/py_chain_from.txt"), Some("ValueError"), Some("bad config: no port")),
        ("py_chain_during", include_bytes!("../tests/data/tracebacks/py_chain_during.txt"), Some("RuntimeError"), Some("cleanup failed")),
        ("py_module_error", include_bytes!("../tests/data/tracebacks/py_module_error.txt"), Some("pkg.errors.DiskFull"), Some("no space left on /var")),
        ("py_multiline", include_bytes!("../tests/data/tracebacks/py_multiline.txt"), Some("ValueError"), Some("first line")),
        ("py_no_message", include_bytes!("../tests/data/tracebacks/py_no_message.txt"), Some("RuntimeError"), None),
        ("py_carets", include_bytes!("../tests/data/tracebacks/py_carets.txt"), Some("KeyError"), Some("'c'")),
        ("py_exception_group", include_bytes!("../tests/data/tracebacks/py_exception_group.txt"), Some("ExceptionGroup"), Some("startup failed (2 sub-exceptions)")),
        ("py_syntax_error", include_bytes!("../tests/data/tracebacks/py_syntax_error.txt"), Some("SyntaxError"), Some("invalid syntax")),
        ("py_two_tracebacks", include_bytes!("../tests/data/tracebacks/py_two_tracebacks.txt"), Some("KeyError"), Some("'missing'")),
        ("node_type_error", include_bytes!("../tests/data/tracebacks/node_type_error.txt"), Some("TypeError"), Some("input must be a string")),
        ("node_unhandled_rejection", include_bytes!("../tests/data/tracebacks/node_unhandled_rejection.txt"), Some("Error"), Some("connection refused")),
        ("node_cause", include_bytes!("../tests/data/tracebacks/node_cause.txt"), Some("Error"), Some("config unreadable")),
        ("node_throw_string", include_bytes!("../tests/data/tracebacks/node_throw_string.txt"), None, Some("boom")),
        ("node_reject_string", include_bytes!("../tests/data/tracebacks/node_reject_string.txt"), Some("UnhandledPromiseRejection"), Some("This error originated either by throwing inside of an async function without a catch block, or by rejecting a promise which was not handled with .catch(). The promise rejected with the reason \"boom\".")),
        ("node_custom_error", include_bytes!("../tests/data/tracebacks/node_custom_error.txt"), Some("ValidationError"), Some("email is required")),
        ("rust_panic", include_bytes!("../tests/data/tracebacks/rust_panic.txt"), Some("panic"), Some("no workers configured")),
        ("rust_unwrap", include_bytes!("../tests/data/tracebacks/rust_unwrap.txt"), Some("panic"), Some("called `Result::unwrap()` on an `Err` value: ParseIntError { kind: InvalidDigit }")),
        ("rust_index", include_bytes!("../tests/data/tracebacks/rust_index.txt"), Some("panic"), Some("index out of bounds: the len is 3 but the index is 5")),
        ("rust_backtrace", include_bytes!("../tests/data/tracebacks/rust_backtrace.txt"), Some("panic"), Some("token missing")),
        ("rust_main_err", include_bytes!("../tests/data/tracebacks/rust_main_err.txt"), Some("Error"), Some("ParseIntError { kind: InvalidDigit }")),
        ("go_panic", include_bytes!("../tests/data/tracebacks/go_panic.txt"), Some("panic"), Some("boom")),
        ("go_index", include_bytes!("../tests/data/tracebacks/go_index.txt"), Some("panic"), Some("runtime error: index out of range [5] with length 3")),
        ("go_nil_map", include_bytes!("../tests/data/tracebacks/go_nil_map.txt"), Some("panic"), Some("assignment to entry in nil map")),
        ("go_error_value", include_bytes!("../tests/data/tracebacks/go_error_value.txt"), Some("panic"), Some("open /etc/app.conf: permission denied")),
        ("go_repanic", include_bytes!("../tests/data/tracebacks/go_repanic.txt"), Some("panic"), Some("cleanup failed")),
        ("go_nil_pointer", include_bytes!("../tests/data/tracebacks/go_nil_pointer.txt"), Some("panic"), Some("runtime error: invalid memory address or nil pointer dereference")),
        ("java_caused_by", include_bytes!("../tests/data/tracebacks/java_caused_by.txt"), Some("java.lang.IllegalStateException"), Some("config failed")),
        ("java_npe", include_bytes!("../tests/data/tracebacks/java_npe.txt"), Some("java.lang.NullPointerException"), Some("Cannot invoke \"String.length()\" because \"<local1>\" is null")),
        ("java_no_message", include_bytes!("../tests/data/tracebacks/java_no_message.txt"), Some("java.lang.RuntimeException"), None),
        ("java_thread", include_bytes!("../tests/data/tracebacks/java_thread.txt"), Some("java.lang.UnsupportedOperationException"), Some("worker died")),
        ("ruby_argument", include_bytes!("../tests/data/tracebacks/ruby_argument.txt"), Some("ArgumentError"), Some("port out of range")),
        ("ruby_cause", include_bytes!("../tests/data/tracebacks/ruby_cause.txt"), Some("IOError"), Some("could not read settings")),
        ("ruby_plain", include_bytes!("../tests/data/tracebacks/ruby_plain.txt"), Some("RuntimeError"), Some("plain failure")),
        ("ruby_zero", include_bytes!("../tests/data/tracebacks/ruby_zero.txt"), Some("ZeroDivisionError"), Some("divided by 0")),
        ("ansi_python", include_bytes!("../tests/data/tracebacks/ansi_python.txt"), Some("ValueError"), Some("coloured")),
    ];

    /// Fixtures with no traceback: the last non-empty line is the message.
    const PLAIN: &[(&str, &[u8], &str)] = &[
        (
            "go_log_fatal",
            include_bytes!("../tests/data/tracebacks/go_log_fatal.txt"),
            "listen tcp :8080: bind: address already in use",
        ),
        (
            "node_exit",
            include_bytes!("../tests/data/tracebacks/node_exit.txt"),
            "fatal: database unreachable",
        ),
        (
            "plain_last_line",
            include_bytes!("../tests/data/tracebacks/plain_last_line.txt"),
            "fatal: cannot open /etc/app.conf",
        ),
    ];

    #[test]
    fn every_fixture_is_recognised_with_its_exact_type_and_message() {
        let mut failures = Vec::new();
        for (name, bytes, error_type, message) in FIXTURES {
            let r = recognise(bytes);
            let expected = (error_type.map(String::from), message.map(String::from));
            if (r.error_type.clone(), r.error_message.clone()) != expected {
                failures.push(format!(
                    "{name}: got {:?} / {:?}",
                    r.error_type, r.error_message
                ));
            }
            let stack = r.stack_trace.unwrap_or_default();
            if stack.is_empty() || stack.contains('\u{1b}') {
                failures.push(format!("{name}: stack trace {stack:?}"));
            }
        }
        for (name, bytes, message) in PLAIN {
            let r = recognise(bytes);
            if r != (Recognised {
                error_type: None,
                error_message: Some(message.to_string()),
                stack_trace: None,
            }) {
                failures.push(format!("{name}: got {r:?}"));
            }
        }
        assert!(failures.is_empty(), "{}", failures.join("\n"));
    }

    fn fixture(name: &str) -> &'static [u8] {
        FIXTURES.iter().find(|f| f.0 == name).expect("a fixture").1
    }

    #[test]
    fn stack_traces_hold_the_frames_and_not_the_causes_noise() {
        let java = recognise(fixture("java_caused_by")).stack_trace.unwrap();
        assert!(
            java.starts_with("Exception in thread \"main\"")
                && java.contains("Caused by: ")
                && java.ends_with("Main.java:132)"),
            "{java}"
        );
        let node = recognise(fixture("node_cause")).stack_trace.unwrap();
        assert!(
            node.starts_with("/app/cause.js:1")
                && node.contains("[cause]: SyntaxError")
                && node.ends_with('}'),
            "{node}"
        );
        let rust = recognise(fixture("rust_backtrace")).stack_trace.unwrap();
        assert!(
            rust.contains("stack backtrace:") && rust.ends_with("verbose backtrace."),
            "{rust}"
        );
        let py = recognise(fixture("py_chain_during")).stack_trace.unwrap();
        assert!(
            py.starts_with("Traceback") && py.contains("line 4") && !py.contains("line 2"),
            "{py}"
        );
        let ruby = recognise(fixture("ruby_cause")).stack_trace.unwrap();
        assert!(
            ruby.starts_with("cause.rb:4") && ruby.contains("(ArgumentError)"),
            "{ruby}"
        );
    }

    #[test]
    fn the_last_report_wins_across_runtimes_and_trailing_noise() {
        let mut mixed = Vec::new();
        mixed.extend_from_slice(fixture("go_panic"));
        mixed.extend_from_slice(fixture("py_zero"));
        mixed.extend_from_slice(b"stdout noise\nmore noise\n");
        let r = recognise(&mixed);
        assert_eq!(r.error_type.as_deref(), Some("ZeroDivisionError"));
    }

    #[test]
    fn empty_and_blank_tails_find_nothing() {
        assert_eq!(recognise(b""), Recognised::default());
        assert_eq!(recognise(b"\n  \n\t\n"), Recognised::default());
    }

    #[test]
    fn garbage_never_panics() {
        let mut huge = vec![b'x'; 1 << 20];
        huge.extend_from_slice(b"\nTraceback (most recent call last):\n");
        let r = recognise(&huge);
        assert!(r.error_type.is_none() && r.error_message.is_some());
        recognise(&[0xff, 0xfe, b'\n', 0xc3, b'\n', 0x1b, b'[', 0x1b, b']', 0x1b]);
        recognise("é".repeat(5000).as_bytes());
        // Truncated reports of every kind.
        for (_, bytes, _, _) in FIXTURES {
            for cut in (0..bytes.len()).step_by(7) {
                recognise(&bytes[..cut]);
                recognise(&bytes[cut..]);
            }
        }
        // Random bytes, biased toward the characters the finders look for.
        let alphabet = b"Traceback (most recent call last):\n  File|+ at\tpanic: thread ' panicked at Error: in `': (X)\x1b[m\xff";
        let mut seed = 0x9e37_79b9_7f4a_7c15u64;
        for _ in 0..3000 {
            let len = (seed % 300) as usize;
            let bytes: Vec<u8> = (0..len)
                .map(|_| {
                    seed ^= seed << 13;
                    seed ^= seed >> 7;
                    seed ^= seed << 17;
                    alphabet[(seed % alphabet.len() as u64) as usize]
                })
                .collect();
            recognise(&bytes);
        }
    }
}

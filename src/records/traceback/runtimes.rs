//! PHP, .NET and Elixir reports. (Deno prints JavaScript errors as Node does, behind
//! `error: Uncaught `: `js_header` reads it.)

use super::{is_type_name, run_of, Found};

/// PHP's error log line (php-cli logs to stderr): `PHP Fatal error:  Uncaught Class: message in
/// /app/x.php:3`, then `Stack trace:`, `#0 …` frames, `Next Class: message in …` for each
/// exception that wrapped the previous one (the last `Next` is the one thrown), and
/// `  thrown in FILE on line N`. Without `Uncaught` (`Allowed memory size … exhausted`, a
/// parse error) the type is what PHP prints: `PHP Fatal error`, `PHP Parse error`.
pub(super) fn php(lines: &[&str]) -> Option<Found> {
    let start = lines.iter().rposition(|l| php_level(l).is_some())?;
    let (level, text) = php_level(lines[start])?;
    let Some(uncaught) = text.strip_prefix("Uncaught ") else {
        return Some(Found {
            start,
            end: start,
            error_type: Some(level.to_string()),
            message: Some(strip_php_location(text).to_string()),
        });
    };
    let body = |l: &str| {
        l.starts_with('#')
            || l == "Stack trace:"
            || l.is_empty()
            || l.starts_with("Next ")
            || l.starts_with("  thrown in ")
    };
    let mut end = start + run_of(lines, start + 1, body);
    while end > start && lines[end].is_empty() {
        end -= 1;
    }
    let thrown = lines[start + 1..=end]
        .iter()
        .rev()
        .find_map(|l| l.strip_prefix("Next "))
        .unwrap_or(uncaught);
    let (class, message) = match thrown.split_once(": ") {
        Some((class, message)) => (class, Some(strip_php_location(message).to_string())),
        None => (strip_php_location(thrown), None),
    };
    let class_ok = class
        .split('\\')
        .all(|part| is_type_name(part) && !part.contains('.'));
    class_ok.then(|| Found {
        start,
        end,
        error_type: Some(class.to_string()),
        message: message.filter(|m| !m.is_empty()),
    })
}

/// `PHP Fatal error:  text` → (`PHP Fatal error`, `text`).
fn php_level(line: &str) -> Option<(&str, &str)> {
    let rest = line.strip_prefix("PHP ")?;
    let (kind, text) = rest.split_once(":  ")?;
    let known = ["Fatal error", "Parse error"].contains(&kind);
    known.then(|| (&line[..4 + kind.len()], text.trim_end()))
}

/// `message in /app/x.php:3` or `message in /app/x.php on line 3` → `message`.
fn strip_php_location(text: &str) -> &str {
    let Some(at) = text.rfind(" in ") else {
        return text;
    };
    let place = &text[at + 4..];
    let numbered = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    let is_location = match place.rsplit_once(" on line ") {
        Some((_, n)) => numbered(n),
        None => place.rsplit_once(':').is_some_and(|(_, n)| numbered(n)),
    };
    if is_location {
        &text[..at]
    } else {
        text
    }
}

/// .NET: `Unhandled exception. System.InvalidOperationException: message`, inner exceptions as
/// ` ---> Type: message` lines, `   at` frames, `   --- End of inner exception stack trace ---`.
pub(super) fn dotnet(lines: &[&str]) -> Option<Found> {
    let start = lines
        .iter()
        .rposition(|l| l.starts_with("Unhandled exception. "))?;
    let thrown = &lines[start]["Unhandled exception. ".len()..];
    let (class, message) = match thrown.split_once(": ") {
        Some((class, message)) => (class, Some(message.to_string())),
        None => (thrown.trim_end(), None),
    };
    // A nested class is `Outer+Inner` (`Type.FullName`).
    if !is_type_name(&class.replace('+', ".")) {
        return None;
    }
    let body =
        |l: &str| l.starts_with(' ') || l.starts_with("File name: ") || l.starts_with("--- End of");
    let end = start + run_of(lines, start + 1, body);
    Some(Found {
        start,
        end,
        error_type: Some(class.to_string()),
        message,
    })
}

/// Elixir: `** (RuntimeError) message`, then `    (app 0.1.0) lib/app.ex:3: App.run/0` frames.
pub(super) fn elixir(lines: &[&str]) -> Option<Found> {
    let start = lines.iter().rposition(|l| l.starts_with("** ("))?;
    let rest = &lines[start]["** (".len()..];
    let close = rest.find(')')?;
    let class = &rest[..close];
    if class.is_empty() || class.contains(' ') && !class.starts_with("EXIT from ") {
        return None;
    }
    let message = rest[close + 1..].trim();
    let end = start + run_of(lines, start + 1, |l| l.starts_with("    "));
    Some(Found {
        start,
        end,
        error_type: Some(class.to_string()),
        message: (!message.is_empty()).then(|| message.to_string()),
    })
}

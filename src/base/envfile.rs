//! `--env-file`: the syntax of SPEC §13, parsed without IO.
//!
//! A file is lines of `KEY=VALUE`. Blank lines and lines whose first non-blank character is `#`
//! are skipped; an `export ` prefix is allowed (so the file can also be sourced by a shell). A
//! value in single quotes is taken literally; in double quotes `\n`, `\"` and `\\` are unescaped
//! (any other backslash stays as it is); an unquoted value is taken as written, without the
//! blanks around it. Nothing is expanded: `$HOME` stays `$HOME`, as in systemd's
//! `EnvironmentFile=`. A quoted value may be followed by blanks and a `# comment`, nothing else.
//! Keys are `[A-Za-z_][A-Za-z0-9_]*`. Later lines win over earlier ones (`merge`).
//!
//! `parse` and `merge` are pure (and fuzzed: `fuzz/fuzz_targets/parsers.rs`). `read_all` is the
//! one place the files are read, for the command line at start and for the loop before every
//! later start; what a failure means (a usage error at start, a notice later) is the caller's.

use std::ffi::OsString;
use std::os::unix::ffi::OsStringExt;

/// What is wrong with an env file, and on which line (1-based).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnvError {
    pub line: usize,
    pub what: String,
}

impl std::fmt::Display for EnvError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "line {}: {}", self.line, self.what)
    }
}

/// The longest env file restartd reads: an environment is far smaller; a bigger file is a
/// mistake (a log given by error), not an environment.
pub const MAX_BYTES: u64 = 1 << 20;

/// Parses a whole file: its variables in file order (a key may repeat; the last one wins when
/// they are merged), or the first error.
pub fn parse(text: &[u8]) -> Result<Vec<(OsString, OsString)>, EnvError> {
    let mut vars = Vec::new();
    for (i, raw) in text.split(|&b| b == b'\n').enumerate() {
        let line = raw.strip_suffix(b"\r").unwrap_or(raw);
        if let Some(var) = parse_line(line).map_err(|what| EnvError { line: i + 1, what })? {
            vars.push(var);
        }
    }
    Ok(vars)
}

/// Puts `vars` over `into`: a key already there takes the new value in its old place.
pub fn merge(into: &mut Vec<(OsString, OsString)>, vars: Vec<(OsString, OsString)>) {
    for (k, v) in vars {
        match into.iter_mut().find(|(key, _)| *key == k) {
            Some(slot) => slot.1 = v,
            None => into.push((k, v)),
        }
    }
}

/// Reads and parses `paths` in order, later files and lines winning. `Err` names the file, and
/// the line for a syntax error.
pub fn read_all(paths: &[std::path::PathBuf]) -> Result<Vec<(OsString, OsString)>, String> {
    use std::io::Read;
    let mut env = Vec::new();
    for path in paths {
        let mut text = Vec::new();
        std::fs::File::open(path)
            .and_then(|f| f.take(MAX_BYTES + 1).read_to_end(&mut text))
            .map_err(|e| format!("unable to read {}: {e}", path.display()))?;
        if text.len() as u64 > MAX_BYTES {
            return Err(format!(
                "{} is over {} bytes: not an environment file",
                path.display(),
                MAX_BYTES
            ));
        }
        let vars = parse(&text).map_err(|e| format!("{}: {e}", path.display()))?;
        merge(&mut env, vars);
    }
    Ok(env)
}

fn is_blank(b: u8) -> bool {
    b == b' ' || b == b'\t'
}

fn parse_line(line: &[u8]) -> Result<Option<(OsString, OsString)>, String> {
    let line = trim_start(line);
    if line.is_empty() || line[0] == b'#' {
        return Ok(None);
    }
    let line = match line.strip_prefix(b"export") {
        Some(rest) if rest.first().is_some_and(|&b| is_blank(b)) => trim_start(rest),
        _ => line,
    };
    let Some(eq) = line.iter().position(|&b| b == b'=') else {
        return Err(format!(
            "expected KEY=VALUE, found {}",
            shown(line).unwrap_or_else(|| "a line without '='".into())
        ));
    };
    let key = trim_end(&line[..eq]);
    check_key(key)?;
    let value = trim_start(&line[eq + 1..]);
    let value =
        match value.first() {
            Some(b'\'') => {
                let end = value[1..]
                    .iter()
                    .position(|&b| b == b'\'')
                    .ok_or("a single quote is not closed (a value cannot span lines)")?;
                after_quote(&value[end + 2..])?;
                value[1..end + 1].to_vec()
            }
            Some(b'"') => {
                let mut out = Vec::new();
                let mut i = 1;
                loop {
                    match value.get(i) {
                        None => return Err(
                            "a double quote is not closed (a value cannot span lines; write \\n)"
                                .into(),
                        ),
                        Some(b'"') => break,
                        Some(b'\\') => {
                            match value.get(i + 1) {
                                Some(b'n') => out.push(b'\n'),
                                Some(b'"') => out.push(b'"'),
                                Some(b'\\') => out.push(b'\\'),
                                // Any other backslash is kept as written.
                                _ => {
                                    out.push(b'\\');
                                    i += 1;
                                    continue;
                                }
                            }
                            i += 2;
                        }
                        Some(&b) => {
                            out.push(b);
                            i += 1;
                        }
                    }
                }
                after_quote(&value[i + 1..])?;
                out
            }
            _ => trim_end(value).to_vec(),
        };
    if value.contains(&0) {
        return Err("the value holds a NUL byte".into());
    }
    Ok(Some((
        OsString::from_vec(key.to_vec()),
        OsString::from_vec(value),
    )))
}

/// After a closing quote: only blanks and a comment.
fn after_quote(rest: &[u8]) -> Result<(), String> {
    let rest = trim_start(rest);
    if rest.is_empty() || rest[0] == b'#' {
        Ok(())
    } else {
        Err(format!(
            "unexpected text after the closing quote: {}",
            shown(rest).unwrap_or_default()
        ))
    }
}

fn check_key(key: &[u8]) -> Result<(), String> {
    let ok = key
        .first()
        .is_some_and(|&b| b.is_ascii_alphabetic() || b == b'_')
        && key.iter().all(|&b| b.is_ascii_alphanumeric() || b == b'_');
    if ok {
        Ok(())
    } else if key.is_empty() {
        Err("the line has no KEY before '='".into())
    } else {
        Err(format!(
            "{} is not a variable name: use letters, digits and '_', not starting with a digit",
            shown(key).unwrap_or_else(|| "the key".into())
        ))
    }
}

/// Up to 40 characters of `bytes`, quoted, for a message.
fn shown(bytes: &[u8]) -> Option<String> {
    if bytes.is_empty() {
        return None;
    }
    let text = String::from_utf8_lossy(bytes);
    let mut cut: String = text.chars().take(40).collect();
    if cut.len() < text.len() {
        cut.push('…');
    }
    Some(format!("{cut:?}"))
}

fn trim_start(mut s: &[u8]) -> &[u8] {
    while s.first().is_some_and(|&b| is_blank(b)) {
        s = &s[1..];
    }
    s
}

fn trim_end(mut s: &[u8]) -> &[u8] {
    while s.last().is_some_and(|&b| is_blank(b)) {
        s = &s[..s.len() - 1];
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(text: &str) -> Vec<(String, String)> {
        parse(text.as_bytes())
            .unwrap()
            .into_iter()
            .map(|(k, v)| (k.into_string().unwrap(), v.into_string().unwrap()))
            .collect()
    }

    fn err(text: &str) -> EnvError {
        parse(text.as_bytes()).unwrap_err()
    }

    fn one(k: &str, v: &str) -> Vec<(String, String)> {
        vec![(k.into(), v.into())]
    }

    #[test]
    fn the_forms_of_spec_13() {
        assert_eq!(vars("A=1"), one("A", "1"));
        assert_eq!(vars("export A=1\n"), one("A", "1"));
        assert_eq!(vars("export\tA=1\n"), one("A", "1"));
        assert_eq!(vars("  A = spaced value  \n"), one("A", "spaced value"));
        assert_eq!(vars("A="), one("A", ""));
        assert_eq!(vars("A=''"), one("A", ""));
        assert_eq!(vars("A='$HOME \\n \"x\"'"), one("A", "$HOME \\n \"x\""));
        assert_eq!(
            vars(r#"A="a\nb \"q\" c\\d \t $X""#),
            one("A", "a\nb \"q\" c\\d \\t $X")
        );
        assert_eq!(vars("A=$HOME/${X}"), one("A", "$HOME/${X}"));
        assert_eq!(vars("A=a=b=c"), one("A", "a=b=c"));
        assert_eq!(vars("A=x # not a comment"), one("A", "x # not a comment"));
        assert_eq!(vars("A='x' # a comment"), one("A", "x"));
        assert_eq!(vars("A=\"x\"   "), one("A", "x"));
        assert_eq!(
            vars("A=1\r\nB=2\r\n"),
            [one("A", "1"), one("B", "2")].concat()
        );
        // A key named like the prefix.
        assert_eq!(vars("export=1"), one("export", "1"));
        assert_eq!(vars("exported=1"), one("exported", "1"));
    }

    #[test]
    fn blank_lines_and_comments_are_skipped() {
        let text = "\n# comment\n   # indented comment\n\t\nA=1\n\n#B=2\n";
        assert_eq!(vars(text), one("A", "1"));
        assert_eq!(vars(""), vec![]);
    }

    #[test]
    fn later_lines_and_files_win_in_place() {
        let mut env = Vec::new();
        merge(&mut env, parse(b"A=1\nB=2\nA=3\n").unwrap());
        merge(&mut env, parse(b"B=4\nC=5\n").unwrap());
        let env: Vec<_> = env
            .into_iter()
            .map(|(k, v)| (k.into_string().unwrap(), v.into_string().unwrap()))
            .collect();
        assert_eq!(env, [one("A", "3"), one("B", "4"), one("C", "5")].concat());
    }

    #[test]
    fn errors_name_the_line_and_what_is_wrong() {
        let e = err("A=1\n\nnot a pair\n");
        assert_eq!(e.line, 3);
        assert_eq!(
            e.to_string(),
            "line 3: expected KEY=VALUE, found \"not a pair\""
        );
        assert_eq!(err("=1").what, "the line has no KEY before '='");
        assert!(err("1A=1").what.contains("\"1A\" is not a variable name"));
        assert!(err("A-B=1").what.contains("is not a variable name"));
        assert!(err("export =1").what.contains("no KEY"));
        assert!(err("A='open").what.contains("single quote is not closed"));
        assert!(err("A=\"open\nB=1\"")
            .what
            .contains("double quote is not closed"));
        assert_eq!(err("A=\"open\nB=1\"").line, 1);
        assert!(err("A='x' y")
            .what
            .contains("after the closing quote: \"y\""));
        assert!(err("A=\"x\\\"").what.contains("not closed"));
        assert!(err("A=a\0b").what.contains("NUL"));
        let long = format!("{}\n", "x".repeat(500));
        assert!(err(&long).what.ends_with("…\""), "{}", err(&long).what);
    }

    #[test]
    fn hostile_input_never_panics() {
        // Every prefix of tricky lines, and every byte after a quote or backslash.
        let samples: [&[u8]; 8] = [
            b"export A=\"a\\\\\\\"b\\n\" # c",
            b"A='\xff\xfe'",
            b"\xff=1",
            b"A=\"\\",
            b"export",
            b"export ",
            b"'A'=1",
            b"A\t=\t\"\"\t#",
        ];
        for s in samples {
            for end in 0..=s.len() {
                let _ = parse(&s[..end]);
            }
        }
        for b in 0..=255u8 {
            for pre in [&b"A=\""[..], b"A='", b"A=\"\\", b"A=", b"", b"export"] {
                let _ = parse(&[pre, &[b], b"\n"].concat());
            }
        }
        // Non-UTF-8 values pass through as bytes.
        let v = parse(b"A=\xff\n").unwrap();
        assert_eq!(v[0].1, OsString::from_vec(vec![0xff]));
    }
}

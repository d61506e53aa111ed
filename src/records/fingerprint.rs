//! A crash's `fingerprint` (SPEC §6): 16 hex digits naming the error, not the occurrence, so
//! the same error groups across restarts, hosts and days. Pure: no IO.
//!
//! With frames in the stack trace, it is the error type and the frames (file and function
//! names): every number (line numbers, columns, pids, goroutine and thread ids) and every hex
//! address is removed from a frame line, consecutive identical frames (a recursion) count once,
//! and at most `MAX_FRAMES` frames count (so a deep trace cut at a different place by the tail
//! still groups). Without frames, it is the type and the message with its numbers, hex values
//! and quoted values masked. The hash is 64-bit FNV-1a, fixed here so that fingerprints stay the
//! same across restartd versions.

/// Frames beyond this many (from the top of the report) do not count.
const MAX_FRAMES: usize = 64;

/// The fingerprint of a recognised error; `None` when there is neither type nor message.
pub fn fingerprint(
    error_type: Option<&str>,
    message: Option<&str>,
    stack_trace: Option<&str>,
) -> Option<String> {
    let mut frames: Vec<String> = Vec::new();
    for line in failing_thread(stack_trace.unwrap_or("")) {
        if let Some(frame) = frame(line) {
            let frame = strip_numbers(frame);
            if frames.last() != Some(&frame) && frames.len() < MAX_FRAMES {
                frames.push(frame);
            }
        }
    }
    let mut key = String::from(error_type.unwrap_or(""));
    key.push('\n');
    if frames.is_empty() {
        if error_type.is_none() && message.is_none() {
            return None;
        }
        key.push_str(&mask_message(message.unwrap_or("")));
    } else {
        key.push_str(&frames.join("\n"));
    }
    Some(format!("{:016x}", fnv1a(key.as_bytes())))
}

/// The lines of the thread that failed, when the report dumps every thread: the other threads
/// are wherever they happened to be, which names the occurrence, not the error. Go's dump
/// (`fatal error:`, `GOTRACEBACK=all`) starts with the goroutine that failed, so the lines stop
/// at the second `goroutine N [state]:` header; Python's faulthandler marks its block `Current
/// thread 0x…`, in any place among the others. Any other report: all its lines.
fn failing_thread(trace: &str) -> Vec<&str> {
    let lines: Vec<&str> = trace.lines().collect();
    if let Some(at) = lines
        .iter()
        .position(|l| l.starts_with("Current thread 0x"))
    {
        let n = lines[at + 1..]
            .iter()
            .take_while(|l| l.starts_with(' '))
            .count();
        return lines[at..=at + n].to_vec();
    }
    let goroutine = |l: &str| l.starts_with("goroutine ") && l.ends_with("]:");
    let mut headers = lines.iter().enumerate().filter(|(_, l)| goroutine(l));
    match headers.nth(1) {
        Some((second, _)) => lines[..second].to_vec(),
        None => lines,
    }
}

/// The part of `line` that names a frame, if it is one: the frame shapes of the runtimes
/// `traceback` recognises.
fn frame(line: &str) -> Option<&str> {
    let t = line.trim();
    let indented = line.starts_with([' ', '\t']);
    if let Some(at) = line.find(" panicked at ") {
        // Rust: where the panic happened (`thread 'NAME'` differs from run to run).
        return Some(&line[at + 1..]);
    }
    let digits = t.bytes().take_while(u8::is_ascii_digit).count();
    let shaped = t.starts_with("File \"")               // Python, faulthandler
        || t.starts_with("at ")                        // JS, JVM, .NET, Deno, Rust's `at file`
        || (t.starts_with("from ") && t.contains(":in "))   // Ruby
        || (t.starts_with('#') && t[1..].starts_with(|c: char| c.is_ascii_digit())) // PHP, ASan
        || (digits > 0 && t[digits..].starts_with(": ")) // Rust backtrace, Node native frames
        || (line.starts_with('\t') && t.contains(".go:")) // Go file lines
        || t.starts_with("created by ")                // Go
        || (!indented && is_go_function(t))            // Go function lines
        || (indented && elixir_frame(t)); // Elixir
    shaped.then_some(t)
}

/// `main.main()`, `main.(*Server).Serve(0xc000010000, {0x4b2f60, 0x1})`: a Go function line.
fn is_go_function(t: &str) -> bool {
    let Some(open) = t.find('(') else {
        return false;
    };
    let name = &t[..open];
    // `main.(*T).f(…)`: the receiver's parentheses are part of the name.
    let name = if name.ends_with('.') {
        t[..t.find(").").map_or(open, |i| i + 2)].trim_end_matches('.')
    } else {
        name
    };
    t.ends_with(')') && name.contains('.') && !name.contains(' ') && !name.is_empty()
}

/// `(app 0.1.0) lib/app.ex:3: App.run/0` or `runtime.exs:2: App.run/0`.
fn elixir_frame(t: &str) -> bool {
    let t = match t.strip_prefix('(') {
        Some(rest) => rest.split_once(") ").map_or("", |(_, r)| r),
        None => t,
    };
    t.split_once(": ").is_some_and(|(place, _)| {
        place
            .rsplit_once(':')
            .is_some_and(|(file, n)| file.contains(".ex") && n.bytes().all(|b| b.is_ascii_digit()))
    })
}

/// `line` without hex addresses (`0x7f3a…`) and digits.
fn strip_numbers(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '0' && chars.peek() == Some(&'x') {
            chars.next();
            while chars.next_if(char::is_ascii_hexdigit).is_some() {}
        } else if !c.is_ascii_digit() {
            out.push(c);
        }
    }
    out
}

/// `message` with numbers, hex values (`0x…`, UUIDs, and runs of 8 or more hex digits such as
/// ids and hashes) and quoted values ('…', "…", `…`) each replaced by one placeholder.
pub fn mask_message(message: &str) -> String {
    let mut out = String::with_capacity(message.len());
    let chars: Vec<char> = message.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if matches!(c, '\'' | '"' | '`') {
            if let Some(close) = chars[i + 1..].iter().position(|&d| d == c) {
                out.push(c);
                out.push('…');
                out.push(c);
                i += close + 2;
                continue;
            }
        }
        let word_start = i == 0 || !chars[i - 1].is_ascii_alphanumeric();
        let hex_run = chars[i..]
            .iter()
            .take_while(|d| d.is_ascii_hexdigit())
            .count();
        if word_start && is_uuid(&chars[i..]) {
            out.push('#');
            i += UUID.len();
        } else if word_start
            && hex_run >= 8
            && chars[i..i + hex_run].iter().any(char::is_ascii_digit)
        {
            out.push('#');
            i += hex_run;
        } else if c == '0' && chars.get(i + 1) == Some(&'x') {
            out.push('#');
            i += 2;
            while chars.get(i).is_some_and(char::is_ascii_hexdigit) {
                i += 1;
            }
        } else if c.is_ascii_digit() {
            out.push('#');
            while chars.get(i).is_some_and(char::is_ascii_digit) {
                i += 1;
            }
        } else {
            out.push(c);
            i += 1;
        }
    }
    out
}

/// The groups of hex digits of a UUID, `550e8400-e29b-41d4-a716-446655440000`.
const UUID: &str = "xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx";

/// Whether `chars` starts with a UUID that ends there (no letter or digit right after it).
fn is_uuid(chars: &[char]) -> bool {
    chars.len() >= UUID.len()
        && UUID.chars().zip(chars).all(|(shape, c)| match shape {
            'x' => c.is_ascii_hexdigit(),
            _ => *c == shape,
        })
        && chars
            .get(UUID.len())
            .is_none_or(|c| !c.is_ascii_alphanumeric())
}

fn fnv1a(bytes: &[u8]) -> u64 {
    let mut hash = 0xcbf2_9ce4_8422_2325u64;
    for &b in bytes {
        hash ^= u64::from(b);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    hash
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::records::traceback::recognise;

    fn of(tail: &str) -> Option<String> {
        let r = recognise(tail.as_bytes());
        fingerprint(
            r.error_type.as_deref(),
            r.error_message.as_deref(),
            r.stack_trace.as_deref(),
        )
    }

    #[test]
    fn sixteen_hex_digits_and_none_without_anything() {
        let f = fingerprint(Some("ValueError"), Some("x"), None).unwrap();
        assert_eq!(f.len(), 16);
        assert!(f
            .bytes()
            .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()));
        assert_eq!(fingerprint(None, None, None), None);
        assert_eq!(fingerprint(None, None, Some("no frames here")), None);
        // Fixed across versions: FNV-1a of "ValueError\nx".
        assert_eq!(f, format!("{:016x}", fnv1a(b"ValueError\nx")));
    }

    #[test]
    fn the_same_error_at_other_lines_pids_and_addresses_is_the_same() {
        let py = |line: u32, msg: &str| {
            of(&format!(
                "Traceback (most recent call last):\n  File \"/app/x.py\", line {line}, in <module>\n  File \"/app/x.py\", line {}, in f\nKeyError: {msg}\n",
                line + 7
            ))
        };
        // Messages differ, frames are the same: one error.
        assert_eq!(py(3, "'a'"), py(40, "'user-17'"));
        let go = |addr: &str, id: u32| {
            of(&format!(
                "panic: boom\n\ngoroutine {id} [running]:\nmain.(*Server).Serve(0x{addr})\n\t/app/main.go:{id} +0x{addr}\nmain.main()\n\t/app/main.go:9 +0x1d\n"
            ))
        };
        assert_eq!(go("c000010000", 1), go("c0000a2000", 18));
        let rust = |thread: &str, line: u32| {
            of(&format!(
                "thread '{thread}' (4242) panicked at src/main.rs:{line}:5:\nno workers\n"
            ))
        };
        assert_eq!(rust("main", 2), rust("worker-3", 9));
    }

    #[test]
    fn another_function_file_or_type_is_another_error() {
        let py = |func: &str, ty: &str| {
            of(&format!(
                "Traceback (most recent call last):\n  File \"/app/x.py\", line 3, in {func}\n{ty}: m\n"
            ))
        };
        let base = py("load", "KeyError");
        assert_ne!(base, py("save", "KeyError"));
        assert_ne!(base, py("load", "ValueError"));
        assert_ne!(
            of("panic: a\n\ngoroutine 1 [running]:\nmain.load()\n\t/app/a.go:3 +0x1\n"),
            of("panic: a\n\ngoroutine 1 [running]:\nmain.save()\n\t/app/a.go:3 +0x1\n")
        );
    }

    #[test]
    fn without_frames_the_masked_message_decides() {
        let f = |m: &str| fingerprint(None, Some(m), None);
        assert_eq!(
            f("connect to 10.0.0.7:5432 failed after 3 tries (id 9f8e7d6c5b4a)"),
            f("connect to 10.0.0.9:6543 failed after 12 tries (id 0123456789ab)")
        );
        assert_eq!(f("no user 'bob'"), f("no user 'alice'"));
        assert_ne!(f("disk full"), f("permission denied"));
        assert_eq!(
            mask_message("at 0x7ffe12 pid=42 key \"a b\" deadbeef12cafe ok"),
            "at # pid=# key \"…\" # ok"
        );
        // Words are not hex ids, however hex their letters.
        assert_eq!(mask_message("decade facade"), "decade facade");
        // A UUID is one hex value: its 4-digit groups kept their letters, so every crash of
        // `job <uuid4> failed` was a new error, each one told past --alert-limit.
        assert_eq!(
            f("job 0bffdcf2-711f-4acf-b673-7de01d5ac3db failed: upstream timeout"),
            f("job d5575950-e21a-470e-a06a-8da4f135b647 failed: upstream timeout")
        );
        assert_eq!(
            mask_message("id=F09295EE-C432-4B5B-8DF8-45735E5CD0D2, a-b"),
            "id=#, a-b"
        );
    }

    #[test]
    fn recursion_depth_and_tail_cuts_do_not_split_an_error() {
        let deep = |n: usize| {
            let mut t = String::from("Traceback (most recent call last):\n");
            for _ in 0..n {
                t.push_str("  File \"/app/x.py\", line 2, in walk\n");
            }
            t.push_str("RecursionError: maximum recursion depth exceeded\n");
            of(&t)
        };
        assert_eq!(deep(10), deep(990));
    }

    #[test]
    fn only_the_failing_thread_counts_in_a_dump_of_every_thread() {
        // Go's `fatal error:` dumps every goroutine, and Python's faulthandler every thread,
        // each wherever it happened to be: the same error got 3 fingerprints in 8 runs of a Go
        // program with concurrent map writes, 7 in 8 runs of a Python segfault with 3 threads
        // (each one `first_seen`, past --alert-limit).
        let go = |others: &str| {
            of(&format!(
                "fatal error: concurrent map writes\n\ngoroutine 20 [running]:\nmain.main.func1()\n\t/app/main.go:8 +0x4a\ncreated by main.main\n\t/app/main.go:6 +0x2b\n{others}"
            ))
        };
        let main_runnable = "\ngoroutine 1 [runnable]:\nmain.main()\n\t/app/main.go:13 +0xb0\n";
        let worker_runnable = "\ngoroutine 17 [runnable]:\nmain.main.func1()\n\t/app/main.go:6\ncreated by main.main\n\t/app/main.go:6 +0x2b\n";
        assert_eq!(
            go(&format!("{main_runnable}{worker_runnable}")),
            go(&format!("{worker_runnable}{main_runnable}"))
        );
        assert_eq!(go(main_runnable), go(""));
        // The goroutine that failed still decides.
        assert_ne!(
            go(""),
            of("fatal error: concurrent map writes\n\ngoroutine 1 [running]:\nmain.main()\n\t/app/main.go:13 +0xb0\n")
        );
        let py = |other: &str| {
            of(&format!(
                "Fatal Python error: Segmentation fault\n\nThread 0x00007fcc42ca26c0 (most recent call first):\n  File \"/app/ft.py\", line 3 in {other}\n  File \"/app/ft.py\", line 6 in worker\n\nCurrent thread 0x00007fcc44a37b80 (most recent call first):\n  File \"/app/ft.py\", line 9 in crash\n  File \"/app/ft.py\", line 10 in <module>\n"
            ))
        };
        assert_eq!(py("idle"), py("busy"));
        let single = |func: &str| {
            of(&format!(
                "Fatal Python error: Segmentation fault\n\nCurrent thread 0x00007fcc44a37b80 (most recent call first):\n  File \"/app/ft.py\", line 9 in {func}\n"
            ))
        };
        assert_ne!(single("crash"), single("load"));
    }

    #[test]
    fn frame_shapes_of_every_runtime_are_frames() {
        for line in [
            "  File \"/app/x.py\", line 2, in f",
            "    at parse (/app/a.js:2:40)",
            "\tat Main.main(Main.java:2)",
            "   at Program.Main() in /app/Program.cs:line 3",
            "\tfrom x.rb:4:in `<main>'",
            "#0 /app/uncaught.php(5): connect()",
            "    #1 0x563d5b69b202 in main /app/asan_uaf.c:3",
            "   5: rust_backtrace::main",
            " 1: 0xb78db3 node::Abort() [node]",
            "\t/app/main.go:8 +0x4a",
            "main.main.func1()",
            "created by main.main",
            "    (elixir 1.14.0) lib/keyword.ex:595: Keyword.fetch!/2",
            "    runtime.exs:2: App.run/0",
        ] {
            assert!(frame(line).is_some(), "{line}");
        }
        for line in [
            "Traceback (most recent call last):",
            "ValueError: bad (x)",
            "goroutine 1 [running]:",
            "Exception in thread \"main\" java.lang.Error: x",
            "Stack trace:",
            "  thrown in /app/x.php on line 3",
        ] {
            assert!(frame(line).is_none(), "{line}");
        }
    }
}

//! The recogniser on the fixtures of `tests/data/tracebacks/`, one per language and shape, and
//! on input it must survive.

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
            bytes: include_bytes!(concat!("../../../tests/data/tracebacks/", $file, ".txt")),
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
    case!("native_terminate", Some("std::runtime_error"), Some("config file /etc/app.conf not found"), Some("terminate called after throwing an instance of 'std::runtime_error'")),
    case!("native_terminate_custom", Some("app::ConfigError"), Some("port must be set"), Some("  what():  port must be set")),
    case!("native_assert", Some("assertion failed"), Some("n > 0"), Some("assert.bin: assert.c:4: main: Assertion `n > 0' failed.")),
    case!("native_double_free", Some("heap corruption"), Some("free(): double free detected in tcache 2"), Some("free(): double free detected in tcache 2")),
    case!("native_stack_smashing", Some("stack smashing"), Some("*** stack smashing detected ***: terminated"), Some("*** stack smashing detected ***: terminated")),
    case!("native_asan_uaf", Some("AddressSanitizer"), Some("heap-use-after-free"), Some("SUMMARY: AddressSanitizer: heap-use-after-free /app/asan_uaf.c:3 in main")),
    case!("native_lsan_leak", Some("LeakSanitizer"), Some("detected memory leaks"), Some("/app/lsan_leak.c:3")),
    case!("native_ubsan_overflow", Some("UndefinedBehaviorSanitizer"), Some("signed integer overflow: 2147483647 + 1 cannot be represented in type 'int'"), Some("ubsan_overflow.c:3:35: runtime error:")),
    case!("go_concurrent_map", Some("fatal error"), Some("concurrent map writes"), Some("\t/app/go_concurrent_map/main.go:8 +0x4a")),
    case!("py_fatal_segfault", Some("Fatal Python error"), Some("Segmentation fault"), Some(r#"  File "/app/fatal_segv.py", line 3 in crash"#)),
    case!("py_fatal_abort", Some("Fatal Python error"), Some("Aborted"), Some(r#"  File "/app/fatal_abort.py", line 4 in handler"#)),
    case!("node_heap_oom", Some("FATAL ERROR"), Some("Reached heap limit Allocation failed - JavaScript heap out of memory"), Some(" 1: 0xb78db3 node::OOMErrorHandler(char const*, v8::OOMDetails const&) [node]")),
    case!("java_oom", Some("java.lang.OutOfMemoryError"), Some("Java heap space"), Some("\tat Main.main(Main.java:5)")),
    case!("java_exit_oom", Some("java.lang.OutOfMemoryError"), Some("Java heap space"), Some("Terminating due to java.lang.OutOfMemoryError: Java heap space")),
    case!("java_crash_oom", Some("java.lang.OutOfMemoryError"), Some("Java heap space"), Some("#  fatal error: OutOfMemory encountered: Java heap space")),
    case!("java_hs_err", Some("SIGSEGV"), Some("V [libjvm.so+0xed2f94] Unsafe_PutLong+0x124"), Some("# An error report file with more information is saved as:")),
    case!("rust_stack_overflow", Some("fatal runtime error"), Some("stack overflow"), Some("thread 'main' (32234) has overflowed its stack")),
    case!("php_uncaught", Some("RuntimeException"), Some("database unreachable: mysql:host=db"), Some("#0 /app/uncaught.php(5): connect()")),
    case!("php_previous", Some("App\\BootError"), Some("config is not valid JSON"), Some("#1 /app/previous.php(11): App\\boot()")),
    case!("php_type_error", Some("TypeError"), Some("port(): Argument #1 ($p) must be of type int, string given, called in /app/type_error.php on line 3 and defined"), Some("  thrown in /app/type_error.php on line 2")),
    case!("php_memory", Some("PHP Fatal error"), Some("Allowed memory size of 8388608 bytes exhausted (tried to allocate 2097152 bytes)"), Some("PHP Fatal error:  Allowed memory size of 8388608 bytes exhausted (tried to allocate 2097152 bytes) in /app/memory.php on line 4")),
    case!("dotnet_inner", Some("System.InvalidOperationException"), Some("worker failed to start"), Some("   at Program.<Main>$(String[] args) in /app/Program.cs:line 3")),
    case!("dotnet_null", Some("System.NullReferenceException"), Some("Object reference not set to an instance of an object."), Some("   at ConsoleApp.Program.MethodA() in /app/Program.cs:line 20")),
    case!("elixir_key_error", Some("KeyError"), Some("key :port not found in: [host: \"db\"]"), Some("    (elixir 1.14.0) lib/keyword.ex:595: Keyword.fetch!/2")),
    case!("elixir_runtime_error", Some("RuntimeError"), Some("queue closed"), Some("    runtime.exs:2: App.run/0")),
    case!("elixir_arithmetic", Some("ArithmeticError"), Some("bad argument in arithmetic expression"), Some("    arith.exs:2: Calc.ratio/2")),
    case!("deno_uncaught", Some("Error"), Some("config missing"), Some("    at loadConfig (file:///app/main.ts:2:9)")),
    case!("deno_in_promise", Some("NotFound"), Some("No such file or directory (os error 2): readfile '/app/config.json'"), Some("    at async file:///app/main.ts:1:16")),
    case!("plain_access_log", None, Some("Serving HTTP on 0.0.0.0 port 8000 (http://0.0.0.0:8000/) ..."), None),
    case!("plain_info_after_error", None, Some("ERROR: cannot connect to redis at 127.0.0.1:6379"), None),
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
            if stack.lines().any(|l| l.contains(frame)) && clean(case.bytes).contains(stack) =>
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
fn a_jvm_banner_without_the_kind_of_error_still_has_a_type() {
    // Found by the fuzz target: `#  (0xb) at pc=…` gave an empty type.
    let banner =
        String::from_utf8_lossy(fixture("java_hs_err")).replace("#  SIGSEGV (0xb)", "#  (0xb)");
    let r = recognise(banner.as_bytes());
    assert_eq!(r.error_type.as_deref(), Some("JVM fatal error"));
    assert_eq!(r.error_message.as_deref(), None);
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

#[test]
fn a_signal_death_is_explained_only_by_a_recognised_report() {
    // The issue's case: `python3 -m http.server` killed by SIGSEGV, its access log last.
    let tail = fixture("plain_access_log");
    assert_eq!(recognise_end(tail, true), Recognised::default());
    let exit = recognise_end(tail, false);
    assert_eq!(
        exit.error_message.as_deref(),
        Some("Serving HTTP on 0.0.0.0 port 8000 (http://0.0.0.0:8000/) ...")
    );
    assert_eq!((exit.error_type, exit.stack_trace), (None, None));
    // A report found is kept whatever the end: SIGABRT after `terminate`.
    let abort = recognise_end(fixture("native_terminate"), true);
    assert_eq!(abort.error_type.as_deref(), Some("std::runtime_error"));
    // Only chatter: no message at all for an exit either.
    let chatter = b"127.0.0.1 - - [x] \"POST /api HTTP/1.1\" 500 12\nINFO: bye\n";
    assert_eq!(recognise_end(chatter, false), Recognised::default());
}

#[test]
fn a_signal_death_is_not_explained_by_a_logged_error_line() {
    // `Error: …` is Rust's `main` returning `Err`, printed on the way to an exit (code 1); as
    // the last line before a SIGKILL or SIGSEGV it is only what the program logged last: it was
    // the record's `Error` and its message, and its fingerprint grouped by log text.
    let tail = b"listening on :8080\nError: connection refused, retrying\n";
    assert_eq!(recognise_end(tail, true), Recognised::default());
    let exit = recognise_end(tail, false);
    assert_eq!(exit.error_type.as_deref(), Some("Error"));
    assert_eq!(
        exit.error_message.as_deref(),
        Some("connection refused, retrying")
    );
    // A real report above the logged line still explains the signal death.
    let mut tail = fixture("native_terminate").to_vec();
    tail.extend_from_slice(b"Error: while shutting down\n");
    let abort = recognise_end(&tail, true);
    assert_eq!(abort.error_type.as_deref(), Some("std::runtime_error"));
}

#[test]
fn access_log_and_chatter_lines_are_told_from_errors() {
    for line in [
        r#"127.0.0.1 - - [05/Dec/2026 07:33:52] "GET / HTTP/1.1" 200 -"#,
        r#"10.0.0.1 - bob [10/Oct/2000:13:55:36 -0700] "PUT /a?b=1 HTTP/2.0" 204 0 "-" "curl""#,
        r#"INFO:     127.0.0.1:51234 - "GET /health HTTP/1.1" 200 OK"#,
    ] {
        assert!(is_access_log(line), "{line}");
    }
    for line in [
        "INFO:root:started",
        "2026-12-05 07:40:01,123 DEBUG pool: idle",
        "[TRACE] tick",
        r#"{"level":"info","msg":"bye"}"#,
        "time=2026 level=debug msg=x",
    ] {
        assert!(is_chatter(line), "{line}");
    }
    for line in [
        "ERROR: GET failed",
        "fatal: cannot open /etc/app.conf",
        "information is missing",
        r#"WARN "GET" is not allowed"#,
        "level=error msg=\"boom\"",
    ] {
        assert!(!is_access_log(line) && !is_chatter(line), "{line}");
    }
}

#[test]
fn a_dotnet_nested_exception_class_is_its_type() {
    // .NET names a nested type `Outer+Inner` (`Type.FullName`, as `Exception.ToString()` prints
    // it): `class OrderException : Exception` declared inside `Program` is the usual sample. It
    // was no type name, the report went unrecognised and the message was the last frame.
    let tail = b"Unhandled exception. Shop.Program+OrderException: order 7 not found\n   at Shop.Program.Load(Int32 id) in /app/Program.cs:line 14\n   at Shop.Program.Main() in /app/Program.cs:line 5\n";
    let r = recognise(tail);
    assert_eq!(
        (r.error_type.as_deref(), r.error_message.as_deref()),
        (
            Some("Shop.Program+OrderException"),
            Some("order 7 not found")
        )
    );
    assert!(r.stack_trace.unwrap().ends_with("line 5"));
}

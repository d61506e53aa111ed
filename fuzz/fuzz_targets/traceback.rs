//! The traceback recogniser and the fingerprint on any bytes: they must never panic, and what
//! they return must be what a crash record can hold (a found report is non-empty text; a type
//! is one non-empty line; a fingerprint is 16 hex digits, and a signal death keeps only a
//! recognised report).
#![no_main]

use libfuzzer_sys::fuzz_target;
use restartd::records::fingerprint::fingerprint;
use restartd::records::traceback::{recognise, recognise_end};

fuzz_target!(|tail: &[u8]| {
    let found = recognise(tail);
    if let Some(t) = &found.error_type {
        assert!(!t.is_empty() && !t.contains('\n'), "type {t:?}");
    }
    if let Some(m) = &found.error_message {
        assert!(!m.is_empty(), "empty message");
    }
    if found.error_type.is_some() {
        assert!(found.stack_trace.is_some(), "a type without its report");
    }
    let by_signal = recognise_end(tail, true);
    if by_signal.stack_trace.is_none() {
        assert_eq!(by_signal, Default::default(), "a signal death explained by a log line");
    } else if found.error_type.as_deref() != Some("Error") {
        // Rust's `Error: …` (a `main` that returned `Err`) counts for an exit only.
        assert_eq!(by_signal, found);
    }
    let f = fingerprint(
        found.error_type.as_deref(),
        found.error_message.as_deref(),
        found.stack_trace.as_deref(),
    );
    if let Some(f) = &f {
        assert!(f.len() == 16 && f.bytes().all(|b| b.is_ascii_hexdigit()), "{f}");
    }
    // Without a type, a message or frames nothing names the error.
    if found.error_type.is_none() && found.error_message.is_none() && found.stack_trace.is_none() {
        assert_eq!(f, None);
    }
});

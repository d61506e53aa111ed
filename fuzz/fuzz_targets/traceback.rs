//! The traceback recogniser on any bytes: it must never panic, and what it returns must be what
//! a crash record can hold (a found report is non-empty text; a type is one non-empty line).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|tail: &[u8]| {
    let found = restartd::records::traceback::recognise(tail);
    if let Some(t) = &found.error_type {
        assert!(!t.is_empty() && !t.contains('\n'), "type {t:?}");
    }
    if let Some(m) = &found.error_message {
        assert!(!m.is_empty(), "empty message");
    }
    if found.error_type.is_some() {
        assert!(found.stack_trace.is_some(), "a type without its report");
    }
});

//! What restartd keeps on disk and tells others: the instance directory and its lock, the crash
//! log and its queries, traceback recognition, error fingerprints and the errors already seen,
//! how an OOM kill is known, `state.json`, and the hooks that carry a crash record to an alert.
//!
//! Files are replaced atomically and records appended durably (SPEC §6). Imports `base`,
//! `supervise` (the status), `process` and `monitors`.

pub mod crashes;
pub mod crashlog;
pub mod fingerprint;
pub mod hooks;
pub mod instance;
pub mod known;
pub mod state;
pub mod traceback;

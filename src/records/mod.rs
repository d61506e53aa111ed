//! What restartd keeps on disk and tells others: the instance directory and its lock, the crash
//! log and its queries, traceback recognition, `state.json`, and the hooks that carry a crash
//! record to an alert.
//!
//! Files are replaced atomically and records appended durably (SPEC §6). Imports `base`,
//! `supervise` (the status), `process` and `monitors`.

pub mod crashes;
pub mod crashlog;
pub mod hooks;
pub mod instance;
pub mod state;
pub mod traceback;

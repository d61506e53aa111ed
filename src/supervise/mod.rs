//! The pure supervision core: the one place that decides.
//!
//! `machine` is the state machine (every decision: restart, stop, leftover cleanup, monitors,
//! what to tell systemd); `policy` is SPEC §3's restart table and the backoff; `window` the
//! trailing restart window. No IO, no clock reads, no syscalls: time and randomness are
//! arguments. Imports only `base`.

pub mod machine;
pub mod policy;
pub mod window;

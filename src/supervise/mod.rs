//! The pure supervision core: the one place that decides.
//!
//! `machine` is the state machine (every decision: restart, stop, leftover cleanup, monitors,
//! what to tell systemd), `events` its inputs, actions and reports; `policy` is SPEC §3's restart table and the backoff; `window` the
//! trailing restart window; `config` the whole of a run's configuration, the machine's settings
//! and the pieces the other parts take. No IO, no clock reads, no syscalls: time and randomness
//! are arguments. Imports only `base`.

pub mod config;
pub mod events;
pub mod machine;
pub mod policy;
pub mod window;

//! restartd's integration tests: the built binary, real child processes, real signals.
//!
//! One test crate (one link step) with a module per area. Every restartd a test starts runs in
//! its own process group, which is SIGKILLed when the test ends, so no test leaves a process.
//! A failing test prints the commands it ran, their status and stderr, and the state directory.

mod common;

mod bad_input;
mod cli;
mod clock_step;
mod crash_records;
mod docs;
mod exit_status;
mod faults;
mod file_safety;
mod files;
mod forensics;
mod lifecycle;
mod load;
mod monitors;
mod observe;
mod observe_access;
mod observe_tools;
mod promises;
mod readiness;
mod reloads;
mod restart;
mod signals;
mod soak;
mod sockets;
mod stalled;
mod subcommands;
mod systemd;
mod trust;
mod trust_more;

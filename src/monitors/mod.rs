//! Watching a running child: health checks, sd_notify (the child's socket and restartd's own
//! channel to systemd, the watchdog) and memory sampling.
//!
//! Each monitor reports facts (a check failed N times, a ping is overdue, the group uses X
//! bytes); the machine decides what to do about them. Imports `base` and `process`.

pub mod health;
pub mod memory;
pub mod notify;

//! The process side: starting the child, signals, reaping, and the child's output.
//!
//! `child` starts every process restartd runs (the child, hooks, health checks: clone + exec, no
//! allocation in between) and reaps; `signals` is restartd's own signal handling (the handler
//! records and wakes); `output` copies the child's stdout and stderr on, `sink` writes
//! restartd's own stderr and stdout without ever blocking, `tail` keeps the last stderr lines,
//! `logfile` is `--log-file` (`logcompress` gzips its rotated files as it writes), `oom`
//! reads whether the kernel's OOM killer ended the child, `sockets` binds and holds the
//! `--socket`s, `trim` hands the heap that starting
//! freed back to the kernel.
//! These carry out what the machine decided and decide nothing. Imports `base` and
//! `supervise`'s value types.

pub mod child;
pub mod logcompress;
pub mod logfile;
pub mod oom;
pub mod output;
pub mod procs;
pub mod signals;
pub mod sink;
pub mod sockets;
pub mod strays;
pub mod tail;
pub mod trim;

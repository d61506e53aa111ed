//! The bottom layer: value types every other layer speaks in, and their parsers and formatters.
//!
//! `exit` is how a child ended and the exit codes restartd maps that to; `values` the parsed
//! values of the command line (durations, sizes, exit-code lists, signals, names, labels, the
//! listen address, the health URL, the alert limit) with their parsers, and the formatters of
//! durations and sizes; `config` the configuration pieces the parts below the command line run
//! with (health checks, log file, verbosity, log format); `envfile` the `--env-file` syntax; `files` the one way restartd replaces a
//! file atomically, opens a private one and fills a memfd. Imports nothing of the crate.

pub mod config;
pub mod envfile;
pub mod exit;
pub mod files;
pub mod values;

//! The bottom layer: value types every other layer speaks in, and their parsers and formatters.
//!
//! How a child ended and the exit codes restartd maps that to; durations, sizes, signal names and
//! the other parsed values of the command line; the configuration each part runs with. Pure and
//! free of restartd's other modules: imports nothing of the crate.

pub mod exit;
pub mod files;

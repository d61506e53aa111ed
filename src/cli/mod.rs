//! The command line: the clap definition (the one source of help, man page and completions),
//! from flags to `Config`, the subcommands and their human and JSON reports.
//!
//! The top layer: it may import everything below; nothing imports it but `main.rs`.

pub mod args;
pub mod argv;
pub mod commands;
pub mod config;
pub mod doc;
pub mod report;

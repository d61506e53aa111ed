//! The command line: the clap definition (the one source of help, man page and completions),
//! from flags to `Config`, the subcommands and their human and JSON reports, and `unit`, the
//! systemd unit for a set of run options.
//!
//! The top layer: it may import everything below; nothing imports it but `main.rs`. Inside it,
//! `args` (the clap types, with `args_lifecycle`'s SPEC §13 pieces) imports no other module of the folder; `doc` adds the long help to
//! them and renders the man page and the completions; `parse` here reads restartd's own argv.

pub mod args;
pub mod args_lifecycle;
pub mod argv;
pub mod commands;
pub mod config;
pub mod doc;
pub mod logs;
pub mod report;
pub mod unit;

use clap::{CommandFactory, FromArgMatches};

use args::Cli;

/// Parses restartd's own command line; prints help, version or a usage error and exits (2) as
/// clap does.
pub fn parse() -> Cli {
    let long_help = std::env::args_os()
        .take_while(|a| a != "--")
        .any(|a| a == "--help" || a == "help");
    let cmd = if long_help {
        doc::command()
    } else {
        Cli::command()
    };
    Cli::from_arg_matches_mut(&mut cmd.get_matches())
        .map_err(|e| e.format(&mut Cli::command()))
        .unwrap_or_else(|e| e.exit())
}

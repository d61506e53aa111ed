//! restartd: run one command and keep it running.
//!
//! `main` parses the command line and hands over: to `commands` for a subcommand, or to the
//! supervisor for `restartd [OPTIONS] -- COMMAND`. Every exit status is decided by the callee and
//! returned here.

use std::process::ExitCode;

use clap::{CommandFactory, Parser};

use restartd::cli::{Cli, RunArgs};
use restartd::exit::code;
use restartd::instance::AcquireError;
use restartd::{child, commands, config, event_loop, instance, signals};

fn main() -> ExitCode {
    // Before anything installs a handler: the child gets this state back.
    let inherited = signals::Inherited::capture();
    if let Some(msg) = restartd::argv::non_utf8_option(std::env::args_os()) {
        Cli::command()
            .error(clap::error::ErrorKind::InvalidUtf8, msg)
            .exit();
    }
    let cli = Cli::parse();
    ExitCode::from(match cli.subcommand {
        Some(sub) => commands::run(sub),
        None => run(cli.run, inherited),
    })
}

/// `restartd [OPTIONS] -- COMMAND`: parse → config → lock → subreaper → signals → supervise.
fn run(args: RunArgs, inherited: signals::Inherited) -> u8 {
    if args.command.is_empty() {
        Cli::command()
            .error(
                clap::error::ErrorKind::MissingRequiredArgument,
                "no command given: usage: restartd [OPTIONS] -- COMMAND [ARGS...]",
            )
            .exit();
    }
    if let Err(msg) = restartd::cli::check_listen(args.listen, args.listen_remote) {
        Cli::command()
            .error(clap::error::ErrorKind::ValueValidation, msg)
            .exit();
    }
    let cfg = config::Config::from_args(args, &|key| std::env::var_os(key));
    let instance = match instance::acquire(&cfg.state_dir, &cfg.name) {
        Ok(instance) => instance,
        Err(AcquireError::AlreadyRunning { pid }) => {
            let pid = pid.map_or("unknown".into(), |p| p.to_string());
            eprintln!(
                "restartd: instance {} is already running (pid {pid}); pass --name",
                cfg.name
            );
            return code::CANNOT_WORK;
        }
        Err(AcquireError::Unusable(e)) => {
            eprintln!("restartd: {e:#}");
            return code::CANNOT_WORK;
        }
    };
    if let Err(e) = child::become_subreaper() {
        eprintln!("restartd: unable to become a child subreaper: {e}; orphans will not be reaped");
    }
    let signals = match signals::install() {
        Ok(signals) => signals,
        Err(e) => {
            eprintln!("restartd: unable to install signal handlers: {e}");
            return code::CANNOT_WORK;
        }
    };
    match event_loop::Supervisor::new(cfg, instance, signals, inherited) {
        Ok(supervisor) => supervisor.run(),
        Err(e) => {
            eprintln!("restartd: {e:#}");
            code::CANNOT_WORK
        }
    }
}

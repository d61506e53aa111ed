//! restartd: run one command and keep it running.
//!
//! `main` parses the command line and hands over: to `commands` for a subcommand, or to the
//! supervisor for `restartd [OPTIONS] -- COMMAND`. Every exit status is decided by the callee and
//! returned here.
//!
//! The child gets back the signal state restartd inherited (SPEC §10), SIGPIPE included. Rust's
//! start-up code ignores SIGPIPE before `main` runs and keeps no note of what it was, so that state
//! is read earlier, from an `.init_array` entry: the C library runs those before `main`, the way
//! std itself records argv on glibc. Std's start-up also opens /dev/null on a closed fd 0, 1 or 2,
//! so no file restartd opens can become its stderr.

use std::process::ExitCode;
use std::sync::OnceLock;

use clap::error::ErrorKind;
use clap::CommandFactory;

use restartd::base::exit::code;
use restartd::cli::args::{Cli, RunArgs};
use restartd::observe::access::read_token_file;
use restartd::records::instance::AcquireError;
use restartd::{
    cli::commands, cli::config, process::procs, process::signals, records::instance,
    run::event_loop,
};

/// The signal state restartd was started with, read before Rust's start-up changed SIGPIPE.
static INHERITED: OnceLock<signals::Inherited> = OnceLock::new();

#[used]
#[link_section = ".init_array"]
static CAPTURE_INHERITED: extern "C" fn() = {
    extern "C" fn capture() {
        let _ = INHERITED.set(signals::Inherited::capture());
    }
    capture
};

fn main() -> ExitCode {
    // Were the entry above ever not run, SIGPIPE would read as ignored; nothing else has changed.
    let inherited = *INHERITED.get_or_init(signals::Inherited::capture);
    if let Some(msg) = restartd::cli::argv::non_utf8_option(std::env::args_os()) {
        usage_error(ErrorKind::InvalidUtf8, msg);
    }
    let cli = restartd::cli::parse();
    let status = match cli.subcommand {
        Some(sub) => commands::run(sub),
        None => run(cli.run, inherited),
    };
    ExitCode::from(status)
}

/// `restartd [OPTIONS] -- COMMAND`: parse → config → lock → subreaper → signals → supervise.
fn run(args: RunArgs, inherited: signals::Inherited) -> u8 {
    if args.command.is_empty() {
        let msg = "no command given: usage: restartd [OPTIONS] -- COMMAND [ARGS...]";
        usage_error(ErrorKind::MissingRequiredArgument, msg);
    }
    let token_file = args.listen_token_file.as_deref();
    let listen =
        restartd::base::values::check_listen(args.listen, args.listen_remote, token_file.is_some());
    let token = listen.and_then(|()| token_file.map(read_token_file).transpose());
    let token = token.unwrap_or_else(|msg| usage_error(ErrorKind::ValueValidation, msg));
    let health = args.health_cmd.is_some()
        || args.health_url.is_some()
        || args.readiness.health_tcp.is_some();
    let notify = args.notify || args.watchdog.is_some();
    restartd::base::values::check_ready_timeout(args.readiness.ready_timeout, notify, health)
        .unwrap_or_else(|msg| usage_error(ErrorKind::ArgumentConflict, msg));
    let mut cfg = config::from_args(args, token, &|key| std::env::var_os(key));
    // SPEC §13: at start a missing or malformed env file is a usage error naming file and line.
    cfg.env = restartd::base::envfile::read_all(&cfg.env_files).unwrap_or_else(|why| {
        usage_error(ErrorKind::ValueValidation, format!("--env-file: {why}"))
    });
    let instance = match instance::acquire(&cfg.state_dir, &cfg.name) {
        Ok(instance) => instance,
        Err(AcquireError::AlreadyRunning { pid }) => {
            let pid = pid.map_or("unknown".into(), |p| p.to_string());
            let name = &cfg.name;
            return cannot_work(format_args!(
                "instance {name} is already running (pid {pid}); pass --name"
            ));
        }
        Err(AcquireError::Unusable(e)) => return cannot_work(format_args!("{e:#}")),
    };
    if let Err(e) = procs::become_subreaper() {
        eprintln!("restartd: unable to become a child subreaper: {e}; orphans will not be reaped");
    }
    let signals = match signals::install() {
        Ok(signals) => signals,
        Err(e) => return cannot_work(format_args!("unable to install signal handlers: {e}")),
    };
    match event_loop::Supervisor::new(cfg, instance, signals, inherited) {
        Ok(supervisor) => supervisor.run(),
        Err(e) => cannot_work(format_args!("{e:#}")),
    }
}

/// Says why restartd cannot work; its exit status, 125.
fn cannot_work(why: std::fmt::Arguments) -> u8 {
    eprintln!("restartd: {why}");
    code::CANNOT_WORK
}

/// Prints a usage error as clap does and exits with status 2.
fn usage_error(kind: ErrorKind, msg: impl std::fmt::Display) -> ! {
    Cli::command().error(kind, msg).exit()
}

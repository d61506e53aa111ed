//! restartd: run one command and keep it running.
//!
//! `main` parses the command line and hands over: to `commands` for a subcommand, or to the
//! supervisor for `restartd [OPTIONS] -- COMMAND`. Every exit status is decided by the callee and
//! returned here.
//!
//! restartd has its own C `main` instead of Rust's: Rust's start-up code reads all of
//! `/proc/self/maps` to find the main thread's stack, sets up an alternate signal stack and
//! SIGSEGV/SIGBUS handlers to name a stack overflow, and ignores SIGPIPE — a cost paid on every
//! start (the startup benchmark, BENCHMARKS.md), for a stack-overflow message. What restartd needs
//! of it, `main` does itself: fds 0–2 are opened on /dev/null when closed (so no file restartd
//! opens can become its stderr), SIGPIPE is ignored (a closed output is an EPIPE error), and
//! stdout is flushed at exit (`std::process::exit` does that). A stack overflow is a plain SIGSEGV.

#![no_main]

use std::os::raw::{c_char, c_int};

use clap::CommandFactory;

use restartd::base::exit::code;
use restartd::cli::args::{Cli, RunArgs};
use restartd::observe::access::read_token_file;
use restartd::records::instance::AcquireError;
use restartd::{
    cli::commands, cli::config, process::child, process::signals, records::instance,
    run::event_loop,
};

#[no_mangle]
extern "C" fn main(_argc: c_int, _argv: *const *const c_char) -> c_int {
    // Before anything installs a handler: the child gets this state back.
    let inherited = signals::Inherited::capture();
    signals::ignore_sigpipe();
    open_standard_fds();
    if let Some(msg) = restartd::cli::argv::non_utf8_option(std::env::args_os()) {
        Cli::command()
            .error(clap::error::ErrorKind::InvalidUtf8, msg)
            .exit();
    }
    let cli = restartd::cli::parse();
    let status = match cli.subcommand {
        Some(sub) => commands::run(sub),
        None => run(cli.run, inherited),
    };
    std::process::exit(status.into())
}

/// Opens /dev/null on whichever of fds 0, 1 and 2 is closed, as Rust's own start-up code does:
/// otherwise the next file restartd opens (its lock, state.json) would take that number, and
/// what it prints would land in it.
fn open_standard_fds() {
    use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
    use std::os::fd::{BorrowedFd, IntoRawFd};
    // SAFETY: 0–2 are only polled; a closed one reports POLLNVAL, nothing reads or closes it.
    let fds = [0, 1, 2].map(|fd| unsafe { BorrowedFd::borrow_raw(fd) });
    let mut polled = fds.map(|fd| PollFd::new(fd, PollFlags::empty()));
    if poll(&mut polled, PollTimeout::ZERO).is_err() {
        return;
    }
    for fd in polled {
        if fd
            .revents()
            .is_some_and(|r| r.contains(PollFlags::POLLNVAL))
        {
            // The lowest free number is the closed one; keep it open for the whole process.
            let mode = nix::fcntl::OFlag::O_RDWR;
            if let Ok(file) = nix::fcntl::open("/dev/null", mode, nix::sys::stat::Mode::empty()) {
                let _ = file.into_raw_fd();
            }
        }
    }
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
    let token_file = args.listen_token_file.as_deref();
    let listen =
        restartd::base::values::check_listen(args.listen, args.listen_remote, token_file.is_some());
    let token = listen.and_then(|()| token_file.map(read_token_file).transpose());
    let token = token.unwrap_or_else(|msg| {
        Cli::command()
            .error(clap::error::ErrorKind::ValueValidation, msg)
            .exit()
    });
    let cfg = config::from_args(args, token, &|key| std::env::var_os(key));
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

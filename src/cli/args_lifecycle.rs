//! The run options of SPEC §13 that shape a child's life and its log file (`--env-file`,
//! `--max-runtime`, `--log-timestamps`, `--log-max-age`, `--log-compress`), and the `logs`
//! subcommand's arguments. Flattened into `args::RunArgs` and `args::Sub`, so they are part of
//! the one clap definition that help, man page and completions come from.

use std::path::PathBuf;
use std::time::Duration;

use clap::Args;

use crate::base::values::{parse_duration, parse_name, parse_nonzero_duration};
use crate::cli::args::StateDir;

/// The `--help` headings these options go under (as in `args`).
const RESTARTS: &str = "Restarts";
const OUTPUT: &str = "Output";

/// `--env-file`, `--max-runtime`, `--max-runtime-jitter`.
#[derive(Debug, Args)]
pub struct LifecycleArgs {
    /// Add KEY=VALUE lines of PATH to the child's environment [default: none]
    ///
    /// Repeatable; read again before every start, in order, later files and lines winning, on
    /// top of restartd's own environment. Blank lines and '#' comments are skipped, 'export '
    /// is allowed, 'single quotes' are literal, "double quotes" unescape \n, \" and \\; nothing
    /// is expanded. A missing or malformed file is a usage error at start; at a later start
    /// restartd keeps the environment it last read, says why once, and starts the child
    /// anyway. A pipe or FIFO (--env-file <(...)) is read at restartd's start only, and later
    /// starts keep what it gave. RESTARTD_NAME, RESTARTD_RESTARTS and the sd_notify variables
    /// are restartd's and win. Accepts a file path.
    #[arg(long = "env-file", value_name = "PATH", help_heading = RESTARTS)]
    pub env_files: Vec<PathBuf>,

    /// Restart the child gracefully after it has run DUR [default: off]
    ///
    /// A scheduled restart, as 'restartd restart' does (stop signal, --stop-timeout,
    /// cleanup, start), for programs that leak slowly (systemd's RuntimeMaxSec=, PM2's
    /// cron_restart). It writes no crash record, costs no backoff, does not count in
    /// --window, and is counted in state.json's scheduled_restarts. Accepts a duration above
    /// 0: 30m, 12h, 1d.
    #[arg(long, value_name = "DUR", value_parser = parse_nonzero_duration, help_heading = RESTARTS)]
    pub max_runtime: Option<Duration>,

    /// Add a random 0...DUR to each --max-runtime
    ///
    /// Drawn anew at each start, so that instances started together do not all restart
    /// together. Accepts a duration: 500ms, 10s, 5m, 1h 30m.
    #[arg(long, value_name = "DUR", default_value = "0s", value_parser = parse_duration, requires = "max_runtime", help_heading = RESTARTS)]
    pub max_runtime_jitter: Duration,
}

/// `--log-timestamps`, `--log-max-age`, `--log-compress`.
#[derive(Debug, Args)]
pub struct LogFileArgs {
    /// Start every line of the log file with its UTC time [default: off]
    ///
    /// RFC 3339 with milliseconds and a space: '2026-12-05T07:35:08.099Z server started'.
    /// The time is when the line's first byte reached restartd. Only the --log-file gets
    /// them; restartd's stdout and stderr stay as the child wrote them.
    #[arg(long, requires = "log_file", help_heading = OUTPUT)]
    pub log_timestamps: bool,

    /// Delete rotated log files older than DUR [default: off]
    ///
    /// Checked at start and at each rotation, by the files' modification time. Accepts a
    /// duration above 0: 12h, 7d, 4w.
    #[arg(long, value_name = "DUR", value_parser = parse_nonzero_duration, requires = "log_file", help_heading = OUTPUT)]
    pub log_max_age: Option<Duration>,

    /// Gzip rotated log files: PATH.1.gz ... PATH.N.gz [default: off]
    ///
    /// Compressed between the loop's other work, each turn as much as the turn wrote, so the
    /// child's output never waits for a whole file; a child writing faster than restartd
    /// compresses is paced to it. 'restartd logs' reads them too.
    #[arg(long, requires = "log_file", help_heading = OUTPUT)]
    pub log_compress: bool,
}

/// `restartd logs NAME [-n N] [-f] [--since DUR]`.
#[derive(Debug, Args)]
pub struct LogsArgs {
    /// Instance name
    #[arg(value_parser = parse_name)]
    pub name: String,
    /// The last N lines (0: all)
    ///
    /// Accepts a whole number.
    #[arg(short = 'n', value_name = "N", default_value = "50")]
    pub n: usize,
    /// Keep printing new lines, across rotations, until the instance stops
    ///
    /// Ends by itself once the instance's restartd has exited (or on Ctrl-C).
    #[arg(short = 'f', long)]
    pub follow: bool,
    /// Only lines of this trailing time [default: all]
    ///
    /// By each line's time with --log-timestamps; without it, by the modification time of
    /// each file, whose lines are shown whole or not at all. Accepts a duration: 30m, 1h, 2d.
    #[arg(long, value_name = "DUR", value_parser = parse_duration)]
    pub since: Option<Duration>,
    #[command(flatten)]
    pub dir: StateDir,
}

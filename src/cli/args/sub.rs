//! The subcommands, and `--state-dir` that each of them takes.

use super::*;

/// Subcommands for a running or past instance.
#[derive(Debug, Subcommand)]
pub enum Sub {
    /// Show the state of one instance, or of all
    ///
    /// A table: name, status, pid, uptime, restarts in total and (in the window/limit),
    /// health, and the last exit with the error it printed. Exits 0 when the instance (every
    /// instance) runs, 3 when not, 4 when there is no such instance.
    Status {
        /// Instance name [default: all instances]
        #[arg(value_parser = parse_name)]
        name: Option<String>,
        /// Print JSON: an object for one instance, an array for all
        ///
        /// Each object has state.json's fields plus "running"; 'restartd man' describes them.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        dir: StateDir,
    },
    /// List every instance in the state directory, a line each
    List {
        /// Print a JSON array, as 'status --json' without a name
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        dir: StateDir,
    },
    /// Show recent crash records, newest first
    ///
    /// A line each: time (UTC), id, reason, exit, and the recognised error.
    Crashes {
        /// Instance name
        #[arg(value_parser = parse_name)]
        name: String,
        /// Only crashes in this trailing time [default: all]
        ///
        /// Accepts a duration: 30m, 1h, 2d.
        #[arg(long, value_name = "DUR", value_parser = parse_duration)]
        since: Option<Duration>,
        /// At most N records (0: all)
        ///
        /// Accepts a whole number.
        #[arg(short = 'n', value_name = "N", default_value = "20")]
        n: usize,
        /// One record in full, stack trace included [default: none]
        ///
        /// Exits 4 for an unknown id. Accepts an id as 'crashes' lists it.
        #[arg(long, value_name = "ID", conflicts_with_all = ["since", "stats"])]
        id: Option<String>,
        /// Only the records of one error [default: all]
        ///
        /// Accepts a fingerprint (16 hex digits) as --stats lists them.
        #[arg(long, value_name = "F", value_parser = parse_fingerprint, conflicts_with_all = ["id", "stats"])]
        fingerprint: Option<String>,
        /// Counts: last hour, last 24 h, total, by reason, error type and fingerprint
        ///
        /// And "degraded" when there was a crash in the last hour, else "healthy".
        #[arg(long)]
        stats: bool,
        /// Print JSON: records as JSON lines, --stats as one object
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        dir: StateDir,
    },
    /// Clear an instance's restart window
    ///
    /// A running instance is asked over its control socket; a stopped one is changed while
    /// holding its lock.
    Reset {
        /// Instance name
        #[arg(value_parser = parse_name)]
        name: String,
        /// Also delete the crash history
        ///
        /// A running instance removes crashes.jsonl and crashes.jsonl.1 itself and writes the
        /// next record to a new file.
        #[arg(long)]
        crashes: bool,
        #[command(flatten)]
        dir: StateDir,
    },
    /// Stop a running instance gracefully and wait until it has exited
    ///
    /// Exits 3 when the instance is not running.
    Stop {
        /// Instance name
        #[arg(value_parser = parse_name)]
        name: String,
        #[command(flatten)]
        dir: StateDir,
    },
    /// Restart a running instance's child gracefully (no crash, no backoff)
    ///
    /// Sent during a reload, it waits for the reload to be over, then restarts the child it
    /// left. Exits 3 when the instance is not running.
    Restart {
        /// Instance name
        #[arg(value_parser = parse_name)]
        name: String,
        #[command(flatten)]
        dir: StateDir,
    },
    /// Replace a running instance's child without downtime (with --socket)
    ///
    /// Starts a new child on the same sockets, waits until it is ready, then stops the old
    /// one. Exits 0 when replaced, 1 when the new child failed and the old one kept running,
    /// 3 when the instance is not running. Sent during a reload, it waits for that one, then
    /// reloads again. Without --socket it is 'restart'.
    Reload {
        /// Instance name
        #[arg(value_parser = parse_name)]
        name: String,
        #[command(flatten)]
        dir: StateDir,
    },
    /// Send a signal to a running instance's child process group
    ///
    /// Exits 3 when the instance is not running.
    Signal {
        /// Instance name
        #[arg(value_parser = parse_name)]
        name: String,
        /// Signal name or number, e.g. HUP, SIGUSR1, 10
        #[arg(value_parser = parse_signal)]
        signal: Sig,
        #[command(flatten)]
        dir: StateDir,
    },
    /// Print an instance's metrics in the Prometheus text format
    ///
    /// Derived from state.json and crashes.jsonl, so it works without --metrics-file and for
    /// an instance that is not running (restartd_up is then 0).
    Metrics {
        /// Instance name
        #[arg(value_parser = parse_name)]
        name: String,
        #[command(flatten)]
        dir: StateDir,
    },
    /// Print the last lines of an instance's --log-file, rotated files included
    ///
    /// Reads PATH, PATH.1 ... and their gzipped copies; -f follows across rotations until the
    /// instance stops. Exits 4 when there is no such instance or it has no --log-file.
    Logs(crate::cli::args_lifecycle::LogsArgs),
    /// Print shell completions to stdout
    ///
    /// bash: save as /usr/share/bash-completion/completions/restartd; zsh: as _restartd in a
    /// directory of $fpath; fish: as ~/.config/fish/completions/restartd.fish.
    Completions {
        /// The shell
        #[arg(value_name = "SHELL")]
        shell: clap_complete::Shell,
    },
    /// Print a systemd unit that runs restartd with these options
    ///
    /// RUN OPTIONS are those of 'restartd [OPTIONS] -- COMMAND', checked as a run checks them;
    /// every word of ExecStart= is quoted for systemd. 'restartd man' (UNDER SYSTEMD) explains
    /// each line. Exits 2 for a bad option or an argument a unit file cannot hold.
    Unit {
        /// Print a user unit (systemctl --user): WantedBy=default.target
        #[arg(long)]
        user: bool,
        /// Run options, then -- and the command, e.g. --notify -- python3 app.py
        #[arg(value_name = "RUN OPTIONS", trailing_var_arg = true, allow_hyphen_values = true, num_args = 1.., required = true)]
        args: Vec<OsString>,
    },
    /// Print the manual page (roff) to stdout
    ///
    /// Read it with 'restartd man | man -l -', or install it as man1/restartd.1.
    Man,
}

/// `--state-dir`, accepted by every subcommand.
#[derive(Debug, Clone, Args)]
pub struct StateDir {
    #[arg(long, value_name = "DIR", help = STATE_DIR_HELP, long_help = STATE_DIR_LONG_HELP)]
    pub state_dir: Option<PathBuf>,
}

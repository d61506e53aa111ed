//! The command line: every flag and subcommand, as clap derive types.
//!
//! This is the single source of `--help`, the man page and the completions. The value parsers
//! are `base::values`': they reject a bad value with the accepted form, and clap names the flag
//! and exits 2. No defaults are decided elsewhere: `config.rs` only combines what is parsed here.

use std::ffi::OsString;
use std::path::PathBuf;
use std::time::Duration;

use clap::builder::{PossibleValue, PossibleValuesParser, TypedValueParser};
use clap::{Args, Parser, Subcommand};

use crate::base::config::LogFormat;
use crate::base::values::{
    parse_alert_limit, parse_codes, parse_duration, parse_factor, parse_fingerprint,
    parse_fraction, parse_health_url, parse_keep, parse_label, parse_listen, parse_max_restarts,
    parse_name, parse_nonzero_duration, parse_retries, parse_signal, parse_size, parse_tail_lines,
    AlertLimit, Codes, HealthUrl, Label, MaxRestarts, Sig,
};
use crate::supervise::policy::RestartPolicy;

mod readiness;
pub use readiness::ReadinessArgs;

/// The widest `--help` and `-h` may be (the man page wraps its help lines the same).
pub const HELP_WIDTH: usize = 79;

/// `-h`'s epilogue: what the value forms mean, and where to read more.
const AFTER_HELP: &str = "\
DUR is a duration: 500ms, 10s, 5m, 1h 30m (a bare 0 is zero), at most 10y.
SIZE is 512M or 2G (K, M, G, T are powers of 1024).
LIST is exit codes 0-255 with commas: 1,3,78.

Examples:
  restartd -- uvicorn main:app
  restartd --restart always --max-restarts 10 --window 1m -- ./worker
  restartd status
  restartd crashes api

'restartd --help' shows every flag in full; 'restartd man' prints the manual.";

/// The headings `--help` groups the run options under.
mod heading {
    pub const RESTARTS: &str = "Restarts";
    pub const EXIT_CODES: &str = "Exit codes";
    pub const STOPPING: &str = "Stopping";
    pub const HEALTH: &str = "Health checks";
    pub const MONITORS: &str = "Notify, watchdog and memory";
    pub const CRASHES: &str = "Crash records and hooks";
    pub const OUTPUT: &str = "Output";
    pub const OBSERVE: &str = "Observability";
}

/// `--state-dir`, the same for the run and every subcommand.
const STATE_DIR_HELP: &str = "Where instance directories live [default: see --help]";
const STATE_DIR_LONG_HELP: &str = "\
Where instance directories live [default: see below]

Each instance has its own directory STATE_DIR/NAME with state.json, crashes.jsonl and its lock. \
Without --state-dir it is the first of: $RESTARTD_STATE_DIR, $STATE_DIRECTORY (set by systemd's \
StateDirectory=), $XDG_STATE_HOME/restartd, $HOME/.local/state/restartd, /var/lib/restartd. \
Accepts any directory path; it is created (mode 0700) when missing.";

/// Run one command and keep it running: restart policies, backoff, signals, state.
///
/// restartd runs COMMAND as its child and restarts it when it ends, as systemd's Restart=
/// policies decide, with exponential backoff and a limit of restarts per time window. It
/// forwards signals, reaps orphans (it works as a container's PID 1), writes a crash record
/// with the recognised error for every crash, and keeps a state file that 'restartd status'
/// reads.
#[derive(Debug, Parser)]
#[command(
    name = "restartd",
    version,
    override_usage = "restartd [OPTIONS] -- COMMAND [ARGS...]\n       restartd <SUBCOMMAND> [ARGS]",
    args_conflicts_with_subcommands = true,
    help_expected = true,
    max_term_width = HELP_WIDTH,
    after_help = AFTER_HELP
)]
pub struct Cli {
    #[command(subcommand)]
    pub subcommand: Option<Sub>,
    #[command(flatten)]
    pub run: RunArgs,
}

/// Options of `restartd [OPTIONS] -- COMMAND`.
#[derive(Debug, Args)]
pub struct RunArgs {
    /// Instance name [default: basename of COMMAND]
    ///
    /// Selects the instance directory STATE_DIR/NAME and names restartd's messages. Two
    /// restartd processes with the same name refuse to run at once. Accepts 1-100 letters,
    /// digits, '.', '_', '-', '@' or '+', not starting with '.'. The default is the command's
    /// basename with any other character replaced by '_'.
    #[arg(short = 'n', long, value_name = "NAME", value_parser = parse_name)]
    pub name: Option<String>,

    #[arg(long, value_name = "DIR", help = STATE_DIR_HELP, long_help = STATE_DIR_LONG_HELP)]
    pub state_dir: Option<PathBuf>,

    /// When to restart (systemd's Restart=)
    ///
    /// A clean end is exit 0, a code in --success-exit-codes, or death by SIGHUP, SIGINT,
    /// SIGTERM or SIGPIPE. 'restartd man' shows the whole table.
    #[arg(long, value_name = "POLICY", default_value = "on-failure", value_parser = one_of(&RestartPolicy::ALL, RestartPolicy::as_str, policy_help), help_heading = heading::RESTARTS)]
    pub restart: RestartPolicy,

    /// Give up past N restarts in --window
    ///
    /// Before each restart restartd counts the restarts it made inside the trailing --window;
    /// if that count is already N, it gives up and exits with the child's last status. The
    /// times are kept in state.json, so a restartd that is itself restarted keeps counting.
    /// Accepts a whole number, 0 (never restart) or 'unlimited'.
    #[arg(long, value_name = "N", default_value = "5", value_parser = parse_max_restarts, help_heading = heading::RESTARTS)]
    pub max_restarts: MaxRestarts,

    /// The trailing window of --max-restarts
    ///
    /// Accepts a duration: 500ms, 10s, 5m, 1h 30m.
    #[arg(long, value_name = "DUR", default_value = "5m", value_parser = parse_duration, help_heading = heading::RESTARTS)]
    pub window: Duration,

    /// First delay of a crash streak
    ///
    /// Restart k of a streak waits min(--max-delay, --delay x --backoff-factor^(k-1)).
    /// Accepts a duration: 500ms, 10s, 5m, 1h 30m, or 0 for none.
    #[arg(long, value_name = "DUR", default_value = "1s", value_parser = parse_duration, help_heading = heading::RESTARTS)]
    pub delay: Duration,

    /// Each further delay is F times longer
    ///
    /// Accepts a number from 1 (a constant delay) to 1000, e.g. 1.5.
    #[arg(long, value_name = "F", default_value = "2", value_parser = parse_factor, help_heading = heading::RESTARTS)]
    pub backoff_factor: f64,

    /// Cap on the restart delay
    ///
    /// Accepts a duration: 500ms, 10s, 5m, 1h 30m. A cap below --delay counts as --delay.
    #[arg(long, value_name = "DUR", default_value = "1m", value_parser = parse_duration, help_heading = heading::RESTARTS)]
    pub max_delay: Duration,

    /// Randomise each delay by +-FRACTION
    ///
    /// Spreads the restarts of many instances that crashed together. Accepts a number from 0
    /// to 1, e.g. 0.1 for +-10%.
    #[arg(long, value_name = "FRACTION", default_value = "0", value_parser = parse_fraction, help_heading = heading::RESTARTS)]
    pub jitter: f64,

    /// A run this long ends the streak
    ///
    /// After a run of at least this long, the next restart waits --delay again. Accepts a
    /// duration: 500ms, 10s, 5m, 1h 30m.
    #[arg(long, value_name = "DUR", default_value = "10s", value_parser = parse_duration, help_heading = heading::RESTARTS)]
    pub min_uptime: Duration,

    /// Codes that count as a clean exit besides 0 [default: none]
    ///
    /// As systemd's SuccessExitStatus=. Accepts exit codes 0-255 separated by commas, e.g.
    /// 3,143.
    #[arg(long, value_name = "LIST", value_parser = parse_codes, help_heading = heading::EXIT_CODES)]
    pub success_exit_codes: Option<Codes>,

    /// Codes that never restart, whatever the policy [default: none]
    ///
    /// This list wins over everything, --force-restart-exit-codes included. Accepts exit codes
    /// 0-255 separated by commas, e.g. 78.
    #[arg(long, value_name = "LIST", value_parser = parse_codes, help_heading = heading::EXIT_CODES)]
    pub no_restart_exit_codes: Option<Codes>,

    /// Codes that always restart, whatever the policy [default: none]
    ///
    /// The --max-restarts limit still applies. Accepts exit codes 0-255 separated by commas,
    /// e.g. 75.
    #[arg(long, value_name = "LIST", value_parser = parse_codes, help_heading = heading::EXIT_CODES)]
    pub force_restart_exit_codes: Option<Codes>,

    /// Signal for stopping the child
    ///
    /// Used by 'restartd stop', 'restartd restart' and the unhealthy and memory stops. A
    /// signal to restartd is passed on as it is. Accepts a name or number: TERM, SIGINT, 15.
    #[arg(long, value_name = "SIG", default_value = "TERM", value_parser = parse_signal, help_heading = heading::STOPPING)]
    pub stop_signal: Sig,

    /// SIGKILL the group DUR after a stop
    ///
    /// Applies to every stop: a signal to restartd, 'restartd stop', an unhealthy child, and
    /// the cleanup of what is left of the child's process group. Accepts a duration: 500ms,
    /// 10s, 5m, 1h 30m.
    #[arg(long, value_name = "DUR", default_value = "10s", value_parser = parse_duration, help_heading = heading::STOPPING)]
    pub stop_timeout: Duration,

    /// Health check command, run with sh -c [default: none]
    ///
    /// Exit 0 means healthy. Its output (at most 4 KiB) goes into the crash record of an
    /// unhealthy child. Accepts any shell command, e.g. 'pg_isready -q'.
    #[arg(long, value_name = "CMD", conflicts_with = "health_url", help_heading = heading::HEALTH)]
    pub health_cmd: Option<String>,

    /// Health check URL; 2xx or 3xx means healthy [default: none]
    ///
    /// A plain HTTP/1.1 GET; the host is resolved once at start. Accepts
    /// http://host:port/path; for https use --health-cmd 'curl -fsS URL'.
    #[arg(long, value_name = "URL", value_parser = parse_health_url, help_heading = heading::HEALTH)]
    pub health_url: Option<HealthUrl>,

    /// Time between health checks
    ///
    /// The first check runs one interval after the start. Accepts a duration: 500ms, 10s,
    /// 5m, 1h 30m.
    #[arg(long, value_name = "DUR", default_value = "30s", value_parser = parse_duration, help_heading = heading::HEALTH)]
    pub health_interval: Duration,

    /// A health check slower than this fails
    ///
    /// Accepts a duration: 500ms, 10s, 5m, 1h 30m.
    #[arg(long, value_name = "DUR", default_value = "5s", value_parser = parse_duration, help_heading = heading::HEALTH)]
    pub health_timeout: Duration,

    /// Failed checks in a row that make the child unhealthy
    ///
    /// An unhealthy child gets a crash record with reason 'unhealthy', is stopped, and the
    /// policy decides. Accepts a whole number of at least 1.
    #[arg(long, value_name = "N", default_value = "3", value_parser = parse_retries, help_heading = heading::HEALTH)]
    pub health_retries: u32,

    /// Failed checks this soon after a start do not count
    ///
    /// Accepts a duration: 500ms, 10s, 5m, 1h 30m.
    #[arg(long, value_name = "DUR", default_value = "0s", value_parser = parse_duration, help_heading = heading::HEALTH)]
    pub health_start_period: Duration,

    /// Give the child an sd_notify socket [default: off]
    ///
    /// restartd understands READY=1, STATUS=..., WATCHDOG=1, WATCHDOG_USEC=... and STOPPING=1.
    /// Under systemd, restartd's own READY=1 then waits for the child's.
    #[arg(long, help_heading = heading::MONITORS)]
    pub notify: bool,

    /// Require WATCHDOG=1 this often [default: off]
    ///
    /// Implies --notify; the child also gets WATCHDOG_USEC and WATCHDOG_PID. The clock starts
    /// at spawn and every READY=1 or WATCHDOG=1 restarts it. A missed ping sends SIGABRT (so
    /// the runtime dumps its stack); a child still running --stop-timeout later gets the stop
    /// sequence (stop signal, --stop-timeout, SIGKILL); reason 'watchdog'. Accepts a duration
    /// above 0: 500ms, 10s, 5m.
    #[arg(long, value_name = "DUR", value_parser = parse_nonzero_duration, help_heading = heading::MONITORS)]
    pub watchdog: Option<Duration>,

    /// Restart past this much RSS [default: off]
    ///
    /// The summed RSS of the child's process group and its reparented descendants, sampled
    /// every second; over the limit means a crash record with reason 'memory', a stop, and
    /// the policy. Accepts a number with K, M, G or T (powers of 1024), e.g. 512M, 2G.
    #[arg(long, value_name = "SIZE", value_parser = parse_size, help_heading = heading::MONITORS)]
    pub max_memory: Option<u64>,

    /// Append the child's output to PATH [default: none]
    ///
    /// Both stdout and stderr, which still go to restartd's own too. The file is created with
    /// mode 0640 and rotated by --log-max-size and --log-keep. Accepts a file path.
    #[arg(long, value_name = "PATH", help_heading = heading::OUTPUT)]
    pub log_file: Option<std::path::PathBuf>,

    /// Rotate the log file past this size
    ///
    /// Accepts a number with K, M, G or T (powers of 1024), e.g. 10M.
    #[arg(long, value_name = "SIZE", default_value = "10M", value_parser = parse_size, help_heading = heading::OUTPUT)]
    pub log_max_size: u64,

    /// Rotated files kept, PATH.1 ... PATH.N
    ///
    /// Accepts a whole number from 0 to 1000.
    #[arg(long, value_name = "N", default_value = "5", value_parser = parse_keep, help_heading = heading::OUTPUT)]
    pub log_keep: u32,

    #[command(flatten)]
    pub log: crate::cli::args_lifecycle::LogFileArgs,

    /// Stderr lines a crash record keeps
    ///
    /// At most 64 KiB of them. Accepts a whole number from 0 to 100000.
    #[arg(long, value_name = "N", default_value = "100", value_parser = parse_tail_lines, help_heading = heading::CRASHES)]
    pub tail_lines: usize,

    /// Hook run after every crash record [default: none]
    ///
    /// The record is one JSON line on the hook's stdin; RESTARTD_EVENT, RESTARTD_NAME,
    /// RESTARTD_CRASH_ID, RESTARTD_REASON, RESTARTD_EXIT_CODE, RESTARTD_SIGNAL,
    /// RESTARTD_RESTARTS, RESTARTD_ACTION and RESTARTD_SUPPRESSED are in its environment. A
    /// hook is killed after 30s. Accepts any shell command.
    #[arg(long, value_name = "CMD", help_heading = heading::CRASHES)]
    pub on_crash: Option<String>,

    /// Hook run when restartd gives up [default: none]
    ///
    /// As --on-crash, with RESTARTD_EVENT=give-up; never rate limited, and waited for before
    /// restartd exits. Accepts any shell command.
    #[arg(long, value_name = "CMD", help_heading = heading::CRASHES)]
    pub on_give_up: Option<String>,

    /// At most N --on-crash runs per DUR
    ///
    /// Over a sliding window; the crashes beyond it are counted in the next run's
    /// RESTARTD_SUPPRESSED. Accepts COUNT/DURATION, e.g. 5/5m or 1/30s.
    #[arg(long, value_name = "N/DUR", default_value = "5/5m", value_parser = parse_alert_limit, help_heading = heading::CRASHES)]
    pub alert_limit: AlertLimit,

    /// Forget a previous run's restart window
    ///
    /// As 'restartd reset NAME' does for an instance that is not running.
    #[arg(long, help_heading = heading::RESTARTS)]
    pub reset: bool,

    #[command(flatten)]
    pub lifecycle: crate::cli::args_lifecycle::LifecycleArgs,

    /// Print only warnings and errors
    #[arg(short, long, conflicts_with = "verbose", help_heading = heading::OUTPUT)]
    pub quiet: bool,

    /// Also print starts, signals and reaped orphans
    #[arg(short, long, help_heading = heading::OUTPUT)]
    pub verbose: bool,

    /// restartd's own messages as text or json
    ///
    /// text lines start with a local time (HH:MM:SS) and restartd[NAME]:, or, under systemd
    /// (JOURNAL_STREAM is stderr), with a <N> priority for the journal instead of the time.
    /// json lines have time, level, name, msg and the facts of the event; 'restartd man'
    /// lists the fields.
    #[arg(long, value_name = "FORMAT", default_value = "text", value_parser = one_of(&LogFormat::ALL, LogFormat::as_str, log_format_help), help_heading = heading::OUTPUT)]
    pub log_format: LogFormat,

    /// Attach KEY=VALUE to crash records, state and metrics [default: none]
    ///
    /// Repeatable. Accepts KEY=VALUE, e.g. --label version=1.4.2 --label env=prod; KEY is a
    /// letter or '_' then letters, digits or '_' (not name, reason, error_type or __*).
    #[arg(long = "label", value_name = "KEY=VALUE", value_parser = parse_label, help_heading = heading::OBSERVE)]
    pub labels: Vec<Label>,

    /// Serve metrics, status, crashes and a dashboard on ADDR:PORT [default: off]
    ///
    /// GET /metrics (Prometheus), /status, /crashes?n=N&since=DUR, /crashes/stats, /healthz
    /// and / (an HTML page). Accepts IP:PORT, e.g. 127.0.0.1:9100 or [::1]:9100; port 0
    /// picks a free port and restartd prints it. Only loopback unless --listen-remote.
    ///
    /// A request whose Host header names neither ADDR's IP nor localhost (any port) gets 421,
    /// so a web page on another origin cannot read crash records through DNS rebinding. On
    /// 0.0.0.0 or [::] any IP literal counts as the address. A request without a Host header
    /// (HTTP/1.0) is answered: browsers always send one.
    #[arg(long, value_name = "ADDR:PORT", value_parser = parse_listen, help_heading = heading::OBSERVE)]
    pub listen: Option<std::net::SocketAddr>,

    /// Allow --listen on a non-loopback address
    ///
    /// Crash records can hold secrets from the child's stderr: expose them knowingly. Needs
    /// --listen-token-file, so that only clients with the token read them.
    #[arg(long, requires = "listen", help_heading = heading::OBSERVE)]
    pub listen_remote: bool,

    /// Require a bearer token from every --listen request [default: none]
    ///
    /// A request without 'Authorization: Bearer TOKEN' gets 401. TOKEN is the first line of
    /// PATH, which must be owned by restartd's user and closed to others (chmod 600); it is
    /// read once, at start. A browser cannot add the header, so with a token the dashboard
    /// page is for curl and scrapers (Prometheus: authorization.credentials_file). Required
    /// with --listen-remote. Accepts a file path.
    #[arg(long, value_name = "PATH", help_heading = heading::OBSERVE)]
    pub listen_token_file: Option<PathBuf>,

    /// Keep Prometheus text metrics in PATH [default: none]
    ///
    /// Replaced atomically at every change of state, for node_exporter's textfile
    /// collector (name it *.prom). Accepts a file path.
    #[arg(long, value_name = "PATH", help_heading = heading::OBSERVE)]
    pub metrics_file: Option<PathBuf>,

    #[command(flatten)]
    pub readiness: ReadinessArgs,

    /// The command to run, after --
    #[arg(last = true, value_name = "COMMAND", num_args = 1..)]
    pub command: Vec<OsString>,
}

/// A value parser that offers `all` by `name`, each with its `help` line, as a
/// `clap::ValueEnum` would: the types `--restart` and `--log-format` take live below the command
/// line and know nothing of clap.
fn one_of<T: Copy + Send + Sync + 'static>(
    all: &'static [T],
    name: fn(T) -> &'static str,
    help: fn(T) -> &'static str,
) -> impl TypedValueParser<Value = T> {
    let values = all
        .iter()
        .map(move |&v| PossibleValue::new(name(v)).help(help(v)));
    PossibleValuesParser::new(values).map(move |text| {
        let found = all.iter().find(|&&v| name(v) == text);
        *found.expect("PossibleValuesParser passes only the names offered")
    })
}

/// The help line of each `--restart` value.
fn policy_help(policy: RestartPolicy) -> &'static str {
    match policy {
        RestartPolicy::No => "Never restart",
        RestartPolicy::Always => "Restart after every end",
        RestartPolicy::OnSuccess => "Only after a clean end",
        RestartPolicy::OnFailure => {
            "After an unclean exit code or signal, unhealthy, memory, watchdog"
        }
        RestartPolicy::OnAbnormal => "After an unclean signal, unhealthy, memory, watchdog",
        RestartPolicy::OnAbort => "Only after an unclean signal",
        RestartPolicy::OnWatchdog => "Only after a watchdog timeout",
    }
}

/// The help line of each `--log-format` value.
fn log_format_help(format: LogFormat) -> &'static str {
    match format {
        LogFormat::Text => "Lines for people and the journal",
        LogFormat::Json => "One JSON object a line, for log shippers",
    }
}

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
    /// Exits 3 when the instance is not running.
    Restart {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_run_and_a_subcommand_parse() {
        let cli = Cli::try_parse_from(["restartd", "--delay", "50ms", "--", "sleep", "1"]).unwrap();
        assert!(cli.subcommand.is_none());
        assert_eq!(cli.run.command, ["sleep", "1"]);
        assert_eq!(cli.run.delay, Duration::from_millis(50));
        let cli = Cli::try_parse_from(["restartd", "status", "api", "--json"]).unwrap();
        assert!(matches!(
            cli.subcommand,
            Some(Sub::Status { json: true, .. })
        ));
        // A program named like a subcommand runs after --.
        let cli = Cli::try_parse_from(["restartd", "--", "status"]).unwrap();
        assert_eq!(cli.run.command, ["status"]);
    }

    #[test]
    fn every_policy_and_log_format_parses_to_itself() {
        for policy in RestartPolicy::ALL {
            let argv = ["restartd", "--restart", policy.as_str(), "--", "true"];
            assert_eq!(Cli::try_parse_from(argv).unwrap().run.restart, policy);
        }
        for format in LogFormat::ALL {
            let argv = ["restartd", "--log-format", format.as_str(), "--", "true"];
            assert_eq!(Cli::try_parse_from(argv).unwrap().run.log_format, format);
        }
    }

    #[test]
    fn bad_values_name_the_flag() {
        let err = Cli::try_parse_from(["restartd", "--delay", "10x", "--", "true"]).unwrap_err();
        assert_eq!(err.exit_code(), 2);
        let text = err.to_string();
        assert!(
            text.contains("invalid value '10x' for '--delay <DUR>': invalid duration '10x'"),
            "{text}"
        );
    }
}

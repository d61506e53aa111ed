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
use crate::base::sockets::{parse_socket, SocketSpec};
use crate::base::values::{
    parse_alert_limit, parse_codes, parse_duration, parse_factor, parse_fingerprint,
    parse_fraction, parse_health_url, parse_keep, parse_label, parse_listen, parse_max_restarts,
    parse_name, parse_nonzero_duration, parse_retries, parse_signal, parse_size, parse_tail_lines,
    AlertLimit, Codes, HealthUrl, Label, MaxRestarts, Sig,
};
use crate::supervise::policy::RestartPolicy;

mod readiness;
mod sub;
pub use readiness::ReadinessArgs;
pub use sub::{StateDir, Sub};

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
    pub const SOCKETS: &str = "Sockets";
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

    /// Hold a listening socket for the child: fds 3, 4, ... [default: none]
    ///
    /// Repeatable. Bound once, before the first start, kept until restartd exits; every child
    /// gets the sockets in order as fds 3, 4, ... with LISTEN_FDS, LISTEN_PID and
    /// LISTEN_FDNAMES (systemd's socket activation). Connections wait in the backlog while the
    /// child restarts, and 'restartd reload' starts the new child beside the old one. Accepts
    /// [NAME=]tcp://HOST:PORT (IPv4, [IPv6] or localhost) or [NAME=]unix:PATH.
    #[arg(long = "socket", value_name = "[NAME=]ADDR", value_parser = parse_socket, help_heading = heading::SOCKETS)]
    pub sockets: Vec<SocketSpec>,

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
    /// Until a start's first check passes, checks run every min(DUR, 1s), the first one that
    /// long after the start, so readiness is seen at once; of their failures at most one per
    /// DUR counts toward --health-retries, and none while --ready-timeout waits for that first
    /// pass (without --notify: the timeout decides then). After the first pass, a check every
    /// DUR. Accepts a duration: 500ms, 10s, 5m, 1h 30m.
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
    /// A passing check ends it early, as Docker's start period. Accepts a duration: 500ms, 10s, 5m, 1h 30m.
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
            "After an unclean exit code or signal, unhealthy, memory, OOM kill, watchdog"
        }
        RestartPolicy::OnAbnormal => {
            "After an unclean signal, unhealthy, memory, OOM kill, watchdog"
        }
        RestartPolicy::OnAbort => "Only after an unclean signal (not an OOM kill)",
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

#[cfg(test)]
mod tests;

//! Everything `restartd -- COMMAND` runs with: the machine's `Settings` and what the parts
//! around it take (`base::config`'s pieces, hooks, labels, the observability endpoints).
//!
//! Plain data, filled in by `cli::config` from the flags and the environment. It lives here, not
//! in `base`, because it holds the machine's settings; every layer that reads it is above.

use std::ffi::OsString;
use std::path::PathBuf;
use std::time::Duration;

use crate::base::config::{HealthConfig, LogFileConfig, LogFormat, Token, Verbosity};
use crate::base::values::AlertLimit;
use crate::supervise::machine::Settings;

/// Everything `restartd -- COMMAND` runs with.
#[derive(Debug, Clone)]
pub struct Config {
    pub name: String,
    pub state_dir: PathBuf,
    pub command: Vec<OsString>,
    pub settings: Settings,
    pub window: Duration,
    pub max_restarts: Option<u32>,
    pub reset: bool,
    pub tail_lines: usize,
    pub health: Option<HealthConfig>,
    /// `--notify`, or implied by `--watchdog`.
    pub notify: bool,
    pub watchdog: Option<Duration>,
    pub max_memory: Option<u64>,
    pub log_file: Option<LogFileConfig>,
    pub on_crash: Option<String>,
    pub on_give_up: Option<String>,
    pub alert_limit: AlertLimit,
    pub verbosity: Verbosity,
    pub log_format: LogFormat,
    /// `--label`s by key (a repeated key keeps its last value).
    pub labels: std::collections::BTreeMap<String, String>,
    /// `--listen` (already checked against `--listen-remote`).
    pub listen: Option<std::net::SocketAddr>,
    /// The token of `--listen-token-file`, read (and its file checked) before the run.
    pub listen_token: Option<Token>,
    pub metrics_file: Option<PathBuf>,
    /// `--env-file`s, in order (read again before every start).
    pub env_files: Vec<PathBuf>,
    /// What `env_files` gave when restartd started (read by `main`, where a failure is a
    /// usage error); empty until then.
    pub env: Vec<(OsString, OsString)>,
}

impl Config {
    /// The command as crash records and `state.json` store it: each argument as text, bytes
    /// that are not UTF-8 replaced by U+FFFD.
    pub fn command_lossy(&self) -> Vec<String> {
        self.command
            .iter()
            .map(|a| a.to_string_lossy().into_owned())
            .collect()
    }
}

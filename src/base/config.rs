//! The configuration the parts below the command line run with: the health checks, the log
//! file, and how restartd writes its own messages.
//!
//! Plain data, filled in by `cli::config` from the flags; each part takes its piece and nothing
//! more. The whole of a run's configuration is `supervise::config::Config`, which also holds the
//! machine's settings.

use std::path::PathBuf;
use std::time::Duration;

use crate::base::values::HealthUrl;

/// How much restartd says about itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Verbosity {
    Quiet,
    Normal,
    Verbose,
}

/// What a health check runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Probe {
    /// `--health-cmd`, run with `sh -c`.
    Command(String),
    /// `--health-url`.
    Http(HealthUrl),
}

/// The `--health-*` flags.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HealthConfig {
    pub probe: Probe,
    pub interval: Duration,
    pub timeout: Duration,
    pub retries: u32,
    pub start_period: Duration,
}

/// `--log-file`, `--log-max-size`, `--log-keep`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogFileConfig {
    pub path: PathBuf,
    pub max_size: u64,
    pub keep: u32,
}

/// `--log-format`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    /// `12:03:44 restartd[NAME]: …` lines (or `<6>restartd[NAME]: …` for the journal).
    Text,
    /// One JSON object a line.
    Json,
}

impl LogFormat {
    /// Every format, in the order `--help` lists them.
    pub const ALL: [LogFormat; 2] = [LogFormat::Text, LogFormat::Json];

    /// The spelling of the flag value.
    pub fn as_str(self) -> &'static str {
        match self {
            LogFormat::Text => "text",
            LogFormat::Json => "json",
        }
    }
}

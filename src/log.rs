//! restartd's own messages on stderr: `restartd[NAME]: …` lines, or JSON lines.
//!
//! Each message is written with one `write` so it does not interleave with the child's output
//! mid-line more than unavoidable. In a crash loop, crash lines are limited to `BURST` a minute
//! and the rest are summarised (anchors.md §4 item 22). This module formats; it decides nothing
//! about supervision.

use std::io::Write;
use std::time::{Duration, Instant, SystemTime};

use serde_json::{Map, Value};

use crate::cli::LogFormat;
use crate::config::Verbosity;

/// Severity of a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    Debug,
    Info,
    Warn,
    Error,
}

impl Level {
    fn as_str(self) -> &'static str {
        match self {
            Level::Debug => "debug",
            Level::Info => "info",
            Level::Warn => "warn",
            Level::Error => "error",
        }
    }
}

/// Crash lines printed per minute before summarising.
const BURST: u32 = 10;
const BURST_PERIOD: Duration = Duration::from_secs(60);

/// The logger of one instance.
pub struct Logger {
    name: String,
    verbosity: Verbosity,
    format: LogFormat,
    period_start: Option<Instant>,
    printed: u32,
    suppressed: u32,
}

impl Logger {
    /// A logger for instance `name`.
    pub fn new(name: &str, verbosity: Verbosity, format: LogFormat) -> Logger {
        Logger {
            name: name.to_string(),
            verbosity,
            format,
            period_start: None,
            printed: 0,
            suppressed: 0,
        }
    }

    fn enabled(&self, level: Level) -> bool {
        match self.verbosity {
            Verbosity::Quiet => level >= Level::Warn,
            Verbosity::Normal => level >= Level::Info,
            Verbosity::Verbose => true,
        }
    }

    /// Logs `msg` with structured `fields` (used in JSON lines only).
    pub fn log(&self, level: Level, msg: &str, fields: Map<String, Value>) {
        if !self.enabled(level) {
            return;
        }
        let mut line = match self.format {
            LogFormat::Text => format!("restartd[{}]: {msg}", self.name),
            LogFormat::Json => {
                let mut obj = Map::new();
                obj.insert(
                    "time".into(),
                    crate::state::rfc3339(SystemTime::now()).into(),
                );
                obj.insert("level".into(), level.as_str().into());
                obj.insert("name".into(), self.name.clone().into());
                obj.insert("msg".into(), msg.into());
                obj.extend(fields);
                Value::Object(obj).to_string()
            }
        };
        line.push('\n');
        let _ = std::io::stderr().lock().write_all(line.as_bytes());
    }

    /// Logs without fields.
    pub fn info(&self, msg: &str) {
        self.log(Level::Info, msg, Map::new());
    }

    /// Logs a warning without fields.
    pub fn warn(&self, msg: &str) {
        self.log(Level::Warn, msg, Map::new());
    }

    /// Logs a debug line without fields.
    pub fn debug(&self, msg: &str) {
        self.log(Level::Debug, msg, Map::new());
    }

    /// Logs a crash line, at most `BURST` a minute; first says how many were held back.
    /// `always` lines (give-up, exit) are never held back.
    pub fn crash(
        &mut self,
        now: Instant,
        level: Level,
        msg: &str,
        fields: Map<String, Value>,
        always: bool,
    ) {
        let period_over = self
            .period_start
            .is_none_or(|start| now.duration_since(start) >= BURST_PERIOD);
        if period_over {
            self.period_start = Some(now);
            self.printed = 0;
        }
        if self.printed >= BURST && !always {
            self.suppressed += 1;
            return;
        }
        self.flush_suppressed();
        self.printed += 1;
        self.log(level, msg, fields);
    }

    /// Prints the summary of held-back crash lines, if any.
    pub fn flush_suppressed(&mut self) {
        if self.suppressed > 0 {
            let n = self.suppressed;
            self.suppressed = 0;
            let mut fields = Map::new();
            fields.insert("suppressed".into(), n.into());
            self.log(
                Level::Info,
                &format!("crash loop: {n} more crash lines not shown (at most {BURST} a minute)"),
                fields,
            );
        }
    }
}

/// `12ms`, `3.2s`, `2s`, `5m`, `1m30s`, `2h5m`: short and exact enough for messages.
pub fn fmt_duration(d: Duration) -> String {
    let ms = d.as_millis();
    if ms < 1000 {
        return format!("{ms}ms");
    }
    if ms < 60_000 {
        return if ms.is_multiple_of(1000) {
            format!("{}s", ms / 1000)
        } else {
            format!("{:.1}s", d.as_secs_f64())
        };
    }
    let secs = d.as_secs();
    let (h, m, s) = (secs / 3600, secs % 3600 / 60, secs % 60);
    match (h, m, s) {
        (0, m, 0) => format!("{m}m"),
        (0, m, s) => format!("{m}m{s}s"),
        (h, 0, _) => format!("{h}h"),
        (h, m, _) => format!("{h}h{m}m"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_well() {
        let cases = [
            (Duration::from_millis(12), "12ms"),
            (Duration::from_millis(3210), "3.2s"),
            (Duration::from_secs(2), "2s"),
            (Duration::from_secs(300), "5m"),
            (Duration::from_secs(90), "1m30s"),
            (Duration::from_secs(7500), "2h5m"),
            (Duration::from_secs(3600), "1h"),
        ];
        for (d, text) in cases {
            assert_eq!(fmt_duration(d), text);
        }
    }

    #[test]
    fn crash_lines_are_limited_per_minute() {
        let mut log = Logger::new("t", Verbosity::Quiet, LogFormat::Text);
        let t0 = Instant::now();
        for _ in 0..25 {
            log.crash(t0, Level::Info, "x", Map::new(), false);
        }
        assert_eq!((log.printed, log.suppressed), (BURST, 15));
        log.crash(t0 + BURST_PERIOD, Level::Info, "x", Map::new(), false);
        assert_eq!((log.printed, log.suppressed), (1, 0));
    }
}

//! restartd's own messages on stderr: `12:03:44 restartd[NAME]: …` lines, or JSON lines.
//!
//! Under systemd (`JOURNAL_STREAM` names the device and inode of stderr, as systemd.exec(5)
//! says to check) a text line starts with its syslog priority, `<3>` to `<7>`, instead of the
//! time: the journal stamps each line itself and keeps the level (sd-daemon(3)).
//!
//! Each message is written with one `write` so it does not interleave with the child's output
//! mid-line more than unavoidable. In a crash loop, crash lines are limited to `BURST` a minute
//! and the rest are summarised (anchors.md §4 item 22). This module formats; it decides nothing
//! about supervision.

use std::time::{Duration, Instant, SystemTime};

use serde_json::{Map, Value};

use crate::base::config::{LogFormat, Verbosity};
use crate::process::sink::Shared;

/// Severity of a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    Debug,
    Info,
    Warn,
    Error,
}

impl Level {
    /// The syslog priority journald reads from a `<N>` prefix.
    fn priority(self) -> u8 {
        match self {
            Level::Debug => 7,
            Level::Info => 6,
            Level::Warn => 4,
            Level::Error => 3,
        }
    }

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

/// What a text line starts with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Prefix {
    /// `12:03:44 `: the local time.
    Time,
    /// `<6>`: the syslog priority, for the journal.
    Priority,
}

impl Prefix {
    /// `Priority` when `journal_stream` (`$JOURNAL_STREAM`, `DEVICE:INODE`) is the file
    /// `stderr` (its device and inode), else `Time`.
    pub fn detect(journal_stream: Option<&str>, stderr: Option<(u64, u64)>) -> Prefix {
        let parsed = journal_stream.and_then(|v| {
            let (dev, ino) = v.split_once(':')?;
            Some((dev.parse::<u64>().ok()?, ino.parse::<u64>().ok()?))
        });
        match (parsed, stderr) {
            (Some(journal), Some(stderr)) if journal == stderr => Prefix::Priority,
            _ => Prefix::Time,
        }
    }

    /// `detect` for this process.
    fn of_this_process() -> Prefix {
        let stderr = nix::sys::stat::fstat(std::io::stderr())
            .ok()
            .map(|st| (st.st_dev, st.st_ino));
        let journal = std::env::var("JOURNAL_STREAM").ok();
        Prefix::detect(journal.as_deref(), stderr)
    }
}

/// The logger of one instance.
pub struct Logger {
    name: String,
    verbosity: Verbosity,
    format: LogFormat,
    prefix: Prefix,
    /// restartd's stderr, shared with the child's output on its way there.
    stderr: Shared,
    period_start: Option<Instant>,
    printed: u32,
    suppressed: u32,
}

impl Logger {
    /// A logger for instance `name`, writing to `stderr`; text lines carry the time, or under
    /// systemd the priority.
    pub fn new(name: &str, verbosity: Verbosity, format: LogFormat, stderr: Shared) -> Logger {
        Logger {
            name: name.to_string(),
            verbosity,
            format,
            prefix: Prefix::of_this_process(),
            stderr,
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

    /// Passes on what another process wrote (a hook's output) as the child's output is: through
    /// restartd's never-blocking stderr, bounded, dropped and counted if it does not fit.
    pub fn pass_on(&self, bytes: &[u8]) {
        if !bytes.is_empty() {
            self.stderr.borrow_mut().write(bytes);
        }
    }

    /// Logs `msg` with structured `fields` (used in JSON lines only).
    pub fn log(&self, level: Level, msg: &str, fields: Map<String, Value>) {
        if !self.enabled(level) {
            return;
        }
        let mut line = match self.format {
            LogFormat::Text => text_line(self.prefix, level, &self.name, msg, SystemTime::now()),
            LogFormat::Json => {
                let mut obj = Map::new();
                obj.insert(
                    "time".into(),
                    crate::records::state::rfc3339(SystemTime::now()).into(),
                );
                obj.insert("level".into(), level.as_str().into());
                obj.insert("name".into(), self.name.clone().into());
                obj.insert("msg".into(), msg.into());
                obj.extend(fields);
                Value::Object(obj).to_string()
            }
        };
        line.push('\n');
        self.stderr.borrow_mut().line(line.as_bytes());
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

/// A text line without its newline: `12:03:44 restartd[api]: msg` or `<6>restartd[api]: msg`.
fn text_line(prefix: Prefix, level: Level, name: &str, msg: &str, now: SystemTime) -> String {
    match prefix {
        Prefix::Time => format!("{} restartd[{name}]: {msg}", local_time(now)),
        Prefix::Priority => format!("<{}>restartd[{name}]: {msg}", level.priority()),
    }
}

/// `HH:MM:SS` in the local time zone (localtime_r(3), which reads `TZ` and /etc/localtime);
/// UTC if that fails.
fn local_time(now: SystemTime) -> String {
    let secs = now
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs()) as nix::libc::time_t;
    // SAFETY: localtime_r writes only into `tm`, which is a plain C struct we own.
    let mut tm: nix::libc::tm = unsafe { std::mem::zeroed() };
    let ok = !unsafe { nix::libc::localtime_r(&secs, &mut tm) }.is_null();
    if ok {
        format!("{:02}:{:02}:{:02}", tm.tm_hour, tm.tm_min, tm.tm_sec)
    } else {
        let day = secs.rem_euclid(86_400);
        format!("{:02}:{:02}:{:02}", day / 3600, day % 3600 / 60, day % 60)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_journal_gets_priorities_and_a_terminal_the_time() {
        assert_eq!(
            Prefix::detect(Some("8:1234"), Some((8, 1234))),
            Prefix::Priority
        );
        // JOURNAL_STREAM inherited from a unit, but stderr was redirected: not the journal.
        assert_eq!(Prefix::detect(Some("8:1234"), Some((8, 99))), Prefix::Time);
        assert_eq!(Prefix::detect(None, Some((8, 1234))), Prefix::Time);
        assert_eq!(Prefix::detect(Some("junk"), Some((8, 1234))), Prefix::Time);
        let t = SystemTime::UNIX_EPOCH + Duration::from_secs(1_763_870_624);
        let cases = [
            (Level::Error, "<3>restartd[api]: m"),
            (Level::Warn, "<4>restartd[api]: m"),
            (Level::Info, "<6>restartd[api]: m"),
            (Level::Debug, "<7>restartd[api]: m"),
        ];
        for (level, line) in cases {
            assert_eq!(text_line(Prefix::Priority, level, "api", "m", t), line);
        }
        let line = text_line(Prefix::Time, Level::Info, "api", "m", t);
        let (time, rest) = line.split_once(' ').unwrap();
        assert_eq!(rest, "restartd[api]: m");
        let parts: Vec<u32> = time.split(':').map(|p| p.parse().unwrap()).collect();
        assert!(
            parts.len() == 3 && parts[0] < 24 && parts[1] < 60 && parts[2] < 60,
            "{time}"
        );
        // The seconds are the same in every time zone.
        assert_eq!(&time[5..], ":44", "{time}");
    }

    #[test]
    fn crash_lines_are_limited_per_minute() {
        let stderr = crate::process::sink::Sink::shared_stderr();
        let mut log = Logger::new("t", Verbosity::Quiet, LogFormat::Text, stderr);
        let t0 = Instant::now();
        for _ in 0..25 {
            log.crash(t0, Level::Info, "x", Map::new(), false);
        }
        assert_eq!((log.printed, log.suppressed), (BURST, 15));
        log.crash(t0 + BURST_PERIOD, Level::Info, "x", Map::new(), false);
        assert_eq!((log.printed, log.suppressed), (1, 0));
    }
}

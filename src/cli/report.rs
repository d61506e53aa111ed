//! The human output of `status` and `list`: one aligned line per instance, as `pm2 ls` and
//! `s6-svstat` print them, with colour only on a terminal and never with `NO_COLOR`.
//!
//! ```text
//! NAME  STATUS   PID   UPTIME  RESTARTS  HEALTH   LAST EXIT
//! api   running  4211  3m12s   7 (2/5)   healthy  code 1, 3m12s ago: KeyError: 'user'
//! sh    gave-up  -     -       2 (2/2)   -        code 3, 5s ago: Error: boom
//! ```
//!
//! RESTARTS is the total, then (restarts in the window / the limit). The `--json` forms are
//! the state file's fields plus `running` (`Row::json`), documented in the man page.

use std::io::{self, IsTerminal, Write};
use std::path::Path;
use std::time::SystemTime;

use serde_json::Value;

use crate::base::values::fmt_duration;
use crate::records::instance;
use crate::records::state::{self, Loaded, StateFile};
use crate::supervise::machine::Status;

/// One instance as `status` and `list` see it.
pub struct Row {
    pub name: String,
    pub state: Option<StateFile>,
    pub running: bool,
    /// The recognised error of the last exit's crash record, on one line.
    pub error: Option<String>,
}

impl Row {
    /// The instance `name` in `state_dir`; None when it has no directory. `with_error` looks up
    /// the last exit's crash record (the table shows it; `--json` does not read the crash log).
    pub fn read(state_dir: &Path, name: &str, with_error: bool) -> Option<Row> {
        let dir = instance::dir(state_dir, name);
        if !dir.is_dir() {
            return None;
        }
        let state = match state::load(&dir) {
            Loaded::Found(state) => Some(*state),
            Loaded::Missing | Loaded::Corrupt(_) => None,
        };
        let error = state
            .as_ref()
            .filter(|_| with_error)
            .and_then(|s| s.last_exit.as_ref()?.crash_id.clone())
            .and_then(|id| crate::records::crashes::find(&dir, &id).ok()?)
            .map(|record| crate::records::crashes::error_line(&record))
            .filter(|e| !e.is_empty());
        Some(Row {
            name: name.to_string(),
            state,
            running: instance::running(&dir).is_some(),
            error,
        })
    }

    /// The `status --json` object of this instance (`state::status_json`).
    pub fn json(&self) -> Value {
        state::status_json(&self.name, self.state.as_ref(), self.running)
    }

    fn cells(&self, now: SystemTime) -> [Cell; COLUMNS] {
        let Some(s) = &self.state else {
            let status = if self.running { "starting" } else { "unknown" };
            let mut cells: [Cell; COLUMNS] = Default::default();
            cells[0] = Cell::plain(&self.name);
            cells[1] = Cell::new(status, Paint::Warn);
            return cells;
        };
        let (status, paint) = match state::shown_status(s, self.running) {
            // Its restartd is gone: the file's word is stale.
            state::DEAD => (
                format!(
                    "{} (restartd pid {} is gone)",
                    state::DEAD,
                    s.supervisor_pid
                ),
                Paint::Bad,
            ),
            shown => {
                let paint = match s.status {
                    Status::Running => Paint::Good,
                    Status::GaveUp => Paint::Bad,
                    Status::Exited | Status::Stopped => Paint::Dim,
                    Status::Starting | Status::Backoff | Status::Stopping | Status::Reloading => {
                        Paint::Warn
                    }
                };
                (shown.to_string(), paint)
            }
        };
        let live = self.running.then_some(()).and(s.child_pid);
        let pid = live.map_or("-".into(), |p| p.to_string());
        let uptime = live
            .and(s.child_started_at.as_deref())
            .and_then(state::parse_rfc3339)
            .map_or("-".into(), |t| {
                fmt_duration(now.duration_since(t).unwrap_or_default())
            });
        let restarts = restarts(s.restarts, s.recent_restarts.len(), s.max_restarts);
        // Not running: the last check's word, or READY=1, is no longer true (SPEC §8).
        let ready = s.ready.filter(|_| self.running);
        let health = match (state::shown_health(s, self.running), ready) {
            (Some(h), _) => {
                let paint = match h {
                    "healthy" => Paint::Good,
                    "unhealthy" => Paint::Bad,
                    _ => Paint::Warn,
                };
                Cell::new(h, paint)
            }
            (None, Some(true)) => Cell::new("ready", Paint::Good),
            (None, Some(false)) => Cell::new("not ready", Paint::Warn),
            (None, None) => Cell::plain("-"),
        };
        let last = s.last_exit.as_ref().map_or("-".into(), |e| {
            let what = match (&e.code, &e.signal) {
                (Some(code), _) => format!("code {code}"),
                (None, Some(sig)) => sig.clone(),
                (None, None) => e.reason.clone(),
            };
            let ago = state::parse_rfc3339(&e.at)
                .and_then(|t| now.duration_since(t).ok())
                .map_or(String::new(), |d| format!(", {} ago", fmt_duration(d)));
            match &self.error {
                Some(error) => format!("{what}{ago}: {error}"),
                None => format!("{what}{ago}"),
            }
        });
        [
            Cell::plain(&self.name),
            Cell::new(&status, paint),
            Cell::plain(&pid),
            Cell::plain(&uptime),
            Cell::plain(&restarts),
            health,
            Cell::plain(s.status_text.as_deref().unwrap_or("")),
            Cell::plain(&last),
        ]
    }
}

/// `7 (2/5)`: the total, then the restarts in the window and the limit; `7 (2)` when unlimited.
fn restarts(total: u64, in_window: usize, limit: Option<u32>) -> String {
    match limit {
        Some(limit) => format!("{total} ({in_window}/{limit})"),
        None => format!("{total} ({in_window})"),
    }
}

/// NAME STATUS PID UPTIME RESTARTS HEALTH MESSAGE (the child's STATUS= text) LAST EXIT.
const COLUMNS: usize = 8;
const HEADER: [&str; COLUMNS] = [
    "NAME",
    "STATUS",
    "PID",
    "UPTIME",
    "RESTARTS",
    "HEALTH",
    "MESSAGE",
    "LAST EXIT",
];
/// The MESSAGE column, left out when no instance has a STATUS= text.
const MESSAGE: usize = 6;

/// What a cell's colour says.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
enum Paint {
    #[default]
    None,
    Good,
    Warn,
    Bad,
    Dim,
    Head,
}

impl Paint {
    /// The SGR sequence that starts it.
    fn sgr(self) -> &'static str {
        match self {
            Paint::None => "",
            Paint::Good => "\x1b[32m",
            Paint::Warn => "\x1b[33m",
            Paint::Bad => "\x1b[31m",
            Paint::Dim => "\x1b[2m",
            Paint::Head => "\x1b[1m",
        }
    }
}

#[derive(Debug, Clone, Default)]
struct Cell {
    text: String,
    paint: Paint,
}

impl Cell {
    fn new(text: &str, paint: Paint) -> Cell {
        Cell {
            text: text.to_string(),
            paint,
        }
    }

    fn plain(text: &str) -> Cell {
        Cell::new(text, Paint::None)
    }
}

/// Whether to colour: stdout is a terminal and `NO_COLOR` is unset or empty (no-color.org).
pub fn use_colour(stdout_is_terminal: bool, no_color: Option<&std::ffi::OsStr>) -> bool {
    stdout_is_terminal && no_color.is_none_or(|v| v.is_empty())
}

/// Prints the table of `rows` to stdout, in colour when `use_colour` says so.
pub fn print_table(rows: &[Row]) -> io::Result<()> {
    let colour = use_colour(
        io::stdout().is_terminal(),
        std::env::var_os("NO_COLOR").as_deref(),
    );
    let text = table(rows, SystemTime::now(), colour);
    io::stdout().lock().write_all(text.as_bytes())
}

/// The table as text: columns two spaces apart, padded by their visible width.
fn table(rows: &[Row], now: SystemTime, colour: bool) -> String {
    let mut lines = vec![HEADER.map(|h| Cell::new(h, Paint::Head))];
    lines.extend(rows.iter().map(|r| r.cells(now)));
    let show_message = lines[1..].iter().any(|l| !l[MESSAGE].text.is_empty());
    let mut widths = [0usize; COLUMNS];
    for line in &lines {
        for (w, cell) in widths.iter_mut().zip(line) {
            *w = (*w).max(cell.text.chars().count());
        }
    }
    let mut out = String::new();
    for line in &lines {
        let mut text = String::new();
        for (i, (cell, w)) in line.iter().zip(widths).enumerate() {
            if i == MESSAGE && !show_message {
                continue;
            }
            let pad = if i + 1 == COLUMNS {
                0
            } else {
                w - cell.text.chars().count() + 2
            };
            if colour && cell.paint != Paint::None {
                text.push_str(&format!("{}{}\x1b[0m", cell.paint.sgr(), cell.text));
            } else {
                text.push_str(&cell.text);
            }
            text.push_str(&" ".repeat(pad));
        }
        out.push_str(text.trim_end());
        out.push('\n');
    }
    out
}

/// The RFC 3339 time `secs` before `now`, for tests.
#[cfg(test)]
fn ago(now: SystemTime, secs: u64) -> String {
    state::rfc3339(now - std::time::Duration::from_secs(secs))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::records::state::LastExitJson;
    use std::time::Duration;

    fn row(name: &str, status: Status, running: bool, now: SystemTime) -> Row {
        Row {
            name: name.into(),
            state: Some(StateFile {
                version: 1,
                name: name.into(),
                command: vec!["sh".into()],
                status,
                supervisor_pid: 1,
                child_pid: running.then_some(4211),
                started_at: ago(now, 600),
                child_started_at: Some(ago(now, 192)),
                restarts: 7,
                scheduled_restarts: 0,
                recent_restarts: vec![ago(now, 200), ago(now, 192)],
                max_restarts: Some(5),
                window_secs: 300,
                last_exit: Some(LastExitJson {
                    code: Some(1),
                    signal: None,
                    reason: "exit".into(),
                    at: ago(now, 192),
                    crash_id: Some("x".into()),
                }),
                next_restart_at: None,
                health: running.then(|| "healthy".into()),
                ready: None,
                status_text: None,
                updated_at: ago(now, 192),
                labels: Default::default(),
                leftovers: Vec::new(),
                sockets: Vec::new(),
                reloads: 0,
                boot_id: None,
                log_file: None,
            }),
            running,
            error: Some("KeyError: 'user'".into()),
        }
    }

    #[test]
    fn the_table_is_aligned_and_says_everything() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_763_870_624);
        let rows = [
            row("api", Status::Running, true, now),
            row("worker-long-name", Status::GaveUp, false, now),
        ];
        let text = table(&rows, now, false);
        let expected = "\
NAME              STATUS   PID   UPTIME  RESTARTS  HEALTH   LAST EXIT
api               running  4211  3m12s   7 (2/5)   healthy  code 1, 3m12s ago: KeyError: 'user'
worker-long-name  gave-up  -     -       7 (2/5)   -        code 1, 3m12s ago: KeyError: 'user'
";
        assert_eq!(text, expected);
    }

    #[test]
    fn colour_only_on_a_terminal_without_no_color() {
        use std::ffi::OsStr;
        assert!(use_colour(true, None));
        assert!(use_colour(true, Some(OsStr::new(""))));
        assert!(!use_colour(true, Some(OsStr::new("1"))));
        assert!(!use_colour(false, None));
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_763_870_624);
        let rows = [row("api", Status::Running, true, now)];
        let coloured = table(&rows, now, true);
        assert!(
            coloured.contains("\x1b[32mrunning\x1b[0m  "),
            "{coloured:?}"
        );
        // Escapes do not count in the widths: without them the text is the plain table.
        let stripped = coloured
            .replace("\x1b[32m", "")
            .replace("\x1b[1m", "")
            .replace("\x1b[0m", "");
        assert_eq!(stripped, table(&rows, now, false));
    }

    #[test]
    fn restarts_read_total_then_window() {
        assert_eq!(restarts(7, 2, Some(5)), "7 (2/5)");
        assert_eq!(restarts(130, 100, None), "130 (100)");
    }
}

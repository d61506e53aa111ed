//! `restartd crashes NAME`: recent crash records, one record in full, or counts.
//!
//! Reads `crashes.jsonl` and its rotated file newest first and stops as soon as the query is
//! answered; `--stats` parses only the short fields it counts. Human output marks the record of
//! an error seen for the first time with `new`.

use std::collections::BTreeMap;
use std::io::{self, Write};
use std::ops::ControlFlow;
use std::path::Path;
use std::time::{Duration, SystemTime};

use serde::Serialize;

use crate::base::exit::code;
use crate::records::crashlog::{self, Brief, CrashRecord};
use crate::records::state;

/// What `crashes` was asked.
pub struct Query<'a> {
    pub since: Option<Duration>,
    pub n: usize,
    pub id: Option<&'a str>,
    /// Only the records with this fingerprint.
    pub fingerprint: Option<&'a str>,
    pub stats: bool,
    pub json: bool,
}

/// Runs the query against the instance directory `dir`; returns the exit status.
pub fn run(dir: &Path, name: &str, q: &Query) -> io::Result<u8> {
    if !dir.is_dir() {
        eprintln!("restartd: no instance '{name}'");
        return Ok(code::NO_SUCH);
    }
    let mut out = io::stdout().lock();
    if let Some(id) = q.id {
        return match find(dir, id)? {
            Some(record) if q.json => {
                writeln!(out, "{}", serde_json::to_string(&record)?)?;
                Ok(0)
            }
            Some(record) => {
                print_full(&mut out, &record)?;
                Ok(0)
            }
            None => {
                eprintln!("restartd: {name} has no crash record '{id}'");
                Ok(code::NO_SUCH)
            }
        };
    }
    if q.stats {
        let stats = Stats::count(dir, SystemTime::now())?;
        if q.json {
            writeln!(out, "{}", serde_json::to_string(&stats)?)?;
        } else {
            stats.print(&mut out)?;
        }
        return Ok(0);
    }
    let cutoff = q.since.and_then(|d| SystemTime::now().checked_sub(d));
    let limit = if q.n == 0 { usize::MAX } else { q.n };
    let mut shown = 0;
    let mut rows = Vec::new();
    let wanted = q
        .fingerprint
        .and_then(|f| serde_json::to_string(f).ok())
        .map(|quoted| format!("\"fingerprint\":{quoted}"));
    let failed = crashlog::newest_first(dir, |line| {
        if shown >= limit {
            return ControlFlow::Break(None);
        }
        if let Some(wanted) = &wanted {
            // A cheap test first; the parse below confirms it.
            if crashlog::find(line, wanted.as_bytes()).is_none() {
                return ControlFlow::Continue(());
            }
        }
        let Ok(record) = serde_json::from_slice::<CrashRecord>(line) else {
            return ControlFlow::Continue(());
        };
        if q.fingerprint.is_some() && record.fingerprint.as_deref() != q.fingerprint {
            return ControlFlow::Continue(());
        }
        if let Some(cutoff) = cutoff {
            if state::parse_rfc3339(&record.time).is_some_and(|t| t < cutoff) {
                return ControlFlow::Break(None);
            }
        }
        shown += 1;
        if q.json {
            if let Err(e) = out.write_all(line).and_then(|()| out.write_all(b"\n")) {
                return ControlFlow::Break(Some(e));
            }
        } else {
            rows.push(row(&record));
        }
        ControlFlow::Continue(())
    })?;
    if let Some(e) = failed.flatten() {
        return Err(e);
    }
    if !q.json {
        print_rows(&mut out, &rows)?;
    }
    Ok(0)
}

/// The record with `id`: a cheap substring test first, then a parse.
pub fn find(dir: &Path, id: &str) -> io::Result<Option<CrashRecord>> {
    // The quoted id, wherever the line has it; the parse below confirms it is the `id` field.
    let Ok(needle) = serde_json::to_string(id) else {
        return Ok(None);
    };
    crashlog::newest_first(dir, |line| {
        if crashlog::find(line, needle.as_bytes()).is_none() {
            return ControlFlow::Continue(());
        }
        match serde_json::from_slice::<CrashRecord>(line) {
            Ok(r) if r.id == id => ControlFlow::Break(r),
            _ => ControlFlow::Continue(()),
        }
    })
}

fn row(r: &CrashRecord) -> [String; 6] {
    let time = r.time.replace('T', " ");
    let time = time.get(..19).unwrap_or(&time).to_string();
    let end = match (&r.exit_code, &r.signal) {
        (Some(c), _) => format!("code {c}"),
        (None, Some(s)) => s.clone(),
        (None, None) => "-".into(),
    };
    let new = if r.first_seen { "new" } else { "" };
    [
        time,
        r.id.clone(),
        r.reason.clone(),
        end,
        new.into(),
        error_line(r),
    ]
}

/// The recognised error on one line, `ZeroDivisionError: division by zero`; else the detail.
pub fn error_line(r: &CrashRecord) -> String {
    let error = match (&r.error_type, &r.error_message) {
        (Some(t), Some(m)) => format!("{t}: {m}"),
        (Some(t), None) => t.clone(),
        (None, Some(m)) => m.clone(),
        (None, None) => r.detail.clone().unwrap_or_default(),
    };
    error.lines().next().unwrap_or("").to_string()
}

fn print_rows(out: &mut impl Write, rows: &[[String; 6]]) -> io::Result<()> {
    let mut widths = [0usize; 5];
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    for row in rows {
        let mut line = String::new();
        // A column empty in every row (no `new` error) takes no room.
        for (cell, w) in row.iter().zip(widths).filter(|(_, w)| *w > 0) {
            line.push_str(&format!("{cell:<w$}  "));
        }
        line.push_str(&row[5]);
        writeln!(out, "{}", line.trim_end())?;
    }
    Ok(())
}

fn print_full(out: &mut impl Write, r: &CrashRecord) -> io::Result<()> {
    let value = serde_json::to_value(r)?;
    let long = ["stack_trace", "stderr_tail"];
    if let serde_json::Value::Object(map) = &value {
        for (key, v) in map {
            if long.contains(&key.as_str()) {
                continue;
            }
            let text = match v {
                serde_json::Value::String(s) => s.clone(),
                serde_json::Value::Null => "-".into(),
                other => other.to_string(),
            };
            writeln!(out, "{key:<17}{text}")?;
        }
    }
    for (title, text) in [
        ("stack_trace", &r.stack_trace),
        ("stderr_tail", &r.stderr_tail),
    ] {
        if let Some(text) = text {
            writeln!(out, "\n{title}:\n{}", text.trim_end())?;
        }
    }
    Ok(())
}

/// Adds one to `key`'s count, allocating only for a key not seen before.
fn bump(counts: &mut BTreeMap<String, u64>, key: &str) {
    match counts.get_mut(key) {
        Some(n) => *n += 1,
        None => {
            counts.insert(key.to_string(), 1);
        }
    }
}

/// `crashes --stats`.
#[derive(Debug, Serialize, PartialEq)]
pub struct Stats {
    pub last_hour: u64,
    pub last_24h: u64,
    pub total: u64,
    pub by_reason: BTreeMap<String, u64>,
    pub by_error_type: BTreeMap<String, u64>,
    /// One entry per fingerprint, the error seen last first.
    pub by_fingerprint: Vec<Group>,
    pub status: &'static str,
}

/// The records of one error (`--stats`'s `by_fingerprint`, SPEC §12).
#[derive(Debug, Serialize, PartialEq)]
pub struct Group {
    pub fingerprint: String,
    pub count: u64,
    /// The time of its oldest and newest record.
    pub first: String,
    pub last: String,
    pub error_type: Option<String>,
    /// The newest record's message.
    pub error_message: Option<String>,
    /// The time of its record marked `first_seen`, while that record is in the crash files.
    #[serde(skip)]
    pub first_seen_at: Option<String>,
}

/// Groups records by fingerprint as they come, newest first.
#[derive(Default)]
pub struct Grouper {
    index: std::collections::HashMap<String, usize>,
    pub groups: Vec<Group>,
}

impl Grouper {
    /// Counts one record (older than every record counted before).
    pub fn add(&mut self, brief: &Brief) {
        let Some(f) = brief.fingerprint.as_deref() else {
            return;
        };
        let i = match self.index.get(f) {
            Some(&i) => i,
            None => {
                self.index.insert(f.to_string(), self.groups.len());
                self.groups.push(Group {
                    fingerprint: f.to_string(),
                    count: 0,
                    first: String::new(),
                    last: brief.time.to_string(),
                    error_type: brief.error_type.as_deref().map(str::to_string),
                    error_message: brief.error_message.as_deref().map(str::to_string),
                    first_seen_at: None,
                });
                self.groups.len() - 1
            }
        };
        let g = &mut self.groups[i];
        g.count += 1;
        g.first = brief.time.to_string();
        if brief.first_seen {
            g.first_seen_at = Some(brief.time.to_string());
        }
    }
}

impl Stats {
    /// Counts every record; `by_reason` and `by_error_type` are over all of them (a record
    /// without a recognised error type counts as `"(none)"`).
    pub fn count(dir: &Path, now: SystemTime) -> io::Result<Stats> {
        // restartd's times are fixed-width RFC 3339 UTC, which sort as strings: compare them so.
        let since = |secs| {
            now.checked_sub(Duration::from_secs(secs))
                .map(state::rfc3339)
        };
        let (hour, day) = (since(3600), since(86_400));
        let mut stats = Stats {
            last_hour: 0,
            last_24h: 0,
            total: 0,
            by_reason: BTreeMap::new(),
            by_error_type: BTreeMap::new(),
            by_fingerprint: Vec::new(),
            status: "healthy",
        };
        let mut groups = Grouper::default();
        crashlog::newest_first(dir, |line| {
            if let Some(brief) = Brief::parse(line) {
                stats.total += 1;
                stats.last_hour += u64::from(hour.as_deref().is_none_or(|h| brief.time >= h));
                stats.last_24h += u64::from(day.as_deref().is_none_or(|d| brief.time >= d));
                bump(&mut stats.by_reason, brief.reason);
                bump(
                    &mut stats.by_error_type,
                    brief.error_type.as_deref().unwrap_or("(none)"),
                );
                groups.add(&brief);
            }
            ControlFlow::<()>::Continue(())
        })?;
        stats.by_fingerprint = groups.groups;
        if stats.last_hour > 0 {
            stats.status = "degraded";
        }
        Ok(stats)
    }

    fn print(&self, out: &mut impl Write) -> io::Result<()> {
        writeln!(out, "status     {}", self.status)?;
        writeln!(out, "last hour  {}", self.last_hour)?;
        writeln!(out, "last 24h   {}", self.last_24h)?;
        writeln!(out, "total      {}", self.total)?;
        for (title, map) in [
            ("by reason", &self.by_reason),
            ("by error type", &self.by_error_type),
        ] {
            if map.is_empty() {
                continue;
            }
            writeln!(out, "\n{title}:")?;
            let width = map.keys().map(|k| k.chars().count()).max().unwrap_or(0);
            for (key, count) in map {
                writeln!(out, "  {key:<width$}  {count}")?;
            }
        }
        if !self.by_fingerprint.is_empty() {
            writeln!(out, "\nby fingerprint (last seen first):")?;
            let width = self
                .by_fingerprint
                .iter()
                .map(|g| g.count.to_string().len())
                .max()
                .unwrap_or(0);
            let short = |t: &str| t.replace('T', " ").get(..19).unwrap_or(t).to_string();
            for g in &self.by_fingerprint {
                let error = match (&g.error_type, &g.error_message) {
                    (Some(t), Some(m)) => format!("{t}: {m}"),
                    (Some(t), None) => t.clone(),
                    (None, Some(m)) => m.clone(),
                    (None, None) => String::new(),
                };
                let error = error.lines().next().unwrap_or("");
                writeln!(
                    out,
                    "  {}  {:>width$}  {} .. {}  {error}",
                    g.fingerprint,
                    g.count,
                    short(&g.first),
                    short(&g.last),
                )?;
            }
        }
        Ok(())
    }
}

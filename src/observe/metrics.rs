//! The Prometheus text format (SPEC §9): one instance's metrics, derived from what `state.json`
//! holds and from the crash counts, so the running supervisor (`/metrics`, `--metrics-file`) and
//! `restartd metrics NAME` (which reads the files) print the same thing.
//!
//! Every sample carries `name` and the `--label`s. Label values are escaped as the format asks
//! (`\\`, `\"`, `\n`); label keys were checked by `cli::parse_label`.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io;
use std::ops::ControlFlow;
use std::path::Path;
use std::time::SystemTime;

use crate::records::crashlog::{self, Brief};
use crate::records::state::{self, StateFile};
use crate::supervise::machine::Status;

/// The `Content-Type` of the text format.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Crashes by (reason, error type); a record without a recognised type counts under `""`.
pub type CrashCounts = BTreeMap<(String, String), u64>;

/// Counts every record of `crashes.jsonl` and its rotated file.
pub fn count_crashes(dir: &Path) -> io::Result<CrashCounts> {
    let mut counts = CrashCounts::new();
    crashlog::newest_first(dir, |line| {
        if let Some(brief) = Brief::parse(line) {
            let error_type = brief.error_type.map(|t| t.into_owned()).unwrap_or_default();
            *counts
                .entry((brief.reason.to_string(), error_type))
                .or_default() += 1;
        }
        ControlFlow::<()>::Continue(())
    })?;
    Ok(counts)
}

/// Everything a rendering needs besides the state file.
pub struct Extra<'a> {
    /// restartd supervises the instance (false for a stopped instance read from its files).
    pub up: bool,
    pub crashes: &'a CrashCounts,
    /// RSS of the child's process group, when it runs.
    pub child_rss_bytes: Option<u64>,
    pub now: SystemTime,
}

/// Whether the child runs and is not unhealthy: `/healthz` and `restartd_healthy`.
pub fn healthy(state: &StateFile, up: bool) -> bool {
    child_up(state, up) && state.health.as_deref() != Some("unhealthy")
}

fn child_up(state: &StateFile, up: bool) -> bool {
    // During a reload the old child serves until the switch, then the new one.
    up && matches!(state.status, Status::Running | Status::Reloading) && state.child_pid.is_some()
}

/// The text format for `state`.
pub fn render(state: &StateFile, extra: &Extra) -> String {
    let mut base = format!("name=\"{}\"", escape(&state.name));
    for (key, value) in &state.labels {
        let _ = write!(base, ",{key}=\"{}\"", escape(value));
    }
    let child_up = child_up(state, extra.up);
    let secs = |t: &str| {
        state::parse_rfc3339(t)
            .and_then(|t| t.duration_since(SystemTime::UNIX_EPOCH).ok())
            .map(|d| d.as_secs_f64())
    };
    let backoff = match (state.status, state.next_restart_at.as_deref()) {
        (Status::Backoff, Some(at)) if extra.up => state::parse_rfc3339(at)
            .and_then(|at| at.duration_since(extra.now).ok())
            .map_or(0.0, |d| d.as_secs_f64()),
        _ => 0.0,
    };
    let bool01 = |b: bool| if b { 1.0 } else { 0.0 };
    let mut out = String::new();
    let mut gauge = |metric: &str, kind: &str, help: &str, value: Option<f64>| {
        let _ = writeln!(out, "# HELP {metric} {help}\n# TYPE {metric} {kind}");
        if let Some(v) = value {
            let _ = writeln!(out, "{metric}{{{base}}} {}", number(v));
        }
    };
    gauge(
        "restartd_up",
        "gauge",
        "1 while restartd supervises the instance.",
        Some(bool01(extra.up)),
    );
    gauge(
        "restartd_child_up",
        "gauge",
        "1 while the child process runs.",
        Some(bool01(child_up)),
    );
    gauge(
        "restartd_restarts_total",
        "counter",
        "Restarts made, in every run of restartd for this instance.",
        Some(state.restarts as f64),
    );
    gauge(
        "restartd_reloads_total",
        "counter",
        "Reloads (restartd reload) done by the running restartd.",
        Some(state.reloads as f64),
    );
    gauge(
        "restartd_child_start_time_seconds",
        "gauge",
        "Start time of the running child, seconds since the Unix epoch.",
        state
            .child_started_at
            .as_deref()
            .filter(|_| child_up)
            .and_then(secs),
    );
    gauge(
        "restartd_backoff_seconds",
        "gauge",
        "Seconds left before the next restart (0 when not waiting).",
        Some(backoff),
    );
    gauge(
        "restartd_healthy",
        "gauge",
        "1 when the child runs and is not unhealthy.",
        Some(bool01(healthy(state, extra.up))),
    );
    gauge(
        "restartd_child_rss_bytes",
        "gauge",
        "Resident memory of the child's process group in bytes.",
        Some(extra.child_rss_bytes.filter(|_| child_up).unwrap_or(0) as f64),
    );
    gauge(
        "restartd_gave_up",
        "gauge",
        "1 when restartd gave up restarting (--max-restarts reached).",
        Some(bool01(state.status == Status::GaveUp)),
    );
    gauge(
        "restartd_scheduled_restarts_total",
        "counter",
        "Scheduled restarts (--max-runtime), in every run of restartd for this instance.",
        Some(state.scheduled_restarts as f64),
    );
    let oom_kills: u64 = extra
        .crashes
        .iter()
        .filter(|((reason, _), _)| reason == "oom")
        .map(|(_, n)| n)
        .sum();
    gauge(
        "restartd_oom_kills_total",
        "counter",
        "Ends of the child by the kernel's OOM killer (crash records of reason oom).",
        Some(oom_kills as f64),
    );
    let _ = writeln!(
        out,
        "# HELP restartd_crashes_total Crash records written, by reason and recognised error type.\n# TYPE restartd_crashes_total counter"
    );
    for ((reason, error_type), n) in extra.crashes {
        let _ = writeln!(
            out,
            "restartd_crashes_total{{{base},reason=\"{}\",error_type=\"{}\"}} {n}",
            escape(reason),
            escape(error_type)
        );
    }
    out
}

/// A sample value: integers without a fraction.
fn number(v: f64) -> String {
    if v.fract() == 0.0 && v.abs() < 1e15 {
        format!("{}", v as i64)
    } else {
        format!("{v:.3}")
    }
}

/// A label value as the text format wants it.
pub fn escape(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out
}

/// Replaces `path` with `text` (`files::replace`: a temporary file created beside it exclusively
/// and never through a symlink, renamed over it), so a collector never reads half a file. Not
/// fsync'd: the metrics are made again at the next change, and nothing depends on them after a
/// power loss. Mode 0666 less the umask, as any file a program creates: the collector (node_exporter)
/// may run as another user and must be able to read it.
pub fn write_atomically(path: &Path, text: &str) -> io::Result<()> {
    crate::base::files::replace(path, text.as_bytes(), 0o666, false)
}

/// `restartd metrics NAME`: from the instance's files.
pub fn from_files(dir: &Path, running: bool, now: SystemTime) -> io::Result<Option<String>> {
    let state = match state::load(dir) {
        state::Loaded::Found(state) => state,
        state::Loaded::Missing => return Ok(None),
        state::Loaded::Corrupt(why) => {
            return Err(io::Error::other(format!(
                "{} is unreadable: {why}",
                dir.join(crate::records::instance::STATE).display()
            )))
        }
    };
    let crashes = count_crashes(dir)?;
    let rss = state
        .child_pid
        .filter(|_| running)
        .map(|pid| crate::monitors::memory::rss_of(pid, &[]));
    Ok(Some(render(
        &state,
        &Extra {
            up: running,
            crashes: &crashes,
            child_rss_bytes: rss,
            now,
        },
    )))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::records::state::{rfc3339, LastExitJson, VERSION};
    use std::time::Duration;

    fn state(status: Status) -> StateFile {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000);
        StateFile {
            version: VERSION,
            name: "api".into(),
            command: vec!["x".into()],
            status,
            supervisor_pid: 1,
            child_pid: (status == Status::Running).then_some(42),
            started_at: rfc3339(now),
            child_started_at: Some(rfc3339(now + Duration::from_millis(1500))),
            restarts: 7,
            scheduled_restarts: 2,
            recent_restarts: vec![],
            max_restarts: Some(5),
            window_secs: 300,
            last_exit: Some(LastExitJson {
                code: Some(1),
                signal: None,
                reason: "exit".into(),
                at: rfc3339(now),
                crash_id: None,
            }),
            next_restart_at: Some(rfc3339(now + Duration::from_secs(4))),
            health: None,
            ready: None,
            status_text: None,
            updated_at: rfc3339(now),
            labels: [("env".to_string(), "pr\"od\\\n".to_string())].into(),
            leftovers: Vec::new(),
            sockets: Vec::new(),
            reloads: 0,
            boot_id: None,
            log_file: None,
        }
    }

    fn at(s: &StateFile) -> SystemTime {
        state::parse_rfc3339(&s.started_at).unwrap()
    }

    #[test]
    fn running_child_with_labels_and_crashes() {
        let s = state(Status::Running);
        let mut crashes = CrashCounts::new();
        crashes.insert(("exit".into(), "ZeroDivisionError".into()), 3);
        crashes.insert(("signal".into(), "".into()), 1);
        crashes.insert(("oom".into(), "".into()), 2);
        crashes.insert(("oom".into(), "FATAL ERROR".into()), 1);
        let text = render(
            &s,
            &Extra {
                up: true,
                crashes: &crashes,
                child_rss_bytes: Some(4096),
                now: at(&s),
            },
        );
        let base = r#"name="api",env="pr\"od\\\n""#;
        for line in [
            format!("restartd_up{{{base}}} 1"),
            format!("restartd_child_up{{{base}}} 1"),
            format!("restartd_restarts_total{{{base}}} 7"),
            format!("restartd_child_start_time_seconds{{{base}}} 1800000001.500"),
            format!("restartd_backoff_seconds{{{base}}} 0"),
            format!("restartd_healthy{{{base}}} 1"),
            format!("restartd_child_rss_bytes{{{base}}} 4096"),
            format!("restartd_gave_up{{{base}}} 0"),
            format!("restartd_scheduled_restarts_total{{{base}}} 2"),
            format!("restartd_oom_kills_total{{{base}}} 3"),
            "# TYPE restartd_oom_kills_total counter".to_string(),
            format!(
                "restartd_crashes_total{{{base},reason=\"exit\",error_type=\"ZeroDivisionError\"}} 3"
            ),
            format!("restartd_crashes_total{{{base},reason=\"signal\",error_type=\"\"}} 1"),
            "# TYPE restartd_restarts_total counter".to_string(),
        ] {
            assert!(text.lines().any(|l| l == line), "{line}\n{text}");
        }
    }

    #[test]
    fn backoff_gave_up_and_a_stopped_instance() {
        let s = state(Status::Backoff);
        let none = CrashCounts::new();
        let extra = |up| Extra {
            up,
            crashes: &none,
            child_rss_bytes: None,
            now: at(&s),
        };
        let base = r#"{name="api",env="pr\"od\\\n"}"#;
        let has = |text: &str, line: String| assert!(text.contains(&line), "{line}\n{text}");
        let text = render(&s, &extra(true));
        has(&text, format!("restartd_backoff_seconds{base} 4\n"));
        has(&text, format!("restartd_healthy{base} 0\n"));
        has(&text, format!("restartd_child_up{base} 0\n"));
        assert!(
            !text.contains("restartd_child_start_time_seconds{"),
            "{text}"
        );
        let text = render(&s, &extra(false));
        has(&text, format!("restartd_up{base} 0\n"));
        has(&text, format!("restartd_backoff_seconds{base} 0\n"));
        let s = state(Status::GaveUp);
        has(
            &render(&s, &extra(false)),
            format!("restartd_gave_up{base} 1\n"),
        );
    }

    #[test]
    fn unhealthy_is_not_healthy() {
        let mut s = state(Status::Running);
        assert!(healthy(&s, true));
        assert!(!healthy(&s, false));
        s.health = Some("unhealthy".into());
        assert!(!healthy(&s, true));
        s.health = Some("starting".into());
        assert!(healthy(&s, true));
    }

    #[test]
    fn writes_atomically_beside_the_target() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("restartd.prom");
        write_atomically(&path, "a 1\n").unwrap();
        write_atomically(&path, "a 2\n").unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "a 2\n");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }
}

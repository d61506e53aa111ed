//! The `--listen` routes (SPEC §9): from a request and what the supervisor knows to a whole
//! response. `/metrics`, `/status`, `/healthz` and `/` come from memory (the state the loop
//! keeps); `/crashes`, `/crashes/stats` and the page's crash list read `crashes.jsonl`, which
//! rotation keeps under 20 MiB, and parse only what they show; a `/crashes` body stops at 4 MiB.

use std::ops::ControlFlow;
use std::path::Path;
use std::time::{Duration, SystemTime};

use crate::observe::access::Access;
use crate::observe::dashboard;
use crate::observe::http::{self, Request};
use crate::observe::metrics::{self, CrashCounts};
use crate::observe::server::Incoming;
use crate::records::crashes::{Group, Grouper, Stats};
use crate::records::crashlog::{self, Brief, CrashRecord};
use crate::records::state::{self, StateFile};

/// The most records `/crashes` returns.
pub const MAX_N: usize = 1000;
/// `/crashes` stops adding records once its body is this big (a record keeps up to 64 KiB of
/// stderr), so 64 clients cannot make restartd hold more than 64 such bodies.
pub const MAX_BODY: usize = 4 << 20;
/// Records the page lists.
const PAGE_RECENT: usize = 10;

/// What the supervisor knows, for one response.
pub struct View<'a> {
    pub state: &'a StateFile,
    pub crashes: &'a CrashCounts,
    pub dir: &'a Path,
    pub child_rss_bytes: Option<u64>,
    pub now: SystemTime,
}

/// The response to `incoming`: a refusal when `access` says so, else the route's answer.
pub fn respond(incoming: Incoming, access: &Access, view: &View) -> Vec<u8> {
    let req = match incoming {
        Incoming::Request(req) => req,
        Incoming::Bad(status, why) => return http::error(status, why, false),
    };
    if let Err((status, why)) = access.check(&req) {
        return http::error(status, why, req.head);
    }
    match route(&req, view) {
        Ok((status, content_type, body)) => http::response(status, content_type, &body, req.head),
        Err((status, why)) => http::error(status, &why, req.head),
    }
}

type Reply = Result<(u16, &'static str, Vec<u8>), (u16, String)>;

const JSON: &str = "application/json";

fn route(req: &Request, view: &View) -> Reply {
    let allowed: &[&str] = match req.path.as_str() {
        "/crashes" => &["n", "since"],
        _ => &[],
    };
    if let Some((key, _)) = req
        .query
        .iter()
        .find(|(k, _)| !allowed.contains(&k.as_str()))
    {
        return Err((400, format!("unknown query parameter '{key}'")));
    }
    let healthy = metrics::healthy(view.state, true);
    match req.path.as_str() {
        "/metrics" => {
            let text = metrics::render(
                view.state,
                &metrics::Extra {
                    up: true,
                    crashes: view.crashes,
                    child_rss_bytes: view.child_rss_bytes,
                    now: view.now,
                },
            );
            Ok((200, metrics::CONTENT_TYPE, text.into_bytes()))
        }
        "/status" => {
            let value = state::status_json(&view.state.name, Some(view.state), true);
            Ok((200, JSON, line(value.to_string())))
        }
        "/healthz" => {
            let (status, body) = match healthy {
                true => (200, "ok\n".to_string()),
                false => (
                    503,
                    format!(
                        "not healthy: {}{}\n",
                        view.state.status.as_str(),
                        view.state
                            .health
                            .as_deref()
                            .map_or(String::new(), |h| format!(", {h}"))
                    ),
                ),
            };
            Ok((status, "text/plain; charset=utf-8", body.into_bytes()))
        }
        "/crashes" => crashes(req, view),
        "/crashes/stats" => {
            let stats = Stats::count(view.dir, view.now).map_err(internal)?;
            let json = serde_json::to_string(&stats).map_err(internal)?;
            Ok((200, JSON, line(json)))
        }
        "/" => {
            let c = page_crashes(view.dir, view.now).map_err(internal)?;
            let html = dashboard::render(&dashboard::Page {
                state: view.state,
                healthy,
                recent: &c.recent,
                timeline: c.timeline,
                total: c.total,
                errors: &c.errors,
                now: view.now,
            });
            Ok((200, "text/html; charset=utf-8", html.into_bytes()))
        }
        _ => Err((
            404,
            format!(
                "no such page '{}'; try /, /metrics, /status, /crashes, /crashes/stats or /healthz",
                req.path
            ),
        )),
    }
}

/// `/crashes?n=N&since=DUR`: records as JSON lines, newest first.
fn crashes(req: &Request, view: &View) -> Reply {
    let mut n = 20;
    let mut cutoff = None;
    for (key, value) in &req.query {
        match key.as_str() {
            "n" => match value.parse::<usize>() {
                Ok(v) if (1..=MAX_N).contains(&v) => n = v,
                _ => {
                    return Err((
                        400,
                        format!("invalid n '{value}': expected a whole number from 1 to {MAX_N}"),
                    ))
                }
            },
            _ => {
                let d = crate::base::values::parse_duration(value).map_err(|e| (400, e))?;
                cutoff = view.now.checked_sub(d);
            }
        }
    }
    let mut body = Vec::new();
    let mut seen = 0;
    crashlog::newest_first(view.dir, |raw| {
        if seen == n {
            return ControlFlow::Break(());
        }
        seen += 1;
        let Ok(record) = serde_json::from_slice::<CrashRecord>(raw) else {
            return ControlFlow::Continue(());
        };
        let before = state::parse_rfc3339(&record.time).zip(cutoff);
        if before.is_some_and(|(t, cutoff)| t < cutoff)
            || !body.is_empty() && body.len() + raw.len() > MAX_BODY
        {
            return ControlFlow::Break(());
        }
        body.extend_from_slice(raw);
        body.push(b'\n');
        ControlFlow::Continue(())
    })
    .map_err(internal)?;
    Ok((200, "application/x-ndjson", body))
}

/// What the page shows of the crash files.
struct PageCrashes {
    /// The newest records.
    recent: Vec<CrashRecord>,
    /// Crashes per hour over the last 24 h.
    timeline: [u64; 24],
    total: u64,
    /// The errors grouped by fingerprint.
    errors: Vec<Group>,
}

fn page_crashes(dir: &Path, now: SystemTime) -> std::io::Result<PageCrashes> {
    let mut recent = Vec::new();
    let mut timeline = [0u64; 24];
    let mut total = 0;
    let mut errors = Grouper::default();
    let day_ago = now.checked_sub(Duration::from_secs(86_400));
    crashlog::newest_first(dir, |line| {
        if recent.len() < PAGE_RECENT {
            if let Ok(record) = serde_json::from_slice::<CrashRecord>(line) {
                recent.push(record);
            }
        }
        let Some(brief) = Brief::parse(line) else {
            return ControlFlow::<()>::Continue(());
        };
        total += 1;
        errors.add(&brief);
        let t = state::parse_rfc3339(brief.time);
        if let Some(t) = t.filter(|&t| day_ago.is_some_and(|d| t >= d)) {
            let ago = now.duration_since(t).unwrap_or_default().as_secs() / 3600;
            timeline[(ago as usize).min(23)] += 1;
        }
        ControlFlow::Continue(())
    })?;
    Ok(PageCrashes {
        recent,
        timeline,
        total,
        errors: errors.groups,
    })
}

fn line(mut s: String) -> Vec<u8> {
    s.push('\n');
    s.into_bytes()
}

fn internal(e: impl std::fmt::Display) -> (u16, String) {
    (503, format!("unable to read the crash records: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::records::crashlog::CrashLog;

    fn request(target: &str) -> Incoming {
        let raw = format!("GET {target} HTTP/1.1\r\nHost: localhost\r\n\r\n");
        match http::parse(raw.as_bytes()) {
            http::Parsed::Request(r) => Incoming::Request(r),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn crashes_are_bounded_by_n_and_by_size() {
        let dir = tempfile::tempdir().unwrap();
        let mut log = CrashLog::new(dir.path());
        let now = SystemTime::now();
        for i in 0..100 {
            let mut r = crate::records::crashlog::tests::record(&format!("id-{i:03}"));
            r.time = state::rfc3339(now);
            r.stderr_tail = Some("x".repeat(64 * 1024));
            log.append(&r).unwrap();
        }
        let state = serde_json::from_value::<StateFile>(serde_json::json!({
            "version": 1, "name": "n", "command": [], "status": "running", "supervisor_pid": 1,
            "child_pid": null, "started_at": "t", "child_started_at": null, "restarts": 0,
            "recent_restarts": [], "max_restarts": 5, "window_secs": 300, "last_exit": null,
            "next_restart_at": null, "health": null, "updated_at": "t"
        }))
        .unwrap();
        let counts = CrashCounts::new();
        let view = View {
            state: &state,
            crashes: &counts,
            dir: dir.path(),
            child_rss_bytes: None,
            now,
        };
        let access = Access::new("127.0.0.1:9100".parse().unwrap(), None);
        let body = |target: &str| {
            let out = respond(request(target), &access, &view);
            let text = String::from_utf8(out).unwrap();
            text.split_once("\r\n\r\n").unwrap().1.to_string()
        };
        let three = body("/crashes?n=3");
        assert_eq!(three.lines().count(), 3);
        assert!(three.lines().next().unwrap().contains("\"id-099\""));
        let all = body("/crashes?n=1000");
        assert!(all.len() <= MAX_BODY, "{}", all.len());
        // 64 KiB and a few hundred bytes a record: 4 MiB holds 63 of them.
        assert!(
            (60..64).contains(&all.lines().count()),
            "{}",
            all.lines().count()
        );
        let status = respond(request("/crashes?n=0"), &access, &view);
        assert!(status.starts_with(b"HTTP/1.1 400 "));
    }
}

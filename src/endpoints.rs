//! The `--listen` routes (SPEC §9): from a request and what the supervisor knows to a whole
//! response. `/metrics`, `/status`, `/healthz` and `/` come from memory (the state the loop
//! keeps); `/crashes`, `/crashes/stats` and the page's crash list read `crashes.jsonl`, which
//! rotation keeps under 20 MiB, and parse only what they show.

use std::path::Path;
use std::time::{Duration, SystemTime};

use crate::crashes::Stats;
use crate::crashlog::{Brief, CrashRecord, Lines};
use crate::dashboard;
use crate::http::{self, Request};
use crate::http_server::Incoming;
use crate::metrics::{self, CrashCounts};
use crate::state::{self, StateFile};

/// The most records `/crashes` returns.
pub const MAX_N: usize = 1000;
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

/// The response to `incoming`.
pub fn respond(incoming: Incoming, view: &View) -> Vec<u8> {
    let req = match incoming {
        Incoming::Request(req) => req,
        Incoming::Bad(status, why) => return http::error(status, why, false),
    };
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
            let mut value = serde_json::to_value(view.state).map_err(internal)?;
            if let serde_json::Value::Object(map) = &mut value {
                map.insert("running".into(), true.into());
            }
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
            let lines = Lines::read(view.dir).map_err(internal)?;
            let stats = Stats::count(lines, view.now);
            let json = serde_json::to_string(&stats).map_err(internal)?;
            Ok((200, JSON, line(json)))
        }
        "/" => {
            let (recent, timeline, total) = page_crashes(view.dir, view.now).map_err(internal)?;
            let html = dashboard::render(&dashboard::Page {
                state: view.state,
                healthy,
                recent: &recent,
                timeline,
                total,
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
                let d = crate::cli::parse_duration(value).map_err(|e| (400, e))?;
                cutoff = view.now.checked_sub(d);
            }
        }
    }
    let lines = Lines::read(view.dir).map_err(internal)?;
    let mut body = Vec::new();
    for raw in lines.newest_first().take(n) {
        let Ok(record) = serde_json::from_slice::<CrashRecord>(raw) else {
            continue;
        };
        let before = state::parse_rfc3339(&record.time).zip(cutoff);
        if before.is_some_and(|(t, cutoff)| t < cutoff) {
            break;
        }
        body.extend_from_slice(raw);
        body.push(b'\n');
    }
    Ok((200, "application/x-ndjson", body))
}

/// The page's recent records, crashes per hour over the last 24 h, and the total.
fn page_crashes(
    dir: &Path,
    now: SystemTime,
) -> std::io::Result<(Vec<CrashRecord>, [u64; 24], u64)> {
    let mut lines = Lines::read(dir)?;
    let mut recent = Vec::new();
    let mut timeline = [0u64; 24];
    let mut total = 0;
    let day_ago = now.checked_sub(Duration::from_secs(86_400));
    for line in lines.newest_first_mut() {
        if recent.len() < PAGE_RECENT {
            if let Ok(record) = serde_json::from_slice::<CrashRecord>(line) {
                recent.push(record);
            }
        }
        let Some(brief) = Brief::parse(line) else {
            continue;
        };
        total += 1;
        let Some(t) = state::parse_rfc3339(brief.time) else {
            continue;
        };
        if day_ago.is_some_and(|d| t >= d) {
            let ago = now.duration_since(t).unwrap_or_default().as_secs() / 3600;
            timeline[(ago as usize).min(23)] += 1;
        }
    }
    Ok((recent, timeline, total))
}

fn line(mut s: String) -> Vec<u8> {
    s.push('\n');
    s.into_bytes()
}

fn internal(e: impl std::fmt::Display) -> (u16, String) {
    (503, format!("unable to read the crash records: {e}"))
}

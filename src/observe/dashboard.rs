//! `GET /`: one self-contained HTML page (inline CSS, no scripts, no external assets) rendered
//! on the server, so it reads the same with JavaScript off; a `<meta http-equiv="refresh">`
//! reloads it every 5 s. Everything that comes from crash data or the command line is
//! HTML-escaped: a stack trace may hold `<script>`.

use std::fmt::Write as _;
use std::time::{Duration, SystemTime};

use crate::base::values::fmt_duration;
use crate::records::crashes::{error_line, Group};
use crate::records::crashlog::CrashRecord;
use crate::records::state::{self, StateFile};
use crate::supervise::machine::Status;

/// What the page shows.
pub struct Page<'a> {
    pub state: &'a StateFile,
    pub healthy: bool,
    /// Newest first, at most a few.
    pub recent: &'a [CrashRecord],
    /// Crashes per hour, `timeline[0]` the hour before now, `timeline[23]` 23-24 h ago.
    pub timeline: [u64; 24],
    pub total: u64,
    /// The errors by fingerprint, the one seen last first.
    pub errors: &'a [Group],
    pub now: SystemTime,
}

/// At most this many errors are listed.
const ERRORS_SHOWN: usize = 20;

const STYLE: &str = "
body{font:14px/1.4 system-ui,sans-serif;margin:0;background:#f4f5f7;color:#1d2330}
header{background:#1d2330;color:#fff;padding:12px 20px;display:flex;gap:12px;align-items:center;flex-wrap:wrap}
header h1{font-size:20px;margin:0 8px 0 0}
main{padding:16px 20px;display:grid;gap:16px;grid-template-columns:repeat(auto-fit,minmax(420px,1fr))}
section{background:#fff;border-radius:8px;padding:12px 16px;box-shadow:0 1px 2px #0002}
h2{font-size:15px;margin:0 0 8px}
.badge{display:inline-block;padding:2px 10px;border-radius:12px;font-weight:600;font-size:13px}
.ok{background:#1f883d;color:#fff}.warn{background:#bf8700;color:#fff}.bad{background:#cf222e;color:#fff}.off{background:#6e7781;color:#fff}
.label{background:#33415c;color:#dde;font-size:12px}
dl{display:grid;grid-template-columns:max-content 1fr;gap:4px 16px;margin:0}dt{color:#57606a}dd{margin:0}
.bars{display:flex;align-items:flex-end;gap:3px;height:90px;border-bottom:1px solid #ccc}
.bar{flex:1;background:#cf222e;min-height:1px}.bar.zero{background:#d0d7de}
.axis{display:flex;justify-content:space-between;color:#57606a;font-size:12px}
pre{background:#1d2330;color:#e6edf3;padding:10px;border-radius:6px;overflow:auto;max-height:320px;font-size:12px}
table{border-collapse:collapse;width:100%}td,th{text-align:left;padding:4px 6px;border-bottom:1px solid #eee;vertical-align:top}
.wide{grid-column:1/-1}.muted{color:#57606a}
.new{background:#8250df;color:#fff;font-size:11px;padding:0 6px;margin-left:4px}
";

/// The whole page.
pub fn render(p: &Page) -> String {
    let s = p.state;
    let mut html = String::with_capacity(16 * 1024);
    let title = escape(&s.name);
    let _ = write!(
        html,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta http-equiv=\"refresh\" content=\"5\">\
         <meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">\
         <title>{title} - restartd</title><style>{STYLE}</style></head><body>\n<header><h1>{title}</h1>"
    );
    let (class, text) = status_badge(s.status, p.healthy, s.health.as_deref());
    let _ = write!(
        html,
        "<span class=\"badge {class}\" id=\"status\">{text}</span>"
    );
    if let Some(health) = &s.health {
        let class = match health.as_str() {
            "healthy" => "ok",
            "unhealthy" => "bad",
            _ => "warn",
        };
        let _ = write!(
            html,
            "<span class=\"badge {class}\" id=\"health\">health: {}</span>",
            escape(health)
        );
    }
    for (k, v) in &s.labels {
        let _ = write!(
            html,
            "<span class=\"badge label\">{}={}</span>",
            escape(k),
            escape(v)
        );
    }
    html.push_str("</header>\n<main>\n");

    // Facts.
    let in_window = s.recent_restarts.len();
    let limit = s
        .max_restarts
        .map_or("unlimited".to_string(), |m| m.to_string());
    let window = fmt_duration(Duration::from_secs(s.window_secs));
    let uptime = s
        .child_started_at
        .as_deref()
        .filter(|_| s.child_pid.is_some())
        .and_then(state::parse_rfc3339)
        .and_then(|t| p.now.duration_since(t).ok())
        .map_or("-".to_string(), |d| {
            fmt_duration(Duration::from_secs(d.as_secs()))
        });
    let _ = writeln!(
        html,
        "<section><h2>State</h2><dl>\
         <dt>restarts in window</dt><dd id=\"window\">{in_window} of {limit} in {window}</dd>\
         <dt>restarts in total</dt><dd>{}</dd>\
         <dt>child pid</dt><dd>{}</dd><dt>uptime</dt><dd>{uptime}</dd>\
         <dt>next restart</dt><dd>{}</dd>\
         <dt>command</dt><dd><code>{}</code></dd>\
         <dt>crashes</dt><dd>{} in the last 24 h, {} in total</dd></dl></section>",
        s.restarts,
        s.child_pid.map_or("-".to_string(), |p| p.to_string()),
        escape(s.next_restart_at.as_deref().unwrap_or("-")),
        escape(&s.command.join(" ")),
        p.timeline.iter().sum::<u64>(),
        p.total,
    );

    // Timeline, oldest hour on the left.
    let max = p.timeline.iter().copied().max().unwrap_or(0).max(1);
    html.push_str(
        "<section><h2>Crashes per hour, last 24 h</h2><div class=\"bars\" id=\"timeline\">",
    );
    for (hours_ago, &n) in p.timeline.iter().enumerate().rev() {
        let height = n * 100 / max;
        let zero = if n == 0 { " zero" } else { "" };
        let _ = write!(
            html,
            "<div class=\"bar{zero}\" style=\"height:{height}%\" title=\"{n} crashes {}-{} h ago\"></div>",
            hours_ago,
            hours_ago + 1
        );
    }
    html.push_str(
        "</div><div class=\"axis\"><span>24 h ago</span><span>now</span></div></section>\n",
    );

    // The latest crash.
    html.push_str("<section class=\"wide\" id=\"latest\"><h2>Latest crash</h2>");
    match p.recent.first() {
        None => html.push_str("<p class=\"muted\">No crash recorded.</p>"),
        Some(r) => {
            let _ = write!(
                html,
                "<p><strong>{}</strong></p><p class=\"muted\">{} &middot; {} &middot; {} &middot; {}</p>",
                escape(&error_line(r)),
                escape(&r.time),
                escape(&r.reason),
                escape(&end_of(r)),
                escape(&r.id)
            );
            let trace = r.stack_trace.as_ref().or(r.stderr_tail.as_ref());
            if let Some(trace) = trace {
                let _ = write!(html, "<pre>{}</pre>", escape(trace.trim_end()));
            }
        }
    }
    html.push_str("</section>\n");

    errors_section(&mut html, p);

    // Recent crashes.
    html.push_str("<section class=\"wide\"><h2>Recent crashes</h2>");
    if p.recent.is_empty() {
        html.push_str("<p class=\"muted\">None.</p>");
    } else {
        html.push_str("<table id=\"recent\"><tr><th>time (UTC)</th><th>reason</th><th>exit</th><th>error</th></tr>");
        for r in p.recent {
            let time = r.time.replace('T', " ");
            let _ = write!(
                html,
                "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}",
                escape(time.get(..19).unwrap_or(&time)),
                escape(&r.reason),
                escape(&end_of(r)),
                escape(&error_line(r))
            );
            if r.first_seen {
                html.push_str(NEW);
            }
            if let Some(trace) = &r.stack_trace {
                let _ = write!(
                    html,
                    "<details><summary>stack trace</summary><pre>{}</pre></details>",
                    escape(trace.trim_end())
                );
            }
            html.push_str("</td></tr>");
        }
        html.push_str("</table>");
    }
    let _ = write!(
        html,
        "</section>\n</main><footer class=\"muted\" style=\"padding:0 20px 16px\">restartd {} &middot; {} &middot; reloads every 5 s &middot; <a href=\"/metrics\">metrics</a> <a href=\"/status\">status</a> <a href=\"/crashes\">crashes</a></footer></body></html>\n",
        env!("CARGO_PKG_VERSION"),
        escape(&state::rfc3339(p.now))
    );
    html
}

/// The mark of an error seen for the first time.
const NEW: &str = "<span class=\"badge new\">new</span>";

/// Errors grouped by fingerprint: count, first and last time, the latest message; an error
/// whose first record is from the last 24 h is marked `new`.
fn errors_section(html: &mut String, p: &Page) {
    html.push_str("<section class=\"wide\"><h2>Errors</h2>");
    if p.errors.is_empty() {
        html.push_str("<p class=\"muted\">No error recognised.</p></section>\n");
        return;
    }
    html.push_str(
        "<table id=\"errors\"><tr><th>error</th><th>count</th><th>first (UTC)</th><th>last (UTC)</th><th>fingerprint</th></tr>",
    );
    let day_ago = p
        .now
        .checked_sub(Duration::from_secs(86_400))
        .map(state::rfc3339);
    let short = |t: &str| {
        let t = t.replace('T', " ");
        escape(t.get(..19).unwrap_or(&t))
    };
    for g in p.errors.iter().take(ERRORS_SHOWN) {
        let error = match (&g.error_type, &g.error_message) {
            (Some(t), Some(m)) => format!("{t}: {m}"),
            (Some(t), None) => t.clone(),
            (None, Some(m)) => m.clone(),
            (None, None) => String::new(),
        };
        let new = g
            .first_seen_at
            .as_deref()
            .is_some_and(|t| day_ago.as_deref().is_none_or(|d| t >= d));
        let _ = write!(
            html,
            "<tr><td>{}{}</td><td>{}</td><td>{}</td><td>{}</td><td><code>{}</code></td></tr>",
            escape(error.lines().next().unwrap_or("")),
            if new { NEW } else { "" },
            g.count,
            short(&g.first),
            short(&g.last),
            escape(&g.fingerprint)
        );
    }
    html.push_str("</table>");
    if p.errors.len() > ERRORS_SHOWN {
        let _ = write!(
            html,
            "<p class=\"muted\">and {} more: restartd crashes NAME --stats</p>",
            p.errors.len() - ERRORS_SHOWN
        );
    }
    html.push_str("</section>\n");
}

fn status_badge(status: Status, healthy: bool, health: Option<&str>) -> (&'static str, String) {
    let class = match status {
        Status::Running if healthy => "ok",
        Status::Running if health == Some("unhealthy") => "bad",
        Status::Running
        | Status::Starting
        | Status::Backoff
        | Status::Stopping
        | Status::Reloading => "warn",
        Status::GaveUp | Status::Exited => "bad",
        Status::Stopped => "off",
    };
    (class, status.as_str().to_string())
}

fn end_of(r: &CrashRecord) -> String {
    match (&r.exit_code, &r.signal) {
        (Some(c), _) => format!("code {c}"),
        (None, Some(s)) => s.clone(),
        (None, None) => "-".into(),
    }
}

/// Escapes text for HTML content and attribute values.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timeline_badges_and_escaped_traces() {
        let state: StateFile = serde_json::from_value(serde_json::json!({
            "version": 1, "name": "a<b", "command": ["x"], "status": "running",
            "supervisor_pid": 1, "child_pid": 7, "started_at": "t", "child_started_at": null,
            "restarts": 2, "recent_restarts": ["t", "t"], "max_restarts": 5, "window_secs": 300,
            "last_exit": null, "next_restart_at": null, "health": "unhealthy", "updated_at": "t",
            "labels": {"env": "\"prod\""}
        }))
        .unwrap();
        let mut record = crate::records::crashlog::tests::record("r1");
        record.stack_trace = Some("at <script>x()</script>".into());
        let mut timeline = [0; 24];
        timeline[0] = 1;
        timeline[5] = 2;
        record.first_seen = true;
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000);
        let group = |fp: &str, first: &str, new: bool| Group {
            fingerprint: fp.into(),
            count: 3,
            first: first.into(),
            last: "2027-01-15T08:00:00.000Z".into(),
            error_type: Some("Key<Error>".into()),
            error_message: Some("'a'\nmore".into()),
            first_seen_at: new.then(|| first.to_string()),
        };
        let errors = [
            group("00000000000000aa", "2027-01-15T07:00:00.000Z", true),
            group("00000000000000bb", "2027-01-10T07:00:00.000Z", true),
            group("00000000000000cc", "2027-01-15T06:00:00.000Z", false),
        ];
        let html = render(&Page {
            state: &state,
            healthy: false,
            recent: std::slice::from_ref(&record),
            timeline,
            total: 9,
            errors: &errors,
            now,
        });
        // Errors grouped: new only when first seen in the last 24 h (2027-01-15 08:00 is now).
        assert!(html.contains("<tr><td>Key&lt;Error&gt;: &#39;a&#39;<span class=\"badge new\">new</span></td><td>3</td><td>2027-01-15 07:00:00</td><td>2027-01-15 08:00:00</td><td><code>00000000000000aa</code></td></tr>"), "{html}");
        assert!(html.contains(
            "<tr><td>Key&lt;Error&gt;: &#39;a&#39;</td><td>3</td><td>2027-01-10 07:00:00</td>"
        ));
        assert!(html.contains(
            "<tr><td>Key&lt;Error&gt;: &#39;a&#39;</td><td>3</td><td>2027-01-15 06:00:00</td>"
        ));
        // The recent crash of a new error is marked too.
        assert!(
            html.contains("<td>boom<span class=\"badge new\">new</span>"),
            "{html}"
        );
        assert!(html.contains("<title>a&lt;b - restartd</title>"));
        assert!(html.contains("class=\"badge bad\" id=\"status\">running<"));
        assert!(html.contains("health: unhealthy"));
        assert!(html.contains("env=&quot;prod&quot;"));
        assert!(html.contains("2 of 5 in 5m"));
        assert!(html.contains("3 in the last 24 h, 9 in total"));
        assert!(html.contains("title=\"2 crashes 5-6 h ago\""));
        assert!(html.contains("style=\"height:50%\" title=\"1 crashes 0-1 h ago\""));
        assert_eq!(html.matches("\" style=\"height:").count(), 24);
        assert!(html.contains("at &lt;script&gt;x()&lt;/script&gt;"));
        assert!(!html.contains("<script"));
    }

    #[test]
    fn escapes_markup() {
        assert_eq!(
            escape("<script>alert('x&y')</script>\""),
            "&lt;script&gt;alert(&#39;x&amp;y&#39;)&lt;/script&gt;&quot;"
        );
    }
}

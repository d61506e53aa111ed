//! The observability output checked by real outside tools: Prometheus' own Python parser
//! (`prometheus_client`, installed into target/promvenv by tests/setup.sh) reads `/metrics`
//! and `restartd metrics NAME`, and headless Chromium (Debian's `chromium`, installed by
//! tests/setup.sh) loads the dashboard, which must show the crash this test caused, and saves
//! a screenshot to target/dashboard.png. Each test skips, saying why, only when its tool is not
//! installed.

use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, SystemTime};

use serde_json::{json, Value};

use crate::common::*;
use crate::observe::{get, served_addr};

fn target() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target")
}

fn prom_python() -> Option<PathBuf> {
    let python = target().join("promvenv/bin/python");
    let ok = Command::new(&python)
        .args(["-c", "import prometheus_client.parser"])
        .output()
        .is_ok_and(|o| o.status.success());
    ok.then_some(python)
}

/// Parses `text` with prometheus_client; the families as JSON, or the parser's error.
fn prom_parse(python: &PathBuf, text: &str) -> Result<Value, String> {
    const SCRIPT: &str = r#"
import json, sys
from prometheus_client.parser import text_string_to_metric_families
out = []
for f in text_string_to_metric_families(sys.stdin.read()):
    out.append({"name": f.name, "type": f.type, "help": f.documentation,
                "samples": [{"name": s.name, "labels": s.labels, "value": s.value} for s in f.samples]})
print(json.dumps(out))
"#;
    use std::io::Write;
    let mut child = Command::new(python)
        .args(["-c", SCRIPT])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    if out.status.success() {
        Ok(serde_json::from_slice(&out.stdout).unwrap())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}

#[test]
fn prometheus_parser_accepts_the_metrics() {
    let Some(python) = prom_python() else {
        eprintln!("SKIP prometheus_parser_accepts_the_metrics: prometheus_client is not installed in target/promvenv (tests/setup.sh could not install it; see target/setup-promvenv.log)");
        return;
    };
    // The parser is strict enough to fail: a broken line is rejected.
    assert!(prom_parse(&python, "restartd_up{name=\"x} 1\n").is_err());

    let env = Env::new();
    let r = env.start(&[
        "-n",
        "prom",
        "--label",
        "quote=say \"hi\" \\ back",
        "--label",
        "env=prod",
        "--listen",
        "127.0.0.1:0",
        "--delay",
        "20s",
        "--",
        "python3",
        "-c",
        "raise KeyError('k')",
    ]);
    let addr = served_addr(&r);
    env.wait_state("prom", "backoff", |s| s["status"] == "backoff");
    let (status, _, body) = get(addr, "/metrics");
    assert_eq!(status, 200);
    let from_cli = String::from_utf8(env.sub(&["metrics", "prom"]).stdout).unwrap();
    for text in [body, from_cli] {
        let families = prom_parse(&python, &text).unwrap_or_else(|e| panic!("{e}\n{text}"));
        let samples: Vec<&Value> = families
            .as_array()
            .unwrap()
            .iter()
            .flat_map(|f| f["samples"].as_array().unwrap())
            .collect();
        for name in [
            "restartd_up",
            "restartd_child_up",
            "restartd_restarts_total",
            "restartd_crashes_total",
            "restartd_backoff_seconds",
            "restartd_healthy",
            "restartd_child_rss_bytes",
            "restartd_gave_up",
        ] {
            let s = samples
                .iter()
                .find(|s| s["name"] == name)
                .unwrap_or_else(|| panic!("no sample {name}: {families:#}"));
            assert_eq!(s["labels"]["name"], "prom");
            assert_eq!(s["labels"]["quote"], "say \"hi\" \\ back");
            assert_eq!(s["labels"]["env"], "prod");
        }
        let crash = samples
            .iter()
            .find(|s| s["name"] == "restartd_crashes_total")
            .unwrap();
        assert_eq!(crash["labels"]["reason"], "exit");
        assert_eq!(crash["labels"]["error_type"], "KeyError");
        assert_eq!(crash["value"], 1.0);
        let types: Vec<(&str, &str)> = families
            .as_array()
            .unwrap()
            .iter()
            .map(|f| (f["name"].as_str().unwrap(), f["type"].as_str().unwrap()))
            .collect();
        assert!(
            types.contains(&("restartd_crashes", "counter")),
            "{types:?}"
        );
        assert!(
            types.contains(&("restartd_restarts", "counter")),
            "{types:?}"
        );
        assert!(types.contains(&("restartd_up", "gauge")), "{types:?}");
    }
}

fn chromium() -> Option<&'static str> {
    let ok = Command::new("chromium")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    ok.then_some("chromium")
}

/// A record as restartd writes it, `hours_ago` old.
fn old_record(name: &str, hours_ago: f64, seq: u32) -> String {
    let t = SystemTime::now() - Duration::from_secs_f64(hours_ago * 3600.0);
    let time = humantime::format_rfc3339_millis(t).to_string();
    json!({
        "id": format!("{}-1-{seq}", time.replace(['-', ':'], "")), "name": name, "time": time,
        "reason": "exit", "exit_code": 1, "signal": null, "core_dumped": false, "expected": false,
        "pid": 100 + seq, "uptime_ms": 5000, "restarts": seq, "action": "restart",
        "next_delay_ms": 1000, "error_type": "ConnectionError",
        "error_message": "database unreachable", "stack_trace": null, "stderr_tail": null,
        "max_rss_kb": null, "user_cpu_ms": null, "sys_cpu_ms": null, "command": ["python3"],
        "cwd": null, "host": null, "restartd_version": "0.1.0", "detail": null,
        "labels": {"env": "prod"}
    })
    .to_string()
}

const CRASHER: &str = "\
import sys
sys.stderr.write('payments worker starting\\n')
def charge(order):
    return order['amount'] / order['items']
def handle(batch):
    return [charge(o) for o in batch]
handle([{'amount': 10, 'items': 0, 'note': '<script>alert(1)</script>'}])
";

#[test]
fn dashboard_in_headless_chromium() {
    let Some(chromium) = chromium() else {
        eprintln!("SKIP dashboard_in_headless_chromium: chromium is not installed (tests/setup.sh could not install it; see target/setup-chromium.log)");
        return;
    };
    let env = Env::new();
    // A history: crashes 2, 5 (two) and 20 hours ago.
    let dir = env.instance("payments");
    std::fs::create_dir_all(&dir).unwrap();
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700)).unwrap();
    }
    let history: Vec<String> = [(20.5, 1), (5.4, 2), (5.2, 3), (2.5, 4)]
        .iter()
        .map(|&(h, seq)| old_record("payments", h, seq))
        .collect();
    std::fs::write(dir.join("crashes.jsonl"), history.join("\n") + "\n").unwrap();
    let r = env.start(&[
        "-n",
        "payments",
        "--label",
        "env=prod",
        "--label",
        "version=1.4.2",
        "--listen",
        "127.0.0.1:0",
        "--delay",
        "30s",
        "--",
        "python3",
        "-c",
        CRASHER,
    ]);
    let addr = served_addr(&r);
    env.wait_state("payments", "backoff", |s| s["status"] == "backoff");
    let profile = tempfile::tempdir().unwrap();
    let chrome = |extra: &[&str]| {
        let mut cmd = Command::new(chromium);
        cmd.args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            "--disable-dev-shm-usage",
            "--hide-scrollbars",
            "--window-size=1280,1000",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .args(extra)
        .arg(format!("http://{addr}/"));
        run_with_timeout(cmd, Duration::from_secs(90))
    };
    let out = chrome(&["--dump-dom"]);
    let dom = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success() && dom.contains("<main>"),
        "chromium failed: {}\n{}",
        describe_status(out.status),
        String::from_utf8_lossy(&out.stderr)
    );
    // The crash this test caused, as the latest one, with its stack trace.
    let latest = dom.split("id=\"latest\"").nth(1).unwrap();
    assert!(
        latest.contains("ZeroDivisionError: division by zero"),
        "{dom}"
    );
    assert!(latest.contains("in charge"), "the stack trace: {dom}");
    assert!(dom.contains("id=\"status\">backoff<"), "{dom}");
    assert!(
        dom.contains("1 of 5 in 5m") || dom.contains("0 of 5 in 5m"),
        "{dom}"
    );
    // Crash data stayed text: no script element came from it.
    assert!(
        !dom.contains("<script"),
        "the page has no script at all: {dom}"
    );
    // The timeline: 24 bars, the seeded hours counted, the newest crash in the last hour.
    let bars = dom.matches("class=\"bar\"").count() + dom.matches("class=\"bar zero\"").count();
    assert_eq!(bars, 24, "{dom}");
    for title in [
        "1 crashes 0-1 h ago",
        "1 crashes 2-3 h ago",
        "2 crashes 5-6 h ago",
        "1 crashes 20-21 h ago",
    ] {
        assert!(dom.contains(title), "{title}: {dom}");
    }
    assert!(dom.contains("5 in the last 24 h, 5 in total"), "{dom}");

    // target/ is missing in a checkout whose build goes to CARGO_TARGET_DIR.
    std::fs::create_dir_all(target()).unwrap();
    let shot = target().join("dashboard.png");
    let _ = std::fs::remove_file(&shot);
    let arg = format!("--screenshot={}", shot.display());
    let out = chrome(&[&arg]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let png = std::fs::read(&shot).unwrap();
    assert!(
        png.starts_with(b"\x89PNG") && png.len() > 10_000,
        "{}",
        png.len()
    );
    eprintln!("dashboard screenshot: {}", shot.display());
}

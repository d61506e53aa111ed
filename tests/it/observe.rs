//! `--label`, `--listen` and `--metrics-file` (SPEC §9): every endpoint, bad requests, slow and
//! half-open clients, 1,000 connections at once, restart timing while the endpoint is hammered,
//! and the metrics file replaced atomically.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use nix::libc;
use serde_json::Value;

use crate::common::*;

/// The address restartd printed in `serving http://ADDR/`.
pub fn served_addr(r: &Running) -> SocketAddr {
    let mut addr = None;
    let ok = wait_until("serving", || {
        addr = r
            .stderr()
            .lines()
            .find_map(|l| l.split("serving http://").nth(1))
            .and_then(|rest| rest.split('/').next())
            .and_then(|a| a.parse().ok());
        addr.is_some()
    });
    assert!(ok, "no 'serving' line; stderr:\n{}", r.stderr());
    addr.unwrap()
}

/// Sends `request` as it is and reads the whole response: (status, head, body).
pub fn exchange(addr: SocketAddr, request: &[u8]) -> (u16, String, String) {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(TIMEOUT)).unwrap();
    s.write_all(request).unwrap();
    let mut buf = Vec::new();
    s.read_to_end(&mut buf).unwrap();
    let text = String::from_utf8_lossy(&buf).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    (status, head.to_string(), body.to_string())
}

pub fn get(addr: SocketAddr, path: &str) -> (u16, String, String) {
    exchange(
        addr,
        format!("GET {path} HTTP/1.1\r\nHost: localhost\r\n\r\n").as_bytes(),
    )
}

const SCRIPT_CRASH: &str =
    "import sys; sys.stderr.write('starting <b>\\n'); raise ValueError('<script>alert(1)</script>')";

#[test]
fn every_endpoint_with_labels_and_a_crash() {
    let env = Env::new();
    let r = env.start(&[
        "-n",
        "web",
        "--label",
        "env=prod",
        "--label",
        "version=1.4.2",
        "--listen",
        "127.0.0.1:0",
        "--delay",
        "20s",
        "--",
        "python3",
        "-c",
        SCRIPT_CRASH,
    ]);
    let addr = served_addr(&r);
    env.wait_state("web", "backoff after the crash", |s| {
        s["status"] == "backoff"
    });
    // Labels in the record and the state.
    let records = env.records("web");
    assert_eq!(records.len(), 1);
    assert_eq!(records[0]["labels"]["env"], "prod");
    assert_eq!(records[0]["labels"]["version"], "1.4.2");
    assert_eq!(env.state("web")["labels"]["env"], "prod");

    let (status, head, body) = get(addr, "/metrics");
    assert_eq!(status, 200, "{head}");
    assert!(
        head.contains("Content-Type: text/plain; version=0.0.4"),
        "{head}"
    );
    let base = r#"name="web",env="prod",version="1.4.2""#;
    for line in [
        format!("restartd_up{{{base}}} 1"),
        format!("restartd_child_up{{{base}}} 0"),
        format!("restartd_restarts_total{{{base}}} 0"),
        format!("restartd_healthy{{{base}}} 0"),
        format!("restartd_gave_up{{{base}}} 0"),
        format!("restartd_oom_kills_total{{{base}}} 0"),
        format!("restartd_crashes_total{{{base},reason=\"exit\",error_type=\"ValueError\"}} 1"),
    ] {
        assert!(body.lines().any(|l| l == line), "{line}\n{body}");
    }
    let backoff = body
        .lines()
        .find_map(|l| l.strip_prefix(&format!("restartd_backoff_seconds{{{base}}} ")))
        .and_then(|v| v.parse::<f64>().ok())
        .unwrap();
    assert!(backoff > 10.0 && backoff <= 20.0, "{backoff}");

    let (status, _, body) = get(addr, "/status");
    assert_eq!(status, 200);
    let s: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(s["name"], "web");
    assert_eq!(s["running"], true);
    assert_eq!(s["status"], "backoff");
    assert_eq!(s["labels"]["version"], "1.4.2");
    let cli: Value = serde_json::from_slice(&env.sub(&["status", "web", "--json"]).stdout).unwrap();
    for key in cli.as_object().unwrap().keys() {
        assert!(s.get(key).is_some(), "/status lacks {key}");
    }

    let (status, head, body) = get(addr, "/crashes?n=5&since=1h");
    assert_eq!(status, 200, "{head}");
    let lines: Vec<Value> = body
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 1);
    assert_eq!(lines[0]["error_type"], "ValueError");
    assert_eq!(lines[0]["labels"]["env"], "prod");
    let (_, _, body) = get(addr, "/crashes?since=1ms");
    assert_eq!(body, "", "a crash older than 1ms is not listed");

    let (status, _, body) = get(addr, "/crashes/stats");
    assert_eq!(status, 200);
    let stats: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(stats["total"], 1);
    assert_eq!(stats["by_error_type"]["ValueError"], 1);
    assert_eq!(stats["status"], "degraded");
    let fingerprint = records[0]["fingerprint"].as_str().unwrap();
    assert_eq!(stats["by_fingerprint"][0]["fingerprint"], fingerprint);
    assert_eq!(stats["by_fingerprint"][0]["count"], 1);

    let (status, _, body) = get(addr, "/healthz");
    assert_eq!(status, 503, "in backoff: {body}");

    let (status, head, body) = get(addr, "/");
    assert_eq!(status, 200);
    assert!(head.contains("Content-Type: text/html"), "{head}");
    assert!(body.contains("ValueError: &lt;script&gt;alert(1)&lt;/script&gt;"));
    assert!(!body.contains("<script>alert"), "crash data is escaped");
    assert!(body.contains("http-equiv=\"refresh\""));
    assert!(!body.contains("src=\"http") && !body.contains("href=\"http"));
    assert!(body.contains("0 of 5 in 5m"), "restarts against the limit");
    // The errors grouped by fingerprint, this one new.
    let errors = body.split("id=\"errors\"").nth(1).expect("an errors table");
    assert!(
        errors.contains(&format!("<code>{fingerprint}</code>"))
            && errors.contains("<span class=\"badge new\">new</span></td><td>1</td>"),
        "{errors}"
    );

    let (status, head, body) = exchange(addr, b"HEAD /metrics HTTP/1.1\r\nHost: localhost\r\n\r\n");
    assert_eq!(status, 200);
    assert!(head.contains("Content-Length: ") && !head.contains("Content-Length: 0"));
    assert_eq!(body, "");
}

#[test]
fn healthz_and_metrics_of_a_running_child() {
    let env = Env::new();
    let r = env.start(&["-n", "run", "--listen", "127.0.0.1:0", "--", "sleep", "300"]);
    let addr = served_addr(&r);
    let pid = env.wait_child("run");
    let (status, _, body) = get(addr, "/healthz");
    assert_eq!((status, body.as_str()), (200, "ok\n"));
    let (_, _, body) = get(addr, "/metrics");
    assert!(body.contains("restartd_child_up{name=\"run\"} 1"), "{body}");
    let rss: u64 = body
        .lines()
        .find_map(|l| l.strip_prefix("restartd_child_rss_bytes{name=\"run\"} "))
        .unwrap()
        .parse()
        .unwrap();
    assert!(rss > 0, "{body}");
    let start: f64 = body
        .lines()
        .find_map(|l| l.strip_prefix("restartd_child_start_time_seconds{name=\"run\"} "))
        .unwrap()
        .parse()
        .unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    assert!((now - start).abs() < 30.0, "{start} vs {now}");
    signal(pid, libc::SIGKILL);
    env.wait_state("run", "backoff", |s| s["status"] == "backoff");
    assert_eq!(get(addr, "/healthz").0, 503);
}

#[test]
fn bad_requests_get_400_404_405_414_431() {
    let env = Env::new();
    let r = env.start(&["-n", "bad", "--listen", "127.0.0.1:0", "--", "sleep", "300"]);
    let addr = served_addr(&r);
    env.wait_child("bad");
    let cases: Vec<(Vec<u8>, u16)> = vec![
        (
            b"POST /metrics HTTP/1.1\r\nHost: localhost\r\n\r\n".to_vec(),
            405,
        ),
        (
            b"GET /nope HTTP/1.1\r\nHost: localhost\r\n\r\n".to_vec(),
            404,
        ),
        (b"GET /metrics HTTP/1.1\r\n\r\n".to_vec(), 400),
        (b"GET /metrics\r\n\r\n".to_vec(), 400),
        (
            b"\x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03\r\n".to_vec(),
            400,
        ),
        (b"GET / HTTP/1.1\nHost: localhost\n\n".to_vec(), 400),
        (
            b"GET /crashes?n=x HTTP/1.1\r\nHost: localhost\r\n\r\n".to_vec(),
            400,
        ),
        (
            b"GET /crashes?since=soon HTTP/1.1\r\nHost: localhost\r\n\r\n".to_vec(),
            400,
        ),
        (
            b"GET /metrics?x=1 HTTP/1.1\r\nHost: localhost\r\n\r\n".to_vec(),
            400,
        ),
        (
            b"GET / HTTP/1.1\r\nHost: localhost\r\nContent-Length: 3\r\n\r\nabc".to_vec(),
            400,
        ),
        (b"GET / HTTP/3.0\r\nHost: localhost\r\n\r\n".to_vec(), 505),
        (
            format!("GET /{} HTTP/1.1\r\n", "a".repeat(3000)).into_bytes(),
            414,
        ),
    ];
    for (req, want) in cases {
        let (status, head, body) = exchange(addr, &req);
        assert_eq!(
            status,
            want,
            "{}\n{head}\n{body}",
            String::from_utf8_lossy(&req)
        );
        assert!(head.contains("Connection: close"), "{head}");
    }
    // 16 KiB of headers: answered 431 at 8 KiB, whatever the client still sends.
    let mut big = b"GET / HTTP/1.1\r\nHost: localhost\r\n".to_vec();
    while big.len() < 16 * 1024 {
        big.extend_from_slice(b"X-Filler: 0123456789abcdef0123456789abcdef0123456789\r\n");
    }
    big.extend_from_slice(b"\r\n");
    assert_eq!(exchange(addr, &big).0, 431);
    // Still serving.
    assert_eq!(get(addr, "/healthz").0, 200);
}

#[test]
fn slow_and_half_open_clients_are_dropped_and_do_not_block_others() {
    let env = Env::new();
    let r = env.start(&[
        "-n",
        "slow",
        "--listen",
        "127.0.0.1:0",
        "--",
        "sleep",
        "300",
    ]);
    let addr = served_addr(&r);
    env.wait_child("slow");
    let mut idle = Vec::new();
    for i in 0..20 {
        let mut s = TcpStream::connect(addr).unwrap();
        if i % 2 == 0 {
            // Half a request, never finished.
            s.write_all(b"GET /metrics HTT").unwrap();
        }
        idle.push(s);
    }
    let started = Instant::now();
    assert_eq!(get(addr, "/healthz").0, 200);
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "a request waited {:?} behind idle clients",
        started.elapsed()
    );
    // The server closes each idle connection at its 5 s deadline.
    for mut s in idle {
        s.set_read_timeout(Some(Duration::from_secs(12))).unwrap();
        let mut buf = [0u8; 64];
        // A signal to the test process (another test's child ending) may interrupt the read.
        let read = loop {
            match s.read(&mut buf) {
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                other => break other,
            }
        };
        match read {
            Ok(0) => {}
            Ok(n) => panic!("unexpected data: {:?}", String::from_utf8_lossy(&buf[..n])),
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => {}
            Err(e) => panic!("not closed by the server: {e}"),
        }
    }
    assert!(started.elapsed() >= Duration::from_secs(4));
    // With no client left, no deadline is left either: only the supervisor's fds remain.
    let fds = || {
        std::fs::read_dir(format!("/proc/{}/fd", r.pid))
            .unwrap()
            .count()
    };
    let settled = wait_until("connections closed", || {
        let before = fds();
        std::thread::sleep(Duration::from_millis(200));
        fds() == before
    });
    assert!(settled);
    assert_eq!(get(addr, "/healthz").0, 200);
}

fn raise_fd_limit() {
    use nix::sys::resource::{getrlimit, setrlimit, Resource};
    let (_, hard) = getrlimit(Resource::RLIMIT_NOFILE).unwrap();
    let _ = setrlimit(Resource::RLIMIT_NOFILE, hard.min(65536), hard);
}

#[test]
fn a_thousand_concurrent_connections() {
    raise_fd_limit();
    let env = Env::new();
    let r = env.start(&[
        "-n",
        "many",
        "--listen",
        "127.0.0.1:0",
        "--",
        "sleep",
        "300",
    ]);
    let addr = served_addr(&r);
    env.wait_child("many");
    let fd_count = || {
        std::fs::read_dir(format!("/proc/{}/fd", r.pid))
            .unwrap()
            .count()
    };
    let baseline = fd_count();
    let mut conns = Vec::new();
    for _ in 0..1000 {
        let mut s = TcpStream::connect(addr).unwrap();
        // The server may already have turned this one away: a reset here is an answer too.
        let _ = s.write_all(b"GET /metrics HTTP/1.1\r\nHost: localhost\r\n\r\n");
        conns.push(s);
    }
    let (mut ok, mut busy, mut reset) = (0, 0, 0);
    for mut s in conns {
        s.set_read_timeout(Some(TIMEOUT)).unwrap();
        let mut buf = Vec::new();
        match s.read_to_end(&mut buf) {
            Ok(_) if buf.starts_with(b"HTTP/1.1 200 ") => ok += 1,
            Ok(_) if buf.starts_with(b"HTTP/1.1 503 ") => busy += 1,
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => reset += 1,
            other => panic!("neither answered nor closed: {other:?} {buf:?}"),
        }
    }
    eprintln!("1000 connections: {ok} served, {busy} told 503, {reset} reset");
    assert_eq!(ok + busy + reset, 1000);
    assert!(ok >= 64, "only {ok} served");
    assert!(
        wait_until("connections closed", || fd_count() <= baseline),
        "restartd holds {} fds, {baseline} before",
        fd_count()
    );
    assert_eq!(get(addr, "/healthz").0, 200);
}

/// Restart delays measured from the crash records: the gap between a crash and the next one,
/// less the next run's uptime, is the delay restartd waited.
fn delays(records: &[Value]) -> Vec<f64> {
    let t = |r: &Value| {
        let s = r["time"].as_str().unwrap();
        humantime::parse_rfc3339(s).unwrap()
    };
    records
        .windows(2)
        .map(|w| {
            let gap = t(&w[1]).duration_since(t(&w[0])).unwrap().as_secs_f64();
            gap - w[1]["uptime_ms"].as_u64().unwrap() as f64 / 1000.0
        })
        .collect()
}

#[test]
fn restart_delays_hold_while_the_endpoint_is_hammered() {
    let env = Env::new();
    let r = env.start(&[
        "-n",
        "loop",
        "--listen",
        "127.0.0.1:0",
        "--restart",
        "always",
        "--delay",
        "200ms",
        "--backoff-factor",
        "1",
        "--max-restarts",
        "unlimited",
        "--",
        "sh",
        "-c",
        "echo boom >&2; exit 3",
    ]);
    let addr = served_addr(&r);
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut threads = Vec::new();
    for i in 0..6 {
        let stop = stop.clone();
        threads.push(std::thread::spawn(move || {
            let paths = [
                "/",
                "/metrics",
                "/crashes?n=50",
                "/crashes/stats",
                "/status",
            ];
            let mut n = 0u64;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let (status, _, _) = get(addr, paths[(i + n as usize) % paths.len()]);
                assert_eq!(status, 200);
                n += 1;
            }
            n
        }));
    }
    let enough = wait_until("15 crashes", || env.records("loop").len() >= 15);
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let requests: u64 = threads.into_iter().map(|t| t.join().unwrap()).sum();
    assert!(enough, "the crash loop stalled");
    let d = delays(&env.records("loop"));
    let worst = d.iter().cloned().fold(0.0, f64::max);
    let least = d.iter().cloned().fold(f64::MAX, f64::min);
    let mean = d.iter().sum::<f64>() / d.len() as f64;
    eprintln!(
        "under {requests} requests: {} restart delays, min {:.0} ms, mean {:.0} ms, max {:.0} ms (set 200 ms)",
        d.len(),
        least * 1000.0,
        mean * 1000.0,
        worst * 1000.0
    );
    assert!(least >= 0.195, "a restart came early: {d:?}");
    assert!(worst <= 0.350, "a restart was late: {d:?}");
}

#[test]
fn usage_errors_for_labels_and_listen() {
    let env = Env::new();
    let out = env.run(&["--label", "1x=y", "--", "true"]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("invalid value '1x=y' for '--label <KEY=VALUE>'"),
        "{err}"
    );
    let out = env.run(&["--listen", "0.0.0.0:9", "--", "true"]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("--listen 0.0.0.0:9 is not a loopback address"),
        "{err}"
    );
    assert!(err.contains("--listen-remote"), "{err}");
    let out = env.run(&["--listen", "localhost:9", "--", "true"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(!env.instance("true").join("state.json").exists());
}

#[test]
fn metrics_file_is_replaced_atomically_and_matches_the_subcommand() {
    let env = Env::new();
    let file = env.state_dir().join("restartd.prom");
    let file_arg = file.to_str().unwrap().to_string();
    let mut r = env.start(&[
        "-n",
        "mf",
        "--label",
        "team=core",
        "--metrics-file",
        &file_arg,
        "--restart",
        "always",
        "--delay",
        "20ms",
        "--backoff-factor",
        "1",
        "--max-restarts",
        "40",
        "--window",
        "1h",
        "--",
        "sh",
        "-c",
        "exit 5",
    ]);
    // Read the file as fast as possible while it is rewritten at every state change.
    let mut reads = 0;
    let mut versions = std::collections::HashSet::new();
    let deadline = Instant::now() + TIMEOUT;
    while r.try_exit().is_none() && Instant::now() < deadline {
        if let Ok(text) = std::fs::read_to_string(&file) {
            reads += 1;
            assert!(
                text.ends_with('\n') && text.contains("# TYPE restartd_crashes_total counter"),
                "a torn read: {text:?}"
            );
            versions.insert(text);
        }
    }
    assert_eq!(r.wait_exit(), Some(5), "gave up with the child's status");
    assert!(
        reads > 10 && versions.len() > 5,
        "{reads} reads, {} versions",
        versions.len()
    );
    let text = std::fs::read_to_string(&file).unwrap();
    let base = r#"name="mf",team="core""#;
    for line in [
        format!("restartd_up{{{base}}} 0"),
        format!("restartd_gave_up{{{base}}} 1"),
        format!("restartd_restarts_total{{{base}}} 40"),
        format!("restartd_crashes_total{{{base},reason=\"exit\",error_type=\"\"}} 41"),
    ] {
        assert!(text.lines().any(|l| l == line), "{line}\n{text}");
    }
    let out = env.sub(&["metrics", "mf"]);
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(String::from_utf8(out.stdout).unwrap(), text);
    assert_eq!(env.sub(&["metrics", "nope"]).status.code(), Some(4));
    let leftovers: Vec<_> = std::fs::read_dir(env.state_dir())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .filter(|n| n.to_string_lossy().ends_with(".tmp"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

#[test]
fn with_no_client_connected_the_endpoint_costs_no_wakeups() {
    let env = Env::new();
    let mut r = env.start(&[
        "-n",
        "quiet",
        "--listen",
        "127.0.0.1:0",
        "--",
        "sleep",
        "300",
    ]);
    let addr = served_addr(&r);
    env.wait_child("quiet");
    // A client came and went: its deadline must go with it.
    assert_eq!(get(addr, "/metrics").0, 200);
    assert_no_wakeups(r.pid, "with no client connected");
    r.signal(libc::SIGTERM);
    assert_eq!(r.wait_exit(), Some(0));
}

#[test]
fn a_request_followed_by_a_half_close_is_answered() {
    let env = Env::new();
    let r = env.start(&[
        "-n",
        "half",
        "--listen",
        "127.0.0.1:0",
        "--",
        "sleep",
        "300",
    ]);
    let addr = served_addr(&r);
    env.wait_child("half");
    let mut s = TcpStream::connect(addr).unwrap();
    s.write_all(b"GET /healthz HTTP/1.0\r\n\r\n").unwrap();
    s.shutdown(std::net::Shutdown::Write).unwrap();
    s.set_read_timeout(Some(TIMEOUT)).unwrap();
    let mut text = String::new();
    s.read_to_string(&mut text).unwrap();
    assert!(
        text.starts_with("HTTP/1.1 200 OK\r\n") && text.ends_with("\r\n\r\nok\n"),
        "{text:?}"
    );
}

#[test]
fn a_port_in_use_is_reported_and_starts_nothing() {
    let env = Env::new();
    let held = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = held.local_addr().unwrap().to_string();
    let out = env.run(&["-n", "busy", "--listen", &addr, "--", "sleep", "300"]);
    assert_eq!(out.status.code(), Some(125));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(&format!("unable to listen on {addr} (--listen)")),
        "{err}"
    );
    assert!(!env.instance("busy").join("state.json").exists());
}

/// restartd's user + system CPU time so far, in clock ticks.
fn cpu_ticks(pid: i32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let fields: Vec<&str> = stat[stat.rfind(')').unwrap() + 2..]
        .split_whitespace()
        .collect();
    fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap()
}

#[test]
fn out_of_file_descriptors_the_listener_rests_instead_of_spinning() {
    let env = Env::new();
    let mut cmd = env.command(&["-n", "fds", "--listen", "127.0.0.1:0", "--", "sleep", "300"]);
    // SAFETY: setrlimit is async-signal-safe; it only lowers this child's own limit.
    unsafe {
        std::os::unix::process::CommandExt::pre_exec(&mut cmd, || {
            let limit = libc::rlimit {
                rlim_cur: 24,
                rlim_max: 24,
            };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &limit) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let mut r = Running::spawn(cmd);
    let addr = served_addr(&r);
    env.wait_child("fds");
    // More clients than restartd has descriptors left: accept fails with EMFILE while the
    // rest wait in the backlog, keeping the listener readable.
    let clients: Vec<TcpStream> = (0..40).map(|_| TcpStream::connect(addr).unwrap()).collect();
    std::thread::sleep(Duration::from_millis(300));
    let before = cpu_ticks(r.pid);
    std::thread::sleep(Duration::from_secs(1));
    let spent = cpu_ticks(r.pid) - before;
    assert!(
        spent < 30,
        "restartd spent {spent} ticks in 1 s: spinning on the listener"
    );
    // Once the clients are gone, the endpoint answers again.
    drop(clients);
    let served = wait_until("served again", || {
        TcpStream::connect(addr).is_ok_and(|mut s| {
            let _ = s.set_read_timeout(Some(Duration::from_secs(3)));
            let _ = s.write_all(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n");
            let mut out = String::new();
            let _ = s.read_to_string(&mut out);
            out.starts_with("HTTP/1.1 200")
        })
    });
    assert!(served, "{}", env.report());
    r.signal(libc::SIGTERM);
    assert_eq!(r.wait_exit(), Some(0));
}

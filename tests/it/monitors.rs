//! Health checks, sd_notify both ways, the watchdog, the memory limit and the log file (SPEC §5),
//! against real processes and real sockets.

use std::io::{Read, Write};
use std::net::TcpListener;
use std::os::unix::net::UnixDatagram;
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::sync::Arc;
use std::time::Duration;

use nix::libc;

use crate::common::{assert_no_wakeups, wait_until, Env};

const OK: u8 = 0;
const UNAVAILABLE: u8 = 1;
const HANG: u8 = 2;

/// An HTTP server on 127.0.0.1 that answers 200, 503, or never; it stops with the test.
struct HealthServer {
    port: u16,
    mode: Arc<AtomicU8>,
    stop: Arc<AtomicBool>,
}

impl HealthServer {
    fn start() -> HealthServer {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let port = listener.local_addr().unwrap().port();
        let mode = Arc::new(AtomicU8::new(OK));
        let stop = Arc::new(AtomicBool::new(false));
        let (m, st) = (mode.clone(), stop.clone());
        std::thread::spawn(move || {
            let mut held = Vec::new();
            while !st.load(Ordering::SeqCst) {
                match listener.accept() {
                    Ok((mut conn, _)) => {
                        conn.set_nonblocking(false).unwrap();
                        conn.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
                        let mut buf = [0u8; 1024];
                        let _ = conn.read(&mut buf);
                        match m.load(Ordering::SeqCst) {
                            OK => {
                                let _ = conn
                                    .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok");
                            }
                            UNAVAILABLE => {
                                let _ = conn.write_all(b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\n\r\n");
                            }
                            _ => held.push(conn),
                        }
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(5)),
                }
            }
        });
        HealthServer { port, mode, stop }
    }

    fn set(&self, mode: u8) {
        self.mode.store(mode, Ordering::SeqCst);
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}/healthz", self.port)
    }
}

impl Drop for HealthServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
    }
}

#[test]
fn http_health_checks_mark_healthy_then_restart_an_unhealthy_child() {
    let env = Env::new();
    let server = HealthServer::start();
    let url = server.url();
    let mut r = env.start(&[
        "-n",
        "web",
        "--health-url",
        &url,
        "--health-interval",
        "100ms",
        "--health-timeout",
        "300ms",
        "--health-retries",
        "2",
        "--delay",
        "0",
        "--",
        "sleep",
        "300",
    ]);
    let first = env.wait_child("web");
    env.wait_state("web", "healthy", |s| s["health"] == "healthy");
    let out = env.sub(&["status", "web"]);
    assert!(String::from_utf8_lossy(&out.stdout).contains("healthy"));

    server.set(UNAVAILABLE);
    let state = env.wait_state("web", "a restart", |s| {
        s["restarts"] == 1 && s["status"] == "running"
    });
    assert_ne!(state["child_pid"], first);
    let record = &env.records("web")[0];
    assert_eq!(record["reason"], "unhealthy");
    assert_eq!(
        record["signal"], "SIGTERM",
        "stopped by restartd's stop signal"
    );
    assert_eq!(record["action"], "restart");
    assert!(
        record["detail"].as_str().unwrap().contains("HTTP 503"),
        "{record}"
    );
    assert_eq!(state["last_exit"]["reason"], "unhealthy");

    // A check that never answers times out.
    server.set(HANG);
    env.wait_state("web", "a second restart", |s| s["restarts"] == 2);
    let record = &env.records("web")[1];
    assert!(
        record["detail"]
            .as_str()
            .unwrap()
            .contains("timed out after 300ms"),
        "{record}"
    );
    server.set(OK);
    env.wait_state("web", "healthy again", |s| s["health"] == "healthy");
    r.signal(libc::SIGTERM);
    assert_eq!(r.wait_exit(), Some(0));
}

#[test]
fn command_health_checks_keep_their_output_and_honour_the_start_period() {
    let env = Env::new();
    let flag = env.state_dir().join("healthy");
    let check = format!(
        "test -f {} || {{ echo database unreachable; exit 1; }}",
        flag.display()
    );
    let mut r = env.start(&[
        "-n",
        "cmd",
        "--health-cmd",
        &check,
        "--health-interval",
        "50ms",
        "--health-retries",
        "1",
        "--health-start-period",
        "400ms",
        "--restart",
        "no",
        "--",
        "sleep",
        "300",
    ]);
    env.wait_child("cmd");
    // Failing inside the start period: still starting.
    env.wait_state("cmd", "checks running", |s| s["health"] == "starting");
    std::fs::write(&flag, "").unwrap();
    env.wait_state("cmd", "healthy", |s| s["health"] == "healthy");
    std::fs::remove_file(&flag).unwrap();
    // --restart no: unhealthy ends it with the child's status (SIGTERM → 143).
    assert_eq!(r.wait_exit(), Some(143));
    let record = &env.records("cmd")[0];
    assert_eq!(record["reason"], "unhealthy");
    assert_eq!(record["action"], "exit");
    let detail = record["detail"].as_str().unwrap();
    assert!(detail.contains("code 1: database unreachable"), "{detail}");
    assert!(
        r.stderr()
            .contains("unhealthy: 1 failed health checks in a row"),
        "{}",
        r.stderr()
    );
}

#[test]
fn https_health_urls_point_to_health_cmd() {
    let env = Env::new();
    let out = env.run(&["--health-url", "https://example.com/", "--", "true"]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("use --health-cmd 'curl -fsS https://example.com/'"),
        "{err}"
    );
}

/// A python child that speaks sd_notify; it sends each of `messages` (0.1 s apart), then sleeps.
fn notifier(messages: &[&str]) -> String {
    format!(
        "import os, socket, time\naddr = os.environ['NOTIFY_SOCKET']\naddr = '\\0' + addr[1:] if addr.startswith('@') else addr\ns = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)\nprint('env', os.environ.get('WATCHDOG_USEC'), os.environ.get('WATCHDOG_PID'), os.getpid(), flush=True)\nfor m in {messages:?}:\n    s.sendto(m.encode(), addr); time.sleep(0.1)\nprint('sent all', flush=True)\ntime.sleep(300)\n"
    )
}

#[test]
fn notify_readiness_and_status_from_the_child_only() {
    let env = Env::new();
    let script = notifier(&["STATUS=warming up", "READY=1\nSTATUS=listening on :8080"]);
    let mut r = env.start(&["-n", "nt", "--notify", "--", "python3", "-c", &script]);
    env.wait_child("nt");
    let state = env.wait_state("nt", "ready", |s| {
        s["ready"] == true && s["status_text"] == "listening on :8080"
    });
    assert_eq!(state["status"], "running");
    // A datagram from another process (this test) is ignored.
    let sock = UnixDatagram::unbound().unwrap();
    sock.send_to(b"STATUS=forged", env.instance("nt").join("notify"))
        .unwrap();
    r.wait_stdout("sent all");
    assert!(!wait_short(|| env.state("nt")["status_text"] == "forged"));
    r.signal(libc::SIGTERM);
    assert_eq!(r.wait_exit(), Some(0));
}

/// Like `wait_until`, for things that must NOT happen: watches for 500 ms.
fn wait_short(mut cond: impl FnMut() -> bool) -> bool {
    let start = std::time::Instant::now();
    while start.elapsed() < Duration::from_millis(500) {
        if cond() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    false
}

#[test]
fn a_missed_watchdog_aborts_the_child_and_restarts_it() {
    let env = Env::new();
    // Three pings 100 ms apart, then silence: the 400 ms watchdog fires.
    let script = notifier(&["READY=1", "WATCHDOG=1", "WATCHDOG=1", "WATCHDOG=1"]);
    let mut r = env.start(&[
        "-n",
        "wd",
        "--watchdog",
        "400ms",
        "--restart",
        "on-watchdog",
        "--delay",
        "0",
        "--",
        "python3",
        "-c",
        &script,
    ]);
    let line = r.wait_stdout("env ");
    let words: Vec<&str> = line.split_whitespace().collect();
    assert_eq!(words[1], "400000", "WATCHDOG_USEC: {line}");
    assert_eq!(
        words[2], words[3],
        "WATCHDOG_PID is the child's pid: {line}"
    );
    let state = env.wait_state("wd", "a restart", |s| s["restarts"] == 1);
    assert_eq!(state["last_exit"]["reason"], "watchdog");
    let record = &env.records("wd")[0];
    assert_eq!(record["reason"], "watchdog");
    assert_eq!(record["signal"], "SIGABRT");
    assert_eq!(record["action"], "restart");
    assert!(
        record["detail"]
            .as_str()
            .unwrap()
            .contains("no WATCHDOG=1 within 400ms"),
        "{record}"
    );
    r.signal(libc::SIGTERM);
    assert_eq!(r.wait_exit(), Some(0));
}

/// restartd under a "systemd" that is this test: a datagram socket in NOTIFY_SOCKET.
fn systemd(env: &Env) -> (UnixDatagram, std::path::PathBuf) {
    let path = env.state_dir().join("systemd.sock");
    let sock = UnixDatagram::bind(&path).unwrap();
    sock.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    (sock, path)
}

fn recv(sock: &UnixDatagram) -> String {
    let mut buf = [0u8; 512];
    let n = sock.recv(&mut buf).expect("a datagram from restartd");
    String::from_utf8_lossy(&buf[..n]).into_owned()
}

#[test]
fn under_systemd_it_reports_ready_pings_the_watchdog_and_says_stopping() {
    let env = Env::new();
    let (sock, path) = systemd(&env);
    let mut cmd = env.command(&[
        "-n",
        "unit",
        "--",
        "sh",
        "-c",
        "echo child sees ${NOTIFY_SOCKET:-nothing} ${WATCHDOG_USEC:-none}; exec sleep 300",
    ]);
    cmd.env("NOTIFY_SOCKET", &path)
        .env("WATCHDOG_USEC", "200000");
    let mut r = crate::common::Running::spawn(cmd);
    assert_eq!(recv(&sock), "READY=1", "ready at spawn without --notify");
    r.wait_stdout("child sees nothing none");
    assert_eq!(recv(&sock), "WATCHDOG=1");
    assert_eq!(recv(&sock), "WATCHDOG=1");
    r.signal(libc::SIGTERM);
    loop {
        let msg = recv(&sock);
        if msg != "WATCHDOG=1" {
            assert_eq!(msg, "STOPPING=1");
            break;
        }
    }
    assert_eq!(r.wait_exit(), Some(0));
}

#[test]
fn under_systemd_with_notify_ready_waits_for_the_child_and_status_is_forwarded() {
    let env = Env::new();
    let (sock, path) = systemd(&env);
    let script = notifier(&["STATUS=loading", "READY=1"]);
    let mut cmd = env.command(&["-n", "unit2", "--notify", "--", "python3", "-c", &script]);
    cmd.env("NOTIFY_SOCKET", &path);
    let mut r = crate::common::Running::spawn(cmd);
    assert_eq!(recv(&sock), "STATUS=loading");
    assert_eq!(recv(&sock), "READY=1");
    r.signal(libc::SIGTERM);
    assert_eq!(recv(&sock), "STOPPING=1");
    assert_eq!(r.wait_exit(), Some(0));
}

#[test]
fn a_child_over_the_memory_limit_is_restarted_with_the_figure() {
    let env = Env::new();
    // Allocates and touches 200 MiB on its first run only.
    let script = "import os, time\nif os.environ['RESTARTD_RESTARTS'] == '0':\n    b = bytearray(200 * 1024 * 1024)\n    for i in range(0, len(b), 4096): b[i] = 1\nprint('run', os.environ['RESTARTD_RESTARTS'], flush=True)\ntime.sleep(300)\n";
    let mut r = env.start(&[
        "-n",
        "mem",
        "--max-memory",
        "64M",
        "--delay",
        "0",
        "--",
        "python3",
        "-c",
        script,
    ]);
    r.wait_stdout("run 1");
    let record = &env.records("mem")[0];
    assert_eq!(record["reason"], "memory");
    assert_eq!(record["action"], "restart");
    let detail = record["detail"].as_str().unwrap();
    assert!(
        detail.contains("over the limit of 64.0 MiB (--max-memory)"),
        "{detail}"
    );
    r.signal(libc::SIGTERM);
    assert_eq!(r.wait_exit(), Some(0));
}

#[test]
fn the_log_file_gets_stdout_and_stderr_and_rotates_without_losing_a_byte() {
    let env = Env::new();
    let log = env.state_dir().join("app.log");
    let script = "for i in $(seq 1 400); do echo out$i; echo err$i >&2; done; exit 3";
    let out = env.run(&[
        "-n",
        "logged",
        "--restart",
        "no",
        "--log-file",
        log.to_str().unwrap(),
        "--log-max-size",
        "2K",
        "--log-keep",
        "50",
        "--",
        "sh",
        "-c",
        script,
    ]);
    assert_eq!(out.status.code(), Some(3));
    // The terminal still got everything.
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(stdout.lines().filter(|l| l.starts_with("out")).count(), 400);
    // Oldest first, the files hold every line exactly once.
    let mut text = String::new();
    for n in (1..=50).rev() {
        if let Ok(t) = std::fs::read_to_string(format!("{}.{n}", log.display())) {
            assert!(t.len() <= 2048);
            text.push_str(&t);
        }
    }
    text.push_str(&std::fs::read_to_string(&log).unwrap());
    for i in 1..=400 {
        assert_eq!(
            text.lines().filter(|l| *l == format!("out{i}")).count(),
            1,
            "out{i}"
        );
        assert_eq!(
            text.lines().filter(|l| *l == format!("err{i}")).count(),
            1,
            "err{i}"
        );
    }
    assert!(std::path::Path::new(&format!("{}.1", log.display())).exists());
}

#[test]
fn without_timers_a_quiet_child_costs_no_wakeups() {
    let env = Env::new();
    let mut r = env.start(&["-n", "idle", "--", "sleep", "300"]);
    env.wait_child("idle");
    assert_no_wakeups(r.pid, "with a quiet child");
    r.signal(libc::SIGTERM);
    assert_eq!(r.wait_exit(), Some(0));
    assert!(wait_until("exited", || true));
}

//! Readiness (SPEC §13) and the rest of sd_notify (SPEC §14), with real children and a "systemd"
//! that is this test: a datagram socket in restartd's NOTIFY_SOCKET. tests/it/systemd.rs does
//! the same against the real one.

use std::net::TcpListener;
use std::os::unix::net::UnixDatagram;
use std::time::{Duration, Instant};

use nix::libc;

use crate::common::{Env, Running};

/// restartd's "systemd": a datagram socket in the test's state directory.
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

/// The next datagram that is not a watchdog ping.
fn next(sock: &UnixDatagram) -> String {
    loop {
        let msg = recv(sock);
        if msg != "WATCHDOG=1" {
            return msg;
        }
    }
}

/// A python child that sends each of `messages` as one datagram, in order, then runs `then`.
fn notifier(messages: &[&str], then: &str) -> String {
    format!(
        "import os, socket, signal, sys, time\naddr = os.environ['NOTIFY_SOCKET']\naddr = '\\0' + addr[1:] if addr.startswith('@') else addr\ns = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)\nfor m in {messages:?}:\n    s.sendto(m.encode(), addr)\n{then}\n"
    )
}

#[test]
fn a_child_never_ready_is_stopped_with_reason_start_timeout() {
    let env = Env::new();
    let started = Instant::now();
    let out = env.run(&[
        "-n",
        "slow",
        "--notify",
        "--ready-timeout",
        "300ms",
        "--restart",
        "no",
        "--",
        "sleep",
        "300",
    ]);
    // SIGTERM ended it; the policy `no` does not restart: restartd exits 128+15.
    assert_eq!(out.status.code(), Some(143), "{}", env.report());
    assert!(started.elapsed() < Duration::from_secs(10));
    let record = &env.records("slow")[0];
    assert_eq!(record["reason"], "start-timeout", "{record}");
    assert_eq!(record["detail"], "not ready within --ready-timeout 300ms");
    assert_eq!(record["signal"], "SIGTERM");
    assert_eq!(record["action"], "exit");
    assert_eq!(env.state("slow")["last_exit"]["reason"], "start-timeout");
    // The log says why restartd stopped it, as it does for unhealthy or watchdog.
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("not ready within --ready-timeout 300ms"),
        "{err}"
    );
}

#[test]
fn a_child_ready_in_time_is_left_alone() {
    let env = Env::new();
    let script = notifier(&["READY=1"], "print('sent', flush=True)\ntime.sleep(300)");
    let started = Instant::now();
    // 2 s: ample for python to start and say READY=1 on a loaded machine.
    let mut r = env.start(&[
        "-n",
        "quick",
        "--notify",
        "--ready-timeout",
        "2s",
        "--",
        "python3",
        "-c",
        &script,
    ]);
    env.wait_state("quick", "ready", |s| s["ready"] == true);
    // Watched past the timeout: the child still runs, with no record.
    let pid = env.wait_child("quick");
    while started.elapsed() < Duration::from_millis(2500) {
        assert!(env.records("quick").is_empty(), "{}", env.report());
        assert_eq!(env.state("quick")["child_pid"], pid);
        std::thread::sleep(Duration::from_millis(20));
    }
    r.signal(libc::SIGTERM);
    assert_eq!(r.wait_exit(), Some(0));
}

#[test]
fn the_first_passing_tcp_check_makes_the_child_ready_for_systemd() {
    let env = Env::new();
    let (sock, path) = systemd(&env);
    // A port with no listener yet: the checks are refused until the "server" is up.
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let addr = format!("127.0.0.1:{port}");
    let mut cmd = env.command(&[
        "-n",
        "tcp",
        "--health-tcp",
        &addr,
        "--health-interval",
        "100ms",
        "--health-retries",
        "1000",
        "--",
        "sleep",
        "300",
    ]);
    cmd.env("NOTIFY_SOCKET", &path);
    let mut r = Running::spawn(cmd);
    env.wait_child("tcp");
    // Refused checks: no READY=1 while they fail.
    sock.set_read_timeout(Some(Duration::from_millis(600)))
        .unwrap();
    let mut buf = [0u8; 64];
    assert!(
        sock.recv(&mut buf).is_err(),
        "READY=1 before any check passed"
    );
    assert_eq!(env.state("tcp")["health"], "starting");
    let listener = TcpListener::bind(&addr).unwrap();
    sock.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    assert_eq!(recv(&sock), "READY=1");
    env.wait_state("tcp", "healthy and ready", |s| {
        s["health"] == "healthy" && s["ready"] == true
    });
    drop(listener);
    r.signal(libc::SIGTERM);
    assert_eq!(recv(&sock), "STOPPING=1");
    assert_eq!(r.wait_exit(), Some(0));
}

#[test]
fn the_rest_of_sd_notify_reaches_systemd_and_the_crash_record() {
    let env = Env::new();
    let (sock, path) = systemd(&env);
    let script = notifier(
        &[
            "EXTEND_TIMEOUT_USEC=5000000",
            "READY=1",
            "EXTEND_TIMEOUT_USEC=1",
            "RELOADING=1\nMONOTONIC_USEC=77",
            "READY=1",
            "ERRNO=2\nEXIT_STATUS=3",
        ],
        "time.sleep(0.2)\nprint(1 / 0)",
    );
    let mut cmd = env.command(&[
        "-n", "talk", "--notify", "--delay", "10s", "--", "python3", "-c", &script,
    ]);
    cmd.env("NOTIFY_SOCKET", &path);
    let mut r = Running::spawn(cmd);
    assert_eq!(next(&sock), "EXTEND_TIMEOUT_USEC=5000000");
    assert_eq!(next(&sock), "READY=1");
    // EXTEND_TIMEOUT_USEC=1 came after READY=1: there is no start left to extend.
    assert_eq!(next(&sock), "RELOADING=1\nMONOTONIC_USEC=77");
    assert_eq!(next(&sock), "READY=1");
    assert_eq!(
        next(&sock),
        "STATUS=restart 1 of 5 in 5m, next in 10s: ZeroDivisionError: division by zero"
    );
    let record = &env.records("talk")[0];
    assert_eq!(record["reason"], "exit");
    assert_eq!(record["error_type"], "ZeroDivisionError");
    assert_eq!(
        record["detail"],
        "the child's sd_notify: ERRNO=2 (No such file or directory), EXIT_STATUS=3",
        "{record}"
    );
    // A stop in the backoff ends restartd at once.
    r.signal(libc::SIGTERM);
    assert_eq!(r.wait_exit(), Some(0));
}

#[test]
fn restart_reset_clears_the_window_and_watchdog_trigger_fails_the_child() {
    let env = Env::new();
    // The first child crashes; the second says RESTART_RESET=1, and WATCHDOG=trigger on SIGUSR1.
    let script = notifier(
        &[],
        "if os.environ['RESTARTD_RESTARTS'] == '0':\n    sys.exit(1)\nsignal.signal(signal.SIGUSR1, lambda *a: s.sendto(b'WATCHDOG=trigger', addr))\ns.sendto(b'READY=1\\nRESTART_RESET=1', addr)\nwhile True:\n    time.sleep(60)",
    );
    let mut r = env.start(&[
        "-n", "rr", "--notify", "--delay", "0", "--", "python3", "-c", &script,
    ]);
    let state = env.wait_state("rr", "the reset", |s| {
        s["restarts"] == 1 && s["ready"] == true && s["recent_restarts"] == serde_json::json!([])
    });
    assert_eq!(state["status"], "running");
    r.signal(libc::SIGUSR1);
    env.wait_state("rr", "a watchdog end", |s| {
        s["last_exit"]["reason"] == "watchdog"
    });
    let records = env.records("rr");
    let record = records.last().unwrap();
    assert_eq!(record["reason"], "watchdog", "{record}");
    assert_eq!(record["detail"], "the child sent WATCHDOG=trigger");
    assert_eq!(record["signal"], "SIGABRT");
    assert_eq!(record["action"], "restart");
    r.signal(libc::SIGTERM);
    assert_eq!(r.wait_exit(), Some(0));
}

#[test]
fn ready_timeout_needs_notify_or_a_health_check_and_one_health_check_at_most() {
    let env = Env::new();
    let out = env.run(&["--ready-timeout", "5s", "--", "true"]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("--ready-timeout 5s needs --notify or a health check (--health-cmd, --health-url, --health-tcp)"),
        "{err}"
    );
    for other in [
        ["--health-cmd", "true"],
        ["--health-url", "http://127.0.0.1:1/"],
    ] {
        let out = env.run(&[
            "--health-tcp",
            "127.0.0.1:1",
            other[0],
            other[1],
            "--",
            "true",
        ]);
        assert_eq!(out.status.code(), Some(2), "{other:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("cannot be used with"), "{err}");
    }
    let out = env.run(&["--health-tcp", "localhost", "--", "true"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("expected HOST:PORT"));
    // Nothing was started.
    assert!(!env.instance("true").exists());
}

#[test]
fn systemds_watchdog_is_fed_while_a_give_up_hook_is_waited_for() {
    // Under systemd with WatchdogSec=, a give-up waits for its --on-give-up hook (up to 30 s)
    // before restartd exits; systemd's watchdog must stay fed meanwhile, or systemd SIGABRTs
    // restartd and SIGKILLs the hook: the give-up alert would be lost (SPEC §5, §7).
    let env = Env::new();
    let (sock, path) = systemd(&env);
    let mut cmd = env.command(&[
        "-n",
        "quit",
        "--max-restarts",
        "0",
        "--on-give-up",
        "sleep 2",
        "--",
        "sh",
        "-c",
        "exit 1",
    ]);
    // Pings every 100 ms.
    cmd.env("NOTIFY_SOCKET", &path)
        .env("WATCHDOG_USEC", "200000");
    let mut r = Running::spawn(cmd);
    assert_eq!(next(&sock), "READY=1");
    // From READY=1 until restartd is gone: the pings, and the longest silence between them.
    sock.set_read_timeout(Some(Duration::from_millis(300)))
        .unwrap();
    let (mut pings, mut last, mut longest) = (0, Instant::now(), Duration::ZERO);
    let mut buf = [0u8; 512];
    let started = Instant::now();
    while r.try_exit().is_none() && started.elapsed() < Duration::from_secs(30) {
        if let Ok(n) = sock.recv(&mut buf) {
            if &buf[..n] == b"WATCHDOG=1" {
                pings += 1;
                longest = longest.max(last.elapsed());
                last = Instant::now();
            }
        }
    }
    assert_eq!(r.wait_exit(), Some(1), "{}", env.report());
    assert!(
        pings >= 5 && longest < Duration::from_millis(1500),
        "{pings} pings during the 2 s hook, the longest gap {longest:?}"
    );
}

//! Issue 20: `--socket` and `restartd reload`, with a real server (tests/helpers/listen_server.py)
//! on 127.0.0.1 under a steady load of real HTTP requests: no refused connection while the child
//! restarts after a crash, no failed request during a reload, and the old child kept when the
//! new one fails.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use crate::common::*;
use crate::load::request;
pub(crate) use crate::load::Load;

/// The TCP address of the instance's first socket, from `state.json`.
pub(crate) fn tcp_address(env: &Env, name: &str) -> SocketAddr {
    let state = env.wait_state(name, "the sockets in state.json", |s| {
        s["sockets"][0]["address"].is_string()
    });
    let address = state["sockets"][0]["address"].as_str().unwrap();
    address.strip_prefix("tcp://").unwrap().parse().unwrap()
}

pub(crate) fn server() -> String {
    helper("listen_server.py")
}

pub(crate) fn set_mode(env: &Env, mode: &str) -> String {
    let path = env.state_dir().join("mode");
    std::fs::write(&path, mode).unwrap();
    path.display().to_string()
}

#[test]
fn every_child_gets_the_sockets_as_fds_3_and_up_with_the_listen_variables() {
    let env = Env::new();
    let unix = env.state_dir().join("web.sock");
    let unix_arg = format!("web=unix:{}", unix.display());
    let script = server();
    let mut cmd = env.command(&[
        "--name",
        "fds",
        "--socket",
        "tcp://127.0.0.1:0",
        "--socket",
        &unix_arg,
        "--restart",
        "always",
        "--delay",
        "50ms",
        "--",
        "python3",
        &script,
    ]);
    // Variables of restartd's own environment do not leak through; a child that sets
    // O_NONBLOCK on the shared sockets does not leave them so for the next one.
    cmd.env("LISTEN_FDS", "7")
        .env("LISTEN_PID", "1")
        .env("SERVER_SET_NONBLOCK", "1");
    let r = Running::spawn(cmd);
    let line = r.wait_stdout("ready pid=");
    let fields = ready_fields(&line);
    assert_eq!(fields["fds"], "2", "{line}");
    assert_eq!(fields["names"], "socket1:web", "{line}");
    assert_eq!(
        fields["pid_ok"], "1",
        "LISTEN_PID is the child's own pid: {line}"
    );
    assert_eq!(fields["blocking"], "1", "{line}");
    assert_eq!(fields["cloexec"], "0", "{line}");
    let state = env.state("fds");
    assert_eq!(state["sockets"][0]["name"], "socket1");
    assert_eq!(state["sockets"][0]["fd"], 3);
    assert_eq!(state["sockets"][1]["name"], "web");
    assert_eq!(state["sockets"][1]["fd"], 4);
    assert_eq!(
        state["sockets"][1]["address"],
        format!("unix:{}", unix.display())
    );
    assert_eq!(state["reloads"], 0);
    let pid = fields["pid"].clone();
    assert_eq!(request(tcp_address(&env, "fds")).unwrap(), pid);
    let mut unix_stream = std::os::unix::net::UnixStream::connect(&unix).unwrap();
    unix_stream.write_all(b"GET / HTTP/1.1\r\n\r\n").unwrap();
    let mut answer = String::new();
    unix_stream.read_to_string(&mut answer).unwrap();
    assert!(answer.ends_with(&format!("pid={pid}\n")), "{answer}");
    // The next child gets them the same way, with its own pid.
    signal(pid.parse().unwrap(), nix::libc::SIGKILL);
    let ok = wait_until("a second child", || {
        r.stdout().matches("ready pid=").count() == 2
    });
    assert!(ok, "{}", r.stderr());
    let second = r
        .stdout()
        .lines()
        .filter(|l| l.starts_with("ready pid="))
        .nth(1)
        .unwrap()
        .to_string();
    assert_eq!(ready_fields(&second)["pid_ok"], "1", "{second}");
    assert_eq!(ready_fields(&second)["blocking"], "1", "{second}");
    assert_eq!(ready_fields(&second)["fds"], "2", "{second}");
    assert_ne!(ready_fields(&second)["pid"], pid);
}

#[test]
fn a_malformed_socket_is_a_usage_error_and_a_taken_one_exits_125() {
    let env = Env::new();
    let out = env.run(&["--socket", "127.0.0.1:80", "--", "true"]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("invalid socket '127.0.0.1:80'"), "{stderr}");
    assert!(stderr.contains("tcp://HOST:PORT"), "{stderr}");

    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = format!("tcp://{}", taken.local_addr().unwrap());
    let out = env.run(&["--name", "taken", "--socket", &addr, "--", "true"]);
    assert_eq!(out.status.code(), Some(125));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!("cannot bind --socket {addr}")),
        "{stderr}"
    );
    assert!(
        stderr.to_lowercase().contains("address already in use"),
        "{stderr}"
    );
}

/// A server that exits after every 15 requests: its connections wait in the backlog of the
/// socket restartd holds, and the next child serves them.
#[test]
fn crash_restarts_refuse_no_connection_under_load() {
    let env = Env::new();
    let mode = set_mode(&env, "crash 15");
    let script = server();
    let mut cmd = env.command(&[
        "--name",
        "crashy",
        "--socket",
        "tcp://127.0.0.1:0",
        "--restart",
        "always",
        "--max-restarts",
        "unlimited",
        "--delay",
        "100ms",
        "--max-delay",
        "100ms",
        "--",
        "python3",
        &script,
    ]);
    cmd.env("SERVER_MODE", &mode);
    let r = Running::spawn(cmd);
    r.wait_stdout("ready pid=");
    let load = Load::start(tcp_address(&env, "crashy"), 3);
    env.wait_state("crashy", "3 restarts", |s| {
        s["restarts"].as_u64() >= Some(3)
    });
    let served = load.now().ok;
    load.wait_served(served, 5);
    let stats = load.finish();
    assert_eq!(stats.refused, 0, "{stats:?}");
    assert!(stats.failed.is_empty(), "{stats:?}");
    assert!(stats.pids.len() >= 4, "every child served: {stats:?}");
    drop(r);
}

/// Three reloads under load: each new child serves before the old one is stopped, and no
/// request fails or is refused. During the reload the status is `reloading` and `child_pid`
/// names the old child until the switch.
#[test]
fn reloads_under_load_fail_no_request() {
    let env = Env::new();
    let mode = set_mode(&env, "ok");
    let script = server();
    let mut cmd = env.command(&[
        "--name",
        "web",
        "--socket",
        "tcp://127.0.0.1:0",
        "--notify",
        "--",
        "python3",
        &script,
    ]);
    cmd.env("SERVER_MODE", &mode);
    let r = Running::spawn(cmd);
    let first = env.wait_child("web");
    let load = Load::start(tcp_address(&env, "web"), 3);
    load.wait_served(0, 10);
    // A slow start-up: the reload waits for READY=1 while the old child serves.
    std::fs::write(&mode, "slow 1").unwrap();
    let mut cmd = restartd();
    cmd.args(["reload", "web", "--state-dir"])
        .arg(env.state_dir());
    let slow = std::thread::spawn(move || run_with_timeout(cmd, TIMEOUT));
    let during = env.wait_state("web", "status reloading", |s| s["status"] == "reloading");
    assert_eq!(during["child_pid"], first, "{during:#}");
    let out = slow.join().unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    std::fs::write(&mode, "ok").unwrap();
    for _ in 0..2 {
        let served = load.now().ok;
        let out = env.sub(&["reload", "web"]);
        assert_eq!(out.status.code(), Some(0), "{}", env.report());
        assert!(String::from_utf8_lossy(&out.stderr).contains("replaced: pid"));
        load.wait_served(served, 10);
    }
    // The reply may reach the client a turn before state.json is rewritten.
    let state = env.wait_state("web", "reloads 3", |s| s["reloads"] == 3);
    assert_eq!(state["reloads"], 3, "{state:#}");
    assert_eq!(state["restarts"], 0, "a reload is no restart: {state:#}");
    assert_eq!(state["status"], "running");
    assert!(!alive(first), "the first child was stopped");
    let stats = load.finish();
    assert_eq!(stats.refused, 0, "{stats:?}");
    assert!(stats.failed.is_empty(), "{stats:?}");
    assert_eq!(stats.pids.len(), 4, "four children served: {stats:?}");
    assert!(
        env.records("web").is_empty(),
        "no crash record for a reload"
    );
    let metrics = env.sub(&["metrics", "web"]);
    let text = String::from_utf8_lossy(&metrics.stdout);
    assert!(
        text.lines()
            .any(|l| l.starts_with("restartd_reloads_total{") && l.ends_with(" 3")),
        "{text}"
    );
    drop(r);
}

/// A new child that exits at start: `reload` exits 1 and says why, the crash record says
/// `keep-old`, and the old child goes on serving without a failed request.
#[test]
fn a_reload_whose_new_child_exits_keeps_the_old_one() {
    let env = Env::new();
    let mode = set_mode(&env, "ok");
    let script = server();
    let mut cmd = env.command(&[
        "--name",
        "keep",
        "--socket",
        "tcp://127.0.0.1:0",
        "--notify",
        "--",
        "python3",
        &script,
    ]);
    cmd.env("SERVER_MODE", &mode);
    let r = Running::spawn(cmd);
    let old = env.wait_child("keep");
    let load = Load::start(tcp_address(&env, "keep"), 2);
    load.wait_served(0, 5);
    std::fs::write(&mode, "exit").unwrap();
    let out = env.sub(&["reload", "keep"]);
    assert_eq!(out.status.code(), Some(1), "{}", env.report());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("reload failed: the new child exited with code 3"),
        "{stderr}"
    );
    assert!(
        stderr.contains(&format!("the old child (pid {old}) keeps running")),
        "{stderr}"
    );
    let records = env.records("keep");
    assert_eq!(records.len(), 1, "{records:?}");
    assert_eq!(records[0]["action"], "keep-old");
    assert_eq!(records[0]["exit_code"], 3);
    let served = load.now().ok;
    load.wait_served(served, 5);
    let state = env.state("keep");
    assert_eq!(state["child_pid"], old);
    assert_eq!(state["status"], "running");
    assert_eq!(state["reloads"], 0);
    assert_eq!(state["recent_restarts"].as_array().map(Vec::len), Some(0));
    let stats = load.finish();
    assert_eq!(stats.refused, 0, "{stats:?}");
    assert!(stats.failed.is_empty(), "{stats:?}");
    assert_eq!(stats.pids, vec![old.to_string()]);
    drop(r);
}

/// Each child leaves a grandchild in its group that ignores SIGTERM. The reload's cleanup of
/// the old child kills the old one's grandchild (SIGKILL after --stop-timeout) and never
/// signals the new child's group.
#[test]
fn the_old_childs_cleanup_never_touches_the_new_childs_tree() {
    let env = Env::new();
    let mode = set_mode(&env, "fork");
    let script = server();
    let mut cmd = env.command(&[
        "--name",
        "trees",
        "--socket",
        "tcp://127.0.0.1:0",
        "--stop-timeout",
        "1s",
        "--",
        "python3",
        &script,
    ]);
    cmd.env("SERVER_MODE", &mode);
    let mut r = Running::spawn(cmd);
    let old = env.wait_child("trees");
    let grandchild = |r: &Running, of: i32| -> i32 {
        let line = r.wait_stdout(&format!("of={of}"));
        ready_fields(&line)["pid"].parse().unwrap()
    };
    let old_grandchild = grandchild(&r, old);
    r.also_kill(old_grandchild);
    let out = env.sub(&["reload", "trees"]);
    assert_eq!(out.status.code(), Some(0), "{}", env.report());
    let new = env.state("trees")["child_pid"].as_i64().unwrap() as i32;
    env.also_kill(new);
    assert_ne!(new, old);
    let new_grandchild = grandchild(&r, new);
    r.also_kill(new_grandchild);
    // The reload is over only once the old tree is gone.
    assert!(!alive(old), "old child");
    assert!(!alive(old_grandchild), "old grandchild");
    assert!(alive(new), "new child");
    assert!(alive(new_grandchild), "new grandchild");
    assert!(request(tcp_address(&env, "trees")).is_ok());
    // No SIGTERM reached the new tree: the new child (which exits on SIGTERM) still serves.
    assert_eq!(
        request(tcp_address(&env, "trees")).unwrap(),
        new.to_string()
    );
    r.signal(nix::libc::SIGTERM);
    assert_eq!(r.wait_exit(), Some(0));
}

#[test]
fn without_sockets_reload_restarts_and_says_so() {
    let env = Env::new();
    let script = helper("print_signals.py");
    let r = env.start(&["--name", "plain", "--", "python3", &script]);
    let first = env.wait_child("plain");
    let out = env.sub(&["reload", "plain"]);
    assert_eq!(out.status.code(), Some(0));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("no --socket is held, so the reload is a restart"),
        "{stderr}"
    );
    let s = env.wait_state("plain", "a new child", |s| {
        s["status"] == "running" && s["child_pid"].is_i64() && s["child_pid"] != first
    });
    env.also_kill(s["child_pid"].as_i64().unwrap() as i32);
    assert_eq!(env.sub(&["stop", "plain"]).status.code(), Some(0));
    // Not running: 3, as for restart.
    let out = env.sub(&["reload", "plain"]);
    assert_eq!(out.status.code(), Some(3));
    assert!(String::from_utf8_lossy(&out.stderr).contains("plain is not running"));
    drop(r);
}

/// A new child that never sends READY=1 and fails its health checks is stopped (reason
/// `unhealthy`, action `keep-old`); the old one keeps serving, its checks resume.
#[test]
fn a_reload_whose_new_child_never_gets_healthy_keeps_the_old_one() {
    let env = Env::new();
    let mode = set_mode(&env, "ok");
    let sick = env.state_dir().join("sick");
    let check = format!("test ! -e {}", sick.display());
    let script = server();
    let mut cmd = env.command(&[
        "--name",
        "sickly",
        "--socket",
        "tcp://127.0.0.1:0",
        "--notify",
        "--health-cmd",
        &check,
        "--health-interval",
        "200ms",
        "--health-retries",
        "2",
        "--health-start-period",
        "1s",
        "--",
        "python3",
        &script,
    ]);
    cmd.env("SERVER_MODE", &mode);
    let r = Running::spawn(cmd);
    let old = env.wait_child("sickly");
    env.wait_state("sickly", "a healthy child", |s| s["health"] == "healthy");
    let load = Load::start(tcp_address(&env, "sickly"), 2);
    load.wait_served(0, 5);
    std::fs::write(&mode, "hang").unwrap();
    std::fs::write(&sick, "").unwrap();
    let out = env.sub(&["reload", "sickly"]);
    // The old child's checks resume with their start period: make them pass again.
    std::fs::remove_file(&sick).unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", env.report());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("reload failed: the new child was stopped"),
        "{stderr}"
    );
    let records = env.records("sickly");
    assert_eq!(records.len(), 1, "{records:?}");
    assert_eq!(records[0]["action"], "keep-old");
    assert_eq!(records[0]["reason"], "unhealthy");
    let served = load.now().ok;
    load.wait_served(served, 5);
    env.wait_state("sickly", "the old child healthy again", |s| {
        s["health"] == "healthy" && s["child_pid"] == old
    });
    let stats = load.finish();
    assert_eq!(stats.refused, 0, "{stats:?}");
    assert!(stats.failed.is_empty(), "{stats:?}");
    assert_eq!(stats.pids, vec![old.to_string()]);
    drop(r);
}

/// The real thing: `uvicorn --fd 3` (installed into target/uvvenv by tests/setup.sh) under
/// load, through three crashes and three reloads. No connection is refused. Requests a crashing
/// uvicorn had accepted die with it, so failures at the crashes are counted, not asserted zero;
/// the reloads fail none (issue 20: uvicorn's graceful shutdown closes the connections it
/// accepted but had not read yet, so the old uvicorn must be given none at the end).
#[test]
fn uvicorn_fd_3_refuses_nothing_through_crashes_and_reloads() {
    let uvicorn = format!("{}/target/uvvenv/bin/uvicorn", env!("CARGO_MANIFEST_DIR"));
    if !std::path::Path::new(&uvicorn).exists() {
        eprintln!("SKIP uvicorn_fd_3_refuses_nothing_through_crashes_and_reloads: uvicorn is not installed in target/uvvenv (tests/setup.sh could not install it; see target/setup-uvvenv.log)");
        return;
    }
    let env = Env::new();
    let helpers = helper("");
    let r = env.start(&[
        "--name",
        "uv",
        "--socket",
        "tcp://127.0.0.1:0",
        "--restart",
        "always",
        "--max-restarts",
        "unlimited",
        "--delay",
        "100ms",
        "--",
        &uvicorn,
        "asgi_app:app",
        "--app-dir",
        &helpers,
        "--fd",
        "3",
        "--log-level",
        "warning",
    ]);
    let first = env.wait_child("uv");
    let addr = tcp_address(&env, "uv");
    let load = Load::start(addr, 3);
    load.wait_served(0, 10);
    for n in 1..=3u64 {
        let served = load.now().ok;
        let _ = TcpStream::connect(addr)
            .and_then(|mut s| s.write_all(b"GET /crash HTTP/1.1\r\nHost: test\r\n\r\n"));
        env.wait_state("uv", "a restart after /crash", |s| {
            s["restarts"].as_u64() == Some(n) && s["status"] == "running"
        });
        env.also_kill(
            env.state("uv")["child_pid"]
                .as_i64()
                .unwrap_or(first as i64) as i32,
        );
        load.wait_served(served, 10);
    }
    let at_crashes = load.now().failed.len();
    for _ in 0..3 {
        let served = load.now().ok;
        let out = env.sub(&["reload", "uv"]);
        assert_eq!(out.status.code(), Some(0), "{}", env.report());
        env.also_kill(env.state("uv")["child_pid"].as_i64().unwrap() as i32);
        load.wait_served(served, 10);
    }
    let stats = load.finish();
    assert_eq!(stats.refused, 0, "{stats:?}");
    assert!(stats.pids.len() >= 7, "seven uvicorns served: {stats:?}");
    eprintln!(
        "uvicorn: {} served, {} failed at the crashes, {} at the reloads ({:?})",
        stats.ok,
        at_crashes,
        stats.failed.len() - at_crashes,
        stats.failed
    );
    assert_eq!(
        stats.failed.len(),
        at_crashes,
        "requests failed during the reloads: {stats:?}"
    );
    assert_eq!(env.state("uv")["reloads"], 3);
    drop(r);
}

/// A new child that never sends READY=1 is stopped after --ready-timeout (reason
/// `start-timeout`, action `keep-old`); `reload` exits 1 and the old child serves on.
#[test]
fn a_reload_whose_new_child_is_never_ready_keeps_the_old_one() {
    let env = Env::new();
    let mode = set_mode(&env, "ok");
    let script = server();
    let mut cmd = env.command(&[
        "--name",
        "late",
        "--socket",
        "tcp://127.0.0.1:0",
        "--notify",
        "--ready-timeout",
        "1s",
        "--stop-timeout",
        "2s",
        "--",
        "python3",
        &script,
    ]);
    cmd.env("SERVER_MODE", &mode);
    let r = Running::spawn(cmd);
    let old = env.wait_child("late");
    env.wait_state("late", "the child ready", |s| s["ready"] == true);
    let load = Load::start(tcp_address(&env, "late"), 2);
    load.wait_served(0, 5);
    std::fs::write(&mode, "hang").unwrap();
    let out = env.sub(&["reload", "late"]);
    assert_eq!(out.status.code(), Some(1), "{}", env.report());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("reload failed: the new child was stopped: not ready within 1s"),
        "{stderr}"
    );
    let records = env.records("late");
    assert_eq!(records.len(), 1, "{records:?}");
    assert_eq!(records[0]["action"], "keep-old");
    assert_eq!(records[0]["reason"], "start-timeout");
    let served = load.now().ok;
    load.wait_served(served, 5);
    let state = env.state("late");
    assert_eq!(state["child_pid"], old);
    assert_eq!(state["status"], "running");
    let stats = load.finish();
    assert_eq!(stats.refused, 0, "{stats:?}");
    assert!(stats.failed.is_empty(), "{stats:?}");
    assert_eq!(stats.pids, vec![old.to_string()]);
    drop(r);
}

/// With --socket, --max-runtime replaces the child by a reload: the new child serves before the
/// old one stops, so the load sees neither a refused connection nor a failed request.
#[test]
fn max_runtime_with_sockets_reloads_without_dropping_a_request() {
    let env = Env::new();
    let script = server();
    let r = env.start(&[
        "--name",
        "aged",
        "--socket",
        "tcp://127.0.0.1:0",
        "--max-runtime",
        "1s",
        "--",
        "python3",
        &script,
    ]);
    let first = env.wait_child("aged");
    let load = Load::start(tcp_address(&env, "aged"), 2);
    let state = env.wait_state("aged", "two scheduled reloads", |s| {
        s["reloads"].as_u64() >= Some(2) && s["status"] == "running"
    });
    env.also_kill(state["child_pid"].as_i64().unwrap() as i32);
    let served = load.now().ok;
    load.wait_served(served, 5);
    let stats = load.finish();
    assert!(!alive(first));
    assert!(state["scheduled_restarts"].as_u64() >= Some(2), "{state:#}");
    assert_eq!(stats.refused, 0, "{stats:?}");
    assert!(stats.failed.is_empty(), "{stats:?}");
    assert!(stats.pids.len() >= 3, "{stats:?}");
    assert!(env.records("aged").is_empty());
    drop(r);
}

/// Review of issue 20 (review20c): a child that shuts its inherited listening socket down at
/// stop (`shutdown(2)`, as servers do to wake threads blocked in accept) stops it for restartd
/// too: the description is shared. Every later child got a socket that no longer listened,
/// and every client was refused until restartd was restarted. restartd binds it again first.
#[test]
fn a_socket_a_child_shut_down_listens_again_for_the_next_child() {
    let env = Env::new();
    let count = env.state_dir().join("count");
    let script = format!(
        "import os, socket, sys, time\n\
         s = socket.socket(fileno=3)\n\
         f = {count:?}\n\
         n = int(open(f).read()) if os.path.exists(f) else 0\n\
         open(f, 'w').write(str(n + 1))\n\
         if n == 0:\n    time.sleep(0.2)\n    s.shutdown(socket.SHUT_RDWR)\n    sys.exit(1)\n\
         while True:\n    c, _ = s.accept()\n    c.sendall(b'ok')\n    c.close()\n",
        count = count.display().to_string()
    );
    let r = env.start(&[
        "--name",
        "shut",
        "--socket",
        "tcp://127.0.0.1:0",
        "--delay",
        "100ms",
        "--",
        "python3",
        "-c",
        &script,
    ]);
    let addr = tcp_address(&env, "shut");
    env.wait_state("shut", "the second child", |s| {
        s["restarts"] == 1 && s["status"] == "running"
    });
    env.also_kill(env.state("shut")["child_pid"].as_i64().unwrap() as i32);
    let mut last = String::new();
    let served = wait_until("an answer", || {
        let mut answer = String::new();
        let got = TcpStream::connect(addr).and_then(|mut c| {
            c.set_read_timeout(Some(Duration::from_secs(2)))?;
            c.read_to_string(&mut answer)
        });
        last = format!("{got:?} {answer:?}");
        answer == "ok"
    });
    assert!(
        served,
        "no answer after the first child's shutdown: {last}\n{}",
        r.stderr()
    );
    let said = r.stderr();
    assert!(said.contains("no longer listened"), "{said}");
}

//! Processes and signals (SPEC §4): forwarding, the stop sequence, suspension, the child's signal
//! state, cleanup of what a child leaves behind, reaping, parent death, and PID 1.

use std::fs;
use std::time::{Duration, Instant};

use nix::libc;

use crate::common::{alive, helper, proc_state, ready_fields, wait_until, Env};

fn print_signals(
    env: &Env,
    name: &str,
    extra: &[&str],
    child_args: &[&str],
) -> (crate::common::Running, i32) {
    let helper = helper("print_signals.py");
    let mut args: Vec<&str> = vec!["-n", name];
    args.extend(extra);
    args.extend(["--", "python3", &helper]);
    args.extend(child_args);
    let r = env.start(&args);
    let line = r.wait_stdout("ready");
    let pid = ready_fields(&line)["pid"].parse().unwrap();
    (r, pid)
}

/// The stop signals, each in every log mode (which must not change behaviour).
#[test]
fn stop_signals_reach_the_child_and_end_restartd_with_0() {
    let env = Env::new();
    let modes: [&[&str]; 4] = [&["-q"], &[], &["-v"], &["--log-format", "json"]];
    for (sig, name) in [
        (libc::SIGTERM, "SIGTERM"),
        (libc::SIGINT, "SIGINT"),
        (libc::SIGQUIT, "SIGQUIT"),
    ] {
        for (i, mode) in modes.iter().enumerate() {
            let inst = format!("stop-{name}-{i}");
            let (mut r, child) = print_signals(&env, &inst, mode, &[]);
            r.signal(sig);
            r.wait_stdout(name);
            assert_eq!(r.wait_exit(), Some(0), "{name} {mode:?}: {}", r.stderr());
            assert!(!alive(child));
            let state = env.state(&inst);
            assert_eq!(state["status"], "stopped");
            assert!(state["child_pid"].is_null());
            assert!(
                env.records(&inst).is_empty(),
                "a requested stop is no crash"
            );
        }
    }
}

#[test]
fn a_child_that_ignores_the_stop_signal_is_killed_after_the_timeout() {
    let env = Env::new();
    let (mut r, child) = print_signals(
        &env,
        "stubborn",
        &["--stop-timeout", "300ms"],
        &["--ignore-term"],
    );
    let asked = Instant::now();
    r.signal(libc::SIGTERM);
    r.wait_stdout("SIGTERM");
    assert_eq!(r.wait_exit(), Some(137));
    let took = asked.elapsed();
    assert!(
        took >= Duration::from_millis(300) && took < Duration::from_secs(5),
        "{took:?}"
    );
    assert!(!alive(child));
    assert!(
        r.stderr()
            .contains("did not exit within --stop-timeout 300ms and was killed"),
        "{}",
        r.stderr()
    );
}

#[test]
fn a_second_stop_request_kills_at_once() {
    let env = Env::new();
    let (mut r, child) = print_signals(
        &env,
        "twice",
        &["--stop-timeout", "60s"],
        &["--ignore-term"],
    );
    r.signal(libc::SIGTERM);
    r.wait_stdout("SIGTERM");
    let asked = Instant::now();
    r.signal(libc::SIGTERM);
    assert_eq!(r.wait_exit(), Some(137));
    assert!(asked.elapsed() < Duration::from_secs(5));
    assert!(!alive(child));
}

#[test]
fn hup_usr1_usr2_winch_are_forwarded_and_change_nothing_else() {
    let env = Env::new();
    let (mut r, child) = print_signals(&env, "fwd", &[], &[]);
    for (sig, name) in [
        (libc::SIGHUP, "SIGHUP"),
        (libc::SIGUSR1, "SIGUSR1"),
        (libc::SIGUSR2, "SIGUSR2"),
        (libc::SIGWINCH, "SIGWINCH"),
    ] {
        r.signal(sig);
        r.wait_stdout(name);
    }
    let state = env.state("fwd");
    assert_eq!(state["child_pid"], child);
    assert_eq!(state["status"], "running");
    assert_eq!(state["restarts"], 0);
    r.signal(libc::SIGTERM);
    assert_eq!(r.wait_exit(), Some(0));
}

#[test]
fn ctrl_z_suspends_the_child_with_restartd_and_sigcont_resumes_both() {
    let env = Env::new();
    let (mut r, child) = print_signals(&env, "tstp", &[], &[]);
    r.signal(libc::SIGTSTP);
    assert!(wait_until("both stopped", || proc_state(child)
        .starts_with('T')
        && proc_state(r.pid).starts_with('T')));
    r.signal(libc::SIGCONT);
    assert!(wait_until("both running", || !proc_state(child)
        .starts_with('T')
        && !proc_state(r.pid).starts_with('T')));
    r.signal(libc::SIGTERM);
    r.wait_stdout("SIGTERM");
    assert_eq!(r.wait_exit(), Some(0));
}

#[test]
fn the_child_gets_the_signal_mask_and_ignores_restartd_inherited() {
    let env = Env::new();
    // A wrapper blocks SIGUSR1 and ignores SIGHUP, then execs restartd, whose child reports its
    // own /proc status (python, not sh: dash resets its mask at startup).
    let report = "import sys\nfor l in open('/proc/self/status'):\n    if l.startswith(('SigBlk', 'SigIgn')): print(l.strip())\n";
    let wrapper = "import os, signal, sys\nsignal.pthread_sigmask(signal.SIG_BLOCK, [signal.SIGUSR1])\nsignal.signal(signal.SIGHUP, signal.SIG_IGN)\nos.execv(sys.argv[1], sys.argv[1:])\n";
    let mut cmd = std::process::Command::new("python3");
    cmd.args(["-c", wrapper, crate::common::BIN, "--state-dir"])
        .arg(env.state_dir())
        .args([
            "-n",
            "mask",
            "--restart",
            "no",
            "--",
            "python3",
            "-c",
            report,
        ]);
    let out = crate::common::run_with_timeout(cmd, crate::common::TIMEOUT);
    let text = String::from_utf8_lossy(&out.stdout);
    let field = |name: &str| {
        let hex = text
            .lines()
            .find_map(|l| l.strip_prefix(&format!("{name}:")))
            .unwrap()
            .trim();
        u64::from_str_radix(hex, 16).unwrap()
    };
    let bit = |sig: i32| 1u64 << (sig - 1);
    assert_eq!(field("SigBlk"), bit(libc::SIGUSR1), "{text}");
    let ignored = field("SigIgn");
    assert_ne!(
        ignored & bit(libc::SIGHUP),
        0,
        "SIGHUP stays ignored: {text}"
    );
    // Nothing restartd itself handles leaks into the child as ignored.
    for sig in [
        libc::SIGTERM,
        libc::SIGINT,
        libc::SIGQUIT,
        libc::SIGUSR2,
        libc::SIGCHLD,
        libc::SIGTSTP,
    ] {
        assert_eq!(ignored & bit(sig), 0, "signal {sig} ignored: {text}");
    }
}

/// A child that double-forks a daemon (new session) listening on a port, then crashes; the
/// restarted child must be able to bind the same port.
#[test]
fn a_daemonized_grandchild_holding_a_port_is_gone_before_the_restart() {
    let env = Env::new();
    let pidfile = env.state_dir().join("daemon.pid");
    let script = format!(
        r#"
import os, socket, sys, time
d = "{dir}"
if os.environ["RESTARTD_RESTARTS"] == "0":
    if os.fork() == 0:
        os.setsid()
        if os.fork() == 0:
            l = socket.socket(); l.bind(("127.0.0.1", 0)); l.listen()
            open(d + "/daemon-port", "w").write(str(l.getsockname()[1]))
            open(d + "/daemon.tmp", "w").write(str(os.getpid()))
            os.rename(d + "/daemon.tmp", "{pid}")
            time.sleep(300)
        os._exit(0)
    while not os.path.exists("{pid}"): time.sleep(0.01)
    sys.exit(1)
l = socket.socket(); l.bind(("127.0.0.1", int(open(d + "/daemon-port").read()))); l.listen()
print("bound again", flush=True)
time.sleep(300)
"#,
        dir = env.state_dir().display(),
        pid = pidfile.display()
    );
    let mut r = env.start(&[
        "-n",
        "port",
        "--delay",
        "0",
        "--stop-timeout",
        "2s",
        "--",
        "python3",
        "-c",
        &script,
    ]);
    assert!(
        wait_until("daemon pid", || pidfile.exists()),
        "{}",
        r.stderr()
    );
    let daemon: i32 = fs::read_to_string(&pidfile)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    r.also_kill(daemon);
    r.wait_stdout("bound again");
    assert!(!alive(daemon), "the daemon was cleaned up");
    r.signal(libc::SIGTERM);
    assert_eq!(r.wait_exit(), Some(0));
}

#[test]
fn orphans_are_reaped_and_no_zombie_remains() {
    let env = Env::new();
    // The child leaves ten orphans that exit at once, then keeps running.
    let script = "for i in 1 2 3 4 5 6 7 8 9 10; do (sleep 0.05 &); done; echo forked; sleep 300";
    let mut r = env.start(&["-n", "zombies", "-v", "--", "sh", "-c", script]);
    r.wait_stdout("forked");
    r.wait_stderr("reaped orphan");
    let zombies = || {
        fs::read_dir("/proc")
            .unwrap()
            .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<i32>().ok())
            .filter(|pid| {
                let Ok(stat) = fs::read_to_string(format!("/proc/{pid}/stat")) else {
                    return false;
                };
                let rest = &stat[stat.rfind(')').unwrap() + 2..];
                let mut fields = rest.split_whitespace();
                fields.next() == Some("Z") && fields.next() == Some(r.pid.to_string().as_str())
            })
            .count()
    };
    assert!(
        wait_until("all reaped", || zombies() == 0
            && r.stderr().matches("reaped orphan").count() == 10),
        "{}",
        r.stderr()
    );
    r.signal(libc::SIGTERM);
    assert_eq!(r.wait_exit(), Some(0));
}

#[test]
fn killing_restartd_takes_the_child_down() {
    let env = Env::new();
    let (mut r, child) = print_signals(&env, "orphaned", &[], &[]);
    r.also_kill(child);
    // The child is in its own group: only the parent-death signal can reach it.
    r.signal(libc::SIGKILL);
    assert_eq!(r.wait_exit(), None);
    r.wait_stdout("SIGTERM");
    assert!(wait_until("child gone", || !alive(child)));
    // Its lock is free: the instance reads as not running.
    let out = env.sub(&["status", "orphaned"]);
    assert_eq!(out.status.code(), Some(3));
}

#[test]
fn as_pid_1_in_a_pid_namespace_it_reaps_orphans() {
    let probe = std::process::Command::new("unshare")
        .args(["--pid", "--fork", "--mount-proc", "true"])
        .output();
    match probe {
        Ok(out) if out.status.success() => {}
        other => {
            println!("skipped: unshare --pid is not permitted here ({other:?})");
            return;
        }
    }
    let env = Env::new();
    let script = "sh -c 'sleep 0.1 &'; sleep 0.5; ps -eo pid,stat,comm";
    let mut cmd = std::process::Command::new("unshare");
    cmd.args([
        "--pid",
        "--fork",
        "--mount-proc",
        "--kill-child",
        crate::common::BIN,
        "--state-dir",
    ])
    .arg(env.state_dir())
    .args(["-n", "init", "--restart", "no", "--", "sh", "-c", script]);
    let out = crate::common::run_with_timeout(cmd, crate::common::TIMEOUT);
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let init = text
        .lines()
        .find(|l| l.trim_start().starts_with("1 "))
        .unwrap_or("");
    assert!(init.contains("restartd"), "restartd is PID 1: {text}");
    assert!(
        !text.lines().any(|l| l
            .split_whitespace()
            .nth(1)
            .is_some_and(|s| s.starts_with('Z'))),
        "{text}"
    );
    assert!(!text.contains("sleep"), "the orphan was reaped: {text}");
}

#[test]
fn signal_subcommand_reaches_the_child_group() {
    let env = Env::new();
    let (mut r, _child) = print_signals(&env, "sig", &[], &[]);
    let out = env.sub(&["signal", "sig", "USR2"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    r.wait_stdout("SIGUSR2");
    r.signal(libc::SIGTERM);
    assert_eq!(r.wait_exit(), Some(0));
}

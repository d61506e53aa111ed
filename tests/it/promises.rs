//! What restartd promises (SPEC §10), continued: the defects an adversarial review of issue 17
//! found after `trust.rs` (RELIABILITY.md, "What restartd promises"). Each test here failed before
//! its fix for the reason its comment gives.

use std::fs;
use std::process::Command;
use std::time::Instant;

use nix::libc;

use crate::common::{proc_field, wait_until, Env};

/// The state letter of `/proc/PID/stat` (`t`: stopped by a tracer).
fn stat_state(pid: i32) -> String {
    fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| Some(s[s.rfind(')')? + 2..].chars().next()?.to_string()))
        .unwrap_or_default()
}

/// Whether strace can trace here; the reason if not.
fn strace_refused() -> Option<String> {
    match Command::new("strace").args(["-o", "/dev/null", "true"]).output() {
        Ok(out) if out.status.success() => None,
        Ok(out) => Some(format!(
            "strace cannot trace here: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        )),
        Err(e) => Some(format!("strace is not installed ({e}); apt-get install strace")),
    }
}

/// See: issue 17 (review, point 6). The signal handler set a flag, so two SIGTERMs that came
/// before the loop looked were one stop request: the second did not escalate to SIGKILL (SPEC
/// §4), and restartd waited out the whole `--stop-timeout` of a child that ignores SIGTERM. Both
/// are made to land in one turn with strace, which holds restartd's first read(2) after it is
/// attached (the loop's drain of its signal pipe, which comes before it takes the signals) for
/// 3 s; the second SIGTERM is sent meanwhile.
#[test]
fn issue_17_two_sigterms_in_one_turn_are_two_stop_requests() {
    if let Some(why) = strace_refused() {
        println!("skipped: {why}");
        return;
    }
    let env = Env::new();
    let child = "import signal, time\n\
        signal.signal(signal.SIGTERM, signal.SIG_IGN)\n\
        print('ready', flush=True)\n\
        time.sleep(300)\n";
    let mut r = env.start(&[
        "-n", "twice", "--stop-timeout", "60s", "--", "python3", "-c", child,
    ]);
    r.wait_stdout("ready");
    env.wait_state("twice", "running", |s| s["status"] == "running");
    let trace = env.state_dir().join("trace");
    let mut strace = Command::new("strace")
        .args(["-p", &r.pid.to_string(), "-e", "trace=read"])
        .args(["-e", "inject=read:delay_enter=3000000:when=1", "-o"])
        .arg(&trace)
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    assert!(
        wait_until("strace attached", || proc_field(r.pid, "TracerPid")
            .is_some_and(|t| t != "0")),
        "strace never attached"
    );
    let start = Instant::now();
    r.signal(libc::SIGTERM);
    // Held by the tracer: the first SIGTERM is being delivered or the drain's read waits; the
    // loop has not taken the signals yet.
    assert!(
        wait_until("restartd held by strace", || stat_state(r.pid) == "t"),
        "restartd was never held by strace"
    );
    r.signal(libc::SIGTERM);
    // The escalation is at once; without it restartd waits --stop-timeout (60 s).
    let ended = wait_until("restartd exits", || r.try_exit().is_some());
    let took = start.elapsed();
    assert!(
        ended,
        "the second SIGTERM did not escalate: still running {took:?} after it (--stop-timeout \
         60s)\n{}",
        r.stderr()
    );
    let _ = strace.wait();
    assert_eq!(r.wait_exit(), Some(137), "the second SIGTERM kills: {}", r.stderr());
    assert_eq!(
        r.stderr().matches("received SIGTERM, stopping").count(),
        2,
        "{}",
        r.stderr()
    );
}

/// See: issue 17 (review, point 5). A child that survived the watchdog's SIGABRT got SIGKILL at
/// the timeout, never `--stop-signal`: SPEC §5 says SIGABRT, then the stop sequence. Now the
/// child gets SIGTERM once the abort has had `--stop-timeout`, and may end cleanly.
#[test]
fn issue_17_a_child_that_survives_the_watchdogs_abort_gets_the_stop_signal() {
    let env = Env::new();
    let child = "import signal, sys, time\n\
        signal.signal(signal.SIGABRT, signal.SIG_IGN)\n\
        def term(*_):\n    print('got SIGTERM', flush=True)\n    sys.exit(0)\n\
        signal.signal(signal.SIGTERM, term)\n\
        print('ready', flush=True)\n\
        time.sleep(300)\n";
    let mut r = env.start(&[
        "-n",
        "wd",
        "--watchdog",
        "300ms",
        "--stop-timeout",
        "300ms",
        "--restart",
        "no",
        "--",
        "python3",
        "-c",
        child,
    ]);
    r.wait_stdout("ready");
    let code = r.wait_exit();
    assert!(
        r.stdout().contains("got SIGTERM"),
        "the child never got the stop signal (restartd exited {code:?}):\n{}",
        r.stderr()
    );
    assert_eq!(code, Some(0), "the child's own status: {}", r.stderr());
    let record = &env.records("wd")[0];
    assert_eq!(record["reason"], "watchdog", "{record}");
    assert_eq!(record["exit_code"], 0, "{record}");
}

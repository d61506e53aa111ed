//! The exit status of `restartd … -- COMMAND` (SPEC §4), one test per row of the table.

use std::fs;

use nix::libc;

use crate::common::{alive, wait_until, Env};
use crate::signals::print_signals;

/// Row 1: the child ended and the policy does not restart → the child's exit code.
#[test]
fn row_child_exit_code_when_the_policy_does_not_restart() {
    let env = Env::new();
    for (policy, code) in [("no", 0), ("no", 42), ("on-failure", 0), ("on-success", 3)] {
        let name = format!("code-{policy}-{code}");
        let out = env.run(&[
            "-n",
            &name,
            "--restart",
            policy,
            "--",
            "sh",
            "-c",
            &format!("exit {code}"),
        ]);
        assert_eq!(out.status.code(), Some(code), "{policy} exit {code}");
        assert_eq!(env.state(&name)["status"], "exited");
        assert_eq!(env.state(&name)["last_exit"]["code"], code);
    }
}

/// Row 1: killed by signal N and not restarted → 128+N.
#[test]
fn row_child_killed_by_a_signal_gives_128_plus_n() {
    let env = Env::new();
    for (sig, n) in [("KILL", 9), ("TERM", 15), ("USR1", 10), ("HUP", 1)] {
        let name = format!("sig-{sig}");
        let out = env.run(&[
            "-n",
            &name,
            "--restart",
            "no",
            "--",
            "sh",
            "-c",
            &format!("kill -{sig} $$"),
        ]);
        assert_eq!(out.status.code(), Some(128 + n), "SIG{sig}");
        let state = env.state(&name);
        assert_eq!(state["last_exit"]["signal"], format!("SIG{sig}"));
        assert!(state["last_exit"]["code"].is_null());
    }
}

/// Row 1: restartd gave up → the child's last status, an exit code or 128+N.
#[test]
fn row_give_up_exits_with_the_last_status_of_the_child() {
    let env = Env::new();
    for (name, script, status) in [
        ("gave-code", "exit 9", 9),
        ("gave-signal", "kill -KILL $$", 137),
    ] {
        let out = env.run(&[
            "-n",
            name,
            "--max-restarts",
            "1",
            "--delay",
            "0",
            "--",
            "sh",
            "-c",
            script,
        ]);
        assert_eq!(out.status.code(), Some(status), "{name}");
        let state = env.state(name);
        assert_eq!(state["status"], "gave-up");
        assert_eq!(state["restarts"], 1);
    }
}

/// Row 2: a requested stop whose child ends within `--stop-timeout` → 0, whatever the child
/// itself exited with.
#[test]
fn row_requested_stop_within_the_timeout_exits_0() {
    let env = Env::new();
    // By signal, with a child that exits 3 on SIGTERM.
    let mut r = env.start(&[
        "-n",
        "trap",
        "--",
        "sh",
        "-c",
        "trap 'exit 3' TERM; echo ready; sleep 300 & wait",
    ]);
    r.wait_stdout("ready");
    env.wait_child("trap");
    r.signal(libc::SIGTERM);
    assert_eq!(r.wait_exit(), Some(0));
    assert_eq!(env.state("trap")["status"], "stopped");
    // By `restartd stop`.
    let mut r = env.start(&["-n", "asked", "--", "sleep", "300"]);
    env.wait_child("asked");
    let out = env.sub(&["stop", "asked"]);
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(r.wait_exit(), Some(0));
}

/// Row 3: a requested stop whose child had to be SIGKILLed → 137, by signal and by
/// `restartd stop`.
#[test]
fn row_requested_stop_that_needed_sigkill_exits_137() {
    let env = Env::new();
    let (mut r, child, _) = print_signals(
        &env,
        "kill-sig",
        &["--stop-timeout", "200ms"],
        &["--ignore-term"],
    );
    r.signal(libc::SIGTERM);
    assert_eq!(r.wait_exit(), Some(137));
    assert!(!alive(child));

    let (mut r, child, _) = print_signals(
        &env,
        "kill-sub",
        &["--stop-timeout", "200ms"],
        &["--ignore-term"],
    );
    let out = env.sub(&["stop", "kill-sub"]);
    assert_eq!(out.status.code(), Some(0), "stop itself succeeded");
    assert_eq!(r.wait_exit(), Some(137));
    assert!(wait_until("child gone", || !alive(child)));
}

/// Row 4: command not found → 127; not executable (a plain file, a directory) → 126.
#[test]
fn row_command_not_found_127_not_executable_126() {
    let env = Env::new();
    let plain = env.state_dir().join("plain-file");
    fs::write(&plain, "#!/bin/sh\nexit 0\n").unwrap();
    let missing = env.state_dir().join("missing");
    let cases = [
        ("nf-path", missing.to_str().unwrap().to_string(), 127),
        ("nf-name", "restartd-test-no-such-command".to_string(), 127),
        ("nx-file", plain.to_str().unwrap().to_string(), 126),
        ("nx-dir", env.state_dir().to_str().unwrap().to_string(), 126),
    ];
    for (name, command, status) in &cases {
        let out = env.run(&["-n", name, "--restart", "always", "--", command]);
        assert_eq!(out.status.code(), Some(*status), "{name}");
        let state = env.state(name);
        assert_eq!(state["restarts"], 0, "{name}: not retried");
        assert_eq!(state["last_exit"]["reason"], "spawn-failed", "{name}");
    }
}

/// Row 5: a usage error → 2, and nothing started.
#[test]
fn row_usage_error_exits_2() {
    let env = Env::new();
    let marker = env.state_dir().join("started");
    let out = env.run(&[
        "-n",
        "usage",
        "--restart",
        "maybe",
        "--",
        "touch",
        marker.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(!marker.exists());
    assert!(!env.instance("usage").exists());
}

/// Row 6: restartd cannot work (instance already running; state dir unusable) → 125.
#[test]
fn row_restartd_cannot_work_exits_125() {
    let env = Env::new();
    let marker = env.state_dir().join("started");
    let mut first = env.start(&["-n", "taken", "--", "sleep", "300"]);
    env.wait_child("taken");
    let out = env.run(&["-n", "taken", "--", "touch", marker.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(125));
    let file = env.state_dir().join("a-file");
    fs::write(&file, "").unwrap();
    let mut cmd = crate::common::restartd();
    cmd.arg("--state-dir")
        .arg(&file)
        .args(["-n", "x", "--", "touch"])
        .arg(&marker);
    let out = env.run_cmd(cmd);
    assert_eq!(out.status.code(), Some(125));
    assert!(!marker.exists(), "nothing was started");
    first.signal(libc::SIGTERM);
    assert_eq!(first.wait_exit(), Some(0));
}

//! When restartd restarts (SPEC §3), with real children: the policy table, the exit-code lists,
//! the window limit and give-up, persistence across runs, backoff and `--min-uptime`.

use std::time::Duration;

use serde_json::Value;

use crate::common::{wait_until, Env};

/// How a child ends, as a `sh -c` script, and what restartd's status would be.
const CLEAN_EXIT: &str = "exit 0";
const CLEAN_SIGNAL: &str = "kill -TERM $$";
const UNCLEAN_EXIT: &str = "exit 3";
const UNCLEAN_SIGNAL: &str = "kill -KILL $$";
const CORE_SIGNAL: &str = "ulimit -c 0; kill -SEGV $$";

const POLICIES: [&str; 7] = [
    "no",
    "always",
    "on-success",
    "on-failure",
    "on-abnormal",
    "on-abort",
    "on-watchdog",
];

/// The rows of SPEC §3 that a child can bring about by itself, with the column of X's.
const ROWS: [(&str, &str, u8, [bool; 7]); 5] = [
    (
        "clean exit",
        CLEAN_EXIT,
        0,
        [false, true, true, false, false, false, false],
    ),
    (
        "clean signal",
        CLEAN_SIGNAL,
        143,
        [false, true, true, false, false, false, false],
    ),
    (
        "unclean exit",
        UNCLEAN_EXIT,
        3,
        [false, true, false, true, false, false, false],
    ),
    (
        "unclean signal",
        UNCLEAN_SIGNAL,
        137,
        [false, true, false, true, true, true, false],
    ),
    (
        "core signal",
        CORE_SIGNAL,
        139,
        [false, true, false, true, true, true, false],
    ),
];

#[test]
fn every_cell_of_the_policy_table_with_a_real_child() {
    let env = Env::new();
    let mut failures = Vec::new();
    for (row, script, status, cells) in ROWS {
        for (policy, restarts) in POLICIES.into_iter().zip(cells) {
            let name = format!("{}-{policy}", row.replace(' ', "-"));
            let out = env.run(&[
                "-n",
                &name,
                "--restart",
                policy,
                "--max-restarts",
                "1",
                "--delay",
                "0",
                "--",
                "sh",
                "-c",
                script,
            ]);
            let state = env.state(&name);
            let expect_status = if restarts { "gave-up" } else { "exited" };
            let got = (
                out.status.code(),
                state["restarts"].as_u64(),
                state["status"].as_str(),
            );
            let want = (
                Some(status as i32),
                Some(restarts as u64),
                Some(expect_status),
            );
            if got != want {
                failures.push(format!("{row} × {policy}: got {got:?}, want {want:?}"));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn success_exit_codes_are_clean() {
    let env = Env::new();
    let out = env.run(&[
        "-n",
        "s",
        "--success-exit-codes",
        "3,4",
        "--",
        "sh",
        "-c",
        "exit 4",
    ]);
    assert_eq!(out.status.code(), Some(4));
    assert_eq!(env.state("s")["restarts"], 0);
    assert!(
        env.records("s").is_empty(),
        "a clean exit has no crash record"
    );
    let out = env.run(&[
        "-n",
        "s2",
        "--restart",
        "on-success",
        "--success-exit-codes",
        "3",
        "--max-restarts",
        "2",
        "--delay",
        "0",
        "--",
        "sh",
        "-c",
        "exit 3",
    ]);
    assert_eq!(out.status.code(), Some(3));
    assert_eq!(env.state("s2")["restarts"], 2);
}

#[test]
fn no_restart_codes_win_over_always_and_force_codes_over_no() {
    let env = Env::new();
    let out = env.run(&[
        "-n",
        "nr",
        "--restart",
        "always",
        "--no-restart-exit-codes",
        "78",
        "--",
        "sh",
        "-c",
        "exit 78",
    ]);
    assert_eq!(out.status.code(), Some(78));
    assert_eq!(env.state("nr")["restarts"], 0);
    let out = env.run(&[
        "-n",
        "fr",
        "--restart",
        "no",
        "--force-restart-exit-codes",
        "9",
        "--max-restarts",
        "2",
        "--delay",
        "0",
        "--",
        "sh",
        "-c",
        "exit 9",
    ]);
    assert_eq!(out.status.code(), Some(9));
    let state = env.state("fr");
    assert_eq!(
        state["restarts"], 2,
        "the window limit still applies: {state}"
    );
    assert_eq!(state["status"], "gave-up");
}

#[test]
fn give_up_exits_with_the_child_status_and_says_why() {
    let env = Env::new();
    let out = env.run(&[
        "-n",
        "g",
        "--max-restarts",
        "2",
        "--window",
        "1m",
        "--delay",
        "0",
        "--",
        "sh",
        "-c",
        "exit 7",
    ]);
    assert_eq!(out.status.code(), Some(7));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("restartd[g]: exited with code 7 after"),
        "{err}"
    );
    assert!(err.contains("; restart 1 of 2 in 1m, next in 0ms"), "{err}");
    assert!(
        err.contains(
            "restartd[g]: giving up: 2 restarts in the last 1m (limit 2); last exit: code 7"
        ),
        "{err}"
    );
    let state = env.state("g");
    assert_eq!(state["status"], "gave-up");
    assert_eq!(state["recent_restarts"].as_array().unwrap().len(), 2);
    assert_eq!(state["last_exit"]["code"], 7);
}

#[test]
fn max_restarts_zero_never_restarts_and_unlimited_has_no_limit() {
    let env = Env::new();
    let out = env.run(&[
        "-n",
        "zero",
        "--max-restarts",
        "0",
        "--",
        "sh",
        "-c",
        "exit 1",
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(env.state("zero")["restarts"], 0);
    assert!(String::from_utf8_lossy(&out.stderr).contains("giving up: --max-restarts is 0"));

    // Exits 1 eight times, then 0: under unlimited, eight restarts and a clean end.
    let counter = env.state_dir().join("count");
    let script = format!(
        "n=$(cat {c} 2>/dev/null || echo 0); echo $((n+1)) > {c}; [ $n -ge 8 ] && exit 0; exit 1",
        c = counter.display()
    );
    let out = env.run(&[
        "-n",
        "unl",
        "--max-restarts",
        "unlimited",
        "--delay",
        "0",
        "--",
        "sh",
        "-c",
        &script,
    ]);
    assert_eq!(out.status.code(), Some(0));
    let state = env.state("unl");
    assert_eq!(state["restarts"], 8);
    assert!(state["max_restarts"].is_null());
}

#[test]
fn the_window_persists_across_runs_until_reset() {
    let env = Env::new();
    let args = [
        "-n",
        "p",
        "--max-restarts",
        "3",
        "--delay",
        "0",
        "--",
        "sh",
        "-c",
        "exit 1",
    ];
    let out = env.run(&args);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(env.state("p")["restarts"], 3);
    // A second run finds the window full: it says so, and gives up at the first crash.
    let out = env.run(&args);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("3 restarts in the last 5m from a previous run count toward --max-restarts"),
        "{err}"
    );
    assert!(err.contains("giving up: 3 restarts"), "{err}");
    let state = env.state("p");
    assert_eq!(state["restarts"], 3, "no restart made: {state}");
    // --reset forgets it.
    let mut with_reset = vec!["--reset"];
    with_reset.extend(args);
    env.run(&with_reset);
    assert_eq!(env.state("p")["restarts"], 6);
}

/// The times between restarts, from `recent_restarts`.
fn gaps(state: &Value) -> Vec<Duration> {
    let times: Vec<std::time::SystemTime> = state["recent_restarts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| humantime::parse_rfc3339(t.as_str().unwrap()).unwrap())
        .collect();
    times
        .windows(2)
        .map(|w| w[1].duration_since(w[0]).unwrap())
        .collect()
}

#[test]
fn backoff_grows_by_the_factor_up_to_the_cap() {
    let env = Env::new();
    let out = env.run(&[
        "-n",
        "b",
        "--delay",
        "50ms",
        "--max-delay",
        "200ms",
        "--max-restarts",
        "6",
        "--",
        "sh",
        "-c",
        "exit 1",
    ]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    for next in ["next in 50ms", "next in 100ms", "next in 200ms"] {
        assert!(err.contains(next), "{next}: {err}");
    }
    assert!(!err.contains("next in 400ms"), "capped: {err}");
    // Restart k+1 comes delay(k+1) after restart k, plus the child's run.
    let gaps = gaps(&env.state("b"));
    let wanted = [100, 200, 200, 200, 200];
    assert_eq!(gaps.len(), wanted.len(), "{gaps:?}");
    for (gap, ms) in gaps.iter().zip(wanted) {
        let ms = Duration::from_millis(ms);
        assert!(
            *gap >= ms && *gap < ms + Duration::from_millis(400),
            "{gaps:?}"
        );
    }
}

#[test]
fn a_run_of_min_uptime_ends_the_streak() {
    let env = Env::new();
    // Runs: crash, crash, a long run (300 ms ≥ --min-uptime 200ms) then crash, crash.
    let counter = env.state_dir().join("count");
    let script = format!(
        "n=$(cat {c} 2>/dev/null || echo 0); echo $((n+1)) > {c}; [ $n -eq 2 ] && sleep 0.3; exit 1",
        c = counter.display()
    );
    let out = env.run(&[
        "-n",
        "m",
        "--delay",
        "20ms",
        "--min-uptime",
        "200ms",
        "--max-restarts",
        "4",
        "--",
        "sh",
        "-c",
        &script,
    ]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    let delays: Vec<&str> = err
        .lines()
        .filter_map(|l| l.split("next in ").nth(1))
        .collect();
    assert_eq!(delays, ["20ms", "40ms", "20ms", "40ms"], "{err}");
}

#[test]
fn jitter_keeps_delays_within_the_fraction() {
    let env = Env::new();
    let out = env.run(&[
        "-n",
        "j",
        "--delay",
        "100ms",
        "--backoff-factor",
        "1",
        "--jitter",
        "0.5",
        "--max-restarts",
        "8",
        "--",
        "sh",
        "-c",
        "exit 1",
    ]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    let delays: Vec<u64> = err
        .lines()
        .filter_map(|l| l.split("next in ").nth(1))
        .map(|d| d.trim_end_matches("ms").parse().unwrap())
        .collect();
    assert_eq!(delays.len(), 8);
    assert!(
        delays.iter().all(|&d| (50..=150).contains(&d)),
        "{delays:?}"
    );
    assert!(
        delays.iter().any(|&d| d != delays[0]),
        "jitter varies: {delays:?}"
    );
}

#[test]
fn stop_during_backoff_exits_0_at_once() {
    let env = Env::new();
    let mut r = env.start(&["-n", "sb", "--delay", "30s", "--", "sh", "-c", "exit 1"]);
    env.wait_state("sb", "backoff", |s| {
        s["status"] == "backoff" && s["next_restart_at"].is_string()
    });
    let asked = std::time::Instant::now();
    r.signal(nix::libc::SIGTERM);
    assert_eq!(r.wait_exit(), Some(0));
    assert!(asked.elapsed() < Duration::from_secs(5));
    let state = env.state("sb");
    assert_eq!(state["status"], "stopped");
    assert_eq!(state["restarts"], 0);
}

#[test]
fn a_command_that_cannot_start_is_not_retried() {
    let env = Env::new();
    let out = env.run(&[
        "-n",
        "nf",
        "--restart",
        "always",
        "--",
        "no-such-command-restartd-test",
    ]);
    assert_eq!(out.status.code(), Some(127));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("cannot start 'no-such-command-restartd-test'"),
        "{err}"
    );

    let script = env.state_dir().join("not-executable.sh");
    std::fs::write(&script, "#!/bin/sh\nexit 0\n").unwrap();
    let out = env.run(&[
        "-n",
        "nx",
        "--restart",
        "always",
        "--",
        script.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(126));

    let out = env.run(&[
        "-n",
        "dir",
        "--restart",
        "always",
        "--",
        env.state_dir().to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(126));
    for name in ["nf", "nx", "dir"] {
        assert_eq!(env.state(name)["restarts"], 0);
        assert_eq!(env.state(name)["last_exit"]["reason"], "spawn-failed");
    }
}

#[test]
fn the_child_gets_its_name_restart_count_group_and_null_stdin() {
    let env = Env::new();
    let helper = crate::common::helper("print_signals.py");
    let mut r = env.start(&["-n", "envy", "--", "python3", &helper]);
    let line = r.wait_stdout("ready");
    let f = crate::common::ready_fields(&line);
    assert_eq!(f["name"], "envy");
    assert_eq!(f["restarts"], "0");
    assert_eq!(f["pid"], f["pgid"], "the child leads its own process group");
    assert_ne!(f["pgid"], r.pid.to_string());
    assert_eq!(f["stdin_null"], "True");
    // After a restart the count is 1.
    let pid: i32 = f["pid"].parse().unwrap();
    crate::common::signal(pid, nix::libc::SIGKILL);
    r.wait_stdout("restarts=1");
    r.signal(nix::libc::SIGTERM);
    assert_eq!(r.wait_exit(), Some(0));
    assert!(wait_until("child gone", || !crate::common::alive(pid)));
}

/// With every descriptor restartd can hold open (lock, control and notify sockets, HTTP
/// listener, log file, pipes), the child still starts with 0, 1 and 2 only. (What restartd
/// itself inherited it passes on, as tini does: the test starts it with nothing beyond 0-2.)
#[test]
fn the_child_inherits_no_descriptor_beyond_0_1_2() {
    use std::os::unix::process::CommandExt;
    let env = Env::new();
    let log = env.state_dir().join("fds.log");
    let probe = "import os\n\
        for fd in range(3, 1024):\n    \
            try:\n        \
                print('open', fd, os.readlink('/proc/self/fd/%d' % fd))\n    \
            except OSError:\n        \
                pass\n\
        print('probed')";
    let mut cmd = env.command(&[
        "-n",
        "fds",
        "--restart",
        "no",
        "--notify",
        "--listen",
        "127.0.0.1:0",
        "--log-file",
        log.to_str().unwrap(),
        "--",
        "python3",
        "-I",
        "-S",
        "-c",
        probe,
    ]);
    // SAFETY: close_range(2) is a system call, async-signal-safe.
    unsafe {
        cmd.pre_exec(|| {
            nix::libc::syscall(nix::libc::SYS_close_range, 3, u32::MAX, 0);
            Ok(())
        });
    }
    let out = env.run_cmd(cmd);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(text.contains("probed"), "{text}");
    assert!(!text.contains("open "), "the child inherited: {text}");
}

/// A core dump is an unclean signal: on-abort restarts it, on-success does not, and restartd
/// says "(core dumped)".
#[test]
fn a_core_dump_is_an_unclean_signal() {
    use std::os::unix::process::ExitStatusExt;
    let env = Env::new();
    // Cores land in the child's working directory: the test's own directory.
    let crash = "ulimit -c unlimited && kill -SEGV $$";
    let probe = std::process::Command::new("sh")
        .args(["-c", crash])
        .current_dir(env.state_dir())
        .status()
        .unwrap();
    if !probe.core_dumped() {
        println!("skipped: no core dumps here ({probe:?}; check ulimit -Hc and core_pattern)");
        return;
    }
    for (policy, restarts, status) in [("on-abort", 1, "gave-up"), ("on-success", 0, "exited")] {
        let name = format!("core-{policy}");
        let mut cmd = env.command(&[
            "-n",
            &name,
            "--restart",
            policy,
            "--max-restarts",
            "1",
            "--delay",
            "0",
            "--",
            "sh",
            "-c",
            crash,
        ]);
        cmd.current_dir(env.state_dir());
        let out = env.run_cmd(cmd);
        assert_eq!(out.status.code(), Some(139), "{policy}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains(&format!(
                "restartd[{name}]: killed by signal SIGSEGV (core dumped) after"
            )),
            "{err}"
        );
        let state = env.state(&name);
        assert_eq!(state["restarts"], restarts, "{policy}");
        assert_eq!(state["status"], status, "{policy}");
        assert_eq!(state["last_exit"]["signal"], "SIGSEGV");
    }
}

/// Only restarts inside the trailing `--window` count: runs longer than the window never
/// reach `--max-restarts 1`, while the same crashes inside a long window give up at once.
#[test]
fn only_restarts_inside_the_trailing_window_count() {
    let env = Env::new();
    for (name, window, status, restarts) in
        [("short-window", "200ms", 0, 3), ("long-window", "1m", 1, 1)]
    {
        // Three runs of 300 ms that crash, then a clean exit.
        let counter = env.state_dir().join(format!("{name}.count"));
        let script = format!(
            "n=$(cat {c} 2>/dev/null || echo 0); echo $((n+1)) > {c}; [ $n -ge 3 ] && exit 0; sleep 0.3; exit 1",
            c = counter.display()
        );
        let out = env.run(&[
            "-n",
            name,
            "--max-restarts",
            "1",
            "--window",
            window,
            "--delay",
            "0",
            "--",
            "sh",
            "-c",
            &script,
        ]);
        assert_eq!(out.status.code(), Some(status), "{name}");
        let state = env.state(name);
        assert_eq!(state["restarts"], restarts, "{name}: {state:#}");
        assert!(
            state["recent_restarts"].as_array().unwrap().len() <= 1,
            "only the window is kept: {state:#}"
        );
    }
}

/// Every signal of the clean row (HUP, INT, TERM, PIPE) and a few of "any other signal":
/// on-success restarts exactly the clean ones, on-abort exactly the others.
#[test]
fn clean_signals_are_hup_int_term_and_pipe_only() {
    let env = Env::new();
    let cases = [
        ("HUP", 1, true),
        ("INT", 2, true),
        ("TERM", 15, true),
        ("PIPE", 13, true),
        ("USR1", 10, false),
        ("ALRM", 14, false),
        ("ABRT", 6, false),
    ];
    let mut failures = Vec::new();
    for (sig, n, clean) in cases {
        for (policy, restarts) in [("on-success", clean), ("on-abort", !clean)] {
            let name = format!("{sig}-{policy}");
            let out = env.run(&[
                "-n",
                &name,
                "--restart",
                policy,
                "--max-restarts",
                "1",
                "--delay",
                "0",
                "--",
                "sh",
                "-c",
                &format!("ulimit -c 0; kill -{sig} $$"),
            ]);
            let state = env.state(&name);
            let got = (
                out.status.code(),
                state["restarts"].as_u64(),
                state["last_exit"]["signal"].as_str(),
            );
            let want = (
                Some(128 + n),
                Some(restarts as u64),
                Some(format!("SIG{sig}")),
            );
            if (got.0, got.1, got.2.map(String::from)) != want {
                failures.push(format!("SIG{sig} × {policy}: got {got:?}, want {want:?}"));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

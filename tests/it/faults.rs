//! Faults restartd survives (issue 6): a full filesystem, its state directory deleted, being
//! SIGKILLed while writing state, hooks that hang or fail, a child that closes or floods stderr,
//! signal storms (and the EINTRs they cause). Each test checks that supervision goes on.
//! A child that ignores SIGTERM: `signals.rs`; clock steps: `clock_step.rs`.

use std::fs;
use std::process::Command;
use std::time::{Duration, Instant};

use crate::common::{
    alive, fill, proc_field, restartd, signal, wait_until, zombies_of, Env, Tmpfs,
};

#[test]
fn a_full_filesystem_does_not_stop_supervision_and_is_reported_once() {
    let env = Env::new();
    let mnt = env.state_dir().join("full");
    let tmpfs = match Tmpfs::mount(&mnt, "1m") {
        Ok(t) => t,
        Err(why) => {
            println!("skipped: unable to mount a tmpfs: {why}");
            return;
        }
    };
    let run = |args: &[&str]| {
        let mut cmd = restartd();
        cmd.arg("--state-dir").arg(&tmpfs.path).args(args);
        env.run_cmd(cmd)
    };
    // The instance exists (a first run); then the disk fills up.
    let out = run(&["-n", "full", "--restart", "no", "--", "true"]);
    assert_eq!(out.status.code(), Some(0));
    fill(&tmpfs.path);
    let out = run(&[
        "-n",
        "full",
        "--max-restarts",
        "20",
        "--delay",
        "0",
        "--",
        "sh",
        "-c",
        "echo 'RuntimeError: disk full test' >&2; exit 4",
    ]);
    let err = String::from_utf8_lossy(&out.stderr);
    println!("{err}");
    assert_eq!(
        out.status.code(),
        Some(4),
        "gave up after 20 restarts: {err}"
    );
    assert!(
        err.contains("giving up: 20 restarts"),
        "all 20 restarts were made: {err}"
    );
    let problems: Vec<&str> = err
        .lines()
        .filter(|l| l.contains("No space left on device"))
        .collect();
    assert!(
        !problems.is_empty() && problems.len() <= 2,
        "one clear message per file that cannot be written, not one per restart: {problems:#?}"
    );
    for p in &problems {
        assert!(p.contains("supervision goes on"), "{p}");
    }
}

#[test]
fn the_state_directory_deleted_while_running_does_not_stop_supervision() {
    let env = Env::new();
    let mut r = env.start(&["-n", "gone", "--delay", "0", "--", "sleep", "300"]);
    let first = env.wait_child("gone");
    fs::remove_dir_all(env.instance("gone")).unwrap();
    signal(first, nix::libc::SIGKILL);
    // The child is restarted: a new sleep whose parent is restartd.
    let mut second = None;
    let found = wait_until("a new child", || {
        second = children_of(r.pid).into_iter().find(|&p| p != first);
        second.is_some()
    });
    assert!(found, "no new child; stderr: {}", r.stderr());
    env.also_kill(second.unwrap());
    assert!(r.try_exit().is_none());
    r.signal(nix::libc::SIGTERM);
    assert_eq!(r.wait_exit(), Some(0), "stderr: {}", r.stderr());
    assert!(!alive(second.unwrap()));
}

/// The live children of `ppid`.
fn children_of(ppid: i32) -> Vec<i32> {
    let text = fs::read_to_string(format!("/proc/{ppid}/task/{ppid}/children")).unwrap_or_default();
    text.split_whitespace()
        .filter_map(|p| p.parse().ok())
        .filter(|&p| alive(p))
        .collect()
}

#[test]
fn state_json_is_always_complete_json_when_restartd_is_sigkilled_while_writing() {
    let env = Env::new();
    let dir = env.instance("killed");
    let mut checked = 0;
    let mut seed = std::process::id() as u64;
    for round in 0..60 {
        let mut r = env.start(&[
            "-n",
            "killed",
            "--max-restarts",
            "unlimited",
            "--delay",
            "0",
            "--",
            "sh",
            "-c",
            "exit 1",
        ]);
        // Let it crash-loop (a state write per restart) for 5-35 ms, then SIGKILL it.
        seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        std::thread::sleep(Duration::from_millis(5 + (seed >> 33) % 30));
        r.signal(nix::libc::SIGKILL);
        assert_eq!(r.wait_exit(), None);
        drop(r);
        match fs::read(dir.join("state.json")) {
            Ok(bytes) => {
                let v: serde_json::Value = serde_json::from_slice(&bytes).unwrap_or_else(|e| {
                    panic!(
                        "round {round}: state.json is not complete JSON ({e}): {:?}",
                        String::from_utf8_lossy(&bytes)
                    )
                });
                assert_eq!(v["name"], "killed");
                checked += 1;
            }
            // Under load the first rounds may all be killed before restartd wrote anything;
            // once written, state.json is only ever replaced, never removed.
            Err(e) if checked == 0 && e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => panic!("round {round}: {e}"),
        }
        assert!(
            !dir.join("state.json.corrupt").exists(),
            "round {round}: the next run found it corrupt"
        );
    }
    println!("state.json complete after {checked} SIGKILLs");
    assert!(checked >= 59);
}

#[test]
fn a_hook_that_hangs_or_fails_changes_nothing() {
    let env = Env::new();
    let marker = env.state_dir().join("hook-ran");
    let hang = format!("touch {}; exec sleep 300", marker.display());
    let start = Instant::now();
    let mut r = env.start(&[
        "-n",
        "hooks",
        "--max-restarts",
        "3",
        "--delay",
        "0",
        "--on-crash",
        &hang,
        "--on-give-up",
        "exit 1",
        "--",
        "sh",
        "-c",
        "exit 2",
    ]);
    // Restarts and the give-up do not wait for the hung hooks.
    let state = env.wait_state("hooks", "give-up", |s| s["status"] == "gave-up");
    let gave_up_after = start.elapsed();
    assert!(gave_up_after < Duration::from_secs(10), "{gave_up_after:?}");
    assert_eq!(state["restarts"], 3);
    assert_eq!(env.records("hooks").len(), 4);
    assert!(marker.exists(), "the hook ran");
    // At exit, hooks still running are waited for up to their 30 s (SPEC §7), then killed.
    let limit = Duration::from_secs(60);
    while r.try_exit().is_none() {
        assert!(
            start.elapsed() < limit,
            "restartd did not exit: {}",
            r.stderr()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let took = start.elapsed();
    assert_eq!(r.wait_exit(), Some(2), "{}", r.stderr());
    assert!(took >= Duration::from_secs(29), "{took:?}");
    let err = r.stderr();
    assert!(err.contains("--on-give-up hook failed: code 1"), "{err}");
    assert!(
        err.contains("--on-crash hook ran longer than 30s and was killed"),
        "{err}"
    );
    // No hung hook outlives restartd.
    let left = Command::new("pgrep")
        .args(["-f", &format!("touch {}", marker.display())])
        .output()
        .unwrap();
    assert!(left.stdout.is_empty(), "hooks left: {:?}", left.stdout);
}

/// Started with stderr closed (`2>&-`), or all of 0–2, restartd opens /dev/null on them first:
/// its lock file, state.json and crash log never get those numbers, so its log lines cannot land
/// in them.
#[test]
fn closed_standard_fds_never_become_restartds_files() {
    use std::os::unix::process::CommandExt;
    let env = Env::new();
    for (name, closed) in [("stderr", &[2][..]), ("all", &[0, 1, 2][..])] {
        let mut cmd = env.command(&[
            "-n",
            name,
            "-v",
            "--restart",
            "no",
            "--",
            "sh",
            "-c",
            "echo oops >&2; exit 3",
        ]);
        let closed = closed.to_vec();
        // SAFETY: close(2) is async-signal-safe.
        unsafe {
            cmd.pre_exec(move || {
                for &fd in &closed {
                    nix::libc::close(fd);
                }
                Ok(())
            });
        }
        let out = env.run_cmd(cmd);
        assert_eq!(out.status.code(), Some(3), "{}", env.report());
        let lock = fs::read_to_string(env.instance(name).join("lock")).unwrap();
        assert!(
            lock.trim().parse::<i32>().is_ok(),
            "{name}: lock file: {lock:?}"
        );
        assert_eq!(env.state(name)["status"], "exited", "{name}");
        let records = env.records(name);
        assert_eq!(records.len(), 1, "{name}");
        assert_eq!(
            records[0]["stderr_tail"], "oops\n",
            "{name}: {:?}",
            records[0]
        );
    }
}

#[test]
fn a_child_that_closes_stderr_at_once_is_supervised_as_usual() {
    let env = Env::new();
    let out = env.run(&[
        "-n",
        "closed",
        "--max-restarts",
        "3",
        "--delay",
        "0",
        "--",
        "sh",
        "-c",
        "exec 1>&- 2>&-; sleep 0.05; exit 3",
    ]);
    assert_eq!(out.status.code(), Some(3));
    let records = env.records("closed");
    assert_eq!(records.len(), 4);
    for r in &records {
        assert_eq!(r["exit_code"], 3);
        assert!(r["stderr_tail"].is_null() || r["stderr_tail"] == "", "{r}");
    }
}

/// A child that writes `bytes` of error lines to stderr, then crashes; restart 1 stays up.
/// Returns (seconds taken, restartd's peak RSS in KiB).
fn flood(bytes: u64) -> (f64, u64) {
    let env = Env::new();
    let script = format!(
        "[ \"$RESTARTD_RESTARTS\" = 1 ] && exec sleep 300; \
         {{ yes 'Error: flooding stderr before the crash' | head -c {bytes}; echo; \
         echo 'ValueError: the last words'; }} >&2; exit 7"
    );
    let start = Instant::now();
    let mut r = env.start(&["-n", "flood", "--delay", "0", "--", "sh", "-c", &script]);
    let limit = Duration::from_secs(600);
    loop {
        let s = env.state("flood");
        if s["restarts"] == 1 && s["status"] == "running" && s["child_pid"].is_i64() {
            env.also_kill(s["child_pid"].as_i64().unwrap() as i32);
            break;
        }
        assert!(start.elapsed() < limit, "no restart after the flood");
        std::thread::sleep(Duration::from_millis(20));
    }
    let took = start.elapsed().as_secs_f64();
    let hwm: u64 = proc_field(r.pid, "VmHWM")
        .unwrap()
        .trim_end_matches(" kB")
        .trim()
        .parse()
        .unwrap();
    let records = env.records("flood");
    assert_eq!(records.len(), 1);
    let rec = &records[0];
    assert_eq!(rec["exit_code"], 7);
    assert_eq!(rec["error_message"], "ValueError: the last words", "{rec}");
    let tail = rec["stderr_tail"].as_str().unwrap();
    assert!(tail.len() < 1 << 20, "the tail is bounded: {}", tail.len());
    assert!(zombies_of(r.pid).is_empty());
    r.signal(nix::libc::SIGTERM);
    assert_eq!(r.wait_exit(), Some(0));
    println!(
        "flood: {bytes} bytes of stderr in {took:.1} s, restartd peak RSS {hwm} KiB, tail {} bytes",
        tail.len()
    );
    (took, hwm)
}

#[test]
fn a_child_flooding_stderr_while_crashing_is_recorded_in_bounded_memory() {
    let (_, hwm) = flood(64 << 20);
    assert!(hwm < 32 * 1024, "peak RSS {hwm} KiB");
}

#[test]
#[ignore = "1 GiB of stderr: run by hand with `cargo test --release -- --ignored flood`"]
fn flood_1gib_of_stderr_while_crashing() {
    let (_, hwm) = flood(1 << 30);
    assert!(hwm < 32 * 1024, "peak RSS {hwm} KiB");
}

#[test]
fn a_storm_of_1000_sighups_leaves_restartd_and_the_child_running() {
    let env = Env::new();
    let mut r = env.start(&[
        "-n",
        "storm",
        "--",
        "sh",
        "-c",
        "trap '' HUP; exec sleep 300",
    ]);
    let child = env.wait_child("storm");
    for _ in 0..1000 {
        r.signal(nix::libc::SIGHUP);
    }
    // Every HUP was handled (forwarded to the ignoring child) and nothing else changed.
    std::thread::sleep(Duration::from_millis(200));
    assert!(r.try_exit().is_none(), "restartd died: {}", r.stderr());
    assert!(alive(child));
    let state = env.state("storm");
    assert_eq!(state["status"], "running");
    assert_eq!(state["child_pid"], child);
    assert_eq!(state["restarts"], 0);
    let status = env.sub(&["status", "storm"]);
    assert_eq!(
        status.status.code(),
        Some(0),
        "the control socket still answers"
    );
    r.signal(nix::libc::SIGTERM);
    assert_eq!(r.wait_exit(), Some(0));
}

#[test]
fn signals_interrupting_every_system_call_of_a_crash_loop_lose_nothing() {
    // EINTR everywhere: a stream of signals that restartd catches and forwards (WINCH and CONT,
    // which the child ignores by default) while it reads output, forks, reaps and writes
    // records and state.
    let env = Env::new();
    let mut r = env.start(&[
        "-n",
        "eintr",
        "--max-restarts",
        "200",
        "--window",
        "1h",
        "--delay",
        "0",
        "--",
        "sh",
        "-c",
        "echo 'KeyError: x' >&2; exit 1",
    ]);
    // restartd's handlers are in place once it has written state (a signal before that, like
    // before any program's handlers, takes its default action).
    env.wait_state("eintr", "state.json", |s| s.is_object());
    let sigs = [nix::libc::SIGWINCH, nix::libc::SIGCONT];
    let mut sent = 0u64;
    while r.try_exit().is_none() {
        for s in sigs {
            signal(r.pid, s);
            sent += 1;
        }
        std::thread::sleep(Duration::from_micros(200));
        assert!(sent < 10_000_000);
    }
    assert_eq!(
        r.wait_exit(),
        Some(1),
        "gave up as configured: {}",
        r.stderr()
    );
    println!("{sent} signals during 200 restarts");
    let records = env.records("eintr");
    assert_eq!(records.len(), 201, "one record per crash");
    for (i, rec) in records.iter().enumerate() {
        assert_eq!(rec["restarts"], i as u64);
        assert_eq!(rec["error_message"], "KeyError: x", "{rec}");
    }
    assert_eq!(env.state("eintr")["restarts"], 200);
}

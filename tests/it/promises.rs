//! What restartd promises (SPEC §10), continued: the defects an adversarial review of issue 17
//! found after `trust.rs` (RELIABILITY.md, "What restartd promises"). Each test here failed before
//! its fix for the reason its comment gives.

use std::fs;
use std::process::Command;
use std::time::Instant;

use nix::libc;

use crate::common::{alive, proc_field, wait_until, Env};

/// Whether strace can trace here; the reason if not.
fn strace_refused() -> Option<String> {
    match Command::new("strace")
        .args(["-o", "/dev/null", "true"])
        .output()
    {
        Ok(out) if out.status.success() => None,
        Ok(out) => Some(format!(
            "strace cannot trace here: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        )),
        Err(e) => Some(format!(
            "strace is not installed ({e}); apt-get install strace"
        )),
    }
}

/// See: issue 17 (review, point 6). The signal handler set a flag, so two SIGTERMs that came
/// before the loop looked were one stop request: the second did not escalate to SIGKILL (SPEC
/// §4), and restartd waited out the whole `--stop-timeout` of a child that ignores SIGTERM. Both
/// are made to land in one turn with strace, which holds restartd's first read(2) after it is
/// attached (the loop's drain of its signal pipe, which comes before it takes the signals) for
/// 3 s; the second SIGTERM is sent meanwhile, once the trace shows the first delivered.
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
        "-n",
        "twice",
        "--stop-timeout",
        "60s",
        "--",
        "python3",
        "-c",
        child,
    ]);
    r.wait_stdout("ready");
    env.wait_state("twice", "running", |s| s["status"] == "running");
    // It ignores SIGTERM, its parent-death signal too: killed by the test if the test fails.
    r.also_kill(env.wait_child("twice"));
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
    // strace writes `--- SIGTERM` when the first is delivered (no longer pending, so a second
    // cannot merge with it in the kernel) and `read(` when the held read starts: the loop has
    // not taken the signals yet, and will not for 3 s.
    let held = || {
        let trace = fs::read_to_string(&trace).unwrap_or_default();
        trace
            .find("--- SIGTERM")
            .is_some_and(|at| trace[at..].contains("\nread("))
    };
    assert!(
        wait_until("the first SIGTERM delivered and the drain held", held),
        "strace never held the drain: {}",
        fs::read_to_string(&trace).unwrap_or_default()
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
    assert_eq!(
        r.wait_exit(),
        Some(137),
        "the second SIGTERM kills: {}",
        r.stderr()
    );
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
    // The child ignores SIGABRT from its exec on: restartd passes on the ignored signals it was
    // given, so a slow start cannot let the abort in before Python has set its handlers.
    let child = "import signal, sys, time\n\
        def term(*_):\n    print('got SIGTERM', flush=True)\n    sys.exit(0)\n\
        signal.signal(signal.SIGTERM, term)\n\
        print('ready', flush=True)\n\
        time.sleep(300)\n";
    let mut cmd = env.command(&[
        "-n",
        "wd",
        "--watchdog",
        "300ms",
        "--stop-timeout",
        "2s",
        "--restart",
        "no",
        "--",
        "python3",
        "-c",
        child,
    ]);
    // SAFETY: signal(2) in the forked child before exec, async-signal-safe.
    unsafe {
        std::os::unix::process::CommandExt::pre_exec(&mut cmd, || {
            libc::signal(libc::SIGABRT, libc::SIG_IGN);
            Ok(())
        });
    }
    let mut r = crate::common::Running::spawn(cmd);
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

/// See: issue 17 (review, point 2). As PID 1, only a process in the child's group or carrying
/// its `RESTARTD_NAME` counted as the child's: a daemon that left the group (`setsid`) and
/// cleared its environment (`env -i`) outlived the cleanup and kept its port while the next
/// child started. Now an orphan of the child's own end is the child's (`run::lineage`).
#[test]
fn issue_17_as_pid_1_a_daemon_that_clears_its_environment_and_group_is_cleaned_up() {
    if let Some(why) = crate::common::unshare_refused() {
        println!("skipped: unshare --pid is not permitted here: {why}");
        return;
    }
    let env = Env::new();
    let dir = env.state_dir().display().to_string();
    // First run: start the daemon, wait until it runs, crash. Second run: say whether it lives.
    let child = format!(
        "if [ \"$RESTARTD_RESTARTS\" = 0 ]; then \
           setsid env -i /bin/sh -c 'echo $$ > {dir}/daemon.pid; exec /bin/sleep 300' & \
           while [ ! -s {dir}/daemon.pid ]; do sleep 0.01; done; exit 1; \
         else \
           if kill -0 $(cat {dir}/daemon.pid) 2>/dev/null; then echo daemon alive; \
           else echo daemon gone; fi; exec sleep 300; \
         fi"
    );
    let mut cmd = Command::new("unshare");
    cmd.args(["--pid", "--fork", "--mount-proc", "--kill-child"])
        .arg(crate::common::BIN)
        .args(["--state-dir", &dir, "-n", "init", "--restart", "always"])
        .args([
            "--delay",
            "0",
            "--stop-timeout",
            "5s",
            "--",
            "sh",
            "-c",
            &child,
        ]);
    let r = crate::common::Running::spawn(cmd);
    let said = r.wait_stdout("daemon ");
    assert_eq!(said, "daemon gone", "{}", r.stderr());
}

/// See: issue 17 (review, point 4). A hook's or a health check's background job that left its
/// helper's group (`setsid`) was, once its helper ended, an adopted process like any other, and
/// the next cleanup of the child's leftovers SIGTERMed it (SPEC §7: helpers are never
/// leftovers). Now an orphan of a helper's end is the helper's.
#[test]
fn issue_17_helpers_jobs_that_leave_their_group_are_never_leftovers() {
    let env = Env::new();
    let dir = env.state_dir().display().to_string();
    let job = |file: &str| {
        format!(
            "[ -e {dir}/{file} ] || {{ setsid sleep 30 </dev/null >/dev/null 2>&1 & \
             echo $! > {dir}/{file}.tmp; mv {dir}/{file}.tmp {dir}/{file}; }}; true"
        )
    };
    // Run 0 ends once the health check's job runs; run 1 once the hook's runs and the hook's
    // shell had time to end. Each end is followed by a cleanup.
    let child = format!(
        "if [ \"$RESTARTD_RESTARTS\" = 0 ]; then f={dir}/health; else f={dir}/hook; fi; \
         while [ ! -s $f ]; do sleep 0.01; done; sleep 0.3; exit 1"
    );
    let out = env.run(&[
        "-n",
        "helpers",
        "--delay",
        "0",
        "--max-restarts",
        "1",
        "--stop-timeout",
        "3s",
        "--health-cmd",
        &job("health"),
        "--health-interval",
        "100ms",
        "--on-crash",
        &job("hook"),
        "--",
        "sh",
        "-c",
        &child,
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}\n{}", env.report());
    let jobs = ["health", "hook"].map(|file| {
        let pid: i32 = fs::read_to_string(env.state_dir().join(file))
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        env.also_kill(pid);
        (file, pid)
    });
    for (file, pid) in jobs {
        assert!(
            alive(pid) && !crate::common::proc_state(pid).starts_with('Z'),
            "the {file}'s job {pid} was signalled as a leftover: {stderr}"
        );
    }
}

/// See: issue 17 (review, point 3). At start, restartd swept the previous child's process group
/// only while its leader still ran: a member of the group that was never adopted (here the
/// child's own `sleep`, started while nothing woke restartd) outlived a killed restartd and the
/// child itself, and stayed beside the next child. Now members of the recorded group that
/// started no earlier than the child are stopped too, each through a pidfd.
#[test]
fn issue_17_the_group_of_a_killed_restartds_child_is_swept_at_start() {
    let env = Env::new();
    let dir = env.state_dir().display().to_string();
    let child = format!(
        "while [ ! -e {dir}/go ]; do sleep 0.01; done; \
         sleep 300 & echo $! > {dir}/member.tmp; mv {dir}/member.tmp {dir}/member; wait"
    );
    let args = [
        "-n",
        "swept",
        "--stop-timeout",
        "2s",
        "--",
        "sh",
        "-c",
        &child,
    ];
    let mut first = env.start(&args);
    let old = env.wait_child("swept");
    env.wait_state("swept", "the child in leftovers", |s| {
        s["leftovers"]
            .as_array()
            .is_some_and(|l| l.iter().any(|p| p["pid"] == old))
    });
    fs::write(env.state_dir().join("go"), "").unwrap();
    let member_file = env.state_dir().join("member");
    assert!(wait_until("the member", || member_file.exists()));
    let member: i32 = fs::read_to_string(&member_file)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    env.also_kill(member);
    first.signal(libc::SIGKILL);
    first.wait_exit();
    // The child dies of its parent-death SIGTERM; its member, in its group, runs on.
    assert!(wait_until("the child ends", || !alive(old)
        || crate::common::proc_state(old).starts_with('Z')));
    assert!(alive(member));
    let leftovers = env.state("swept")["leftovers"].to_string();
    assert!(
        !leftovers.contains(&format!("\"pid\":{member},")),
        "the member was recorded by itself, so this would not test the group: {leftovers}"
    );

    let second = env.start(&["-n", "swept", "--stop-timeout", "2s", "--", "sleep", "300"]);
    let new = env.wait_state("swept", "a new child", |s| {
        s["status"] == "running" && s["child_pid"].is_i64() && s["child_pid"] != old
    });
    env.also_kill(new["child_pid"].as_i64().unwrap() as i32);
    let said = format!("stopped pid {member} left running by a previous restartd");
    assert!(
        wait_until("the message", || second.stderr().contains(&said)),
        "the member {member} of the old child's group {old} was not stopped:\n{}",
        second.stderr()
    );
    assert!(
        wait_until("the member ends", || !alive(member)
            || crate::common::proc_state(member).starts_with('Z')),
        "pid {member} still runs"
    );
}

/// See: issue 17 (review, point 8). A client that connected to the control socket and never
/// sent held one of its 8 places for good: 8 such clients (a hung script, a stopped job) and
/// every `restartd stop` got `busy, try again` for ever. A connection now has 5 s to send its
/// request, as one of the HTTP server's has.
#[test]
fn issue_17_silent_control_clients_are_dropped_and_control_works_again() {
    use std::io::Read;
    use std::os::unix::net::UnixStream;
    let env = Env::new();
    let mut r = env.start(&["-n", "quiet", "--", "sleep", "300"]);
    env.wait_child("quiet");
    let path = env.instance("quiet").join("control");
    let silent: Vec<UnixStream> = (0..8)
        .map(|_| UnixStream::connect(&path).unwrap())
        .collect();
    let signal = || {
        let mut cmd = crate::common::restartd();
        cmd.args(["signal", "quiet", "WINCH", "--state-dir"])
            .arg(env.state_dir());
        crate::common::run_with_timeout(cmd, crate::common::TIMEOUT)
    };
    // Once restartd has accepted all 8, a request is refused.
    assert!(
        wait_until("a request refused as busy", || {
            String::from_utf8_lossy(&signal().stderr).contains("busy")
        }),
        "8 silent clients never held every place"
    );
    for mut s in silent {
        s.set_read_timeout(Some(crate::common::TIMEOUT)).unwrap();
        let mut reply = String::new();
        let read = s.read_to_string(&mut reply);
        assert!(
            read.is_ok() && reply.contains("no request within"),
            "a silent client was never dropped: {read:?} {reply:?}"
        );
    }
    let answered = signal();
    assert!(answered.status.success(), "{answered:?}");
    r.signal(libc::SIGTERM);
    assert_eq!(r.wait_exit(), Some(0));
}

/// See: issue 17 (review, point 8). After `reset NAME --crashes`, `state.json`'s
/// `last_exit.crash_id` still named the record just removed: `status` pointed to a crash that
/// `crashes NAME --id` no longer had. It now names a record only while it is in the file.
#[test]
fn issue_17_last_exit_names_no_record_that_is_gone() {
    let env = Env::new();
    let dir = env.state_dir().display().to_string();
    // The first run crashes; the second stays.
    let child = format!(
        "if [ \"$RESTARTD_RESTARTS\" = 0 ]; then exit 3; fi; touch {dir}/second; exec sleep 300"
    );
    let mut r = env.start(&["-n", "gone", "--delay", "0", "--", "sh", "-c", &child]);
    assert!(wait_until("the second run", || env
        .state_dir()
        .join("second")
        .exists()));
    let id = env.wait_state("gone", "the crash named", |s| {
        s["last_exit"]["crash_id"].is_string()
    })["last_exit"]["crash_id"]
        .clone();
    assert_eq!(env.records("gone")[0]["id"], id);
    let out = env.sub(&["reset", "gone", "--crashes"]);
    assert_eq!(out.status.code(), Some(0), "{}", env.report());
    assert!(env.records("gone").is_empty());
    // state.json is saved at the end of the turn that answered the reset.
    let cleared = wait_until("last_exit without the crash", || {
        env.state("gone")["last_exit"]["crash_id"].is_null()
    });
    let state = env.state("gone");
    assert!(
        cleared,
        "last_exit names the removed record: {}",
        state["last_exit"]
    );
    assert_eq!(
        state["last_exit"]["code"], 3,
        "the end itself is still told"
    );
    r.signal(libc::SIGTERM);
    assert_eq!(r.wait_exit(), Some(0));
}

/// See: review of issue 17. A restartd started from inside the previous child's process group
/// (the old child, which ignored its parent-death signal, ran it) found the old child among
/// `state.json`'s leftovers, leading its group, and signalled that group: its own. It stopped
/// whoever started it and itself (at the stop timeout: `kill(-G, SIGKILL)`). The group sweep
/// already skipped restartd's own group; now the recorded processes in it are left alone too.
#[test]
fn issue_17_a_restartd_started_by_the_old_child_does_not_signal_its_own_group() {
    let env = Env::new();
    let dir = env.state_dir().display().to_string();
    let bin = crate::common::BIN;
    let child = format!(
        "trap '' TERM HUP; while [ ! -e {dir}/go ]; do sleep 0.01; done; trap - TERM HUP; \
         RESTARTD_STATE_DIR= {bin} --state-dir {dir} -n own --stop-timeout 1s -- sleep 300 \
         2> {dir}/second.err; echo $? > {dir}/second.rc"
    );
    let args = ["-n", "own", "--", "sh", "-c", &child];
    let mut first = env.start(&args);
    let old = env.wait_child("own");
    env.wait_state("own", "the child in leftovers", |s| {
        s["leftovers"]
            .as_array()
            .is_some_and(|l| l.iter().any(|p| p["pid"] == old))
    });
    first.signal(libc::SIGKILL);
    first.wait_exit();
    fs::write(env.state_dir().join("go"), "").unwrap();
    let ok = wait_until("the second restartd's child", || {
        let s = env.state("own");
        s["status"] == "running" && s["child_pid"].is_i64() && s["child_pid"] != old
            || env.state_dir().join("second.rc").exists()
    });
    let s = env.state("own");
    if let Some(new) = s["child_pid"].as_i64().filter(|&p| p != i64::from(old)) {
        env.also_kill(new as i32);
    }
    let err = fs::read_to_string(env.state_dir().join("second.err")).unwrap_or_default();
    let rc = fs::read_to_string(env.state_dir().join("second.rc")).unwrap_or_default();
    assert!(
        ok && rc.is_empty(),
        "the second restartd started no child (exit {rc:?}; nothing when its group was killed):\n{err}"
    );
    assert!(
        alive(old),
        "the old child that started restartd was stopped:\n{err}"
    );
    let second = s["supervisor_pid"].as_i64().unwrap() as i32;
    assert!(alive(second), "the second restartd is gone:\n{err}");
}

/// restartd's CPU time so far, in clock ticks (utime + stime).
fn cpu_ticks(pid: i32) -> u64 {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let f: Vec<&str> = stat[stat.rfind(')').unwrap() + 2..].split(' ').collect();
    f[11].parse::<u64>().unwrap() + f[12].parse::<u64>().unwrap()
}

/// See: review of issue 17. Out of file descriptors, the control socket's accept failed
/// (EMFILE) and left the client in the backlog: the listener stayed readable, and the loop spun
/// at full CPU (200 ticks in 2 s) until an fd was freed. It now rests, as the HTTP listener
/// does, and takes the client once an fd is free.
#[test]
fn issue_17_control_accept_out_of_fds_does_not_spin() {
    use std::os::unix::net::UnixStream;
    let env = Env::new();
    let mut r = env.start(&["-n", "nofd", "--", "sleep", "300"]);
    env.wait_child("nofd");
    let me = env.state("nofd")["supervisor_pid"].as_i64().unwrap() as i32;
    // The lowest free fd: with it as the soft limit, the next accept fails with EMFILE.
    let open: Vec<i32> = fs::read_dir(format!("/proc/{me}/fd"))
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
        .collect();
    let free = (0..).find(|fd| !open.contains(fd)).unwrap();
    let limit = |n: String| {
        let out = Command::new("prlimit")
            .args(["--pid", &me.to_string(), &format!("--nofile={n}:")])
            .output();
        out.is_ok_and(|o| o.status.success())
    };
    if !limit(free.to_string()) {
        println!("skipped: prlimit cannot set restartd's RLIMIT_NOFILE");
        return;
    }
    let _waiting = UnixStream::connect(env.instance("nofd").join("control")).unwrap();
    std::thread::sleep(std::time::Duration::from_millis(200));
    let before = cpu_ticks(me);
    // Nothing to wait for: the point is that restartd does next to nothing meanwhile.
    std::thread::sleep(std::time::Duration::from_secs(2));
    let spent = cpu_ticks(me) - before;
    assert!(limit("1024".into()));
    assert!(spent < 20, "restartd spun: {spent} ticks of CPU in 2 s");
    let mut cmd = crate::common::restartd();
    cmd.args(["signal", "nofd", "WINCH", "--state-dir"])
        .arg(env.state_dir());
    let answered = crate::common::run_with_timeout(cmd, crate::common::TIMEOUT);
    assert!(answered.status.success(), "{answered:?}");
    r.signal(libc::SIGTERM);
    assert_eq!(r.wait_exit(), Some(0));
}

/// See: review of issue 17. A daemon of the child (`setsid`, its own group) orphaned while a
/// health check ran, before any look saw it, was judged a helper's when the check ended (the
/// check started before it, and the child itself had not ended): it was never a leftover, so it
/// outlived the stop (and a restart started a second child beside it). A process started with
/// the instance's `RESTARTD_NAME` and without a hook's `RESTARTD_EVENT` is not a helper's: a
/// health check gets neither, a hook both.
#[test]
fn issue_17_a_childs_daemon_orphaned_during_a_health_check_is_still_the_childs() {
    let env = Env::new();
    let d = env.state_dir().display().to_string();
    // The check holds until the daemon is restartd's (its subshell gone), then passes for good.
    let check = format!(
        "[ -e {d}/done ] && exit 0; touch {d}/checking; \
         until [ -s {d}/dpid ] && [ \"$(cut -d' ' -f4 /proc/$(cat {d}/dpid)/stat)\" = \"$PPID\" ]; \
         do sleep 0.01; done; touch {d}/done"
    );
    let child = format!(
        "while [ ! -e {d}/checking ]; do sleep 0.01; done; \
         (setsid sleep 300 & echo $! > {d}/dpid.tmp; mv {d}/dpid.tmp {d}/dpid); exec sleep 300"
    );
    let args = [
        "-n",
        "checked",
        "--health-cmd",
        &check,
        "--health-interval",
        "500ms",
        "--stop-timeout",
        "5s",
        "--",
        "sh",
        "-c",
        &child,
    ];
    let mut r = env.start(&args);
    env.wait_child("checked");
    let dpid = env.state_dir().join("dpid");
    assert!(wait_until("the daemon", || dpid.exists()));
    let daemon: i32 = fs::read_to_string(&dpid).unwrap().trim().parse().unwrap();
    r.also_kill(daemon);
    env.wait_state("checked", "the check passed", |s| s["health"] == "healthy");
    r.signal(libc::SIGTERM);
    assert_eq!(r.wait_exit(), Some(0), "{}", r.stderr());
    assert!(
        !alive(daemon),
        "the child's daemon {daemon} outlived restartd's stop:\n{}",
        r.stderr()
    );
}

/// See: review of issue 17. `reset NAME --crashes` on an instance that is not running removed
/// the crash files but left `state.json`'s `last_exit.crash_id` naming the removed record
/// (README: null after `reset --crashes`); only a running instance cleared it.
#[test]
fn issue_17_reset_crashes_of_a_stopped_instance_names_no_record() {
    let env = Env::new();
    let out = env.run(&[
        "-n",
        "past",
        "--max-restarts",
        "0",
        "--",
        "sh",
        "-c",
        "exit 3",
    ]);
    assert_eq!(out.status.code(), Some(3), "{}", env.report());
    assert!(env.state("past")["last_exit"]["crash_id"].is_string());
    let out = env.sub(&["reset", "past", "--crashes"]);
    assert_eq!(out.status.code(), Some(0), "{}", env.report());
    assert!(env.records("past").is_empty());
    let state = env.state("past");
    assert!(
        state["last_exit"]["crash_id"].is_null(),
        "last_exit names the removed record: {}",
        state["last_exit"]
    );
    assert_eq!(
        state["last_exit"]["code"], 3,
        "the end itself is still told"
    );
}

/// See: review of issue 17. A SIGHUP that came while restartd stopped what a previous run left
/// (before its first start) was counted, its wake-up byte drained unanswered, and it reached
/// the child at the next unrelated turn: a reload at a random later moment (here, the control
/// request's). Nothing runs to forward it to then: it is dropped, and said so.
#[test]
fn issue_17_a_signal_before_the_first_start_is_not_forwarded_later() {
    let env = Env::new();
    let dir = env.state_dir().display().to_string();
    // Its stderr, the killed restartd's pipe, is closed: a line there would SIGPIPE it.
    let stray =
        format!("exec 2>/dev/null; trap 'echo >> {dir}/terms' TERM; while :; do sleep 0.05; done");
    let mut first = env.start(&["-n", "early", "--", "sh", "-c", &stray]);
    let old = env.wait_child("early");
    first.signal(libc::SIGKILL);
    first.wait_exit();
    let terms = env.state_dir().join("terms");
    let count = || fs::read_to_string(&terms).map_or(0, |t| t.lines().count());
    // Its parent-death SIGTERM.
    assert!(wait_until("the parent-death signal", || count() == 1));
    let child = "trap 'echo got HUP >&2' HUP; trap 'echo got WINCH >&2' WINCH; \
                 while :; do sleep 0.05; done";
    let second = env.start(&[
        "-n",
        "early",
        "--stop-timeout",
        "500ms",
        "--",
        "sh",
        "-c",
        child,
    ]);
    // The new restartd's stop signal: it is stopping the stray now.
    assert!(wait_until("the stray stopped", || count() >= 2));
    second.signal(libc::SIGHUP);
    let new = env.wait_state("early", "the new child", |s| {
        s["status"] == "running" && s["child_pid"].is_i64() && s["child_pid"] != old
    });
    env.also_kill(new["child_pid"].as_i64().unwrap() as i32);
    let out = env.sub(&["signal", "early", "WINCH"]);
    assert!(out.status.success(), "{}", env.report());
    assert!(wait_until("WINCH", || second
        .stderr()
        .contains("got WINCH")));
    assert!(
        !second.stderr().contains("got HUP"),
        "the SIGHUP of before the start reached the child later:\n{}",
        second.stderr()
    );
}

//! What restartd promises (SPEC §10, issue 17): it never signals what is not its own, never
//! loses an alert or a record, never freezes. Each test here once failed on main for the reason
//! its name gives (RELIABILITY.md, "What restartd promises").

use std::collections::HashMap;
use std::fs;
use std::process::Command;

use nix::libc;

use crate::common::{
    fill, helper, restartd, unshare_refused, wait_until, Env, Running, Tmpfs, BIN,
};

/// See: issue 17 (point 1). restartd reaped its child G at once, kept G as the group to clean up
/// while a leftover lived, and SIGKILLed group G at the stop timeout: by then pid G could belong
/// to another process, which leads group G if it called setsid(). Reproduced as in the issue, in
/// a PID namespace whose next pid is steered through `/proc/sys/kernel/ns_last_pid`
/// (tests/helpers/reuse_pgid.py): the child G exits 1 leaving a daemon (own session, SIGTERM
/// ignored); once restartd has handled the end, a bystander forked as pid G calls setsid(). On
/// main it died of SIGKILL with the leftover, and the restart did not come either: at restartd's
/// last look group G still held the dead bystander (not yet reaped by its parent), and nothing
/// woke restartd again. SPEC §10: pid G cannot be reused before the cleanup is over, so the
/// bystander gets another pid; whatever pid it gets, it outlives the cleanup, and the restart
/// comes.
#[test]
fn issue_17_a_reused_pgid_is_never_signalled() {
    if let Some(why) = unshare_refused() {
        println!("skipped: unshare --pid is not permitted here: {why}");
        return;
    }
    let env = Env::new();
    // The driver is PID 1 of the namespace; when it exits, everything in the namespace dies.
    let mut cmd = Command::new("unshare");
    cmd.args(["--pid", "--fork", "--mount-proc", "--kill-child", "python3"])
        .args([&helper("reuse_pgid.py"), "driver", BIN])
        .arg(env.state_dir());
    let out = env.run_cmd(cmd);
    let text = String::from_utf8_lossy(&out.stdout);
    let saw: HashMap<&str, &str> = text.lines().filter_map(|l| l.split_once('=')).collect();
    let report = || {
        format!(
            "driver said:\n{text}\nrestartd said:\n{}",
            String::from_utf8_lossy(&out.stderr)
        )
    };
    if let Some(why) = saw.get("skipped") {
        println!("skipped: {why}");
        return;
    }
    assert_eq!(out.status.code(), Some(0), "{}", report());
    assert_eq!(
        saw["leftover_at_fork"],
        "alive",
        "the bystander came after the cleanup's SIGKILL: the test proves nothing\n{}",
        report()
    );
    let (child, bystander) = (saw["child"], saw["bystander"]);
    assert_eq!(saw["bystander_pgid"], bystander, "{}", report());
    let took = if bystander == child {
        format!("took the reaped child's pid {child}")
    } else {
        format!("got pid {bystander}, not the child's {child},")
    };
    assert_eq!(
        saw["bystander_end"],
        "alive",
        "restartd signalled a process not its own: the bystander, which {took} and leads \
         group {bystander}, ended with {} at the cleanup's SIGKILL\n{}",
        saw["bystander_end"],
        report()
    );
    assert_ne!(
        saw["restarted"],
        "none",
        "the restart never came after the cleanup (status {})\n{}",
        saw["status"],
        report()
    );
}

/// See: issue 17 (point 2). The cleanup of the child's leftovers signalled every child of
/// restartd but the main one, restartd's own hooks included: the give-up alert was lost.
#[test]
fn issue_17_cleanup_never_kills_restartds_own_hooks() {
    let env = Env::new();
    let crash = env.state_dir().join("crash-hook");
    let give_up = env.state_dir().join("give-up-hook");
    let hook = |f: &std::path::Path| format!("sleep 1; echo done > {}", f.display());
    let out = env.run(&[
        "-n",
        "hooks",
        "--max-restarts",
        "0",
        "--stop-timeout",
        "5s",
        "--on-crash",
        &hook(&crash),
        "--on-give-up",
        &hook(&give_up),
        "--",
        "sh",
        "-c",
        "sleep 5 & exit 3",
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{stderr}\n{}", env.report());
    assert!(!stderr.contains("hook failed"), "{stderr}");
    for f in [&crash, &give_up] {
        assert_eq!(
            fs::read_to_string(f).ok().as_deref(),
            Some("done\n"),
            "{} was not written: {stderr}",
            f.display()
        );
    }
}

/// See: issue 17 (point 5). A start that failed for a reason that can pass (here EMFILE) ended
/// supervision for good with 126; now it is a crash that follows the policy and the window.
#[test]
fn issue_17_a_passing_spawn_error_follows_the_policy() {
    let env = Env::new();
    // With 10 descriptors restartd can run (its own, the crash log) but not make the child's pipes.
    let script = format!(
        "ulimit -n 10 && exec {BIN} --state-dir {} -n emfile --max-restarts 2 --delay 0 -- true",
        env.state_dir().display()
    );
    let mut cmd = Command::new("sh");
    cmd.args(["-c", &script]);
    let out = env.run_cmd(cmd);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(126), "{stderr}\n{}", env.report());
    let records = env.records("emfile");
    let actions: Vec<&str> = records
        .iter()
        .map(|r| r["action"].as_str().unwrap())
        .collect();
    assert_eq!(actions, ["restart", "restart", "give-up"], "{stderr}");
    for r in &records {
        assert_eq!(r["reason"], "spawn-failed");
        assert!(
            r["detail"]
                .as_str()
                .is_some_and(|d| d.contains("Too many open files")),
            "{r}"
        );
    }
    assert_eq!(env.state("emfile")["status"], "gave-up");
}

/// See: issue 17 (point 6). Started with SIGTERM and SIGCHLD blocked, restartd ignored SIGTERM
/// for ever; it now unblocks what it handles, and the child still gets the inherited mask.
#[test]
fn issue_17_a_blocked_stop_signal_is_unblocked_for_restartd() {
    let env = Env::new();
    let wrapper = "import os, signal, sys\n\
        signal.pthread_sigmask(signal.SIG_BLOCK, [signal.SIGTERM, signal.SIGCHLD])\n\
        os.execv(sys.argv[1], sys.argv[1:])\n";
    let mut cmd = Command::new("python3");
    cmd.args(["-c", wrapper, BIN, "--state-dir"])
        .arg(env.state_dir())
        .args([
            "-n",
            "masked",
            "--stop-timeout",
            "1s",
            "--",
            "python3",
            "-c",
            // Not sh: dash clears the signal mask it was started with.
            "import time\nprint([l for l in open('/proc/self/status') if l.startswith('SigBlk')][0], flush=True)\ntime.sleep(100)",
        ]);
    let mut r = crate::common::Running::spawn(cmd);
    env.wait_child("masked");
    let line = r.wait_stdout("SigBlk");
    let blocked = u64::from_str_radix(line.split_whitespace().nth(1).unwrap(), 16).unwrap();
    let bit = |sig: i32| 1u64 << (sig - 1);
    assert_eq!(
        blocked,
        bit(libc::SIGTERM) | bit(libc::SIGCHLD),
        "the child keeps the mask restartd inherited: {line}"
    );
    r.signal(libc::SIGTERM);
    let mut status = None;
    let exited = wait_until("restartd to exit", || {
        status = r.try_exit();
        status.is_some()
    });
    assert!(exited, "restartd ignored SIGTERM: {}", env.report());
    // The child has SIGTERM blocked too, as it would without restartd: SIGKILL after 1 s.
    assert_eq!(status, Some(Some(137)), "{}", r.stderr());
}

/// See: issue 17 (point 8). A child left running by a restartd that was SIGKILLed (and that
/// ignores the parent-death SIGTERM) kept its port; the next restartd started a second child
/// beside it. Now the next restartd stops it first, and says so.
#[test]
fn issue_17_a_child_left_by_a_killed_restartd_is_stopped_first() {
    let env = Env::new();
    let child = "import signal, time\n\
        signal.signal(signal.SIGTERM, signal.SIG_IGN)\n\
        print('ready', flush=True)\n\
        time.sleep(300)\n";
    let args = [
        "-n",
        "left",
        "--stop-timeout",
        "1s",
        "--",
        "python3",
        "-c",
        child,
    ];
    let mut first = env.start(&args);
    let old = env.wait_child("left");
    first.wait_stdout("ready");
    // Saved with the child's start time once it runs.
    env.wait_state("left", "the child in leftovers", |s| {
        s["leftovers"]
            .as_array()
            .is_some_and(|l| l.iter().any(|p| p["pid"] == old))
    });
    first.signal(libc::SIGKILL);
    first.wait_exit();
    assert!(
        crate::common::alive(old),
        "the child ignores SIGTERM and outlives restartd"
    );

    let second = env.start(&args);
    let new = env.wait_state("left", "a new child", |s| {
        s["status"] == "running" && s["child_pid"].is_i64() && s["child_pid"] != old
    });
    env.also_kill(new["child_pid"].as_i64().unwrap() as i32);
    let said = format!("stopped pid {old} left running by a previous restartd");
    assert!(
        wait_until("the message", || second.stderr().contains(&said)),
        "{}",
        second.stderr()
    );
    assert!(
        !crate::common::alive(old) || crate::common::proc_state(old).starts_with('Z'),
        "pid {old} still runs"
    );
}

/// A pid recorded with another start time is another process: never touched.
#[test]
fn issue_17_a_reused_pid_in_state_json_is_not_touched() {
    let env = Env::new();
    let mut bystander = Command::new("sleep").arg("300").spawn().unwrap();
    let pid = bystander.id() as i32;
    env.also_kill(pid);
    let dir = env.instance("reuse");
    fs::create_dir_all(&dir).unwrap();
    let state = serde_json::json!({
        "version": 1, "name": "reuse", "command": ["true"], "status": "running",
        "supervisor_pid": 999999, "child_pid": pid, "started_at": "2026-01-01T00:00:00.000Z",
        "child_started_at": "2026-01-01T00:00:00.000Z", "restarts": 0, "recent_restarts": [],
        "max_restarts": 5, "window_secs": 300, "last_exit": null, "next_restart_at": null,
        "health": null, "updated_at": "2026-01-01T00:00:00.000Z",
        "leftovers": [{"pid": pid, "start_time": 1}]
    });
    fs::write(dir.join("state.json"), state.to_string()).unwrap();
    let out = env.run(&["-n", "reuse", "--restart", "no", "--", "true"]);
    assert_eq!(out.status.code(), Some(0), "{}", env.report());
    assert!(!String::from_utf8_lossy(&out.stderr).contains("left running"));
    assert!(
        bystander.try_wait().unwrap().is_none(),
        "the bystander was signalled"
    );
    let _ = bystander.kill();
    let _ = bystander.wait();
}

/// See: issue 17 (PID 1). As a container's PID 1 restartd adopts every orphan, a `docker exec`
/// session's jobs included. Those were taken for the child's leftovers: signalled at the
/// cleanup, and waited for before the restart. Now only the child's tree (its process group,
/// or a process that inherited the instance's `RESTARTD_NAME`) is.
#[test]
fn issue_17_as_pid_1_a_foreign_orphan_is_reaped_but_never_a_leftover() {
    if let Some(why) = unshare_refused() {
        println!("skipped: unshare --pid is not permitted here: {why}");
        return;
    }
    let env = Env::new();
    let dir = env.state_dir().display().to_string();
    // First run: wait for the test's go, then crash; later runs say so and stay.
    let child = format!(
        "if [ \"$RESTARTD_RESTARTS\" = 0 ]; then \
           while [ ! -e {dir}/go ]; do sleep 0.01; done; exit 1; \
         else echo second; exec sleep 300; fi"
    );
    let mut cmd = Command::new("unshare");
    cmd.args(["--pid", "--fork", "--mount-proc", "--kill-child", BIN])
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
    // restartd is unshare's only child; its host pid names the namespace for nsenter.
    let mut init = 0;
    assert!(wait_until("restartd in the namespace", || {
        init = fs::read_to_string(format!("/proc/{0}/task/{0}/children", r.pid))
            .ok()
            .and_then(|c| c.split_whitespace().next()?.parse().ok())
            .unwrap_or(0);
        init > 0 && env.state("init")["status"] == "running"
    }));
    // A job started from outside the child's tree, orphaned: PID 1 adopts it.
    let foreign = env.state_dir().join("foreign.pid");
    let ns = |script: &str| {
        Command::new("nsenter")
            .args([
                "--target",
                &init.to_string(),
                "--pid",
                "--mount",
                "--",
                "sh",
                "-c",
            ])
            .arg(script)
            .env_remove("RESTARTD_NAME")
            .output()
            .unwrap()
    };
    let out = ns(&format!(
        "sleep 300 </dev/null >/dev/null 2>&1 & echo $! > {}",
        foreign.display()
    ));
    assert!(out.status.success(), "{out:?}");
    fs::write(env.state_dir().join("go"), "").unwrap();
    r.wait_stdout("second");
    let alive = ns(&format!("test -e /proc/$(cat {})", foreign.display()));
    assert!(
        alive.status.success(),
        "the foreign orphan was signalled at the cleanup: {}",
        r.stderr()
    );
}

/// See: issue 17 (reset, point 1). `reset NAME --crashes` unlinked crashes.jsonl under a running
/// instance, which went on appending to the deleted file: every later record was lost. The
/// request now goes through the instance, which removes its files and starts a new one.
#[test]
fn issue_17_reset_crashes_on_a_running_instance_keeps_later_records() {
    let env = Env::new();
    let _r = env.start(&[
        "-n",
        "loop",
        "--delay",
        "200ms",
        "--backoff-factor",
        "1",
        "--max-restarts",
        "unlimited",
        "--",
        "sh",
        "-c",
        "exit 1",
    ]);
    let restarted = |n: u64| move |s: &serde_json::Value| s["restarts"].as_u64() >= Some(n);
    env.wait_state("loop", "two restarts", restarted(2));
    let out = env.sub(&["reset", "loop", "--crashes"]);
    assert_eq!(out.status.code(), Some(0), "{}", env.report());
    // Every record on disk from here on is of a crash after the reset.
    let at_reset = env.state("loop")["restarts"].as_u64().unwrap();
    env.wait_state("loop", "three more restarts", restarted(at_reset + 3));
    let records = env.records("loop");
    assert!(
        records.len() >= 2,
        "the records written after the reset are in crashes.jsonl: {records:?}\n{}",
        env.report()
    );
    for r in &records {
        assert!(r["restarts"].as_u64() >= Some(at_reset - 1), "{r}");
    }
    assert!(!env.instance("loop").join("crashes.jsonl.1").exists());
}

/// See: issue 17 (status, point 2). The state file of a restartd that was SIGKILLed still says
/// `running`, and `status --json` passed that on beside `"running": false`. A state file whose
/// lock is free reads as `dead` (SPEC §8).
#[test]
fn issue_17_a_state_file_whose_restartd_is_gone_reads_as_dead() {
    let env = Env::new();
    let mut r = env.start(&["-n", "dead", "--", "sleep", "300"]);
    // The child is killed when the test ends, should the parent-death signal not take it.
    env.wait_child("dead");
    r.signal(libc::SIGKILL);
    assert_eq!(r.wait_exit(), None);
    assert_eq!(
        env.state("dead")["status"],
        "running",
        "the file's stale word"
    );

    let out = env.sub(&["status", "dead", "--json"]);
    assert_eq!(out.status.code(), Some(3), "{}", env.report());
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["running"], false, "{v}");
    assert_eq!(v["status"], "dead", "{v}");

    let out = env.sub(&["status", "dead"]);
    assert_eq!(out.status.code(), Some(3), "{}", env.report());
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text.lines().nth(1).unwrap_or_default();
    assert!(
        line.contains(&format!("dead (restartd pid {} is gone)", r.pid)),
        "{text}"
    );

    let out = env.sub(&["list", "--json"]);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v[0]["status"], "dead", "{v}");
}

/// See: issue 17 (status, point 3). An instance that has stopped still showed the health of
/// its last check (`healthy`); the health of an instance that is not running is `-` and null
/// (SPEC §8).
#[test]
fn issue_17_a_stopped_instance_shows_no_health() {
    let env = Env::new();
    // The child exits cleanly once restartd has recorded a healthy check.
    let state = env.instance("checked").join("state.json");
    let script = format!(
        "until grep -q '\"health\": \"healthy\"' {}; do sleep 0.02; done",
        state.display()
    );
    let out = env.run(&[
        "-n",
        "checked",
        "--restart",
        "no",
        "--health-cmd",
        "true",
        "--health-interval",
        "100ms",
        "--",
        "sh",
        "-c",
        &script,
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", env.report());

    let out = env.sub(&["status", "checked", "--json"]);
    assert_eq!(out.status.code(), Some(3), "{}", env.report());
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["status"], "exited", "{v}");
    assert_eq!(v["health"], serde_json::Value::Null, "{v}");

    let out = env.sub(&["status", "checked"]);
    let text = String::from_utf8_lossy(&out.stdout);
    let mut lines = text.lines();
    let header = lines.next().unwrap_or_default();
    let row = lines.next().unwrap_or_default();
    let column = header.find("HEALTH").expect("a HEALTH column");
    let health = row
        .get(column..)
        .unwrap_or_default()
        .split_whitespace()
        .next();
    assert_eq!(health, Some("-"), "{text}");
}

/// See: issue 17 (records, point 4). A record that only partly fitted on a full disk stayed in
/// crashes.jsonl as a fragment, and the next record was glued to it: one line that is not
/// JSON, two records lost. A failed append is now cut back (SPEC §6).
#[test]
fn issue_17_a_partly_written_record_is_cut_back() {
    let env = Env::new();
    let mnt = env.state_dir().join("small");
    let tmpfs = match Tmpfs::mount(&mnt, "1m") {
        Ok(t) => t,
        Err(why) => {
            println!("skipped: unable to mount a tmpfs: {why}");
            return;
        }
    };
    // Outside the tmpfs: each run of the child says it started, waits for its go, then writes
    // 16 KiB of stderr (the record's tail, 4 pages) and crashes.
    let marks = env.state_dir();
    let script = format!(
        "n=$RESTARTD_RESTARTS; touch {m}/started-$n; \
         while [ ! -e {m}/go-$n ]; do sleep 0.02; done; \
         i=0; while [ $i -lt 8 ]; do printf '%02048d\\n' $i >&2; i=$((i+1)); done; exit 1",
        m = marks.display()
    );
    let mut cmd = restartd();
    cmd.arg("--state-dir").arg(&tmpfs.path).args([
        "-n",
        "small",
        "--delay",
        "0",
        "--max-restarts",
        "unlimited",
        "--",
        "sh",
        "-c",
        &script,
    ]);
    let mut r = Running::spawn(cmd);
    let wait_mark = |name: &str| {
        let path = marks.join(name);
        assert!(
            wait_until(name, || path.exists()),
            "no {name}: {}",
            r.stderr()
        );
    };
    wait_mark("started-0");
    // Fill the disk, then free exactly one page: the first record (over 16 KiB) partly fits.
    let gap = tmpfs.path.join("gap");
    fs::write(&gap, [0u8; 4096]).unwrap();
    fill(&tmpfs.path);
    fs::remove_file(&gap).unwrap();
    fs::write(marks.join("go-0"), "").unwrap();
    wait_mark("started-1");
    assert!(
        r.stderr().contains("the record is lost"),
        "the first record did not fit: {}",
        r.stderr()
    );
    // Room again: the second crash's record is written whole.
    fs::remove_file(tmpfs.path.join("filler")).unwrap();
    fs::write(marks.join("go-1"), "").unwrap();
    wait_mark("started-2");
    r.signal(libc::SIGTERM);
    assert_eq!(r.wait_exit(), Some(0), "{}", r.stderr());

    let text = fs::read(tmpfs.path.join("small").join("crashes.jsonl")).unwrap();
    let text = String::from_utf8_lossy(&text);
    let mut records = 0;
    for (i, line) in text.lines().enumerate() {
        let parsed: Result<serde_json::Value, _> = serde_json::from_str(line);
        assert!(
            parsed.is_ok(),
            "line {} of crashes.jsonl is not JSON ({} bytes, {} record starts): {:?}…",
            i + 1,
            line.len(),
            line.matches("{\"id\":").count(),
            &line[..line.len().min(120)]
        );
        records += 1;
    }
    assert!(text.ends_with('\n'));
    assert_eq!(records, 1, "the second crash's record: {text}");
    drop(r);
    drop(tmpfs);
}

/// See: issue 17 (records, point 5). The instance directory was never fsync'd, so after a power
/// loss a new or just rotated crashes.jsonl could be missing with the records fsync'd into it
/// (SPEC §6). An fsync cannot be seen from the files, so this watches restartd's system calls
/// with strace: the directory must be fsync'd after the crash file is created and after the
/// rotation's rename.
#[test]
fn issue_17_the_directory_is_fsynced_after_the_crash_file_is_created_or_rotated() {
    match Command::new("strace")
        .args(["-o", "/dev/null", "true"])
        .output()
    {
        Ok(out) if out.status.success() => {}
        Ok(out) => {
            let why = String::from_utf8_lossy(&out.stderr);
            println!("skipped: strace cannot trace here: {}", why.trim());
            return;
        }
        Err(e) => {
            println!("skipped: strace is not installed ({e}); apt-get install strace");
            return;
        }
    }
    let env = Env::new();
    let dir = env.instance("durable");
    let file = dir.join("crashes.jsonl");
    // One crash under strace; returns the trace's lines.
    let traced = |round: &str| {
        let trace = env.state_dir().join(format!("trace-{round}"));
        let mut cmd = Command::new("strace");
        cmd.args(["-f", "-qq", "-y", "-o"])
            .arg(&trace)
            .args([
                "-e",
                "trace=open,openat,creat,rename,renameat,renameat2,fsync,fdatasync",
            ])
            .arg(BIN)
            .arg("--state-dir")
            .arg(env.state_dir())
            .args([
                "-n",
                "durable",
                "--restart",
                "no",
                "--",
                "sh",
                "-c",
                "exit 3",
            ]);
        for var in ["NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID", "NO_COLOR"] {
            cmd.env_remove(var);
        }
        let out = env.run_cmd(cmd);
        assert_eq!(out.status.code(), Some(3), "{round}: {}", env.report());
        // What touches the instance directory (not the loader's search for libraries).
        let all = fs::read_to_string(&trace).unwrap();
        let mine: Vec<&str> = all
            .lines()
            .filter(|l| l.contains(&*dir.to_string_lossy()))
            .collect();
        mine.join("\n")
    };
    // The first system call after `after` that fsyncs the instance directory (`-y` shows an
    // fd's path as `N</path>`).
    let dir_synced_after = |trace: &str, after: &dyn Fn(&str) -> bool| {
        let real = fs::canonicalize(&dir).unwrap();
        let synced = format!("<{}>", real.display());
        let lines: Vec<&str> = trace.lines().collect();
        let Some(at) = lines.iter().position(|l| after(l)) else {
            panic!("not in the trace:\n{trace}");
        };
        lines[at..]
            .iter()
            .any(|l| (l.contains(" fsync(") || l.contains(" fdatasync(")) && l.contains(&synced))
    };

    let trace = traced("create");
    let created = |l: &str| l.contains(&format!("\"{}\"", file.display())) && l.contains("O_CREAT");
    assert!(
        dir_synced_after(&trace, &created),
        "no fsync of {} after crashes.jsonl was created:\n{trace}",
        dir.display()
    );

    // Just under 10 MiB of records: the next one rotates the file.
    let line = format!("{{\"id\":\"old\",\"pad\":\"{}\"}}\n", "x".repeat(1000));
    let old = line.repeat((10 << 20) / line.len());
    fs::write(&file, &old).unwrap();
    let trace = traced("rotate");
    assert_eq!(
        fs::read(dir.join("crashes.jsonl.1")).unwrap(),
        old.as_bytes()
    );
    let renamed = |l: &str| l.contains("rename") && l.contains("crashes.jsonl.1\"");
    assert!(
        dir_synced_after(&trace, &renamed),
        "no fsync of {} after crashes.jsonl was rotated:\n{trace}",
        dir.display()
    );
}

/// See: issue 17 (review). A hook's own background job (`curl … &`), adopted once the hook's
/// shell ended, was taken for the child's leftover and SIGTERMed at the next cleanup.
#[test]
fn issue_17_a_hooks_background_job_is_never_a_leftover() {
    let env = Env::new();
    let job = env.state_dir().join("job.pid");
    let hook = format!(
        "sleep 30 </dev/null >/dev/null 2>&1 & echo $! > {}",
        job.display()
    );
    // The second run ends once the hook's job runs and the hook's shell has had time to end.
    let child = format!(
        "if [ \"$RESTARTD_RESTARTS\" = 1 ]; then while [ ! -s {f} ]; do sleep 0.01; done; \
         sleep 0.3; fi; exit 1",
        f = job.display()
    );
    let out = env.run(&[
        "-n",
        "hookjob",
        "--delay",
        "0",
        "--max-restarts",
        "1",
        "--stop-timeout",
        "3s",
        "--on-crash",
        &hook,
        "--",
        "sh",
        "-c",
        &child,
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}\n{}", env.report());
    let pid: i32 = fs::read_to_string(&job).unwrap().trim().parse().unwrap();
    env.also_kill(pid);
    assert!(
        crate::common::alive(pid) && !crate::common::proc_state(pid).starts_with('Z'),
        "the hook's job {pid} was signalled: {stderr}"
    );
}

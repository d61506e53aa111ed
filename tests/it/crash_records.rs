//! Crash records, `crashes` queries and hooks (issue 3), with real crashing programs.

use std::fs;
use std::process::Output;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::common::Env;

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

const PY_CRASH: &str =
    "import sys\nprint('starting', file=sys.stderr)\ndef f():\n    return 1/0\nf()\n";

#[test]
fn a_python_crash_leaves_a_complete_record_that_names_the_error() {
    let env = Env::new();
    let out = env.run(&[
        "-n",
        "py",
        "--max-restarts",
        "1",
        "--delay",
        "10ms",
        "--",
        "python3",
        "-c",
        PY_CRASH,
    ]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let records = env.records("py");
    assert_eq!(records.len(), 2, "one record per crash: {records:?}");
    let fields = [
        "id",
        "name",
        "time",
        "reason",
        "exit_code",
        "signal",
        "core_dumped",
        "expected",
        "pid",
        "uptime_ms",
        "restarts",
        "action",
        "next_delay_ms",
        "error_type",
        "error_message",
        "fingerprint",
        "first_seen",
        "stack_trace",
        "stderr_tail",
        "max_rss_kb",
        "user_cpu_ms",
        "sys_cpu_ms",
        "command",
        "cwd",
        "host",
        "restartd_version",
        "detail",
    ];
    for r in &records {
        for f in fields {
            assert!(r.get(f).is_some(), "field {f} missing in {r}");
        }
        assert_eq!(r["reason"], "exit");
        assert_eq!(r["exit_code"], 1);
        assert_eq!(r["error_type"], "ZeroDivisionError");
        assert_eq!(r["error_message"], "division by zero");
        assert!(
            r["stack_trace"].as_str().unwrap().contains("line 4, in f"),
            "{r}"
        );
        assert!(
            r["stderr_tail"].as_str().unwrap().starts_with("starting\n"),
            "{r}"
        );
        assert!(r["core_dumped"].is_boolean() && r["expected"].is_boolean());
        assert!(r["max_rss_kb"].as_u64().unwrap() > 1000, "{r}");
        assert!(r["user_cpu_ms"].is_u64() && r["sys_cpu_ms"].is_u64());
        assert!(r["time"].as_str().unwrap().ends_with('Z'));
        assert_eq!(r["command"][0], "python3");
        assert_eq!(r["restartd_version"], env!("CARGO_PKG_VERSION"));
    }
    assert_eq!(records[0]["action"], "restart");
    assert_eq!(records[0]["restarts"], 0);
    assert_eq!(records[0]["next_delay_ms"], 10);
    assert_eq!(records[1]["action"], "give-up");
    assert_eq!(records[1]["restarts"], 1);
    assert!(records[1]["next_delay_ms"].is_null());
    assert!(records[0]["id"].as_str() < records[1]["id"].as_str());
    let state = env.state("py");
    assert_eq!(state["last_exit"]["crash_id"], records[1]["id"]);
    let err = stderr(&out);
    assert!(
        err.contains("exited with code 1 after")
            && err.contains("(ZeroDivisionError: division by zero); restart 1 of 1"),
        "{err}"
    );
}

#[test]
fn a_signal_death_is_recorded_with_its_signal() {
    let env = Env::new();
    let out = env.run(&[
        "-n",
        "seg",
        "--restart",
        "no",
        "--",
        "sh",
        "-c",
        "echo dying >&2; kill -SEGV $$",
    ]);
    assert_eq!(out.status.code(), Some(139), "{}", stderr(&out));
    let r = &env.records("seg")[0];
    assert_eq!(r["reason"], "signal");
    assert_eq!(r["signal"], "SIGSEGV");
    assert!(r["exit_code"].is_null());
    assert_eq!(r["action"], "exit");
    // SPEC §6 (issue 18): a signal death is not explained by the last line it logged; the
    // line stays in the tail.
    assert!(r["error_message"].is_null(), "{r}");
    assert!(r["error_type"].is_null());
    assert_eq!(r["stderr_tail"], "dying\n");
}

#[test]
fn spawn_failure_is_recorded_with_the_os_error() {
    let env = Env::new();
    let out = env.run(&["-n", "missing", "--", "/nonexistent/program"]);
    assert_eq!(out.status.code(), Some(127), "{}", stderr(&out));
    let r = &env.records("missing")[0];
    assert_eq!(r["reason"], "spawn-failed");
    assert!(
        r["detail"]
            .as_str()
            .unwrap()
            .contains("No such file or directory"),
        "{r}"
    );
    assert!(r["pid"].is_null() && r["exit_code"].is_null() && r["max_rss_kb"].is_null());
    assert_eq!(r["action"], "exit");
}

#[test]
fn clean_exits_and_requested_restarts_leave_no_record() {
    let env = Env::new();
    let out = env.run(&["-n", "clean", "--", "true"]);
    assert_eq!(out.status.code(), Some(0));
    assert!(env.records("clean").is_empty());
    let state = env.state("clean");
    assert!(state["last_exit"]["crash_id"].is_null());
}

#[test]
fn expected_marks_codes_the_configuration_names() {
    let env = Env::new();
    let out = env.run(&[
        "-n",
        "cfg",
        "--no-restart-exit-codes",
        "78",
        "--",
        "sh",
        "-c",
        "exit 78",
    ]);
    assert_eq!(out.status.code(), Some(78));
    let r = &env.records("cfg")[0];
    assert_eq!(r["expected"], true);
    assert!(stderr(&out).contains("not restarting: code 78 is in --no-restart-exit-codes"));
}

#[test]
fn the_tail_keeps_the_last_lines_only() {
    let env = Env::new();
    let script = "for i in $(seq 1 50); do echo line$i >&2; done; exit 2";
    let out = env.run(&[
        "-n",
        "tail",
        "--restart",
        "no",
        "--tail-lines",
        "3",
        "--",
        "sh",
        "-c",
        script,
    ]);
    assert_eq!(out.status.code(), Some(2));
    let r = &env.records("tail")[0];
    assert_eq!(r["stderr_tail"], "line48\nline49\nline50\n");
    assert_eq!(r["error_message"], "line50");
    // The child's stderr still reached restartd's stderr, all of it.
    let err = stderr(&out);
    assert_eq!(err.lines().filter(|l| l.starts_with("line")).count(), 50);
}

#[test]
fn a_chatty_child_loses_no_output() {
    let env = Env::new();
    // 4 MiB to stderr and to stdout in 100-byte lines, then a crash.
    let script = "import sys\nline = 'x' * 99 + '\\n'\nfor _ in range(41943):\n    sys.stderr.write(line); sys.stdout.write(line)\nsys.exit(3)\n";
    let out = env.run(&[
        "-n",
        "chatty",
        "--restart",
        "no",
        "--",
        "python3",
        "-c",
        script,
    ]);
    assert_eq!(out.status.code(), Some(3));
    assert_eq!(out.stdout.len(), 41943 * 100);
    let full = "x".repeat(99);
    let passed = String::from_utf8_lossy(&out.stderr)
        .lines()
        .filter(|l| *l == full)
        .count();
    assert_eq!(passed, 41943);
    let tail = env.records("chatty")[0]["stderr_tail"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(tail.lines().count(), 100);
}

/// Where restartd's stderr goes when the child's output outruns it: a pipe or a plain file takes
/// the splice(2) path of src/process/output.rs, a file opened for appending (`2>>log`) the read-and-write
/// path. restartd is stopped until the child blocks on its full pipe, so a backlog is there to
/// splice; the output must arrive whole and in order, and the tail must be its last lines.
#[test]
fn output_that_outruns_restartd_arrives_whole_and_in_order_on_any_stderr() {
    use std::io::Read;
    use std::os::unix::process::CommandExt;
    use std::process::Stdio;

    use crate::common::{signal, wait_until};

    const LINES: usize = 80_000; // 100-byte lines: 8 MB
    let env = Env::new();
    let files = tempfile::tempdir().unwrap();
    let go = files.path().join("go");
    let script = format!(
        "import os, sys, time\n\
         buf = b''.join(b'%09d %s\\n' % (i, b'x' * 89) for i in range({LINES}))\n\
         while not os.path.exists({go:?}): time.sleep(0.005)\n\
         v = memoryview(buf)\n\
         while v: v = v[os.write(2, v[:65536]):]\n\
         sys.exit(3)\n"
    );
    let expected: Vec<u8> = (0..LINES)
        .flat_map(|i| format!("{i:09} {}\n", "x".repeat(89)).into_bytes())
        .collect();
    for name in ["pipe", "file", "append"] {
        let path = files.path().join(name);
        let stderr = match name {
            "pipe" => Stdio::piped(),
            "file" => fs::File::create(&path).unwrap().into(),
            _ => fs::OpenOptions::new()
                .append(true)
                .create(true)
                .open(&path)
                .unwrap()
                .into(),
        };
        let _ = fs::remove_file(&go);
        let mut cmd = env.command(&["-n", name, "-q", "--restart", "no", "--"]);
        cmd.args(["python3", "-c", &script])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(stderr)
            .process_group(0);
        let mut restartd = cmd.spawn().unwrap();
        let pid = restartd.id() as i32;
        env.also_kill(pid);
        let reader = restartd.stderr.take().map(|mut err| {
            std::thread::spawn(move || {
                let mut all = Vec::new();
                err.read_to_end(&mut all).unwrap();
                all
            })
        });
        let child = env.wait_child(name);
        signal(pid, nix::libc::SIGSTOP);
        fs::write(&go, "").unwrap();
        let wchan = format!("/proc/{child}/wchan");
        assert!(wait_until("the child blocks on its full pipe", || {
            fs::read_to_string(&wchan).is_ok_and(|w| w.ends_with("pipe_write"))
        }));
        signal(pid, nix::libc::SIGCONT);
        assert_eq!(restartd.wait().unwrap().code(), Some(3), "{name}");
        let got = match reader {
            Some(reader) => reader.join().unwrap(),
            None => fs::read(&path).unwrap(),
        };
        assert_eq!(got.len(), expected.len(), "{name}: every byte");
        assert!(got == expected, "{name}: the output is in order");
        let tail = env.records(name)[0]["stderr_tail"]
            .as_str()
            .unwrap()
            .to_string();
        let last: String = (LINES - 100..LINES)
            .map(|i| format!("{i:09} {}\n", "x".repeat(89)))
            .collect();
        assert!(
            tail == last,
            "{name}: the tail is the last 100 lines, not {} lines from {:?}",
            tail.lines().count(),
            tail.lines().next()
        );
    }
}

#[test]
fn crashes_lists_newest_first_and_finds_one_by_id() {
    let env = Env::new();
    let out = env.run(&[
        "-n",
        "q",
        "--max-restarts",
        "3",
        "--delay",
        "0",
        "--",
        "python3",
        "-c",
        PY_CRASH,
    ]);
    assert_eq!(out.status.code(), Some(1));
    let records = env.records("q");
    assert_eq!(records.len(), 4);

    let out = env.sub(&["crashes", "q", "--json", "-n", "2"]);
    assert!(out.status.success());
    let lines: Vec<Value> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines, vec![records[3].clone(), records[2].clone()]);

    let out = env.sub(&["crashes", "q"]);
    let text = String::from_utf8(out.stdout).unwrap();
    assert_eq!(text.lines().count(), 4);
    assert!(text
        .lines()
        .next()
        .unwrap()
        .contains(records[3]["id"].as_str().unwrap()));
    assert!(
        text.contains("ZeroDivisionError: division by zero"),
        "{text}"
    );

    let id = records[1]["id"].as_str().unwrap();
    let out = env.sub(&["crashes", "q", "--id", id]);
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        text.contains("stack_trace:") && text.contains("line 4, in f"),
        "{text}"
    );
    let out = env.sub(&["crashes", "q", "--id", "nope"]);
    assert_eq!(out.status.code(), Some(4));

    let out = env.sub(&["crashes", "q", "--since", "1h", "--json", "-n", "0"]);
    assert_eq!(String::from_utf8(out.stdout).unwrap().lines().count(), 4);

    let out = env.sub(&["crashes", "q", "--stats", "--json"]);
    let stats: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(stats["last_hour"], 4);
    assert_eq!(stats["last_24h"], 4);
    assert_eq!(stats["total"], 4);
    assert_eq!(stats["by_reason"]["exit"], 4);
    assert_eq!(stats["by_error_type"]["ZeroDivisionError"], 4);
    assert_eq!(stats["status"], "degraded");
}

#[test]
fn crashes_answers_quickly_over_100000_records_and_reads_the_rotated_file() {
    let env = Env::new();
    let dir = env.instance("big");
    fs::create_dir_all(&dir).unwrap();
    let old = "2020-01-01T00:00:00.000Z";
    let line = |i: usize, time: &str| {
        format!(
            "{{\"id\":\"{time}-1-{i:06}\",\"name\":\"big\",\"time\":\"{time}\",\"reason\":\"exit\",\"exit_code\":1,\"signal\":null,\"core_dumped\":false,\"expected\":false,\"pid\":1,\"uptime_ms\":1,\"restarts\":{i},\"action\":\"restart\",\"next_delay_ms\":0,\"error_type\":\"ValueError\",\"error_message\":\"bad value\",\"stack_trace\":\"Traceback (most recent call last):\\n  File \\\"x.py\\\", line 1\\nValueError: bad value\",\"stderr_tail\":\"ValueError: bad value\\n\",\"max_rss_kb\":1,\"user_cpu_ms\":1,\"sys_cpu_ms\":1,\"command\":[\"x\"],\"cwd\":\"/\",\"host\":\"h\",\"restartd_version\":\"0\",\"detail\":null}}\n"
        )
    };
    let rotated: String = (0..50_000).map(|i| line(i, old)).collect();
    let current: String = (50_000..100_000).map(|i| line(i, old)).collect();
    fs::write(dir.join("crashes.jsonl.1"), rotated).unwrap();
    fs::write(dir.join("crashes.jsonl"), current).unwrap();
    let started = Instant::now();
    let out = env.sub(&["crashes", "big", "--stats", "--json"]);
    let stats_time = started.elapsed();
    let stats: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(stats["total"], 100_000);
    assert_eq!(stats["last_24h"], 0);
    assert_eq!(stats["status"], "healthy");
    let started = Instant::now();
    let out = env.sub(&["crashes", "big", "-n", "20", "--json"]);
    let list_time = started.elapsed();
    let text = String::from_utf8(out.stdout).unwrap();
    assert_eq!(text.lines().count(), 20);
    assert!(text.lines().next().unwrap().contains("-1-099999"));
    // Generous: this is a debug build on a loaded 2-core machine; bench/ measures release.
    assert!(
        stats_time < Duration::from_secs(5),
        "--stats took {stats_time:?}"
    );
    assert!(
        list_time < Duration::from_secs(5),
        "-n 20 took {list_time:?}"
    );
}

#[test]
fn hooks_get_the_record_on_stdin_and_crash_data_never_runs() {
    let env = Env::new();
    let hooks = tempfile::tempdir().unwrap();
    let marker = hooks.path().join("pwned");
    // The child prints shell syntax to stderr; the hook must treat it as data.
    let evil = format!(
        "echo '$(touch {m}) `touch {m}`; touch {m}' >&2; exit 5",
        m = marker.display()
    );
    let on_crash = format!(
        "cat > {d}/$RESTARTD_CRASH_ID.json; env | grep ^RESTARTD_ | sort > {d}/$RESTARTD_CRASH_ID.env",
        d = hooks.path().display()
    );
    let on_give_up = format!(
        "cat > {d}/give-up.json; echo $RESTARTD_EVENT > {d}/give-up.event",
        d = hooks.path().display()
    );
    let out = env.run(&[
        "-n",
        "hooked",
        "--max-restarts",
        "1",
        "--delay",
        "0",
        "--on-crash",
        &on_crash,
        "--on-give-up",
        &on_give_up,
        "--",
        "sh",
        "-c",
        &evil,
    ]);
    assert_eq!(out.status.code(), Some(5), "{}", stderr(&out));
    assert!(!marker.exists(), "crash data was executed");
    let records = env.records("hooked");
    for r in &records {
        let id = r["id"].as_str().unwrap();
        let stdin: Value = serde_json::from_str(
            &fs::read_to_string(hooks.path().join(format!("{id}.json"))).unwrap(),
        )
        .unwrap();
        assert_eq!(&stdin, r);
        let vars = fs::read_to_string(hooks.path().join(format!("{id}.env"))).unwrap();
        for expected in [
            "RESTARTD_EVENT=crash".to_string(),
            "RESTARTD_NAME=hooked".into(),
            format!("RESTARTD_CRASH_ID={id}"),
            "RESTARTD_REASON=exit".into(),
            "RESTARTD_EXIT_CODE=5".into(),
            "RESTARTD_SIGNAL=".into(),
            format!("RESTARTD_RESTARTS={}", r["restarts"]),
            format!("RESTARTD_ACTION={}", r["action"].as_str().unwrap()),
            "RESTARTD_SUPPRESSED=0".into(),
        ] {
            assert!(
                vars.lines().any(|l| l == expected),
                "{expected} not in {vars}"
            );
        }
    }
    // The give-up hook ran before restartd exited, with the give-up record.
    let give_up: Value =
        serde_json::from_str(&fs::read_to_string(hooks.path().join("give-up.json")).unwrap())
            .unwrap();
    assert_eq!(give_up["action"], "give-up");
    assert_eq!(
        fs::read_to_string(hooks.path().join("give-up.event"))
            .unwrap()
            .trim(),
        "give-up"
    );
}

#[test]
fn alert_limit_counts_suppressed_crash_hooks_but_never_limits_give_up() {
    let env = Env::new();
    let hooks = tempfile::tempdir().unwrap();
    let on_crash = format!(
        "echo $RESTARTD_SUPPRESSED >> {}/suppressed",
        hooks.path().display()
    );
    let on_give_up = format!("touch {}/gave-up", hooks.path().display());
    // 5 crashes, at most 2 hooks per hour: runs for crash 1 and 2, three suppressed.
    let out = env.run(&[
        "-n",
        "limited",
        "--max-restarts",
        "4",
        "--delay",
        "0",
        "--alert-limit",
        "2/1h",
        "--on-crash",
        &on_crash,
        "--on-give-up",
        &on_give_up,
        "--",
        "sh",
        "-c",
        "exit 1",
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(env.records("limited").len(), 5);
    let runs = fs::read_to_string(hooks.path().join("suppressed")).unwrap();
    assert_eq!(runs.lines().collect::<Vec<_>>(), ["0", "0"]);
    assert!(hooks.path().join("gave-up").exists());
}

#[test]
fn a_failing_hook_is_reported_and_changes_nothing() {
    let env = Env::new();
    let out = env.run(&[
        "-n",
        "badhook",
        "--max-restarts",
        "2",
        "--delay",
        "0",
        "--on-crash",
        "exit 7",
        "--",
        "sh",
        "-c",
        "exit 1",
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(env.records("badhook").len(), 3);
    let err = stderr(&out);
    assert!(err.contains("--on-crash hook failed: code 7"), "{err}");
}

#[test]
fn an_unwritable_crash_log_is_reported_once_and_supervision_goes_on() {
    let env = Env::new();
    fs::create_dir_all(env.instance("nolog").join("crashes.jsonl")).unwrap();
    let out = env.run(&[
        "-n",
        "nolog",
        "--max-restarts",
        "3",
        "--delay",
        "0",
        "--",
        "sh",
        "-c",
        "exit 1",
    ]);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert_eq!(
        err.matches("unable to write a crash record").count(),
        1,
        "{err}"
    );
    assert!(err.contains("giving up: 3 restarts"), "{err}");
    assert_eq!(env.state("nolog")["restarts"], 3);
}

#[test]
fn reset_crashes_deletes_the_history() {
    let env = Env::new();
    env.run(&["-n", "hist", "--restart", "no", "--", "sh", "-c", "exit 1"]);
    assert_eq!(env.records("hist").len(), 1);
    let out = env.sub(&["reset", "hist", "--crashes"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(env.records("hist").is_empty());
}

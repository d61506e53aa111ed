//! SPEC §13 and §8 `logs`: timestamped, rotated and gzipped log files, `restartd logs`,
//! `--env-file` read before every start, and `--max-runtime` scheduled restarts.

use std::fs;
use std::io::Read;
use std::path::Path;
use std::time::{Duration, SystemTime};

use crate::common::*;

/// Every line of the log's files, oldest first: PATH.N(.gz) … PATH.1(.gz), PATH.
fn all_lines(path: &Path) -> String {
    let mut rotated: Vec<(u32, std::path::PathBuf, bool)> = Vec::new();
    let dir = path.parent().unwrap();
    let base = path.file_name().unwrap().to_str().unwrap().to_string();
    for e in fs::read_dir(dir).unwrap() {
        let name = e.unwrap().file_name().into_string().unwrap();
        let Some(rest) = name.strip_prefix(&format!("{base}.")) else {
            continue;
        };
        let (num, gz) = match rest.strip_suffix(".gz") {
            Some(n) => (n, true),
            None => (rest, false),
        };
        if let Ok(n) = num.parse() {
            rotated.push((n, dir.join(&name), gz));
        }
    }
    rotated.sort_by_key(|r| std::cmp::Reverse(r.0));
    let mut all = String::new();
    for (_, p, gz) in rotated {
        let f = fs::File::open(&p).unwrap();
        if gz {
            flate2::read::GzDecoder::new(f)
                .read_to_string(&mut all)
                .unwrap();
        } else {
            all.push_str(&fs::read_to_string(&p).unwrap());
        }
    }
    all.push_str(&fs::read_to_string(path).unwrap_or_default());
    all
}

fn stamp(line: &str) -> SystemTime {
    let (t, _) = line.split_once(' ').expect("a stamp and a space");
    assert_eq!(t.len(), 24, "RFC 3339 with milliseconds: {line:?}");
    assert!(t.ends_with('Z'), "UTC: {line:?}");
    humantime::parse_rfc3339(t).unwrap()
}

#[test]
fn timestamps_are_the_wall_clock_time_of_the_first_byte() {
    let env = Env::new();
    let log = env.state_dir().join("out.log");
    let log_s = log.to_str().unwrap();
    let gate = env.state_dir().join("gate");
    let script = format!(
        "echo first; printf 'par'; while [ ! -e {g} ]; do sleep 0.01; done; printf 'tial\\nlast\\n'; exec sleep 100",
        g = gate.display()
    );
    let before = SystemTime::now() - Duration::from_millis(1);
    let _r = env.start(&[
        "--name",
        "ts",
        "--log-file",
        log_s,
        "--log-timestamps",
        "--",
        "sh",
        "-c",
        &script,
    ]);
    env.wait_child("ts");
    assert!(wait_until("the partial line", || fs::read_to_string(&log)
        .unwrap_or_default()
        .ends_with("par")));
    let seen = SystemTime::now();
    // Later than the first piece: the line must keep the first piece's time.
    std::fs::write(&gate, "").unwrap();
    assert!(wait_until("the last line", || fs::read_to_string(&log)
        .unwrap_or_default()
        .ends_with("last\n")));
    let after = SystemTime::now();
    let text = fs::read_to_string(&log).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 3, "{text}");
    assert!(
        lines[0].ends_with(" first") && lines[1].ends_with(" partial"),
        "{text}"
    );
    for line in &lines {
        let t = stamp(line);
        assert!(
            t >= before && t <= after,
            "{line} outside {before:?}..{after:?}"
        );
    }
    assert!(
        stamp(lines[1]) <= seen,
        "the partial line got a later time: {text}"
    );
    assert!(stamp(lines[2]) >= seen);
}

#[test]
fn no_line_is_lost_across_many_compressed_rotations() {
    let env = Env::new();
    let log = env.state_dir().join("out.log");
    let _r = env.start(&[
        "--name",
        "many",
        "--log-file",
        log.to_str().unwrap(),
        "--log-max-size",
        "32K",
        "--log-keep",
        "1000",
        "--log-compress",
        "--",
        "sh",
        "-c",
        "seq 1 300000; exec sleep 100",
    ]);
    env.wait_child("many");
    let want: String = (1..=300_000).map(|i| format!("{i}\n")).collect();
    // Compressed while the child runs: every rotated file ends up gzipped.
    let names = || -> Vec<String> {
        fs::read_dir(env.state_dir())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .filter(|n| n.starts_with("out.log."))
            .collect()
    };
    let done = wait_until("every rotated file gzipped", || {
        let n = names();
        n.len() >= 50 && n.iter().all(|n| n.ends_with(".gz"))
    });
    assert!(done, "{:?}", names());
    assert!(all_lines(&log) == want, "lines lost or repeated");
    // `logs` reads them all back.
    let logs = env.sub(&["logs", "many", "-n", "0"]);
    assert!(logs.status.success(), "{}", env.report());
    assert!(
        String::from_utf8(logs.stdout).unwrap() == want,
        "logs lost lines"
    );
    let logs = env.sub(&["logs", "many", "-n", "3"]);
    assert_eq!(
        String::from_utf8(logs.stdout).unwrap(),
        "299998\n299999\n300000\n"
    );
}

/// restartd exiting right after a burst finishes the compression (within a bound) or leaves
/// plain files, never a half-written .gz, and loses no line.
#[test]
fn an_exit_during_compression_loses_nothing() {
    let env = Env::new();
    let log = env.state_dir().join("out.log");
    let out = env.run(&[
        "--name",
        "burst",
        "--restart",
        "no",
        "--log-file",
        log.to_str().unwrap(),
        "--log-max-size",
        "32K",
        "--log-keep",
        "1000",
        "--log-compress",
        "--",
        "seq",
        "1",
        "300000",
    ]);
    assert!(out.status.success(), "{}", env.report());
    let want: String = (1..=300_000).map(|i| format!("{i}\n")).collect();
    assert!(all_lines(&log) == want, "lines lost or repeated");
    let names: Vec<String> = fs::read_dir(env.state_dir())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert!(!names.iter().any(|n| n.ends_with(".tmp")), "{names:?}");
}

#[test]
fn logs_follows_across_rotations_and_ends_when_the_instance_stops() {
    let env = Env::new();
    let log = env.state_dir().join("out.log");
    let gate = env.state_dir().join("gate");
    let script = format!(
        "while [ ! -e {g} ]; do sleep 0.01; done; seq 1 10000; exec sleep 100",
        g = gate.display()
    );
    let _r = env.start(&[
        "--name",
        "fol",
        "--log-file",
        log.to_str().unwrap(),
        "--log-max-size",
        "1K",
        "--log-keep",
        "1000",
        "--log-compress",
        "--log-timestamps",
        "--",
        "sh",
        "-c",
        &script,
    ]);
    env.wait_child("fol");
    let mut cmd = restartd();
    // -n 0: however late the reader starts, it prints every line once, then follows.
    cmd.args(["logs", "fol", "-f", "-n", "0", "--state-dir"])
        .arg(env.state_dir());
    let mut follower = Running::spawn(cmd);
    fs::write(&gate, "").unwrap();
    follower.wait_stdout(" 10000");
    assert_eq!(env.sub(&["stop", "fol"]).status.code(), Some(0));
    assert_eq!(
        follower.wait_exit(),
        Some(0),
        "logs -f ends with the instance"
    );
    let got: Vec<String> = follower
        .stdout()
        .lines()
        .map(|l| l.split_once(' ').unwrap().1.to_string())
        .collect();
    let want: Vec<String> = (1..=10_000).map(|i| i.to_string()).collect();
    let first = got.iter().zip(&want).position(|(g, w)| g != w);
    assert!(
        got == want,
        "lost or repeated lines: {} of {}, first difference at {first:?}",
        got.len(),
        want.len()
    );
}

#[test]
fn logs_without_a_log_file_says_where_the_output_goes() {
    let env = Env::new();
    let out = env.run(&["--name", "plain", "--restart", "no", "--", "true"]);
    assert!(out.status.success());
    let out = env.sub(&["logs", "plain"]);
    assert_eq!(out.status.code(), Some(4));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("plain has no --log-file") && err.contains("journalctl"),
        "{err}"
    );
    let out = env.sub(&["logs", "nothere"]);
    assert_eq!(out.status.code(), Some(4));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no instance 'nothere'"));
}

#[test]
fn logs_since_keeps_recent_stamped_lines() {
    let env = Env::new();
    let log = env.state_dir().join("out.log");
    fs::write(
        &log,
        "2020-01-01T00:00:00.000Z long ago\n2020-01-01T00:00:01.000Z also old\n",
    )
    .unwrap();
    let out = env.run(&[
        "--name",
        "since",
        "--restart",
        "no",
        "--log-file",
        log.to_str().unwrap(),
        "--log-timestamps",
        "--",
        "echo",
        "fresh",
    ]);
    assert!(out.status.success());
    let out = env.sub(&["logs", "since", "--since", "1h"]);
    let text = String::from_utf8(out.stdout).unwrap();
    assert_eq!(text.lines().count(), 1, "{text}");
    assert!(text.ends_with(" fresh\n"), "{text}");
    let all = env.sub(&["logs", "since"]);
    assert_eq!(String::from_utf8(all.stdout).unwrap().lines().count(), 3);
}

#[test]
fn the_env_file_is_read_again_before_every_start() {
    let env = Env::new();
    let file = env.state_dir().join("app.env");
    fs::write(&file, "# settings\nexport A=first\nB='$HOME x'\n").unwrap();
    let extra = env.state_dir().join("more.env");
    fs::write(&extra, "C=\"two\\nlines\"\nA=over\n").unwrap();
    let script = "printf 'A=%s B=%s C=%s RN=%s\\n' \"$A\" \"$B\" \"$C\" \"$RESTARTD_NAME\" | tr '\\n' '|'; echo; exec sleep 100";
    let r = env.start(&[
        "--name",
        "envf",
        "--env-file",
        file.to_str().unwrap(),
        "--env-file",
        extra.to_str().unwrap(),
        "--",
        "sh",
        "-c",
        script,
    ]);
    r.wait_line_eq("A=over B=$HOME x C=two|lines RN=envf|");
    env.wait_child("envf");

    fs::write(&extra, "A=second\nRESTARTD_NAME=mine\n").unwrap();
    assert_eq!(env.sub(&["restart", "envf"]).status.code(), Some(0));
    r.wait_line_eq("A=second B=$HOME x C= RN=envf|");

    // Broken at a later start: the last environment, said once, started anyway.
    fs::write(&extra, "A=third\nnot a pair\n").unwrap();
    let before = r.stdout().lines().count();
    for k in 1..=2 {
        // Each restart waits for the line of the start before (a child stopped before it
        // printed would print nothing).
        assert_eq!(env.sub(&["restart", "envf"]).status.code(), Some(0));
        assert!(
            wait_until("the next start's line", || r.stdout().lines().count()
                >= before + k),
            "{}",
            r.stderr()
        );
    }
    let lines: Vec<String> = r.stdout().lines().skip(before).map(String::from).collect();
    assert!(
        lines.iter().all(|l| l == "A=second B=$HOME x C= RN=envf|"),
        "{lines:?}"
    );
    let said = r
        .stderr()
        .matches("more.env: line 2: expected KEY=VALUE")
        .count();
    assert_eq!(said, 1, "{}", r.stderr());
}

#[test]
fn a_malformed_env_file_at_start_is_a_usage_error_naming_file_and_line() {
    let env = Env::new();
    let file = env.state_dir().join("bad.env");
    fs::write(&file, "A=1\n\nB='open\n").unwrap();
    let out = env.run(&[
        "--name",
        "bad",
        "--env-file",
        file.to_str().unwrap(),
        "--",
        "true",
    ]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("bad.env: line 3: a single quote is not closed"),
        "{err}"
    );
    assert!(
        !env.instance("bad").join("state.json").exists(),
        "nothing started"
    );
    let out = env.run(&[
        "--name",
        "bad",
        "--env-file",
        "/nonexistent/x.env",
        "--",
        "true",
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("unable to read /nonexistent/x.env"));
}

/// The gaps between starts under `--max-runtime 1s --max-runtime-jitter 400ms`, from
/// state.json: each at least 1 s and at most 1.4 s plus the stop and start; no crash record,
/// no restart in the window, counted in `scheduled_restarts` and the metrics.
#[test]
fn max_runtime_restarts_on_schedule_and_is_no_crash() {
    let env = Env::new();
    let _r = env.start(&[
        "--name",
        "mr",
        "--max-runtime",
        "1s",
        "--max-runtime-jitter",
        "400ms",
        "--max-restarts",
        "1",
        "--",
        "sleep",
        "100",
    ]);
    let mut starts: Vec<SystemTime> = Vec::new();
    let ok = wait_until("four starts", || {
        let s = env.state("mr");
        if let Some(t) = s["child_started_at"].as_str() {
            let t = humantime::parse_rfc3339(t).unwrap();
            if starts.last() != Some(&t) {
                starts.push(t);
            }
        }
        starts.len() >= 4
    });
    assert!(ok, "starts: {starts:?}\n{}", env.report());
    for pair in starts.windows(2) {
        let gap = pair[1].duration_since(pair[0]).unwrap();
        assert!(
            gap >= Duration::from_secs(1) && gap < Duration::from_millis(2400),
            "gap {gap:?} in {starts:?}"
        );
    }
    let s = env.state("mr");
    assert!(s["scheduled_restarts"].as_u64().unwrap() >= 3, "{s:#}");
    assert_eq!(
        s["recent_restarts"],
        serde_json::json!([]),
        "not in the window"
    );
    assert!(env.records("mr").is_empty(), "no crash record");
    let metrics = env.sub(&["metrics", "mr"]);
    let text = String::from_utf8(metrics.stdout).unwrap();
    assert!(
        text.lines().any(
            |l| l.starts_with("restartd_scheduled_restarts_total{name=\"mr\"} ")
                && !l.ends_with(" 0")
        ),
        "{text}"
    );
}

#[test]
fn log_max_age_deletes_old_rotated_files_at_start() {
    let env = Env::new();
    let log = env.state_dir().join("out.log");
    let old = SystemTime::now() - Duration::from_secs(7200);
    for name in ["out.log.1", "out.log.2.gz", "out.log.3"] {
        let p = env.state_dir().join(name);
        fs::write(&p, "old\n").unwrap();
        fs::File::options()
            .write(true)
            .open(&p)
            .unwrap()
            .set_modified(old)
            .unwrap();
    }
    fs::write(env.state_dir().join("out.log.1"), "recent\n").unwrap();
    let out = env.run(&[
        "--name",
        "age",
        "--restart",
        "no",
        "--log-file",
        log.to_str().unwrap(),
        "--log-max-age",
        "1h",
        "--",
        "true",
    ]);
    assert!(out.status.success(), "{}", env.report());
    assert!(
        env.state_dir().join("out.log.1").exists(),
        "a recent file stays"
    );
    assert!(!env.state_dir().join("out.log.2.gz").exists());
    assert!(!env.state_dir().join("out.log.3").exists());
}

/// `--env-file <(vault …)`: a pipe, read once. The first start gets what restartd read at its
/// start (it got nothing: the file was read again, empty by then), and later starts keep it.
#[test]
fn an_env_file_that_is_a_pipe_reaches_the_first_start_and_is_kept() {
    use std::os::fd::AsRawFd;
    use std::os::unix::process::CommandExt;
    let env = Env::new();
    let (read, write) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).unwrap();
    nix::unistd::write(&write, b"S=from-pipe\n").unwrap();
    drop(write);
    let fd = read.as_raw_fd();
    let path = format!("/dev/fd/{fd}");
    let mut cmd = env.command(&[
        "--name",
        "pipe",
        "--env-file",
        &path,
        "--delay",
        "0",
        "--max-restarts",
        "2",
        "--",
        "sh",
        "-c",
        "echo \"S=$S\"; exit 3",
    ]);
    // SAFETY: fcntl is async-signal-safe; only restartd gets the descriptor.
    unsafe {
        cmd.pre_exec(move || {
            nix::libc::fcntl(fd, nix::libc::F_SETFD, 0);
            Ok(())
        });
    }
    let out = env.run_cmd(cmd);
    drop(read);
    assert_eq!(out.status.code(), Some(3), "{}", env.report());
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert_eq!(stdout, "S=from-pipe\n".repeat(3), "{}", env.report());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(stderr.matches("not a regular file").count(), 1, "{stderr}");
}

/// An env file replaced by a FIFO that no one writes: the next start does not wait for a
/// writer (restartd would hang in open(2), deaf to signals and control requests); it keeps
/// the environment read before, says why, and SIGTERM is served.
#[test]
fn an_env_file_that_became_a_fifo_never_blocks_restartd() {
    let env = Env::new();
    let file = env.state_dir().join("app.env");
    fs::write(&file, "A=first\n").unwrap();
    let mut r = env.start(&[
        "--name",
        "fifo",
        "--env-file",
        file.to_str().unwrap(),
        "--stop-timeout",
        "1s",
        "--",
        "sh",
        "-c",
        "echo \"A=$A\"; exec sleep 100",
    ]);
    r.wait_line_eq("A=first");
    env.wait_child("fifo");
    fs::remove_file(&file).unwrap();
    nix::unistd::mkfifo(&file, nix::sys::stat::Mode::S_IRWXU).unwrap();
    assert_eq!(env.sub(&["restart", "fifo"]).status.code(), Some(0));
    let restarted = wait_until("the second start", || {
        r.stdout().lines().filter(|l| *l == "A=first").count() == 2
    });
    assert!(restarted, "no second start\n{}", r.stderr());
    r.wait_stderr("not a regular file");
    r.signal(nix::libc::SIGTERM);
    assert_eq!(r.wait_exit(), Some(0), "{}", r.stderr());
}

/// `logs -n N` reads the end of a large file, not the whole of it: with a large
/// `--log-max-size`, a 96 MiB live file (or a rotated .gz holding as much) cost its size in
/// memory, and under a 48 MiB address-space limit `logs -n 3` ran out of memory.
#[test]
fn logs_reads_only_the_end_of_a_large_file() {
    use std::io::Write;
    let env = Env::new();
    let log = env.state_dir().join("big.log");
    let out = env.run(&[
        "--name",
        "big",
        "--restart",
        "no",
        "--log-file",
        log.to_str().unwrap(),
        "--log-max-size",
        "1G",
        "--",
        "true",
    ]);
    assert!(out.status.success(), "{}", env.report());
    let chunk: String = (0..10_000).map(|i| format!("{i:099}\n")).collect();
    let logs = |want: &str| {
        let mut cmd = std::process::Command::new("sh");
        cmd.args(["-c", "ulimit -v 49152; exec \"$0\" \"$@\"", BIN])
            .args(["logs", "big", "-n", "3", "--state-dir"])
            .arg(env.state_dir());
        let out = env.run_cmd(cmd);
        assert!(out.status.success(), "{}", env.report());
        assert_eq!(String::from_utf8(out.stdout).unwrap(), want);
    };
    let mut f = fs::File::options().append(true).open(&log).unwrap();
    for _ in 0..96 {
        f.write_all(chunk.as_bytes()).unwrap();
    }
    f.write_all(b"last\n").unwrap();
    drop(f);
    logs(&format!("{:099}\n{:099}\nlast\n", 9998, 9999));

    // The same in a rotated .gz, behind a live file of one line.
    let gz = fs::File::create(env.state_dir().join("big.log.1.gz")).unwrap();
    let mut enc = flate2::write::GzEncoder::new(gz, flate2::Compression::fast());
    for _ in 0..96 {
        enc.write_all(chunk.as_bytes()).unwrap();
    }
    enc.finish().unwrap();
    fs::write(&log, "live\n").unwrap();
    logs(&format!("{:099}\n{:099}\nlive\n", 9998, 9999));
}

/// A run that ends mid-line: the next run's first line still starts with a time of its own
/// (it was glued to the unterminated last line of the run before, under that run's time).
#[test]
fn a_run_that_ends_mid_line_leaves_the_next_runs_first_line_its_own_time() {
    let env = Env::new();
    let log = env.state_dir().join("out.log");
    let out = env.run(&[
        "--name",
        "mid",
        "--log-file",
        log.to_str().unwrap(),
        "--log-timestamps",
        "--delay",
        "0",
        "--max-restarts",
        "1",
        "--",
        "sh",
        "-c",
        "echo \"start $RESTARTD_RESTARTS\"; printf 'dying words'; exit 1",
    ]);
    assert_eq!(out.status.code(), Some(1), "{}", env.report());
    let text = fs::read_to_string(&log).unwrap();
    let lines: Vec<&str> = text
        .lines()
        .map(|l| {
            stamp(l);
            l.split_once(' ').unwrap().1
        })
        .collect();
    assert_eq!(
        lines,
        ["start 0", "dying words", "start 1", "dying words"],
        "{text}"
    );
}

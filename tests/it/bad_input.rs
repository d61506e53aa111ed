//! Bad input (issue 6): malformed values of every run flag, non-UTF-8 arguments, environment
//! and flag values, a command that is a directory, and wrong-version and huge `state.json`.
//! Also covered elsewhere: one bad value per flag with its exact hint (`cli.rs`), truncated and
//! binary `state.json` (`files.rs`), commands not found or not executable (`exit_status.rs`).

use std::ffi::OsStr;
use std::fs;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::PermissionsExt;

use crate::common::{proc_field, restartd, Env};

/// Every run flag that takes a value, with values it must refuse. A flag whose value is free
/// text (a path or a shell command) can only lack its value. Every duration flag refuses one
/// over the 10-year limit (SPEC §2; issue 17).
const TABLE: &[(&str, &[&str])] = &[
    ("--name", &["", ".hidden", "a/b", "..", "x\ny"]),
    ("--restart", &["", "ALWAYS", "on-failure,always", "yes"]),
    (
        "--max-restarts",
        &["", "-1", "1.5", "4294967296", "inf", "five"],
    ),
    (
        "--window",
        &["", "0x", "-5m", "5 parsecs", "99999999999999999999s", "11y"],
    ),
    ("--delay", &["", "1", "1ss", "ms", "-0s", "10y 1s"]),
    (
        "--backoff-factor",
        &["", "0", "0.99", "1001", "NaN", "inf", "two"],
    ),
    ("--max-delay", &["", "1h2", "∞", "300000000000y"]),
    ("--jitter", &["", "-0.1", "1.01", "NaN", "half"]),
    ("--min-uptime", &["", "10", "10 s s", "3653d"]),
    (
        "--success-exit-codes",
        &["", ",", "1,,2", "-1", "256", "0x1", "1 2"],
    ),
    ("--no-restart-exit-codes", &["", "a", "300"]),
    ("--force-restart-exit-codes", &["", "1,", "99999999999"]),
    (
        "--stop-signal",
        &["", "0", "65", "-15", "SIGFOO", "KILLX", "sig"],
    ),
    ("--stop-timeout", &["", "forever", "1e3s", "300000000000y"]),
    (
        "--health-url",
        &["", "localhost:80", "ftp://x/", "http://", "http://h:99999/"],
    ),
    ("--health-interval", &["", "often", "11y"]),
    ("--health-timeout", &["", "5", "11y"]),
    ("--health-retries", &["", "0", "-1", "many"]),
    ("--health-start-period", &["", "later", "11y"]),
    ("--watchdog", &["", "0", "0s", "soon", "11y"]),
    (
        "--max-memory",
        &["", "0", "-1M", "1X", "1.5.5G", "99999999999T", "lots"],
    ),
    ("--log-max-size", &["", "0", "10Q"]),
    ("--log-keep", &["", "-1", "x"]),
    ("--tail-lines", &["", "-1", "1.5", "lots"]),
    (
        "--alert-limit",
        &["", "5", "0/5m", "5/0s", "x/5m", "5/later", "5/11y"],
    ),
    ("--log-format", &["", "xml", "TEXT"]),
    (
        "--label",
        &["", "noequals", "1x=a", "a-b=c", "name=x", "__x=y"],
    ),
    (
        "--listen",
        &[
            "",
            "localhost:9100",
            "127.0.0.1",
            "127.0.0.1:99999",
            ":9100",
        ],
    ),
];

/// Flags whose value is free text: only a missing value is malformed.
const FREE_TEXT: [&str; 7] = [
    "--state-dir",
    "--metrics-file",
    "--listen-token-file",
    "--health-cmd",
    "--log-file",
    "--on-crash",
    "--on-give-up",
];

fn assert_usage_error(env: &Env, args: &[&OsStr], flag: &str, what: &str) {
    let marker = env.state_dir().join("started");
    let mut cmd = restartd();
    cmd.arg("--state-dir")
        .arg(env.state_dir())
        .args(args)
        .arg("--")
        .arg("touch")
        .arg(&marker);
    let out = env.run_cmd(cmd);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{what}: {err}");
    assert!(err.contains(flag), "{what}: the flag is not named: {err}");
    assert!(
        !err.contains("panicked"),
        "{what}: a usage error, not a panic: {err}"
    );
    assert!(!marker.exists(), "{what}: the command was started");
    let created: Vec<_> = fs::read_dir(env.state_dir())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert!(created.is_empty(), "{what}: created {created:?}");
}

#[test]
fn every_malformed_flag_value_is_a_usage_error_that_creates_nothing() {
    let env = Env::new();
    let mut cases = 0;
    for (flag, values) in TABLE {
        for value in *values {
            let arg = format!("{flag}={value}");
            assert_usage_error(&env, &[OsStr::new(&arg)], flag, &arg);
            cases += 1;
        }
        // The value is missing altogether (the flag is last before `--`: clap takes `--`
        // as the end of options, so the flag has no value).
        let mut cmd = restartd();
        cmd.arg("--state-dir").arg(env.state_dir()).arg(flag);
        let out = env.run_cmd(cmd);
        assert_eq!(out.status.code(), Some(2), "{flag} without a value");
        assert!(String::from_utf8_lossy(&out.stderr).contains(flag));
        // Not UTF-8.
        let mut bad = format!("{flag}=").into_bytes();
        bad.extend_from_slice(b"\xff\xfe5s");
        assert_usage_error(
            &env,
            &[OsStr::from_bytes(&bad)],
            flag,
            &format!("{flag}=<non-UTF-8>"),
        );
        cases += 2;
    }
    for flag in FREE_TEXT {
        let mut cmd = restartd();
        cmd.arg("--state-dir").arg(env.state_dir()).arg(flag);
        let out = env.run_cmd(cmd);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{flag} without a value: {err}");
        assert!(err.contains(flag), "{flag}: {err}");
        cases += 1;
    }
    println!("{cases} malformed flag values refused");
}

/// See: issue 17. `--stop-timeout 300000000000y` was accepted, and the SIGTERM that started the
/// stop aborted restartd (exit 134, `overflow when adding duration to instant`). A duration
/// over 10 years is a usage error, for the run's flags and for `crashes --since` alike.
#[test]
fn issue_17_a_duration_over_ten_years_is_a_usage_error_not_an_abort() {
    let env = Env::new();
    let marker = env.state_dir().join("started");
    let mut cmd = env.command(&["--stop-timeout", "300000000000y", "--", "touch"]);
    cmd.arg(&marker);
    let out = env.run_cmd(cmd);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("invalid value '300000000000y' for '--stop-timeout <DUR>': invalid duration '300000000000y': expected at most 10y"),
        "{err}"
    );
    assert!(!marker.exists(), "the command was started");
    let out = env.sub(&["crashes", "api", "--since", "11y"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("for '--since <DUR>': invalid duration '11y': expected at most 10y"),
        "{err}"
    );
}

/// The other side of issue 17: every duration flag at the limit, `10y`, is accepted and arms
/// its deadline without overflow, whether restartd stops a running child or waits in a backoff.
#[test]
fn every_duration_flag_at_its_ten_year_limit_runs_and_stops() {
    let env = Env::new();
    let mut running = env.start(&[
        "-n",
        "running",
        "--stop-timeout",
        "10y",
        "--min-uptime",
        "10y",
        "--health-cmd",
        "true",
        "--health-interval",
        "10y",
        "--health-timeout",
        "10y",
        "--health-start-period",
        "10y",
        "--watchdog",
        "10y",
        "--",
        "sleep",
        "300",
    ]);
    env.wait_child("running");
    running.signal(nix::libc::SIGTERM);
    assert_eq!(running.wait_exit(), Some(0), "{}", running.stderr());

    let mut backoff = env.start(&[
        "-n",
        "backoff",
        "--restart",
        "always",
        "--delay",
        "10y",
        "--max-delay",
        "10y",
        "--window",
        "10y",
        "--alert-limit",
        "1/10y",
        "--on-crash",
        "true",
        "--",
        "sh",
        "-c",
        "exit 1",
    ]);
    let state = env.wait_state("backoff", "a 10-year backoff", |s| s["status"] == "backoff");
    let year: i32 = state["next_restart_at"].as_str().unwrap()[..4]
        .parse()
        .unwrap();
    assert!(year >= 2035, "{state:#}");
    backoff.signal(nix::libc::SIGTERM);
    assert_eq!(backoff.wait_exit(), Some(0), "{}", backoff.stderr());
    assert!(
        !backoff.stderr().contains("panicked"),
        "{}",
        backoff.stderr()
    );
}

#[test]
fn non_utf8_arguments_and_environment_reach_the_child_unchanged() {
    let env = Env::new();
    let out_file = env.state_dir().join("seen");
    let script = "printf '%s' \"$1\" > \"$2\"; printf '%s' \"$WEIRD\" >> \"$2\"; exit 3";
    let mut cmd = restartd();
    cmd.arg("--state-dir")
        .arg(env.state_dir())
        .args([
            "-n",
            "bytes",
            "--restart",
            "no",
            "--",
            "sh",
            "-c",
            script,
            "sh",
        ])
        .arg(OsStr::from_bytes(b"arg-\xff\xfe-\xc3("))
        .arg(&out_file)
        .env("WEIRD", OsStr::from_bytes(b"env-\x80\x81"));
    let out = env.run_cmd(cmd);
    assert_eq!(
        out.status.code(),
        Some(3),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        fs::read(&out_file).unwrap(),
        b"arg-\xff\xfe-\xc3(env-\x80\x81"
    );
    // The record and state.json hold the command as text (lossily), and stay valid JSON.
    let records = env.records("bytes");
    assert_eq!(records.len(), 1);
    let command = records[0]["command"].as_array().unwrap();
    assert_eq!(command[4], "arg-\u{fffd}\u{fffd}-\u{fffd}(");
    assert_eq!(env.state("bytes")["command"][4], command[4]);
    let status = env.sub(&["status", "bytes", "--json"]);
    assert_eq!(status.status.code(), Some(3));
    let _: serde_json::Value = serde_json::from_slice(&status.stdout).unwrap();
}

#[test]
fn a_command_that_is_a_directory_is_refused_with_its_path() {
    let env = Env::new();
    let dir = env.state_dir().join("a-directory");
    fs::create_dir(&dir).unwrap();
    fs::set_permissions(&dir, fs::Permissions::from_mode(0o755)).unwrap();
    let out = env.run(&[
        "-n",
        "dir",
        "--restart",
        "always",
        "--",
        dir.to_str().unwrap(),
    ]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(126), "{err}");
    assert!(err.contains(dir.to_str().unwrap()), "{err}");
    assert_eq!(env.state("dir")["restarts"], 0, "not retried");
}

/// Puts `content` in `NAME/state.json` and runs a crashing child with 2 restarts: the file must
/// be reported, moved aside and replaced, and supervision must go on.
fn bad_state(env: &Env, name: &str, write: impl FnOnce(&std::path::Path)) -> String {
    let dir = env.instance(name);
    fs::create_dir(&dir).unwrap();
    fs::set_permissions(&dir, fs::Permissions::from_mode(0o700)).unwrap();
    write(&dir.join("state.json"));
    let out = env.run(&[
        "-n",
        name,
        "--max-restarts",
        "2",
        "--delay",
        "0",
        "--",
        "sh",
        "-c",
        "exit 1",
    ]);
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(1), "{name}: {err}");
    assert!(dir.join("state.json.corrupt").exists(), "{name}: {err}");
    let state = env.state(name);
    assert_eq!(state["status"], "gave-up", "{name}: {state:#}");
    assert_eq!(state["restarts"], 2);
    err
}

#[test]
fn a_wrong_version_state_json_is_moved_aside_and_replaced() {
    let env = Env::new();
    let err = bad_state(&env, "future", |p| {
        fs::write(p, br#"{"version": 99, "name": "future", "restarts": 7}"#).unwrap()
    });
    assert!(
        err.contains("unknown version 99") && err.contains("state.json.corrupt"),
        "{err}"
    );
    let empty = bad_state(&env, "empty", |p| fs::write(p, b"").unwrap());
    assert!(empty.contains("state.json.corrupt"), "{empty}");
}

#[test]
fn a_huge_state_json_is_not_read_into_memory() {
    let env = Env::new();
    // 100 MB of JSON-looking text, sparse on disk.
    let err = bad_state(&env, "huge", |p| {
        let f = fs::File::create(p).unwrap();
        f.set_len(100_000_000).unwrap();
    });
    assert!(
        err.contains("larger than 16 MiB") && err.contains("state.json.corrupt"),
        "{err}"
    );
    // While it runs with one in place, restartd's peak memory stays far below 100 MB.
    let dir = env.instance("huge2");
    fs::create_dir(&dir).unwrap();
    fs::set_permissions(&dir, fs::Permissions::from_mode(0o700)).unwrap();
    fs::File::create(dir.join("state.json"))
        .unwrap()
        .set_len(100_000_000)
        .unwrap();
    let mut r = env.start(&["-n", "huge2", "--", "sleep", "300"]);
    env.wait_child("huge2");
    let hwm: u64 = proc_field(r.pid, "VmHWM")
        .unwrap()
        .trim_end_matches(" kB")
        .trim()
        .parse()
        .unwrap();
    println!("peak RSS with a 100 MB state.json: {hwm} KiB");
    assert!(hwm < 40 * 1024, "peak RSS {hwm} KiB");
    r.signal(nix::libc::SIGTERM);
    assert_eq!(r.wait_exit(), Some(0));
}

/// `crashes --fingerprint F` takes 16 hex digits and says so; it cannot be mixed with `--id`
/// or `--stats`.
#[test]
fn crashes_fingerprint_takes_sixteen_hex_digits() {
    let env = Env::new();
    for bad in ["3f2a", "3f2a9c01d4e5b6a7a", "zz2a9c01d4e5b6a7", ""] {
        let out = env.sub(&["crashes", "api", "--fingerprint", bad]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{bad:?}: {err}");
        assert!(
            err.contains(&format!("invalid value '{bad}' for '--fingerprint <F>': invalid fingerprint '{bad}': expected 16 hex digits")),
            "{err}"
        );
    }
    for other in [&["--stats"][..], &["--id", "x"]] {
        let mut args = vec!["crashes", "api", "--fingerprint", "3f2a9c01d4e5b6a7"];
        args.extend_from_slice(other);
        let out = env.sub(&args);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{other:?}: {err}");
        assert!(err.contains("cannot be used with"), "{err}");
    }
}

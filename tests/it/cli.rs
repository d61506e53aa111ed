//! Usage errors (SPEC §2): every bad value exits 2, names the flag and the accepted form, and
//! starts nothing.

use crate::common::Env;

#[test]
fn every_bad_value_is_a_usage_error_that_starts_nothing() {
    let env = Env::new();
    let cases: &[(&str, &str, &str)] = &[
        ("--delay", "10x", "expected e.g. 500ms, 10s, 5m"),
        ("--window", "soon", "expected e.g. 500ms, 10s, 5m"),
        ("--max-delay", "-1s", "expected e.g. 500ms, 10s, 5m"),
        ("--min-uptime", "5", "expected e.g. 500ms, 10s, 5m"),
        ("--stop-timeout", "1y2", "expected e.g. 500ms, 10s, 5m"),
        (
            "--max-restarts",
            "many",
            "expected a whole number or 'unlimited'",
        ),
        (
            "--backoff-factor",
            "0.5",
            "expected a number from 1 to 1000",
        ),
        ("--jitter", "2", "expected a number from 0 to 1"),
        (
            "--success-exit-codes",
            "1,x",
            "expected codes 0-255 separated by commas",
        ),
        (
            "--no-restart-exit-codes",
            "256",
            "expected codes 0-255 separated by commas",
        ),
        (
            "--force-restart-exit-codes",
            "",
            "expected codes 0-255 separated by commas",
        ),
        (
            "--stop-signal",
            "SIGNOPE",
            "expected a name or number, e.g. TERM, SIGINT, 15",
        ),
        (
            "--restart",
            "sometimes",
            "possible values: no, always, on-success",
        ),
        ("--name", "../escape", "not starting with '.'"),
        ("--tail-lines", "-3", "expected a whole number"),
        ("--alert-limit", "5", "expected COUNT/DURATION"),
        ("--log-format", "xml", "possible values: text, json"),
    ];
    let marker = env.state_dir().join("started");
    let marker = marker.to_str().unwrap();
    for (flag, value, accepted) in cases {
        let out = env.run(&[&format!("{flag}={value}"), "--", "touch", marker]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{flag} {value}: {err}");
        assert!(
            err.contains(flag) && err.contains(&format!("'{value}'")),
            "{flag} {value}: {err}"
        );
        assert!(err.contains(accepted), "{flag} {value}: {err}");
    }
    assert_eq!(
        std::fs::read_dir(env.state_dir()).unwrap().count(),
        0,
        "nothing was created"
    );
    let out = env.run(&["--delay", "1s"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no command given"));
    assert_eq!(std::fs::read_dir(env.state_dir()).unwrap().count(), 0);
}

#[test]
fn json_log_lines_carry_the_same_facts() {
    let env = Env::new();
    let out = env.run(&[
        "-n",
        "jl",
        "--log-format",
        "json",
        "--max-restarts",
        "1",
        "--delay",
        "0",
        "--",
        "sh",
        "-c",
        "exit 4",
    ]);
    assert_eq!(out.status.code(), Some(4));
    let lines: Vec<serde_json::Value> = String::from_utf8_lossy(&out.stderr)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{l}: {e}")))
        .collect();
    assert_eq!(lines.len(), 2);
    assert_eq!(lines[0]["name"], "jl");
    assert_eq!(lines[0]["level"], "info");
    assert_eq!(lines[0]["event"], "restart");
    assert_eq!(lines[0]["exit_code"], 4);
    assert_eq!(lines[0]["next_delay_ms"], 0);
    assert!(lines[0]["msg"]
        .as_str()
        .unwrap()
        .starts_with("exited with code 4"));
    assert_eq!(lines[1]["event"], "give-up");
    assert_eq!(lines[1]["level"], "warn");
    assert!(lines[1]["time"].as_str().unwrap().ends_with('Z'));
}

#[test]
fn quiet_prints_only_the_give_up() {
    let env = Env::new();
    let out = env.run(&[
        "-n",
        "q",
        "-q",
        "--max-restarts",
        "2",
        "--delay",
        "0",
        "--",
        "sh",
        "-c",
        "exit 4",
    ]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("giving up"));
}

#[test]
fn a_crash_loop_is_summarised_instead_of_spammed() {
    let env = Env::new();
    let out = env.run(&[
        "-n",
        "loop",
        "--max-restarts",
        "40",
        "--delay",
        "0",
        "--",
        "sh",
        "-c",
        "exit 1",
    ]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.matches("exited with code 1").count(), 10, "{err}");
    assert!(
        err.contains("crash loop: 30 more crash lines not shown"),
        "{err}"
    );
    assert!(err.contains("giving up: 40 restarts"), "{err}");
}

//! `restartd unit`'s text, and the quoting of hostile arguments for `ExecStart=`.

use super::*;
use std::os::unix::ffi::OsStringExt;

fn spec(args: &[&str]) -> Spec {
    Spec {
        exe: "/usr/local/bin/restartd".into(),
        args: args.iter().map(OsString::from).collect(),
        program: None,
        name: "api".into(),
        user_unit: false,
        cwd: None,
        run_as: None,
        stop_timeout: Duration::from_secs(10),
        watchdog: None,
        max_delay: Duration::from_secs(60),
        ready_timeout: None,
        hooks: false,
        success_codes: Vec::new(),
        no_restart_codes: Vec::new(),
    }
}

fn w(arg: &str) -> String {
    word(OsStr::new(arg), "x").unwrap()
}

#[test]
fn the_unit_of_spec_14() {
    let text = render(&spec(&["--notify", "-n", "api", "--", "python3", "app.py"])).unwrap();
    let version = env!("CARGO_PKG_VERSION");
    assert_eq!(
        text,
        format!(
            "\
# Made by 'restartd unit' (restartd {version}). Save as /etc/systemd/system/api.service, then:
#   systemctl daemon-reload && systemctl enable --now api
# 'restartd man' (UNDER SYSTEMD) explains each line. Status: RESTARTD_STATE_DIR=/var/lib/restartd restartd status api
[Unit]
Description=api (kept running by restartd)
After=network.target

[Service]
Type=notify
NotifyAccess=main
ExecStart=/usr/local/bin/restartd --notify -n api -- python3 app.py
StateDirectory=restartd
KillMode=mixed
TimeoutStopSec=25s
OOMPolicy=continue
Restart=on-failure
RestartSec=60s

[Install]
WantedBy=multi-user.target
"
        )
    );
}

#[test]
fn options_shape_the_unit() {
    let mut s = spec(&["--watchdog", "1500ms", "--", "./server"]);
    s.user_unit = true;
    s.watchdog = Some(Duration::from_millis(1500));
    s.ready_timeout = Some(Duration::from_secs(30));
    s.hooks = true;
    s.stop_timeout = Duration::from_millis(500);
    s.max_delay = Duration::from_secs(5);
    s.cwd = Some("/srv/my app/100%".into());
    let text = render(&s).unwrap();
    for want in [
        "Save as ~/.config/systemd/user/api.service",
        "systemctl --user daemon-reload && systemctl --user enable --now api",
        "RESTARTD_STATE_DIR=~/.local/state/restartd restartd status api",
        "\nExecStart=/usr/local/bin/restartd --watchdog 1500ms -- ./server\n",
        "\nWorkingDirectory=/srv/my app/100%%\n",
        // Twice --stop-timeout + 5 s + the 30 s restartd waits for a hook.
        "\nTimeoutStopSec=36s\n",
        "\nTimeoutStartSec=infinity\n",
        "\nWatchdogSec=1500ms\n",
        "\nRestartSec=5s\n",
        "\nWantedBy=default.target\n",
    ] {
        assert!(text.contains(want), "{want:?} in:\n{text}");
    }
    assert!(
        !text.contains("After=network.target"),
        "no such target for a user"
    );
    assert!(!text.contains("User="));
    s.user_unit = false;
    s.run_as = Some("deploy".into());
    assert!(render(&s).unwrap().contains("\nUser=deploy\n"));
}

#[test]
fn a_bare_program_is_written_as_its_path() {
    let mut s = spec(&["--", "uvicorn", "main:app"]);
    s.program = Some("/home/me/.venv/bin/uvicorn".into());
    assert!(render(&s)
        .unwrap()
        .contains("ExecStart=/usr/local/bin/restartd -- /home/me/.venv/bin/uvicorn main:app\n"));
}

#[test]
fn hostile_arguments_are_quoted_for_systemd() {
    for (arg, want) in [
        ("plain-word_1.0", "plain-word_1.0"),
        (
            "--health-url=http://127.0.0.1:80/x",
            "--health-url=http://127.0.0.1:80/x",
        ),
        ("", r#""""#),
        ("two words", r#""two words""#),
        (r#"say "hi""#, r#""say \"hi\"""#),
        ("it's", r#""it's""#),
        ("$HOME and ${PATH}", r#""$$HOME and $${PATH}""#),
        ("100%n", r#""100%%n""#),
        (r"C:\dir\n", r#""C:\\dir\\n""#),
        ("line1\nline2", r#""line1\nline2""#),
        ("tab\there", r#""tab\there""#),
        ("bell\x07", r#""bell\x07""#),
        ("del\x7f", r#""del\x7f""#),
        (";", r"\;"),
        ("a;b", r#""a;b""#),
        ("#not-a-comment", r##""#not-a-comment""##),
        ("naïve ☃", r#""naïve ☃""#),
        ("trailing\\", r#""trailing\\""#),
        ("'", r#""'""#),
        ("*?[]~&|<>(){}`!", r#""*?[]~&|<>(){}`!""#),
    ] {
        assert_eq!(w(arg), want, "{arg:?}");
    }
}

#[test]
fn what_a_unit_file_cannot_hold_is_refused_with_the_argument_named() {
    let mut s = spec(&["--", "server", "--greeting"]);
    s.args.push(OsString::from_vec(b"caf\xe9".to_vec()));
    assert_eq!(
        render(&s).unwrap_err(),
        "argument 3 of the command (caf\u{fffd}) is not valid UTF-8, and a systemd unit file is UTF-8 text; use a UTF-8 name for it"
    );
    let mut s = spec(&["--", "server"]);
    s.cwd = Some("/srv/a\nb".into());
    let err = render(&s).unwrap_err();
    assert!(
        err.starts_with("the working directory \"/srv/a\\nb\" has a control character"),
        "{err}"
    );
}

#[test]
fn a_line_of_quoted_words_stays_one_line() {
    let nasty = ["a\nb", "c\\", "\"", "\r", "x y"];
    let mut args = vec!["--"];
    args.extend(nasty);
    let text = render(&spec(&args)).unwrap();
    let exec: Vec<&str> = text
        .lines()
        .filter(|l| l.starts_with("ExecStart="))
        .collect();
    assert_eq!(exec.len(), 1);
    assert_eq!(
        exec[0],
        r#"ExecStart=/usr/local/bin/restartd -- "a\nb" "c\\" "\"" "\x0d" "x y""#
    );
    // No line of the unit ends with a backslash, which would continue it.
    assert!(text.lines().all(|l| !l.ends_with('\\')));
}

#[test]
fn a_name_systemd_cannot_take_as_a_unit_name_is_refused() {
    // restartd's names allow '+' and '@' anywhere; a unit name takes neither '+' nor an '@'
    // at either end ('web@' is a template, which cannot be enabled as it is).
    for name in ["c++app", "web@", "@web", "a+b"] {
        let mut s = spec(&["--", "server"]);
        s.name = name.into();
        let err = render(&s).expect_err(name);
        assert!(
            err.starts_with(&format!(
                "the name '{name}' cannot be a systemd unit's name"
            )),
            "{err}"
        );
    }
    for name in ["web@1", "api-2", "my_app.v2"] {
        let mut s = spec(&["--", "server"]);
        s.name = name.into();
        assert!(render(&s).is_ok(), "{name}");
    }
}

#[test]
fn restartds_clean_and_no_restart_exit_codes_stop_systemd_restarting_it() {
    // A child's exit with a code of --success-exit-codes or --no-restart-exit-codes is not
    // restarted (SPEC §3): restartd exits with that code, and systemd's Restart=on-failure must
    // not start it all again.
    let mut s = spec(&["--", "server"]);
    s.success_codes = vec![3, 143];
    s.no_restart_codes = vec![78];
    let text = render(&s).unwrap();
    assert!(text.contains("\nSuccessExitStatus=3 143\n"), "{text}");
    assert!(text.contains("\nRestartPreventExitStatus=78\n"), "{text}");
    let text = render(&spec(&["--", "server"])).unwrap();
    assert!(!text.contains("SuccessExitStatus="), "{text}");
    assert!(!text.contains("RestartPreventExitStatus="), "{text}");
}

#[test]
fn systemds_stop_timeout_outlasts_restartds_longest_stop() {
    // A stop: the child gets up to --stop-timeout; what it leaves behind (a worker ignoring
    // SIGTERM) gets its own --stop-timeout in the cleanup; then SIGKILL. With only
    // --stop-timeout + 5 s systemd SIGKILLed restartd during the cleanup (Result=timeout).
    let text = render(&spec(&["--", "server"])).unwrap();
    assert!(text.contains("\nTimeoutStopSec=25s\n"), "{text}");
}

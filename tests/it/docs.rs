//! What a new user meets first: the committed man page and completions, the help text, the
//! README's demo, the human output of `status`, and restartd's own log lines.

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Stdio};

use crate::common::{helper, kill_group, restartd, run_with_timeout, Env, BIN, TIMEOUT};

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

/// The committed copies, and the `restartd` arguments that print each.
const GENERATED: &[(&str, &[&str])] = &[
    ("man/restartd.1", &["man"]),
    ("completions/restartd.bash", &["completions", "bash"]),
    ("completions/_restartd", &["completions", "zsh"]),
    ("completions/restartd.fish", &["completions", "fish"]),
];

#[test]
fn the_committed_man_page_and_completions_are_up_to_date() {
    let mut stale = Vec::new();
    for (path, args) in GENERATED {
        let out = run_with_timeout(restartd_with(args), TIMEOUT);
        assert_eq!(out.status.code(), Some(0), "restartd {args:?}");
        assert!(out.stderr.is_empty(), "restartd {args:?}");
        let committed = fs::read(Path::new(ROOT).join(path)).unwrap_or_default();
        if committed != out.stdout {
            stale.push(*path);
        }
    }
    assert!(
        stale.is_empty(),
        "{} differ from what restartd prints now; regenerate them with:\n\n    .ci/regen-docs\n",
        stale.join(", ")
    );
    // The output is the same on every run: no date, no host.
    let twice: Vec<_> = (0..2)
        .map(|_| run_with_timeout(restartd_with(&["man"]), TIMEOUT).stdout)
        .collect();
    assert_eq!(twice[0], twice[1]);
}

fn restartd_with(args: &[&str]) -> Command {
    let mut cmd = restartd();
    cmd.args(args);
    cmd
}

/// Every public flag and subcommand of SPEC.md §2 and §8, frozen: renaming one breaks users.
const SPEC_FLAGS: &[&str] = &[
    "-n",
    "--name",
    "--state-dir",
    "--restart",
    "--max-restarts",
    "--window",
    "--delay",
    "--backoff-factor",
    "--max-delay",
    "--jitter",
    "--min-uptime",
    "--success-exit-codes",
    "--no-restart-exit-codes",
    "--force-restart-exit-codes",
    "--stop-signal",
    "--stop-timeout",
    "--health-cmd",
    "--health-url",
    "--health-interval",
    "--health-timeout",
    "--health-retries",
    "--health-start-period",
    "--notify",
    "--watchdog",
    "--max-memory",
    "--tail-lines",
    "--log-file",
    "--log-max-size",
    "--log-keep",
    "--on-crash",
    "--on-give-up",
    "--alert-limit",
    "--reset",
    "-q",
    "--quiet",
    "-v",
    "--verbose",
    "--log-format",
    "--label",
    "--listen",
    "--listen-remote",
    "--listen-token-file",
    "--metrics-file",
    "--env-file",
    "--max-runtime",
    "--max-runtime-jitter",
    "--log-timestamps",
    "--log-max-age",
    "--log-compress",
    "--ready-timeout",
    "--health-tcp",
];

/// SPEC §8: each subcommand with its flags.
const SPEC_SUBCOMMANDS: &[(&str, &[&str])] = &[
    ("status", &["--json", "--state-dir"]),
    ("list", &["--json", "--state-dir"]),
    (
        "crashes",
        &[
            "--since",
            "-n",
            "--json",
            "--id",
            "--fingerprint",
            "--stats",
            "--state-dir",
        ],
    ),
    ("reset", &["--crashes", "--state-dir"]),
    ("stop", &["--state-dir"]),
    ("restart", &["--state-dir"]),
    ("signal", &["--state-dir"]),
    ("completions", &[]),
    ("man", &[]),
    ("metrics", &["--state-dir"]),
    ("logs", &["-n", "-f", "--follow", "--since", "--state-dir"]),
    ("unit", &["--user"]),
];

fn flags_of(cmd: &clap::Command) -> Vec<String> {
    let mut flags = Vec::new();
    for arg in cmd.get_arguments() {
        if let Some(long) = arg.get_long() {
            flags.push(format!("--{long}"));
        }
        if let Some(short) = arg.get_short() {
            flags.push(format!("-{short}"));
        }
    }
    flags
}

#[test]
fn every_flag_and_subcommand_of_the_spec_exists() {
    let cli = restartd::cli::doc::command();
    cli.clone().debug_assert();
    let flags = flags_of(&cli);
    for flag in SPEC_FLAGS {
        assert!(
            flags.iter().any(|f| f == flag),
            "restartd {flag} is missing"
        );
    }
    let long_help = run_with_timeout(restartd_with(&["--help"]), TIMEOUT);
    let long_help = String::from_utf8_lossy(&long_help.stdout);
    for flag in SPEC_FLAGS.iter().filter(|f| f.starts_with("--")) {
        assert!(long_help.contains(flag), "--help does not show {flag}");
    }
    for (name, sub_flags) in SPEC_SUBCOMMANDS {
        let sub = cli
            .find_subcommand(name)
            .unwrap_or_else(|| panic!("restartd {name} is missing"));
        let flags = flags_of(sub);
        for flag in *sub_flags {
            assert!(flags.iter().any(|f| f == flag), "restartd {name} {flag}");
        }
    }
    // The shells of SPEC §8 are all accepted.
    for shell in ["bash", "zsh", "fish", "elvish", "powershell"] {
        let out = run_with_timeout(restartd_with(&["completions", shell]), TIMEOUT);
        assert_eq!(out.status.code(), Some(0), "completions {shell}");
        assert!(!out.stdout.is_empty(), "completions {shell}");
    }
}

#[test]
fn short_help_fits_80_columns_and_long_help_has_examples() {
    let short = run_with_timeout(restartd_with(&["-h"]), TIMEOUT);
    assert_eq!(short.status.code(), Some(0));
    let short = String::from_utf8(short.stdout).unwrap();
    for line in short.lines() {
        assert!(line.chars().count() < 80, "-h line too long: {line:?}");
    }
    let long = run_with_timeout(restartd_with(&["--help"]), TIMEOUT);
    let long = String::from_utf8(long.stdout).unwrap();
    assert!(long.len() > short.len() * 2, "--help is the long form");
    let help = run_with_timeout(restartd_with(&["help"]), TIMEOUT);
    assert_eq!(
        String::from_utf8(help.stdout).unwrap(),
        long,
        "restartd help = --help"
    );
    for want in ["Examples:", "restartd crashes server", "Exit status", "137"] {
        assert!(long.contains(want), "--help lacks {want:?}");
    }
    for line in long.lines() {
        assert!(line.chars().count() < 80, "--help line too long: {line:?}");
    }
    for sub in restartd::cli::doc::command().get_subcommands() {
        for flag in ["-h", "--help"] {
            let out = run_with_timeout(restartd_with(&[sub.get_name(), flag]), TIMEOUT);
            assert_eq!(out.status.code(), Some(0), "{} {flag}", sub.get_name());
            for line in String::from_utf8_lossy(&out.stdout).lines() {
                assert!(
                    line.chars().count() < 80,
                    "{} {flag}: {line:?}",
                    sub.get_name()
                );
            }
        }
    }
}

/// Every option that takes a value says its default and the form it accepts.
#[test]
fn every_value_flag_states_its_default_and_form() {
    for arg in restartd::cli::doc::command().get_arguments() {
        let Some(long) = arg.get_long() else { continue };
        if !arg.get_num_args().is_some_and(|n| n.takes_values()) || long == "help" {
            continue;
        }
        let short = arg.get_help().map(|h| h.to_string()).unwrap_or_default();
        let full = arg
            .get_long_help()
            .map(|h| h.to_string())
            .unwrap_or_default();
        let has_default = !arg.get_default_values().is_empty() || short.contains("[default:");
        assert!(has_default, "--{long} states no default");
        let has_form = !arg.get_possible_values().is_empty() || full.contains("Accepts");
        assert!(has_form, "--{long} states no accepted form");
    }
}

/// The fenced block between the README's demo markers, as a shell script.
fn readme_demo() -> String {
    let readme = fs::read_to_string(Path::new(ROOT).join("README.md")).unwrap();
    let start = readme
        .find("<!-- demo:start")
        .expect("README demo start marker");
    let end = readme
        .find("<!-- demo:end -->")
        .expect("README demo end marker");
    let block = &readme[start..end];
    let code = block
        .split("```sh\n")
        .nth(1)
        .and_then(|rest| rest.split("```").next())
        .expect("a ```sh block between the demo markers");
    code.to_string()
}

#[test]
fn the_readme_demo_shows_a_restart_a_give_up_and_a_crash_record() {
    let script = readme_demo();
    assert!(script.starts_with("restartd "), "{script}");
    let env = Env::new();
    let bin_dir = Path::new(BIN).parent().unwrap();
    let path = format!("{}:/usr/bin:/bin", bin_dir.display());
    // Twice: a user who pastes it again sees the same.
    for _ in 0..2 {
        let mut cmd = Command::new("sh");
        cmd.arg("-c")
            .arg(&script)
            .env("PATH", &path)
            .env("RESTARTD_STATE_DIR", env.state_dir());
        let out = env.run_cmd(cmd);
        let stderr = String::from_utf8_lossy(&out.stderr);
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(stderr.contains("restart 1 of 2"), "a restart: {stderr}");
        assert!(stderr.contains("giving up"), "a give-up: {stderr}");
        let records: Vec<&str> = stdout
            .lines()
            .filter(|l| l.contains("Error: boom"))
            .collect();
        assert!(records.len() >= 3, "crash records with the error: {stdout}");
        assert!(records[0].contains(" exit  code 3"), "{stdout}");
    }
}

#[test]
fn status_is_coloured_on_a_terminal_only_and_never_with_no_color() {
    let env = Env::new();
    let out = env.run(&["--max-restarts", "0", "--", "sh", "-c", "exit 3"]);
    assert_eq!(out.status.code(), Some(3));
    let dir = env.state_dir().to_str().unwrap().to_string();
    let on_tty = |no_color: Option<&str>| {
        let mut cmd = Command::new("python3");
        cmd.arg(helper("on_a_tty.py"))
            .args([BIN, "status", "--state-dir", &dir])
            .env_remove("NO_COLOR");
        if let Some(v) = no_color {
            cmd.env("NO_COLOR", v);
        }
        let out = env.run_cmd(cmd);
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let coloured = on_tty(None);
    assert!(coloured.contains("\x1b[31mgave-up\x1b[0m"), "{coloured:?}");
    let plain = on_tty(Some("1"));
    assert!(
        plain.contains("gave-up") && !plain.contains('\x1b'),
        "{plain:?}"
    );
    let piped = env.sub(&["status"]);
    let piped = String::from_utf8_lossy(&piped.stdout);
    assert!(
        piped.contains("gave-up") && !piped.contains('\x1b'),
        "{piped:?}"
    );
    assert!(piped.contains("0 (0/0)"), "{piped}");
    assert!(piped.contains("code 3, "), "{piped}");
}

/// `restartd status | head`: a reader that went away ends restartd quietly, status 0.
#[test]
fn a_closed_stdout_ends_quietly() {
    let env = Env::new();
    let out = env.run(&["--max-restarts", "0", "--", "sh", "-c", "exit 3"]);
    assert_eq!(out.status.code(), Some(3));
    let dir = env.state_dir().to_str().unwrap();
    for args in [
        &["status", "--state-dir", dir][..],
        &["list", "--state-dir", dir],
        &["crashes", "sh", "--state-dir", dir],
        &["man"],
        &["completions", "bash"],
    ] {
        let (reader, writer) = nix::unistd::pipe().unwrap();
        drop(reader);
        let mut cmd = restartd();
        cmd.args(args)
            .process_group(0)
            .stdin(Stdio::null())
            .stdout(Stdio::from(writer))
            .stderr(Stdio::piped());
        let child = cmd.spawn().unwrap();
        let pid = child.id() as i32;
        let out = child.wait_with_output().unwrap();
        kill_group(pid);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(0), "{args:?}: {stderr}");
        assert!(stderr.is_empty(), "{args:?}: {stderr}");
    }
}

#[test]
fn log_lines_start_with_the_local_time() {
    let env = Env::new();
    let out = env.run(&["--max-restarts", "0", "--", "sh", "-c", "exit 3"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let line = stderr
        .lines()
        .find(|l| l.contains("restartd[sh]: "))
        .unwrap();
    let (time, rest) = line.split_once(' ').unwrap();
    assert!(rest.starts_with("restartd[sh]: "), "{line}");
    let parts: Vec<&str> = time.split(':').collect();
    assert!(
        parts.len() == 3
            && parts
                .iter()
                .all(|p| p.len() == 2 && p.parse::<u8>().is_ok()),
        "HH:MM:SS first: {line}"
    );
}

/// Under systemd, stderr is the journal's stream and `JOURNAL_STREAM` names it: no time, a
/// `<N>` priority instead. When JOURNAL_STREAM names another file, the time stays.
#[test]
fn under_the_journal_lines_carry_a_priority_and_no_time() {
    let env = Env::new();
    let log = env.state_dir().join("stderr.log");
    let other = env.state_dir().join("other");
    fs::write(&other, "").unwrap();
    for (names, journal) in [(&log, true), (&other, false)] {
        let file = fs::File::create(&log).unwrap();
        let meta = fs::metadata(names).unwrap();
        let mut cmd = env.command(&["--max-restarts", "1", "--delay", "0", "--", "sh", "-c"]);
        cmd.arg("exit 3")
            .env("JOURNAL_STREAM", format!("{}:{}", meta.dev(), meta.ino()))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::from(file))
            .process_group(0);
        let mut child = cmd.spawn().unwrap();
        let pid = child.id() as i32;
        let status = child.wait().unwrap();
        kill_group(pid);
        assert_eq!(status.code(), Some(3));
        let text = fs::read_to_string(&log).unwrap();
        let lines: Vec<&str> = text
            .lines()
            .filter(|l| l.contains("restartd[sh]"))
            .collect();
        assert!(lines.len() >= 2, "{text}");
        for line in &lines {
            if journal {
                let priority = line
                    .strip_prefix('<')
                    .and_then(|l| l.split_once(">restartd[sh]: "));
                assert!(
                    priority.is_some_and(|(n, _)| ["3", "4", "6"].contains(&n)),
                    "{text}"
                );
            } else {
                assert!(
                    line.contains(" restartd[sh]: ") && !line.starts_with('<'),
                    "{text}"
                );
            }
        }
        if journal {
            assert!(
                text.contains("<6>restartd[sh]: exited with code 3"),
                "{text}"
            );
        }
    }
}

/// See: issue 17 (review, point 7). The man page did not say what restartd does when nobody
/// reads its stderr (SPEC §10): that it never waits to write, holds the child back instead, and
/// still serves a stop within `--stop-timeout`.
#[test]
fn the_man_page_says_what_a_stalled_stderr_does() {
    let out = restartd_with(&["man"]).output().unwrap();
    // roff escapes hyphens and sets code in bold: compare the words only.
    let man: String = String::from_utf8_lossy(&out.stdout)
        .replace("\\-", "-")
        .replace("\\fB", "")
        .replace("\\fR", "")
        .replace("\\*(Aq", "'")
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ");
    for said in [
        "restartd never waits to write",
        "it stops reading the child's stderr until it can",
        "a stop is served within --stop-timeout",
    ] {
        assert!(man.contains(said), "the man page does not say {said:?}");
    }
}

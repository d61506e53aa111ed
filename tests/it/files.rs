//! The instance directory and its files (SPEC §6): where it is, its modes, the lock, every field
//! of state.json, corrupt and stale state.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::process::Command;

use serde_json::Value;

use crate::common::{run_with_timeout, Env, BIN, TIMEOUT};

/// Runs `restartd -n NAME --restart no -- true` with exactly `vars` set (and PATH).
fn run_with_env(vars: &[(&str, &str)]) -> std::process::Output {
    let mut cmd = Command::new(BIN);
    cmd.env_clear()
        .env("PATH", std::env::var("PATH").unwrap())
        .envs(vars.iter().copied())
        .args(["-n", "where", "--restart", "no", "--", "true"]);
    run_with_timeout(cmd, TIMEOUT)
}

#[test]
fn the_state_directory_is_resolved_in_order() {
    let env = Env::new();
    let d = |name: &str| env.state_dir().join(name);
    let all = [
        ("RESTARTD_STATE_DIR", d("restartd")),
        ("STATE_DIRECTORY", d("systemd")),
        ("XDG_STATE_HOME", d("xdg")),
        ("HOME", d("home")),
    ];
    let expected = [
        d("restartd"),
        d("systemd"),
        d("xdg").join("restartd"),
        d("home").join(".local/state/restartd"),
    ];
    for i in 0..all.len() {
        let vars: Vec<(&str, &str)> = all[i..]
            .iter()
            .map(|(k, v)| (*k, v.to_str().unwrap()))
            .collect();
        let out = run_with_env(&vars);
        assert_eq!(
            out.status.code(),
            Some(0),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let state = expected[i].join("where/state.json");
        assert!(state.exists(), "{} missing with {vars:?}", state.display());
    }
    // --state-dir wins over all of them.
    let mut cmd = Command::new(BIN);
    cmd.env("RESTARTD_STATE_DIR", d("restartd"))
        .arg("--state-dir")
        .arg(d("flag"))
        .args(["-n", "where", "--restart", "no", "--", "true"]);
    run_with_timeout(cmd, TIMEOUT);
    assert!(d("flag").join("where/state.json").exists());
}

#[test]
fn the_instance_directory_is_0700_and_files_0600_even_under_umask_0() {
    let env = Env::new();
    let mut cmd = Command::new("sh");
    cmd.arg("-c")
        .arg("umask 000; exec \"$0\" \"$@\"")
        .arg(BIN)
        .arg("--state-dir")
        .arg(env.state_dir())
        .args(["-n", "modes", "--restart", "no", "--", "sh", "-c", "exit 1"]);
    let out = run_with_timeout(cmd, TIMEOUT);
    assert_eq!(out.status.code(), Some(1));
    let dir = env.instance("modes");
    let mode = |p: &std::path::Path| fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&dir), 0o700);
    for file in ["lock", "state.json", "crashes.jsonl"] {
        assert_eq!(mode(&dir.join(file)), 0o600, "{file}");
    }
    let control = dir.join("control");
    assert_eq!(mode(&control), 0o600);
}

#[test]
fn a_second_instance_exits_125_and_says_so() {
    let env = Env::new();
    let mut first = env.start(&["-n", "one", "--", "sleep", "300"]);
    env.wait_child("one");
    let out = env.run(&["-n", "one", "--", "sleep", "300"]);
    assert_eq!(out.status.code(), Some(125));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        err.trim(),
        format!(
            "restartd: instance one is already running (pid {}); pass --name",
            first.pid
        )
    );
    first.signal(nix::libc::SIGTERM);
    assert_eq!(first.wait_exit(), Some(0));
}

#[test]
fn state_json_has_every_field_with_its_type() {
    let env = Env::new();
    let mut r = env.start(&["-n", "fields", "--", "sleep", "300"]);
    let s = env.wait_child("fields");
    let state = env.state("fields");
    let strings = [
        "name",
        "status",
        "started_at",
        "child_started_at",
        "updated_at",
    ];
    for f in strings {
        assert!(state[f].is_string(), "{f}: {state:#}");
    }
    assert_eq!(state["version"], 1);
    assert_eq!(state["command"], serde_json::json!(["sleep", "300"]));
    assert_eq!(state["supervisor_pid"], r.pid);
    assert_eq!(state["child_pid"], s);
    assert_eq!(state["restarts"], 0);
    assert!(state["recent_restarts"].is_array());
    assert_eq!(state["max_restarts"], 5);
    assert_eq!(state["window_secs"], 300);
    for nullable in ["last_exit", "next_restart_at", "health"] {
        assert!(
            state.get(nullable).is_some_and(Value::is_null),
            "{nullable}: {state:#}"
        );
    }
    assert!(state["started_at"].as_str().unwrap().ends_with('Z'));
    // After a crash: last_exit is an object with every field.
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(s),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    let state = env.wait_state("fields", "a restart", |st| {
        st["restarts"] == 1 && st["status"] == "running"
    });
    let last = &state["last_exit"];
    assert!(last["code"].is_null());
    assert_eq!(last["signal"], "SIGKILL");
    assert_eq!(last["reason"], "signal");
    assert!(last["at"].is_string() && last["crash_id"].is_string());
    assert_eq!(state["recent_restarts"].as_array().unwrap().len(), 1);
    r.signal(nix::libc::SIGTERM);
    assert_eq!(r.wait_exit(), Some(0));
}

#[test]
fn corrupt_state_is_moved_aside_and_supervision_goes_on() {
    let env = Env::new();
    let dir = env.instance("corrupt");
    fs::create_dir_all(&dir).unwrap();
    fs::write(dir.join("state.json"), "{\"version\": 1, \"name\": tru").unwrap();
    let out = env.run(&["-n", "corrupt", "--restart", "no", "--", "true"]);
    assert_eq!(out.status.code(), Some(0));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("state.json is unreadable") && err.contains("state.json.corrupt"),
        "{err}"
    );
    assert_eq!(
        fs::read_to_string(dir.join("state.json.corrupt")).unwrap(),
        "{\"version\": 1, \"name\": tru"
    );
    assert_eq!(env.state("corrupt")["status"], "exited");
}

#[test]
fn stale_state_reads_as_not_running() {
    let env = Env::new();
    let mut r = env.start(&["-n", "stale", "--", "sleep", "300"]);
    let child = env.wait_child("stale");
    r.also_kill(child);
    r.signal(nix::libc::SIGKILL);
    r.wait_exit();
    // state.json still says running, but the lock is free.
    assert_eq!(env.state("stale")["status"], "running");
    let out = env.sub(&["status", "stale", "--json"]);
    assert_eq!(out.status.code(), Some(3));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["running"], false);
    let out = env.sub(&["status", "stale"]);
    assert!(String::from_utf8_lossy(&out.stdout).contains("gone"));
}

#[test]
fn an_unusable_state_directory_exits_125_and_starts_nothing() {
    let env = Env::new();
    let file = env.state_dir().join("a-file");
    fs::write(&file, "").unwrap();
    let marker = env.state_dir().join("started");
    let mut cmd = Command::new(BIN);
    cmd.arg("--state-dir")
        .arg(&file)
        .args(["-n", "x", "--", "touch"])
        .arg(&marker);
    let out = run_with_timeout(cmd, TIMEOUT);
    assert_eq!(out.status.code(), Some(125));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.starts_with("restartd: unable to create")
            && err.contains("pass --state-dir or set RESTARTD_STATE_DIR"),
        "{err}"
    );
    assert!(!marker.exists());
}

#[test]
fn only_the_owner_can_use_the_control_socket() {
    if !nix::unistd::geteuid().is_root() {
        println!("skipped: needs root to act as another user");
        return;
    }
    let env = Env::new();
    let mut r = env.start(&["-n", "owned", "--", "sleep", "300"]);
    env.wait_child("owned");
    let socket = env.instance("owned").join("control");
    // As nobody: the 0700 directory and the 0600 socket keep it out.
    let probe = "import os, socket, sys\nos.setgid(65534); os.setuid(65534)\ns = socket.socket(socket.AF_UNIX)\ntry:\n    s.connect(sys.argv[1]); s.sendall(b'stop\\n'); print(s.recv(100))\nexcept PermissionError:\n    print('denied')\n";
    let out = Command::new("python3")
        .args(["-c", probe])
        .arg(&socket)
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "denied");
    assert_eq!(env.state("owned")["status"], "running");
    r.signal(nix::libc::SIGTERM);
    assert_eq!(r.wait_exit(), Some(0));
}

//! The instance directory and its files (SPEC §6): where it is, its modes, the lock, every field
//! of state.json, corrupt and stale state.

use std::fs;
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::process::Command;

use serde_json::Value;

use crate::common::{Env, BIN, TIMEOUT};

/// `restartd -n where --restart no -- true` with exactly `vars` set (and PATH).
fn with_env(vars: &[(&str, &str)]) -> Command {
    let mut cmd = Command::new(BIN);
    cmd.env_clear()
        .env("PATH", std::env::var("PATH").unwrap())
        .envs(vars.iter().copied())
        .args(["-n", "where", "--restart", "no", "--", "true"]);
    cmd
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
        // Only the variables from i on are set: the first of them wins.
        let vars: Vec<(&str, &str)> = all[i..]
            .iter()
            .map(|(k, v)| (*k, v.to_str().unwrap()))
            .collect();
        let out = env.run_cmd(with_env(&vars));
        assert_eq!(out.status.code(), Some(0), "{vars:?}");
        let state = expected[i].join("where/state.json");
        assert!(state.exists(), "{} missing with {vars:?}", state.display());
        for other in &expected[i + 1..] {
            assert!(!other.join("where").exists(), "{} used", other.display());
        }
        fs::remove_dir_all(expected[i].join("where")).unwrap();
    }
    // --state-dir wins over all of them.
    let vars: Vec<(&str, &str)> = all.iter().map(|(k, v)| (*k, v.to_str().unwrap())).collect();
    let mut cmd_flag_first = Command::new(BIN);
    cmd_flag_first
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap())
        .envs(vars.iter().copied())
        .arg("--state-dir")
        .arg(d("flag"))
        .args(["-n", "where", "--restart", "no", "--", "true"]);
    let out = env.run_cmd(cmd_flag_first);
    assert_eq!(out.status.code(), Some(0));
    assert!(d("flag").join("where/state.json").exists());
    for other in &expected {
        assert!(!other.join("where").exists(), "{} used", other.display());
    }
    // Subcommands resolve the same way.
    let mut status = Command::new(BIN);
    status
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap())
        .env("RESTARTD_STATE_DIR", d("flag"))
        .env("HOME", d("home"))
        .args(["status", "where", "--json"]);
    let out = env.run_cmd(status);
    assert_eq!(out.status.code(), Some(3), "found, not running");
}

#[test]
fn the_instance_directory_is_0700_and_files_0600_even_under_umask_0() {
    let env = Env::new();
    for umask in ["022", "000"] {
        let name = format!("modes-{umask}");
        let mut cmd = Command::new("sh");
        cmd.arg("-c")
            .arg(format!("umask {umask}; exec \"$0\" \"$@\""))
            .arg(BIN)
            .arg("--state-dir")
            .arg(env.state_dir())
            .args(["-n", &name, "--max-restarts", "1", "--delay", "0"])
            .args(["--", "sh", "-c", "exit 1"]);
        let out = env.run_cmd(cmd);
        assert_eq!(out.status.code(), Some(1));
        let dir = env.instance(&name);
        let mode = |p: &std::path::Path| fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&dir), 0o700, "umask {umask}");
        for file in ["lock", "state.json"] {
            assert_eq!(mode(&dir.join(file)), 0o600, "{file} under umask {umask}");
        }
        // Whatever else restartd keeps there is private too.
        for entry in fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            let m = mode(&path);
            assert_eq!(m & 0o077, 0, "{} is {m:o}", path.display());
        }
    }
}

#[test]
fn a_second_instance_exits_125_and_says_so() {
    let env = Env::new();
    // A longer pid left by an earlier run must not survive in the lock file.
    let dir = env.instance("one");
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(&dir)
        .unwrap();
    fs::write(dir.join("lock"), "4194304999\n").unwrap();
    let mut first = env.start(&["-n", "one", "--", "sleep", "300"]);
    let child = env.wait_child("one");
    let marker = env.state_dir().join("started");
    let out = env.run(&["-n", "one", "--", "touch", marker.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(125));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        err.trim(),
        format!(
            "restartd: instance one is already running (pid {}); pass --name",
            first.pid
        )
    );
    assert!(!marker.exists(), "the second instance started nothing");
    let state = env.state("one");
    assert_eq!(state["child_pid"], child, "the first instance is untouched");
    assert_eq!(state["supervisor_pid"], first.pid);
    first.signal(nix::libc::SIGTERM);
    assert_eq!(first.wait_exit(), Some(0));
}

const STATUSES: [&str; 7] = [
    "starting", "running", "backoff", "stopping", "stopped", "exited", "gave-up",
];

fn is_time(v: &Value) -> bool {
    v.as_str()
        .is_some_and(|t| t.ends_with('Z') && humantime::parse_rfc3339(t).is_ok())
}

/// Every field of SPEC §6 is present with its JSON type; returns the problems found.
fn type_problems(s: &Value) -> Vec<String> {
    let mut bad = Vec::new();
    let mut check = |field: &str, ok: bool| {
        if !ok {
            bad.push(format!("{field}: {}", s.get(field).unwrap_or(&Value::Null)));
        }
    };
    let nullable = |v: &Value, f: fn(&Value) -> bool| v.is_null() || f(v);
    check("version", s["version"] == 1);
    check("name", s["name"].is_string());
    check(
        "command",
        s["command"]
            .as_array()
            .is_some_and(|a| !a.is_empty() && a.iter().all(Value::is_string)),
    );
    check(
        "status",
        s["status"].as_str().is_some_and(|v| STATUSES.contains(&v)),
    );
    check("supervisor_pid", s["supervisor_pid"].is_u64());
    check(
        "child_pid",
        s.get("child_pid")
            .is_some_and(|v| nullable(v, Value::is_u64)),
    );
    check("started_at", is_time(&s["started_at"]));
    check(
        "child_started_at",
        s.get("child_started_at")
            .is_some_and(|v| nullable(v, is_time)),
    );
    check("restarts", s["restarts"].is_u64());
    check(
        "recent_restarts",
        s["recent_restarts"]
            .as_array()
            .is_some_and(|a| a.iter().all(is_time)),
    );
    check(
        "max_restarts",
        s.get("max_restarts")
            .is_some_and(|v| nullable(v, Value::is_u64)),
    );
    check("window_secs", s["window_secs"].is_number());
    check(
        "last_exit",
        s.get("last_exit").is_some_and(|v| {
            v.is_null()
                || (nullable(&v["code"], Value::is_i64)
                    && nullable(&v["signal"], Value::is_string)
                    && v["reason"].is_string()
                    && is_time(&v["at"])
                    && v.get("crash_id")
                        .is_some_and(|c| nullable(c, Value::is_string)))
        }),
    );
    check(
        "next_restart_at",
        s.get("next_restart_at")
            .is_some_and(|v| nullable(v, is_time)),
    );
    check("health", s.get("health").is_some());
    check("updated_at", is_time(&s["updated_at"]));
    bad
}

#[test]
fn state_json_has_every_field_with_its_type() {
    let env = Env::new();
    // Running.
    let mut r = env.start(&["-n", "fields", "--", "sleep", "300"]);
    let s = env.wait_child("fields");
    let state = env.state("fields");
    assert_eq!(type_problems(&state), Vec::<String>::new(), "{state:#}");
    assert_eq!(state["name"], "fields");
    assert_eq!(state["command"], serde_json::json!(["sleep", "300"]));
    assert_eq!(state["supervisor_pid"], r.pid);
    assert_eq!(state["child_pid"], s);
    assert!(is_time(&state["child_started_at"]), "{state:#}");
    assert_eq!(state["restarts"], 0);
    assert_eq!(state["recent_restarts"], serde_json::json!([]));
    assert_eq!(state["max_restarts"], 5);
    assert_eq!(state["window_secs"], 300);
    for null in ["last_exit", "next_restart_at", "health"] {
        assert!(state[null].is_null(), "{null}: {state:#}");
    }
    // After a crash: last_exit is an object with every field.
    crate::common::signal(s, nix::libc::SIGKILL);
    let state = env.wait_state("fields", "a restart", |st| {
        st["restarts"] == 1 && st["status"] == "running"
    });
    assert_eq!(type_problems(&state), Vec::<String>::new(), "{state:#}");
    let last = &state["last_exit"];
    assert!(last["code"].is_null());
    assert_eq!(last["signal"], "SIGKILL");
    assert_eq!(last["reason"], "signal");
    assert!(last["crash_id"].is_string());
    assert_eq!(state["recent_restarts"].as_array().unwrap().len(), 1);
    r.signal(nix::libc::SIGTERM);
    assert_eq!(r.wait_exit(), Some(0));
    let state = env.state("fields");
    assert_eq!(type_problems(&state), Vec::<String>::new(), "{state:#}");
    assert_eq!(state["status"], "stopped");
    assert!(state["child_pid"].is_null());

    // In backoff: no child, a next restart time; unlimited is null.
    let mut r = env.start(&[
        "-n",
        "backoff",
        "--delay",
        "30s",
        "--max-restarts",
        "unlimited",
        "--window",
        "90s",
        "--",
        "sh",
        "-c",
        "exit 4",
    ]);
    let state = env.wait_state("backoff", "backoff", |s| s["status"] == "backoff");
    assert_eq!(type_problems(&state), Vec::<String>::new(), "{state:#}");
    assert!(state["child_pid"].is_null());
    assert!(is_time(&state["next_restart_at"]), "{state:#}");
    assert!(state["max_restarts"].is_null());
    assert_eq!(state["window_secs"], 90);
    assert_eq!(state["last_exit"]["code"], 4);
    assert_eq!(state["last_exit"]["reason"], "exit");
    assert!(state["last_exit"]["signal"].is_null());
    r.signal(nix::libc::SIGTERM);
    assert_eq!(r.wait_exit(), Some(0));

    // Exited and gave up.
    env.run(&["-n", "exited", "--restart", "no", "--", "true"]);
    env.run(&[
        "-n",
        "gaveup",
        "--max-restarts",
        "1",
        "--delay",
        "0",
        "--",
        "sh",
        "-c",
        "exit 1",
    ]);
    for (name, status) in [("exited", "exited"), ("gaveup", "gave-up")] {
        let state = env.state(name);
        assert_eq!(type_problems(&state), Vec::<String>::new(), "{state:#}");
        assert_eq!(state["status"], status);
        assert!(state["child_pid"].is_null() && state["next_restart_at"].is_null());
    }
}

/// Readers never see a half-written state.json: it is replaced by a rename.
#[test]
fn state_json_is_replaced_atomically() {
    let env = Env::new();
    let mut r = env.start(&[
        "-n",
        "atomic",
        "--max-restarts",
        "40",
        "--delay",
        "0",
        "-q",
        "--",
        "sh",
        "-c",
        "exit 1",
    ]);
    let path = env.instance("atomic").join("state.json");
    let (mut reads, mut torn) = (0, Vec::new());
    let mut inodes = std::collections::HashSet::new();
    let started = std::time::Instant::now();
    loop {
        let done = r.try_exit().is_some();
        assert!(started.elapsed() < TIMEOUT, "restartd did not finish");
        if let Ok(text) = fs::read_to_string(&path) {
            reads += 1;
            if serde_json::from_str::<Value>(&text).is_err() {
                torn.push(text);
            }
            if let Ok(meta) = fs::metadata(&path) {
                inodes.insert(std::os::unix::fs::MetadataExt::ino(&meta));
            }
        }
        if done {
            break;
        }
    }
    assert!(
        torn.is_empty(),
        "{} torn reads of {reads}: {torn:?}",
        torn.len()
    );
    assert!(inodes.len() > 1, "replaced, not rewritten in place");
    assert_eq!(env.state("atomic")["restarts"], 40);
    let leftovers: Vec<_> = fs::read_dir(env.instance("atomic"))
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| n.contains("tmp"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

#[test]
fn corrupt_state_is_moved_aside_and_supervision_goes_on() {
    let env = Env::new();
    let cases: [(&str, &[u8]); 3] = [
        ("truncated", b"{\"version\": 1, \"name\": tru"),
        ("binary", b"\x00\xff\xfe garbage \x01"),
        ("wrong-shape", b"[1, 2, 3]"),
    ];
    for (name, content) in cases {
        let dir = env.instance(name);
        fs::create_dir_all(&dir).unwrap();
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o700)).unwrap();
        fs::write(dir.join("state.json"), content).unwrap();
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
        assert_eq!(out.status.code(), Some(1), "{name}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains("state.json.corrupt"),
            "{name}: reported: {err}"
        );
        assert_eq!(
            fs::read(dir.join("state.json.corrupt")).unwrap(),
            content,
            "{name}: moved aside as it was"
        );
        let state = env.state(name);
        assert_eq!(state["status"], "gave-up", "{name}: supervised: {state:#}");
        assert_eq!(state["restarts"], 2, "{name}");
    }
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
    let out = env.run_cmd(cmd);
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

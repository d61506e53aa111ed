//! `status`, `list`, `reset`, `stop`, `restart` and `signal` against running and past instances
//! (SPEC §8).

use serde_json::Value;

use crate::common::{alive, ready_fields, Env};
use crate::signals::print_signals;

#[test]
fn status_exit_codes_and_json() {
    let env = Env::new();
    let running = "running".to_string();
    let out = env.sub(&["status", "nothing"]);
    assert_eq!(out.status.code(), Some(4));
    let out = env.sub(&["status", "nothing", "--json"]);
    assert_eq!(out.status.code(), Some(4));
    let mut r = env.start(&["-n", "up", "--", "sleep", "300"]);
    let child = env.wait_child("up");
    let out = env.sub(&["status", "up", "--json"]);
    assert_eq!(out.status.code(), Some(0));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["running"], true);
    assert_eq!(v["child_pid"], child);
    assert_eq!(v["name"], "up");
    // The state file's fields plus `running`.
    let state = env.state("up");
    let mut keys: Vec<&String> = state.as_object().unwrap().keys().collect();
    keys.push(&running);
    keys.sort();
    let mut got: Vec<&String> = v.as_object().unwrap().keys().collect();
    got.sort();
    assert_eq!(got, keys);
    let out = env.sub(&["status", "up"]);
    let text = String::from_utf8_lossy(&out.stdout);
    let mut lines = text.lines();
    let header = lines.next().unwrap();
    assert!(
        header.starts_with("NAME") && header.contains("STATUS") && header.contains("RESTARTS"),
        "{text}"
    );
    let row = lines.next().unwrap();
    assert!(
        row.starts_with("up ") && row.contains("running") && row.contains(&child.to_string()),
        "{text}"
    );
    env.run(&["-n", "down", "--restart", "no", "--", "true"]);
    let out = env.sub(&["status"]);
    assert_eq!(out.status.code(), Some(3), "not every instance runs");
    let out = env.sub(&["status", "down", "--json"]);
    assert_eq!(out.status.code(), Some(3));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        (v["running"].as_bool(), v["status"].as_str()),
        (Some(false), Some("exited"))
    );
    let out = env.sub(&["status", "--json"]);
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    let all: Vec<(&str, bool)> = v
        .as_array()
        .unwrap()
        .iter()
        .map(|i| (i["name"].as_str().unwrap(), i["running"].as_bool().unwrap()))
        .collect();
    assert_eq!(all, [("down", false), ("up", true)]);
    let out = env.sub(&["list", "--json"]);
    assert_eq!(out.status.code(), Some(0));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    let names: Vec<&str> = v
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["down", "up"]);
    assert_eq!(v[0]["running"], false);
    let out = env.sub(&["list"]);
    assert_eq!(String::from_utf8_lossy(&out.stdout).lines().count(), 3);
    r.signal(nix::libc::SIGTERM);
    assert_eq!(r.wait_exit(), Some(0));
}

#[test]
fn stop_waits_until_the_instance_has_exited() {
    let env = Env::new();
    let mut r = env.start(&["-n", "st", "--", "sleep", "300"]);
    let child = env.wait_child("st");
    let out = env.sub(&["stop", "st"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // When stop returns, restartd is gone and the state says so.
    assert!(!alive(child));
    assert_eq!(env.state("st")["status"], "stopped");
    assert_eq!(r.wait_exit(), Some(0));
    let out = env.sub(&["stop", "st"]);
    assert_eq!(out.status.code(), Some(3));
    let out = env.sub(&["restart", "st"]);
    assert_eq!(out.status.code(), Some(3));
    let out = env.sub(&["signal", "st", "HUP"]);
    assert_eq!(out.status.code(), Some(3));
}

#[test]
fn restart_replaces_the_child_gracefully_without_a_crash_or_backoff() {
    let env = Env::new();
    // A 30 s --delay: any backoff would outlast the wait below.
    let (mut r, first, _) = print_signals(&env, "rs", &["--delay", "30s"], &[]);
    let out = env.sub(&["restart", "rs"]);
    assert_eq!(out.status.code(), Some(0));
    // The old child was asked to stop with the stop signal, then a new one started.
    r.wait_line_eq("SIGTERM");
    let line = r.wait_stdout("restarts=1");
    let second: i32 = ready_fields(&line)["pid"].parse().unwrap();
    r.also_kill(second);
    let state = env.wait_state("rs", "the new child", |s| {
        s["status"] == "running" && s["child_pid"] == second
    });
    assert_ne!(second, first);
    assert!(!alive(first));
    assert_eq!(state["restarts"], 1);
    assert_eq!(
        state["recent_restarts"].as_array().unwrap().len(),
        0,
        "not counted in the window"
    );
    assert!(state["next_restart_at"].is_null());
    assert!(
        env.records("rs").is_empty(),
        "a requested restart is no crash"
    );
    // And again: one more each time.
    let out = env.sub(&["restart", "rs"]);
    assert_eq!(out.status.code(), Some(0));
    env.wait_state("rs", "a third child", |s| {
        s["status"] == "running" && s["restarts"] == 2 && s["child_pid"] != second
    });
    r.signal(nix::libc::SIGTERM);
    assert_eq!(r.wait_exit(), Some(0));
}

#[test]
fn signal_sends_to_the_child_group_and_changes_nothing_else() {
    let env = Env::new();
    let (mut r, child, member) = print_signals(&env, "sig", &[], &[]);
    for (sig, name) in [("USR2", "SIGUSR2"), ("SIGHUP", "SIGHUP"), ("10", "SIGUSR1")] {
        let out = env.sub(&["signal", "sig", sig]);
        assert_eq!(out.status.code(), Some(0), "{sig}");
        r.wait_line_eq(name);
        r.wait_line_eq(&format!("forked {name}"));
    }
    assert!(alive(child) && alive(member));
    let state = env.state("sig");
    assert_eq!(
        (state["child_pid"].as_i64(), state["restarts"].as_u64()),
        (Some(child as i64), Some(0))
    );
    // A stop signal sent this way is the child's business: it exits 0 and, as a clean exit
    // under on-failure, is not restarted.
    let out = env.sub(&["signal", "sig", "TERM"]);
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(r.wait_exit(), Some(0));
    let out = env.sub(&["signal", "sig", "TERM"]);
    assert_eq!(out.status.code(), Some(3), "not running any more");
}

#[test]
fn reset_clears_the_window_of_running_and_stopped_instances() {
    let env = Env::new();
    // Stopped: edit the file.
    env.run(&[
        "-n",
        "gone",
        "--max-restarts",
        "2",
        "--delay",
        "0",
        "--",
        "sh",
        "-c",
        "exit 1",
    ]);
    assert_eq!(
        env.state("gone")["recent_restarts"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
    let out = env.sub(&["reset", "gone"]);
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(
        env.state("gone")["recent_restarts"]
            .as_array()
            .unwrap()
            .len(),
        0
    );
    // Running: ask it.
    let mut r = env.start(&[
        "-n",
        "live",
        "--delay",
        "0",
        "--",
        "sh",
        "-c",
        "[ $RESTARTD_RESTARTS -ge 2 ] && exec sleep 300; exit 1",
    ]);
    env.wait_state("live", "two restarts", |s| {
        s["restarts"] == 2 && s["status"] == "running"
    });
    let out = env.sub(&["reset", "live"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    env.wait_state("live", "an empty window", |s| {
        s["recent_restarts"].as_array().is_some_and(Vec::is_empty)
    });
    let out = env.sub(&["reset", "nope"]);
    assert_eq!(out.status.code(), Some(4));
    r.signal(nix::libc::SIGTERM);
    assert_eq!(r.wait_exit(), Some(0));
}

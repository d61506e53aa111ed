//! File safety (issue 6): a state directory other users could change is refused like ssh's
//! StrictModes, symlinks are never followed, and the control socket checks its peer's uid even
//! when the modes that normally keep others out are loosened.
//!
//! Also covered elsewhere: modes 0700/0600 under umask 000 (`files.rs`), notify datagrams from
//! outside the child's group ignored (`monitors.rs`), crash data never run by a hook shell
//! (`crash_records.rs`).

use std::fs;
use std::os::unix::fs::{symlink, PermissionsExt};
use std::process::Command;

use crate::common::{restartd, Env};

fn is_root() -> bool {
    nix::unistd::geteuid().is_root()
}

/// `restartd --state-dir DIR -n NAME -- touch MARKER`; returns (exit code, stderr).
fn run_in(env: &Env, dir: &std::path::Path, name: &str) -> (Option<i32>, String) {
    let marker = env.state_dir().join("started");
    let mut cmd = restartd();
    cmd.arg("--state-dir")
        .arg(dir)
        .args(["-n", name, "--restart", "no", "--", "touch"])
        .arg(&marker);
    let out = env.run_cmd(cmd);
    let started = marker.exists();
    let _ = fs::remove_file(&marker);
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(
        started,
        out.status.code() == Some(0),
        "the command ran iff restartd accepted the directory: {err}"
    );
    (out.status.code(), err)
}

#[test]
fn a_state_directory_writable_by_others_is_refused_unless_sticky() {
    let env = Env::new();
    let dir = env.state_dir().join("shared");
    fs::create_dir(&dir).unwrap();
    for mode in [0o777, 0o770, 0o702] {
        fs::set_permissions(&dir, fs::Permissions::from_mode(mode)).unwrap();
        let (code, err) = run_in(&env, &dir, "open");
        assert_eq!(code, Some(125), "mode {mode:o}: {err}");
        let expected = format!(
            "restartd: state directory {d} is writable by other users (mode {mode:04o}, owner uid {uid}); run `chmod go-w {d}` or pass another --state-dir",
            d = dir.display(),
            uid = nix::unistd::geteuid().as_raw()
        );
        assert_eq!(err.trim(), expected);
        assert!(!dir.join("open").exists(), "nothing was created in it");
    }
    // Sticky, like /tmp: others cannot rename or delete our 0700 instance directory.
    fs::set_permissions(&dir, fs::Permissions::from_mode(0o1777)).unwrap();
    let (code, err) = run_in(&env, &dir, "sticky");
    assert_eq!(code, Some(0), "{err}");
    // And the fix the message names works.
    fs::set_permissions(&dir, fs::Permissions::from_mode(0o777)).unwrap();
    assert!(Command::new("chmod")
        .arg("go-w")
        .arg(&dir)
        .status()
        .unwrap()
        .success());
    let (code, err) = run_in(&env, &dir, "fixed");
    assert_eq!(code, Some(0), "{err}");
}

#[test]
fn a_state_directory_or_instance_owned_by_another_user_is_refused() {
    if !is_root() {
        println!("skipped: needs root to chown to another user");
        return;
    }
    let env = Env::new();
    let dir = env.state_dir().join("theirs");
    fs::create_dir(&dir).unwrap();
    fs::set_permissions(&dir, fs::Permissions::from_mode(0o755)).unwrap();
    std::os::unix::fs::chown(&dir, Some(65534), Some(65534)).unwrap();
    let (code, err) = run_in(&env, &dir, "x");
    assert_eq!(code, Some(125), "{err}");
    assert!(
        err.contains(&format!(
            "state directory {} is owned by uid 65534",
            dir.display()
        )) && err.contains("pass a --state-dir of your own"),
        "{err}"
    );
    // Our own state directory, but an instance directory someone else made in it.
    let inst = env.instance("planted");
    fs::create_dir(&inst).unwrap();
    fs::set_permissions(&inst, fs::Permissions::from_mode(0o700)).unwrap();
    std::os::unix::fs::chown(&inst, Some(65534), Some(65534)).unwrap();
    let (code, err) = run_in(&env, env.state_dir(), "planted");
    assert_eq!(code, Some(125), "{err}");
    assert!(
        err.contains(&format!("{} is owned by uid 65534", inst.display())),
        "{err}"
    );
}

#[test]
fn an_instance_path_that_is_a_symlink_is_refused() {
    let env = Env::new();
    let elsewhere = tempfile::tempdir().unwrap();
    symlink(elsewhere.path(), env.instance("linked")).unwrap();
    let (code, err) = run_in(&env, env.state_dir(), "linked");
    assert_eq!(code, Some(125), "{err}");
    assert!(
        err.contains(&format!(
            "{} is not a directory (a symlink or a file)",
            env.instance("linked").display()
        )),
        "{err}"
    );
    assert_eq!(fs::read_dir(elsewhere.path()).unwrap().count(), 0);
}

#[test]
fn files_in_the_instance_directory_are_never_followed_through_symlinks() {
    let env = Env::new();
    let victim_dir = tempfile::tempdir().unwrap();
    let victim = victim_dir.path().join("precious");
    fs::write(&victim, "keep me\n").unwrap();
    let dir = env.instance("planted");
    fs::create_dir(&dir).unwrap();
    fs::set_permissions(&dir, fs::Permissions::from_mode(0o700)).unwrap();
    for file in ["crashes.jsonl", "state.json"] {
        symlink(&victim, dir.join(file)).unwrap();
    }
    let out = env.run(&[
        "-n",
        "planted",
        "--max-restarts",
        "1",
        "--delay",
        "0",
        "--",
        "sh",
        "-c",
        "exit 3",
    ]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "supervision went on: {err}");
    assert_eq!(fs::read_to_string(&victim).unwrap(), "keep me\n");
    let victim_meta = fs::metadata(&victim).unwrap();
    assert_eq!(victim_meta.permissions().mode() & 0o777, 0o644);
}

#[test]
fn the_control_socket_refuses_other_users_even_with_loosened_modes() {
    if !is_root() {
        println!("skipped: needs root to act as another user");
        return;
    }
    let env = Env::new();
    let mut r = env.start(&["-n", "peer", "--", "sleep", "300"]);
    let child = env.wait_child("peer");
    let dir = env.instance("peer");
    // Defeat the first line of defence: the modes. The peer-credential check must still hold.
    fs::set_permissions(env.state_dir(), fs::Permissions::from_mode(0o755)).unwrap();
    fs::set_permissions(&dir, fs::Permissions::from_mode(0o777)).unwrap();
    fs::set_permissions(dir.join("control"), fs::Permissions::from_mode(0o777)).unwrap();
    let probe = "import os, socket, sys\nos.setgid(65534); os.setuid(65534)\ns = socket.socket(socket.AF_UNIX)\ns.connect(sys.argv[1])\ntry:\n    s.sendall(b'stop\\n'); print('reply:', s.recv(100))\nexcept OSError as e:\n    print('closed:', e)\n";
    let out = Command::new("python3")
        .args(["-c", probe])
        .arg(dir.join("control"))
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success()
            && (said.starts_with("closed:")
                || said.contains("error: permission denied: not the instance's owner")),
        "connected, but refused (a reply, or the connection closed): {said} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let state = env.state("peer");
    assert_eq!(state["status"], "running", "{state:#}");
    assert_eq!(state["child_pid"], child);
    assert!(r.try_exit().is_none(), "the stop request was ignored");
    // The owner still can.
    let out = env.sub(&["stop", "peer"]);
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(r.wait_exit(), Some(0));
}

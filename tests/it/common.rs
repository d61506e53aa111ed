//! The harness: run restartd in its own state directory, in its own process group, and wait on
//! events (lines, files, statuses) with generous timeouts, never on fixed sleeps.

use std::fs;
use std::io::{BufRead, BufReader, Read};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;

pub const BIN: &str = env!("CARGO_BIN_EXE_restartd");
/// How long any wait may take before the test fails.
pub const TIMEOUT: Duration = Duration::from_secs(15);

/// `tests/helpers/NAME`.
pub fn helper(name: &str) -> String {
    format!("{}/tests/helpers/{name}", env!("CARGO_MANIFEST_DIR"))
}

/// A test's own state directory.
pub struct Env {
    dir: tempfile::TempDir,
}

impl Env {
    pub fn new() -> Env {
        Env {
            dir: tempfile::tempdir().unwrap(),
        }
    }

    pub fn state_dir(&self) -> &Path {
        self.dir.path()
    }

    pub fn instance(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// `restartd --state-dir DIR ARGS` as a command, not yet started.
    pub fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(BIN);
        cmd.arg("--state-dir").arg(self.state_dir()).args(args);
        cmd
    }

    /// Runs `restartd --state-dir DIR ARGS` to its end.
    pub fn run(&self, args: &[&str]) -> Output {
        run_with_timeout(self.command(args), TIMEOUT)
    }

    /// `restartd ARGS --state-dir DIR` (subcommands take the flag after their arguments).
    pub fn sub(&self, args: &[&str]) -> Output {
        let mut cmd = Command::new(BIN);
        cmd.args(args).arg("--state-dir").arg(self.state_dir());
        run_with_timeout(cmd, TIMEOUT)
    }

    /// Starts `restartd --state-dir DIR ARGS` in the background.
    pub fn start(&self, args: &[&str]) -> Running {
        Running::spawn(self.command(args))
    }

    pub fn records(&self, name: &str) -> Vec<Value> {
        let text =
            fs::read_to_string(self.instance(name).join("crashes.jsonl")).unwrap_or_default();
        text.lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }

    /// `state.json`, or `Null` while it does not exist (or is being replaced).
    pub fn state(&self, name: &str) -> Value {
        fs::read_to_string(self.instance(name).join("state.json"))
            .ok()
            .and_then(|t| serde_json::from_str(&t).ok())
            .unwrap_or(Value::Null)
    }

    /// Waits until `state.json` satisfies `pred`; returns it.
    pub fn wait_state(&self, name: &str, what: &str, pred: impl Fn(&Value) -> bool) -> Value {
        let mut last = Value::Null;
        let found = wait_until(what, || {
            last = self.state(name);
            pred(&last)
        });
        assert!(found, "timed out waiting for {what}; state.json: {last:#}");
        last
    }

    /// Waits for status `running` with a child pid; returns the pid.
    pub fn wait_child(&self, name: &str) -> i32 {
        let s = self.wait_state(name, "a running child", |s| {
            s["status"] == "running" && s["child_pid"].is_i64()
        });
        s["child_pid"].as_i64().unwrap() as i32
    }
}

/// Polls `cond` every 10 ms until it holds or `TIMEOUT` passes.
pub fn wait_until(_what: &str, mut cond: impl FnMut() -> bool) -> bool {
    let start = Instant::now();
    while start.elapsed() < TIMEOUT {
        if cond() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    cond()
}

/// Runs `cmd` in its own process group; SIGKILLs the group if it outlives `limit`, and
/// whatever is left in it afterwards.
pub fn run_with_timeout(mut cmd: Command, limit: Duration) -> Output {
    cmd.process_group(0)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let child = cmd.spawn().unwrap();
    let pid = child.id() as i32;
    let done = Arc::new(Mutex::new(false));
    let flag = done.clone();
    std::thread::spawn(move || {
        let start = Instant::now();
        while start.elapsed() < limit {
            std::thread::sleep(Duration::from_millis(50));
            if *flag.lock().unwrap() {
                return;
            }
        }
        kill_group(pid);
    });
    let out = child.wait_with_output().unwrap();
    *done.lock().unwrap() = true;
    kill_group(pid);
    out
}

pub fn kill_group(pgid: i32) {
    // SAFETY: signalling a process group a test created; ESRCH when it is gone.
    unsafe { nix::libc::kill(-pgid, nix::libc::SIGKILL) };
}

pub fn signal(pid: i32, sig: i32) {
    // SAFETY: signalling a process a test started.
    unsafe { nix::libc::kill(pid, sig) };
}

pub fn alive(pid: i32) -> bool {
    // A zombie still answers kill(0): count it as gone.
    match fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => !stat[stat.rfind(')').unwrap() + 2..].starts_with('Z'),
        Err(_) => false,
    }
}

/// `State:` from /proc/PID/status, e.g. `T (stopped)`.
pub fn proc_state(pid: i32) -> String {
    proc_field(pid, "State").unwrap_or_default()
}

pub fn proc_field(pid: i32, field: &str) -> Option<String> {
    let status = fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{field}:")))
        .map(|v| v.trim().to_string())
}

/// A restartd running in the background, in its own process group, killed with that group
/// when dropped. Its stdout and stderr are collected as they come.
pub struct Running {
    child: Child,
    pub pid: i32,
    stdout: Arc<Mutex<String>>,
    stderr: Arc<Mutex<String>>,
    extra: Vec<i32>,
}

fn collect(stream: impl Read + Send + 'static) -> Arc<Mutex<String>> {
    let text = Arc::new(Mutex::new(String::new()));
    let sink = text.clone();
    std::thread::spawn(move || {
        let mut reader = BufReader::new(stream);
        let mut line = String::new();
        while reader.read_line(&mut line).is_ok_and(|n| n > 0) {
            sink.lock().unwrap().push_str(&line);
            line.clear();
        }
    });
    text
}

impl Running {
    pub fn spawn(mut cmd: Command) -> Running {
        cmd.process_group(0)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().unwrap();
        let pid = child.id() as i32;
        let stdout = collect(child.stdout.take().unwrap());
        let stderr = collect(child.stderr.take().unwrap());
        Running {
            child,
            pid,
            stdout,
            stderr,
            extra: Vec::new(),
        }
    }

    /// Also kill `pid` when the test ends (a process that left the group).
    pub fn also_kill(&mut self, pid: i32) {
        self.extra.push(pid);
    }

    pub fn stdout(&self) -> String {
        self.stdout.lock().unwrap().clone()
    }

    pub fn stderr(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }

    /// Waits until stdout has a line containing `needle`; returns that line.
    pub fn wait_stdout(&self, needle: &str) -> String {
        let mut found = None;
        let ok = wait_until(needle, || {
            found = self
                .stdout()
                .lines()
                .find(|l| l.contains(needle))
                .map(String::from);
            found.is_some()
        });
        assert!(
            ok,
            "no stdout line with {needle:?}\nstdout:\n{}\nstderr:\n{}",
            self.stdout(),
            self.stderr()
        );
        found.unwrap()
    }

    /// Waits until stderr contains `needle`.
    pub fn wait_stderr(&self, needle: &str) {
        let ok = wait_until(needle, || self.stderr().contains(needle));
        assert!(
            ok,
            "stderr never had {needle:?}\nstderr:\n{}",
            self.stderr()
        );
    }

    pub fn signal(&self, sig: i32) {
        signal(self.pid, sig);
    }

    /// Waits for restartd to exit; returns its status code (None: killed by a signal).
    pub fn wait_exit(&mut self) -> Option<i32> {
        let start = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status.code();
            }
            assert!(
                start.elapsed() < TIMEOUT,
                "restartd did not exit\nstderr:\n{}",
                self.stderr()
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        kill_group(self.pid);
        for &pid in &self.extra {
            kill_group(pid);
            signal(pid, nix::libc::SIGKILL);
        }
        let _ = self.child.wait();
    }
}

/// The `ready pid=… pgid=… …` line of print_signals.py as (key, value) pairs.
pub fn ready_fields(line: &str) -> std::collections::HashMap<String, String> {
    line.split_whitespace()
        .filter_map(|kv| kv.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

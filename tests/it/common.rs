//! The harness: run restartd in its own state directory, in its own process group, and wait on
//! events (lines, files, statuses) with generous timeouts, never on fixed sleeps.
//!
//! When a test fails, `Env` and `Running` print what there is to know on their way out: every
//! command the test ran with its status and stderr, the state directory's listing, `state.json`
//! and the tail of `crashes.jsonl` of every instance (ripgrep's `expect_success` model).

use std::cell::RefCell;
use std::fmt::Write as _;
use std::fs;
use std::io::{BufRead, BufReader, Read};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;

pub const BIN: &str = env!("CARGO_BIN_EXE_restartd");
/// How long any wait may take before the test fails.
pub const TIMEOUT: Duration = Duration::from_secs(15);

/// Variables of the test runner's own environment that would change restartd's behaviour.
const SCRUBBED: [&str; 8] = [
    "NOTIFY_SOCKET",
    "WATCHDOG_USEC",
    "WATCHDOG_PID",
    "RESTARTD_STATE_DIR",
    "RESTARTD_NAME",
    "RESTARTD_RESTARTS",
    "STATE_DIRECTORY",
    "NO_COLOR",
];

/// `tests/helpers/NAME`.
pub fn helper(name: &str) -> String {
    format!("{}/tests/helpers/{name}", env!("CARGO_MANIFEST_DIR"))
}

/// A `Command` for restartd with none of the runner's supervisor variables.
pub fn restartd() -> Command {
    let mut cmd = Command::new(BIN);
    for var in SCRUBBED {
        cmd.env_remove(var);
    }
    cmd
}

/// A test's own state directory, and the record of what the test ran in it.
pub struct Env {
    dir: tempfile::TempDir,
    log: RefCell<Vec<String>>,
    learned: RefCell<Vec<Learned>>,
}

impl Default for Env {
    fn default() -> Env {
        Env::new()
    }
}

impl Env {
    pub fn new() -> Env {
        Env {
            dir: tempfile::tempdir().unwrap(),
            log: RefCell::new(Vec::new()),
            learned: RefCell::new(Vec::new()),
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
        let mut cmd = restartd();
        cmd.arg("--state-dir").arg(self.state_dir()).args(args);
        cmd
    }

    /// Runs `restartd --state-dir DIR ARGS` to its end.
    pub fn run(&self, args: &[&str]) -> Output {
        self.run_cmd(self.command(args))
    }

    /// `restartd ARGS --state-dir DIR` (subcommands take the flag after their arguments).
    pub fn sub(&self, args: &[&str]) -> Output {
        let mut cmd = restartd();
        cmd.args(args).arg("--state-dir").arg(self.state_dir());
        self.run_cmd(cmd)
    }

    /// Runs any command to its end (in its own process group, killed after `TIMEOUT`) and
    /// keeps its description, status and stderr for the failure report.
    pub fn run_cmd(&self, cmd: Command) -> Output {
        let what = format!("{cmd:?}");
        let out = run_with_timeout(cmd, TIMEOUT);
        self.log.borrow_mut().push(format!(
            "$ {what}\n  {}\n  stdout: {}\n  stderr: {}",
            describe_status(out.status),
            indent(&String::from_utf8_lossy(&out.stdout)),
            indent(&String::from_utf8_lossy(&out.stderr)),
        ));
        out
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

    /// Waits for status `running` with a child pid; returns the pid, which is killed (with
    /// its group) when the test ends.
    pub fn wait_child(&self, name: &str) -> i32 {
        let s = self.wait_state(name, "a running child", |s| {
            s["status"] == "running" && s["child_pid"].is_i64()
        });
        let pid = s["child_pid"].as_i64().unwrap() as i32;
        self.also_kill(pid);
        pid
    }

    /// Kill `pid` (and its group, if it leads one) when the test ends.
    pub fn also_kill(&self, pid: i32) {
        self.learned.borrow_mut().push(Learned::new(pid));
    }

    /// Everything a failing test should show: the commands run, the state directory's listing,
    /// and every instance's `state.json` and last crash records.
    pub fn report(&self) -> String {
        let mut out = String::from("---- commands run ----\n");
        for entry in self.log.borrow().iter() {
            let _ = writeln!(out, "{entry}");
        }
        let _ = writeln!(out, "---- {} ----", self.state_dir().display());
        list(self.state_dir(), self.state_dir(), &mut out);
        out
    }
}

impl Drop for Env {
    fn drop(&mut self) {
        for learned in self.learned.borrow().iter() {
            learned.kill();
        }
        if std::thread::panicking() {
            eprintln!("{}", self.report());
        }
    }
}

/// A recursive listing with modes and sizes; `state.json` in full, `crashes.jsonl` tails.
fn list(root: &Path, dir: &Path, out: &mut String) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    let mut entries: Vec<_> = entries.filter_map(Result::ok).collect();
    entries.sort_by_key(|e| e.file_name());
    for entry in entries {
        let path = entry.path();
        let Ok(meta) = fs::symlink_metadata(&path) else {
            continue;
        };
        let rel = path
            .strip_prefix(root)
            .unwrap_or(&path)
            .display()
            .to_string();
        let _ = writeln!(
            out,
            "{:o} {:>8} {rel}",
            meta.permissions().mode() & 0o7777,
            meta.len()
        );
        if meta.is_dir() {
            list(root, &path, out);
            continue;
        }
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if name.starts_with("state.json") {
            let text = fs::read_to_string(&path).unwrap_or_default();
            let _ = writeln!(out, "  {}", indent(&text));
        } else if name == "crashes.jsonl" {
            let text = fs::read_to_string(&path).unwrap_or_default();
            let lines: Vec<&str> = text.lines().collect();
            for line in &lines[lines.len().saturating_sub(3)..] {
                let _ = writeln!(out, "  {line}");
            }
        }
    }
}

fn indent(text: &str) -> String {
    text.trim_end().replace('\n', "\n    ")
}

/// `exit 3`, `signal 9`, or `signal 11 (core dumped)`.
pub fn describe_status(status: ExitStatus) -> String {
    match (status.code(), status.signal()) {
        (Some(code), _) => format!("exit {code}"),
        (None, Some(sig)) if status.core_dumped() => format!("signal {sig} (core dumped)"),
        (None, Some(sig)) => format!("signal {sig}"),
        _ => format!("{status:?}"),
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
        if !*flag.lock().unwrap() {
            kill_group(pid);
        }
    });
    let out = child.wait_with_output().unwrap();
    *done.lock().unwrap() = true;
    kill_group(pid);
    out
}

pub fn kill_group(pgid: i32) {
    assert!(pgid > 1, "refusing to signal process group {pgid}");
    // SAFETY: signalling a process group a test created; ESRCH when it is gone.
    unsafe { nix::libc::kill(-pgid, nix::libc::SIGKILL) };
}

pub fn signal(pid: i32, sig: i32) {
    assert!(pid > 1, "refusing to signal pid {pid}");
    // SAFETY: signalling a process a test started.
    unsafe { nix::libc::kill(pid, sig) };
}

/// The fields of /proc/PID/stat after the command name: `[state, ppid, pgrp, …]`.
fn stat_fields(pid: i32) -> Option<Vec<String>> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &stat[stat.rfind(')')? + 2..];
    Some(rest.split_whitespace().map(String::from).collect())
}

/// Start time (clock ticks after boot): with the pid, it names one process for good.
fn start_time(pid: i32) -> Option<u64> {
    stat_fields(pid)?.get(19)?.parse().ok()
}

/// A process a test learned about but did not start, remembered with its start time so that a
/// pid the kernel has since given to another process is never signalled.
struct Learned {
    pid: i32,
    start: Option<u64>,
}

impl Learned {
    fn new(pid: i32) -> Learned {
        Learned {
            pid,
            start: start_time(pid),
        }
    }

    /// SIGKILLs the process, and its group if it still leads one.
    fn kill(&self) {
        if self.pid <= 1 || self.start.is_none() || start_time(self.pid) != self.start {
            return;
        }
        let leads = stat_fields(self.pid).is_some_and(|f| f[2] == self.pid.to_string());
        if leads {
            kill_group(self.pid);
        }
        signal(self.pid, nix::libc::SIGKILL);
    }
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

/// Zombie processes whose parent is `ppid`, from /proc.
pub fn zombies_of(ppid: i32) -> Vec<i32> {
    let Ok(dir) = fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.filter_map(|e| e.ok()?.file_name().to_str()?.parse::<i32>().ok())
        .filter(|pid| {
            let Ok(stat) = fs::read_to_string(format!("/proc/{pid}/stat")) else {
                return false;
            };
            let mut rest = stat[stat.rfind(')').unwrap() + 2..].split_whitespace();
            rest.next() == Some("Z") && rest.next() == Some(ppid.to_string().as_str())
        })
        .collect()
}

/// A restartd (or a wrapper around it) running in the background, in its own process group,
/// killed with that group, and with every pid handed to `also_kill`, when dropped. Its stdout
/// and stderr are collected as they come.
pub struct Running {
    child: Child,
    pub pid: i32,
    what: String,
    stdout: Arc<Stream>,
    stderr: Arc<Stream>,
    extra: Vec<Learned>,
    /// Its exit code once it ended (`Some(None)`: a signal). It stays unreaped, a zombie,
    /// until `Drop`: so its pid, which is its group's id, cannot be reused before the group
    /// is killed.
    ended: Option<Option<i32>>,
}

/// One of restartd's output streams as collected so far, and whether it has ended.
#[derive(Default)]
struct Stream {
    text: Mutex<String>,
    ended: AtomicBool,
}

fn collect(stream: impl Read + Send + 'static) -> Arc<Stream> {
    let collected = Arc::new(Stream::default());
    let sink = collected.clone();
    std::thread::spawn(move || {
        let mut reader = BufReader::new(stream);
        let mut line = String::new();
        while reader.read_line(&mut line).is_ok_and(|n| n > 0) {
            sink.text.lock().unwrap().push_str(&line);
            line.clear();
        }
        sink.ended.store(true, Ordering::Release);
    });
    collected
}

impl Running {
    pub fn spawn(mut cmd: Command) -> Running {
        let what = format!("{cmd:?}");
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
            what,
            stdout,
            stderr,
            extra: Vec::new(),
            ended: None,
        }
    }

    /// Also kill `pid` when the test ends (a process that left the group).
    pub fn also_kill(&mut self, pid: i32) {
        self.extra.push(Learned::new(pid));
    }

    pub fn stdout(&self) -> String {
        self.stdout.text.lock().unwrap().clone()
    }

    pub fn stderr(&self) -> String {
        self.stderr.text.lock().unwrap().clone()
    }

    /// Waits until stderr contains `needle` (restartd's lines reach the test through a thread
    /// of their own, later than the files and the child's output may).
    pub fn wait_stderr(&self, needle: &str) {
        let found = wait_until(needle, || self.stderr().contains(needle));
        assert!(
            found,
            "no stderr line with {needle:?}\nstderr:\n{}",
            self.stderr()
        );
    }

    /// Waits until stdout has a line containing `needle`; returns that line.
    pub fn wait_stdout(&self, needle: &str) -> String {
        self.wait_line(needle, |l| l.contains(needle))
    }

    /// Waits until stdout has a line that is exactly `line`.
    pub fn wait_line_eq(&self, line: &str) {
        self.wait_line(line, |l| l == line);
    }

    fn wait_line(&self, what: &str, pred: impl Fn(&str) -> bool) -> String {
        let mut found = None;
        let ok = wait_until(what, || {
            found = self.stdout().lines().find(|l| pred(l)).map(String::from);
            found.is_some()
        });
        assert!(
            ok,
            "no stdout line {what:?}\nstdout:\n{}\nstderr:\n{}",
            self.stdout(),
            self.stderr()
        );
        found.unwrap()
    }

    pub fn signal(&self, sig: i32) {
        signal(self.pid, sig);
    }

    /// Its exit code if it has exited (`Some(None)`: killed by a signal), without waiting.
    pub fn try_exit(&mut self) -> Option<Option<i32>> {
        use nix::sys::wait::{waitid, Id, WaitPidFlag, WaitStatus};
        if self.ended.is_none() {
            let flags = WaitPidFlag::WEXITED | WaitPidFlag::WNOHANG | WaitPidFlag::WNOWAIT;
            let pid = nix::unistd::Pid::from_raw(self.pid);
            self.ended = match waitid(Id::Pid(pid), flags).unwrap() {
                WaitStatus::Exited(_, code) => Some(Some(code)),
                WaitStatus::Signaled(..) => Some(None),
                _ => None,
            };
        }
        self.ended
    }

    /// Waits for restartd to exit; returns its status code (None: killed by a signal).
    pub fn wait_exit(&mut self) -> Option<i32> {
        let start = Instant::now();
        loop {
            if let Some(code) = self.try_exit() {
                // Its last lines are in the pipes still: read them before the test looks. A
                // process left holding the pipes is given 2 s.
                let read = Instant::now();
                while !(self.stdout.ended.load(Ordering::Acquire)
                    && self.stderr.ended.load(Ordering::Acquire))
                    && read.elapsed() < Duration::from_secs(2)
                {
                    std::thread::sleep(Duration::from_millis(5));
                }
                return code;
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
        // Not reaped yet, so the group id is still ours.
        kill_group(self.pid);
        for learned in &self.extra {
            learned.kill();
        }
        let status = self.child.wait().ok();
        if std::thread::panicking() {
            eprintln!(
                "---- {} ----\n  pid {}: {}\n  stdout: {}\n  stderr: {}",
                self.what,
                self.pid,
                status.map_or("unknown".into(), describe_status),
                indent(&self.stdout()),
                indent(&self.stderr()),
            );
        }
    }
}

/// The `ready pid=… pgid=… …` line of print_signals.py as (key, value) pairs.
pub fn ready_fields(line: &str) -> std::collections::HashMap<String, String> {
    line.split_whitespace()
        .filter_map(|kv| kv.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// Waits until `pid` has settled: no wakeup for 1.5 s (up to 10 s); returns its count of
/// voluntary context switches then.
pub fn wait_quiet(pid: i32, what: &str) -> u64 {
    let switches = || {
        proc_field(pid, "voluntary_ctxt_switches")
            .unwrap()
            .parse::<u64>()
            .unwrap()
    };
    let settled = Instant::now() + Duration::from_secs(10);
    let mut before = switches();
    loop {
        std::thread::sleep(Duration::from_millis(1500));
        let now = switches();
        if now == before {
            return now;
        }
        assert!(Instant::now() < settled, "restartd keeps waking up {what}");
        before = now;
    }
}

/// Asserts that `pid` makes no wakeup for 2 s, once it has settled (its child started, its
/// first writes done).
pub fn assert_no_wakeups(pid: i32, what: &str) {
    let before = wait_quiet(pid, what);
    // Nothing to wait for here: the point is that nothing happens.
    std::thread::sleep(Duration::from_secs(2));
    let after: u64 = proc_field(pid, "voluntary_ctxt_switches")
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(after, before, "restartd woke up {what}");
}

/// Whether `unshare --pid --fork --mount-proc` works here; the reason if not.
pub fn unshare_refused() -> Option<String> {
    match Command::new("unshare")
        .args(["--pid", "--fork", "--mount-proc", "true"])
        .output()
    {
        Err(e) => Some(format!("unshare cannot run: {e}")),
        Ok(out) if out.status.success() => None,
        Ok(out) => {
            let err = String::from_utf8_lossy(&out.stderr).into_owned();
            assert!(
                err.contains("Operation not permitted") || err.contains("Permission denied"),
                "unshare failed for another reason than a permission: {err}"
            );
            Some(err.trim().to_string())
        }
    }
}

/// A tmpfs mounted by the test, unmounted when dropped (also when the test fails).
pub struct Tmpfs {
    pub path: PathBuf,
}

impl Tmpfs {
    /// Mounts a tmpfs of `size` at `path`; `Err` says why it could not.
    pub fn mount(path: &Path, size: &str) -> Result<Tmpfs, String> {
        fs::create_dir_all(path).unwrap();
        let out = Command::new("mount")
            .args([
                "-t",
                "tmpfs",
                "-o",
                &format!("size={size},mode=0700"),
                "tmpfs",
            ])
            .arg(path)
            .output()
            .map_err(|e| format!("unable to run mount: {e}"))?;
        if !out.status.success() {
            return Err(String::from_utf8_lossy(&out.stderr).trim().to_string());
        }
        Ok(Tmpfs {
            path: path.to_path_buf(),
        })
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let out = Command::new("umount").arg(&self.path).output();
        if !out.as_ref().is_ok_and(|o| o.status.success()) {
            // Something still holds it: detach it so it goes once free.
            let _ = Command::new("umount").arg("-l").arg(&self.path).status();
        }
    }
}

/// Fills the filesystem holding `dir` until a write fails with ENOSPC.
pub fn fill(dir: &Path) {
    use std::io::Write;
    let mut f = fs::File::create(dir.join("filler")).unwrap();
    let block = vec![0u8; 64 * 1024];
    loop {
        match f.write(&block) {
            Ok(0) => break,
            Ok(_) => {}
            Err(e) if e.raw_os_error() == Some(nix::libc::ENOSPC) => break,
            Err(e) => panic!("filling {}: {e}", dir.display()),
        }
    }
    // Small writes too, until not one byte fits.
    while f.write(&[0u8; 512]).is_ok_and(|n| n > 0) {}
}

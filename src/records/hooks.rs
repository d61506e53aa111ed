//! `--on-crash` and `--on-give-up`: `sh -c CMD` run asynchronously after a crash record, with the
//! record as one JSON line on stdin and its key facts in `RESTARTD_*` variables.
//!
//! Crash data never goes into the command string, so nothing a crashing program prints can run.
//! A hook is killed (its whole group) after `TIMEOUT`; its failure is reported and never changes
//! supervision. `--alert-limit N/DUR` limits `--on-crash` over a sliding window; `--on-give-up`
//! is never limited. The event loop reaps hooks and waits for them before exiting.

use std::collections::VecDeque;
use std::ffi::OsString;
use std::io;
use std::os::fd::AsFd;
use std::time::{Duration, Instant};

use nix::libc;

use crate::base::exit::ProcessEnd;
use crate::base::files;
use crate::base::values::AlertLimit;
use crate::process::child::{self, Exec, Output};
use crate::process::procs;
use crate::process::signals::Inherited;
use crate::records::crashlog::CrashRecord;

/// A hook still running after this long is killed.
pub const TIMEOUT: Duration = Duration::from_secs(30);

/// Which hook.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event {
    Crash,
    GiveUp,
}

impl Event {
    fn as_str(self) -> &'static str {
        match self {
            Event::Crash => "crash",
            Event::GiveUp => "give-up",
        }
    }

    fn flag(self) -> &'static str {
        match self {
            Event::Crash => "--on-crash",
            Event::GiveUp => "--on-give-up",
        }
    }
}

struct Running {
    pid: i32,
    event: Event,
    deadline: Instant,
    /// The hook's stdout and stderr (`OUTPUT_LIMIT`), passed on when it ends.
    output: std::fs::File,
}

/// A hook's stdout and stderr go to an anonymous file of this size, never to restartd's own
/// stderr, which a stalled reader could leave full (the hook would block there and be killed,
/// its alert lost; SPEC §7). A write beyond it fails at once; what was written is passed on
/// through restartd's never-blocking stderr when the hook ends.
pub const OUTPUT_LIMIT: u64 = 64 * 1024;

/// A hook that ended: what it wrote, and what to report.
#[derive(Debug)]
pub struct Ended {
    pub output: Vec<u8>,
    pub problems: Vec<String>,
}

/// The configured hooks and the ones running.
pub struct Hooks {
    on_crash: Option<String>,
    on_give_up: Option<String>,
    limit: AlertLimit,
    /// When crash hooks ran, inside the limit's window.
    recent: VecDeque<Instant>,
    /// Crash hooks skipped since the last one ran.
    suppressed: u32,
    running: Vec<Running>,
    /// The process groups hooks were started in (each leads its own), kept while any process of
    /// the group may live: a hook's background job (`curl … &`) stays in it when the hook's shell
    /// is gone, and is restartd's, not the child's. Each with its shell's start time: the id is
    /// the shell's pid, which the kernel may hand to another process once the group emptied.
    groups: Vec<(i32, Option<u64>)>,
    /// The signal state restartd inherited, which hooks get back as the child does.
    inherited: Inherited,
}

impl Hooks {
    /// Hooks as configured; none run yet.
    pub fn new(
        on_crash: Option<String>,
        on_give_up: Option<String>,
        limit: AlertLimit,
        inherited: Inherited,
    ) -> Hooks {
        Hooks {
            on_crash,
            on_give_up,
            limit,
            recent: VecDeque::new(),
            suppressed: 0,
            running: Vec::new(),
            groups: Vec::new(),
            inherited,
        }
    }

    /// Runs the hooks for a crash record; returns messages to report (failures to start).
    pub fn fire(
        &mut self,
        record: &CrashRecord,
        give_up: bool,
        name: &str,
        now: Instant,
    ) -> Vec<String> {
        let mut problems = Vec::new();
        if let Some(cmd) = self.on_crash.clone() {
            while self
                .recent
                .front()
                .is_some_and(|&t| now.duration_since(t) >= self.limit.per)
            {
                self.recent.pop_front();
            }
            // A new error is always told (SPEC §7): it still counts against the limit.
            if self.recent.len() < self.limit.count as usize || record.first_seen {
                self.recent.push_back(now);
                let suppressed = std::mem::take(&mut self.suppressed);
                if let Err(e) = self.start(&cmd, Event::Crash, record, suppressed, name, now) {
                    problems.push(e);
                }
            } else {
                self.suppressed += 1;
            }
        }
        if give_up {
            if let Some(cmd) = self.on_give_up.clone() {
                if let Err(e) = self.start(&cmd, Event::GiveUp, record, self.suppressed, name, now)
                {
                    problems.push(e);
                }
            }
        }
        problems
    }

    fn start(
        &mut self,
        cmd: &str,
        event: Event,
        record: &CrashRecord,
        suppressed: u32,
        name: &str,
        now: Instant,
    ) -> Result<(), String> {
        let spawn = || -> io::Result<(i32, std::fs::File)> {
            let output = files::bounded_memfd(c"restartd-hook-output", OUTPUT_LIMIT)?;
            let mut line = serde_json::to_vec(record).map_err(io::Error::other)?;
            line.push(b'\n');
            let stdin = files::memfd(c"restartd-hook", &line)?;
            let opt = |v: Option<String>| v.unwrap_or_default();
            let env = [
                ("RESTARTD_EVENT", event.as_str().to_string()),
                ("RESTARTD_NAME", name.to_string()),
                ("RESTARTD_CRASH_ID", record.id.clone()),
                ("RESTARTD_REASON", record.reason.clone()),
                (
                    "RESTARTD_EXIT_CODE",
                    opt(record.exit_code.map(|c| c.to_string())),
                ),
                ("RESTARTD_SIGNAL", opt(record.signal.clone())),
                ("RESTARTD_RESTARTS", record.restarts.to_string()),
                ("RESTARTD_ACTION", record.action.clone()),
                ("RESTARTD_FINGERPRINT", opt(record.fingerprint.clone())),
                (
                    "RESTARTD_FIRST_SEEN",
                    u8::from(record.first_seen).to_string(),
                ),
                ("RESTARTD_SUPPRESSED", suppressed.to_string()),
            ]
            .map(|(k, v)| (OsString::from(k), OsString::from(v)));
            let argv = ["/bin/sh", "-c", cmd].map(OsString::from);
            let launched = child::launch(
                &Exec {
                    argv: &argv,
                    env: &env,
                    remove: &[],
                    watchdog_pid: false,
                    listen: None,
                    stdin: Some(stdin.as_fd()),
                    stdout: Output::To(output.as_fd()),
                    stderr: Output::To(output.as_fd()),
                    // None: a hook outlives a restartd that is killed, so the alert it carries
                    // (a give-up's above all, SPEC §7) is still delivered.
                    death_signal: None,
                },
                self.inherited,
            )?;
            Ok((launched.pid, output))
        };
        match spawn() {
            Ok((pid, output)) => {
                // Not reaped yet: the pid is the shell's.
                self.groups.push((pid, procs::start_time(pid)));
                self.running.push(Running {
                    pid,
                    event,
                    deadline: now + TIMEOUT,
                    output,
                });
                Ok(())
            }
            Err(e) => Err(format!("{} hook could not start: {e}", event.flag())),
        }
    }

    /// Whether `pid` is a running hook.
    pub fn owns(&self, pid: i32) -> bool {
        self.running.iter().any(|r| r.pid == pid)
    }

    /// Whether `pgid` is the process group of a hook (its shell or what it left running). Only
    /// a group that has a process now counts, and only while pid `pgid` names no process or
    /// the shell: a group that emptied gave its id back, and the process that got it since may
    /// lead a group of its own (a process of the child's). One that got it and left a group
    /// without its leader is not told apart.
    pub fn owns_group(&self, pgid: i32) -> bool {
        self.groups
            .iter()
            .any(|&(g, start)| g == pgid && hook_group(g, start))
    }

    /// Forgets the hook groups with no process left, or whose id another process took.
    pub fn forget_empty_groups(&mut self) {
        self.groups.retain(|&(g, start)| hook_group(g, start));
    }

    /// A hook was reaped: what it wrote, and a message when it failed or wrote too much.
    pub fn reaped(&mut self, pid: i32, end: ProcessEnd) -> Option<Ended> {
        let i = self.running.iter().position(|r| r.pid == pid)?;
        let hook = self.running.swap_remove(i);
        let flag = hook.event.flag();
        let mut problems = Vec::new();
        let output = match files::written(&hook.output) {
            Ok((output, room)) => {
                // A write that does not fit is refused whole: less room than a pipe's atomic
                // write (what a shell's echo or a buffered stdio flush takes) is taken as full.
                if room < libc::PIPE_BUF as u64 {
                    problems.push(format!(
                        "{flag} hook's output reached its {} KiB limit; what it wrote later was refused and is lost",
                        OUTPUT_LIMIT / 1024
                    ));
                }
                output
            }
            Err(e) => {
                problems.push(format!("{flag} hook's output could not be read: {e}"));
                Vec::new()
            }
        };
        if end != ProcessEnd::Exited(0) {
            problems.push(format!("{flag} hook failed: {}", end.describe()));
        }
        Some(Ended { output, problems })
    }

    /// When the next running hook times out.
    pub fn deadline(&self) -> Option<Instant> {
        self.running.iter().map(|r| r.deadline).min()
    }

    /// Kills the hooks past their deadline (their whole group); returns what to report.
    pub fn kill_overdue(&mut self, now: Instant) -> Vec<String> {
        let mut msgs = Vec::new();
        for hook in self.running.iter_mut().filter(|r| r.deadline <= now) {
            procs::signal_group(hook.pid, libc::SIGKILL);
            // Reaped later; do not kill twice.
            hook.deadline = now + Duration::from_secs(3600);
            msgs.push(format!(
                "{} hook ran longer than {}s and was killed",
                hook.event.flag(),
                TIMEOUT.as_secs()
            ));
        }
        msgs
    }

    /// Whether no hook runs.
    pub fn idle(&self) -> bool {
        self.running.is_empty()
    }
}

/// Whether group `pgid`, led by a hook's shell that started at `start`, is still that hook's.
/// A start that could not be read is no proof of another process: the group is the hook's.
fn hook_group(pgid: i32, start: Option<u64>) -> bool {
    procs::group_alive(pgid) && procs::start_time(pgid).is_none_or(|t| start.is_none_or(|s| s == t))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record() -> CrashRecord {
        serde_json::from_value(serde_json::json!({
            "id": "i", "name": "n", "time": "t", "reason": "exit", "exit_code": 1, "signal": null,
            "core_dumped": false, "expected": false, "pid": 1, "uptime_ms": 0, "restarts": 0,
            "action": "restart", "next_delay_ms": 0, "error_type": null, "error_message": null,
            "stack_trace": null, "stderr_tail": null, "max_rss_kb": null, "user_cpu_ms": null,
            "sys_cpu_ms": null, "command": [], "cwd": null, "host": null,
            "restartd_version": "0", "detail": null
        }))
        .unwrap()
    }

    #[test]
    fn a_hung_hook_is_killed_at_its_deadline() {
        let limit = AlertLimit {
            count: 1,
            per: Duration::from_secs(60),
        };
        let mut hooks = Hooks::new(Some("sleep 100".into()), None, limit, Inherited::capture());
        let now = Instant::now();
        assert!(hooks.fire(&record(), false, "n", now).is_empty());
        assert_eq!(hooks.deadline(), Some(now + TIMEOUT));
        let pid = hooks.running[0].pid;
        assert!(hooks
            .kill_overdue(now + TIMEOUT - Duration::from_secs(1))
            .is_empty());
        let killed = hooks.kill_overdue(now + TIMEOUT);
        assert_eq!(
            killed,
            ["--on-crash hook ran longer than 30s and was killed"]
        );
        let status = nix::sys::wait::waitpid(nix::unistd::Pid::from_raw(pid), None).unwrap();
        assert!(matches!(
            status,
            nix::sys::wait::WaitStatus::Signaled(_, nix::sys::signal::Signal::SIGKILL, _)
        ));
        let end = ProcessEnd::Signaled {
            signal: libc::SIGKILL,
            core_dumped: false,
        };
        assert_eq!(
            hooks.reaped(pid, end).unwrap().problems,
            ["--on-crash hook failed: signal SIGKILL"]
        );
        assert!(hooks.idle());
        // The limit holds: a second crash inside the minute runs nothing and is counted.
        hooks.fire(&record(), false, "n", now + Duration::from_secs(1));
        assert!(hooks.idle());
        assert_eq!(hooks.suppressed, 1);
    }

    /// A hook's group id is the pid of its shell: once the group has emptied, the kernel may
    /// hand that pid to another process, which may lead a group of its own.
    #[test]
    fn a_hooks_group_id_taken_by_another_process_is_not_the_hooks() {
        if !nix::unistd::geteuid().is_root() {
            eprintln!("skipped: not root: cannot write /proc/sys/kernel/ns_last_pid");
            return;
        }
        let limit = AlertLimit {
            count: 1,
            per: Duration::from_secs(60),
        };
        let mut hooks = Hooks::new(
            Some("exec sleep 100".into()),
            None,
            limit,
            Inherited::capture(),
        );
        let now = Instant::now();
        assert!(hooks.fire(&record(), false, "n", now).is_empty());
        let group = hooks.running[0].pid;
        let started = procs::start_time(group).unwrap();
        assert!(hooks.owns_group(group));
        hooks.kill_overdue(now + TIMEOUT);
        nix::sys::wait::waitpid(nix::unistd::Pid::from_raw(group), None).unwrap();
        // The group's id is free once it has no process, zombies too (polled: no event says so).
        let deadline = Instant::now() + Duration::from_secs(10);
        while procs::group_alive(group) {
            assert!(
                Instant::now() < deadline,
                "group {group} outlived its shell"
            );
            std::thread::sleep(Duration::from_millis(2));
        }
        // A start time counts clock ticks: the next process must start in a later one, as it
        // does when the kernel comes round to the pid.
        while procs::now_ticks() <= started {
            // Nothing to wait on: the clock's next tick, at most 10 ms away.
            std::thread::sleep(Duration::from_millis(2));
        }
        // Handed on at once (the kernel comes round to it after kernel.pid_max pids): another
        // process that forks in between takes it, then again.
        let mut other = None;
        for _ in 0..20 {
            std::fs::write("/proc/sys/kernel/ns_last_pid", (group - 1).to_string()).unwrap();
            let mut cmd = std::process::Command::new("sleep");
            cmd.arg("100");
            std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
            let mut spawned = cmd.spawn().unwrap();
            if spawned.id() as i32 == group {
                other = Some(spawned);
                break;
            }
            spawned.kill().unwrap();
            spawned.wait().unwrap();
        }
        let Some(mut other) = other else {
            eprintln!("skipped: pid {group} was taken by another process each time");
            return;
        };
        let owned = hooks.owns_group(group);
        other.kill().unwrap();
        other.wait().unwrap();
        assert!(
            !owned,
            "group {group}, another process's, taken for the hook's"
        );
    }

    /// A hook whose shell's start time could not be read when it was spawned (restartd out of
    /// file descriptors): its group is still the hook's, as before start times were kept.
    #[test]
    fn a_hooks_group_with_no_start_time_known_is_the_hooks() {
        let limit = AlertLimit {
            count: 1,
            per: Duration::from_secs(60),
        };
        let mut hooks = Hooks::new(None, None, limit, Inherited::capture());
        let mut cmd = std::process::Command::new("sleep");
        cmd.arg("100");
        std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
        let mut shell = cmd.spawn().unwrap();
        let group = shell.id() as i32;
        hooks.groups.push((group, None));
        let owned = hooks.owns_group(group);
        shell.kill().unwrap();
        shell.wait().unwrap();
        assert!(owned, "group {group}, the hook's, not taken for the hook's");
    }

    /// A hook's output goes to its own bounded file, read back when it ends.
    #[test]
    fn a_hooks_output_is_kept_and_bounded() {
        let limit = AlertLimit {
            count: 5,
            per: Duration::from_secs(60),
        };
        let cmd = "echo out; echo err >&2; head -c 70000 /dev/zero | tr '\\0' x; exit 0";
        let mut hooks = Hooks::new(Some(cmd.into()), None, limit, Inherited::capture());
        assert!(hooks.fire(&record(), false, "n", Instant::now()).is_empty());
        let pid = hooks.running[0].pid;
        let status = nix::sys::wait::waitpid(nix::unistd::Pid::from_raw(pid), None).unwrap();
        assert!(matches!(status, nix::sys::wait::WaitStatus::Exited(_, 0)));
        let ended = hooks.reaped(pid, ProcessEnd::Exited(0)).unwrap();
        assert!(ended.output.starts_with(b"out\nerr\nxxx"));
        assert!(ended.output.len() as u64 > OUTPUT_LIMIT - 4096);
        assert_eq!(
            ended.problems,
            ["--on-crash hook's output reached its 64 KiB limit; what it wrote later was refused and is lost"]
        );
    }
}

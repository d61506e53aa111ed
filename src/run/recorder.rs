//! What restartd writes about the child: the crash record of each end (on disk before anything
//! acts on the crash), the hooks that carry it to an alert, the line restartd prints, and
//! `state.json` (saved once a turn when it changed).

use std::time::SystemTime;

use serde_json::Map;

use crate::base::exit::{signal_name, ProcessEnd};
use crate::base::values::fmt_duration;
use crate::observe::Observe;
use crate::process::procs::{self, Usage};
use crate::process::signals::Inherited;
use crate::process::tail::Tail;
use crate::records::crashlog::{self, CrashLog, CrashRecord};
use crate::records::fingerprint::fingerprint;
use crate::records::hooks::Hooks;
use crate::records::known::Known;
use crate::records::state::{self, LastExitJson, Proc, SocketJson, StateFile, StateWriter};
use crate::records::traceback;
use crate::run::log::{Level, Logger};
use crate::run::monitors::Monitors;
use crate::supervise::config::Config;
use crate::supervise::machine::{EndReport, Machine, Now, Outcome, Reason};
use crate::supervise::policy::Verdict;

/// The crash log, `state.json` and the hooks, with what every record carries.
pub struct Recorder {
    cfg: Config,
    crash_log: CrashLog,
    /// The fingerprints of every error recorded so far, for `first_seen`.
    known: Known,
    writer: StateWriter,
    pub hooks: Hooks,
    /// The record of the child's last end, if it got one.
    last_crash_id: Option<String>,
    crash_seq: u64,
    /// restartd's pid, start, host name and working directory (the child's too), read once.
    pid: u32,
    started_at: SystemTime,
    host: Option<String>,
    cwd: Option<String>,
    /// This boot's id, read once, recorded beside the pids and start times (`boot_id`).
    boot_id: Option<String>,
    /// `state.json` changed since it was last saved.
    dirty: bool,
    /// The child's tree as last seen (`state.json`'s `leftovers`), set by the loop before a save.
    pub tree: Vec<Proc>,
    /// The `--socket`s held, as `state.json` shows them.
    pub sockets: Vec<SocketJson>,
}

impl Recorder {
    pub fn new(
        cfg: Config,
        crash_log: CrashLog,
        known: Known,
        writer: StateWriter,
        inherited: Inherited,
        started_at: SystemTime,
    ) -> Recorder {
        let hooks = Hooks::new(
            cfg.on_crash.clone(),
            cfg.on_give_up.clone(),
            cfg.alert_limit,
            inherited,
        );
        Recorder {
            cfg,
            crash_log,
            known,
            writer,
            hooks,
            last_crash_id: None,
            crash_seq: 0,
            pid: std::process::id(),
            started_at,
            host: nix::unistd::gethostname()
                .ok()
                .map(|h| h.to_string_lossy().into_owned()),
            cwd: std::env::current_dir()
                .ok()
                .map(|d| d.to_string_lossy().into_owned()),
            boot_id: procs::boot_id(),
            dirty: false,
            tree: Vec::new(),
            sockets: Vec::new(),
        }
    }

    /// `state.json` changed; it is saved before the loop next blocks.
    pub fn changed(&mut self) {
        self.dirty = true;
    }

    /// Whether `state.json` waits to be saved.
    pub fn dirty(&self) -> bool {
        self.dirty
    }

    /// An end of the child: write its crash record durably (before any later action), run the
    /// hooks, and say what happened. Returns the error recognised in the crash record
    /// (`TYPE: message`), if any.
    pub fn ended(
        &mut self,
        r: &EndReport,
        now: Now,
        tail: &Tail,
        usage: Option<Usage>,
        log: &mut Logger,
        observe: Option<&mut Observe>,
    ) -> Option<String> {
        let record = r.crash.then(|| self.crash_record(r, now, tail, usage));
        let recognised =
            record
                .as_ref()
                .and_then(|rec| match (&rec.error_type, &rec.error_message) {
                    (Some(t), Some(m)) => Some(format!("{t}: {m}")),
                    (Some(t), None) => Some(t.clone()),
                    (None, Some(m)) => Some(m.clone()),
                    (None, None) => None,
                });
        // `last_exit.crash_id` names a record only once it is in the file: one that could not
        // be written (a full disk) is named nowhere.
        self.last_crash_id = None;
        if let Some(rec) = &record {
            let written = match self.crash_log.append(rec) {
                Ok(true) => {
                    self.last_crash_id = Some(rec.id.clone());
                    true
                }
                Ok(false) => false,
                Err(problem) => {
                    log.warn(&problem);
                    false
                }
            };
            // Remembered once its record is written: a record lost to a full disk leaves the
            // error new for the next one.
            let new = rec
                .fingerprint
                .as_deref()
                .filter(|_| rec.first_seen && written);
            if let Some(f) = new {
                if let Err(problem) = self.known.insert(f) {
                    log.warn(&problem);
                }
            }
            if let Some(observe) = observe {
                observe.crashed(rec);
            }
        }
        let (level, msg) = end_line(r, &self.cfg, recognised.as_deref());
        let mut fields = Map::new();
        fields.insert("event".into(), r.outcome.action().into());
        fields.insert("reason".into(), r.reason.as_str().into());
        if let Some(pid) = r.pid {
            fields.insert("pid".into(), pid.into());
        }
        if let Some(end) = r.end {
            fields.insert("exit_code".into(), end.code().into());
            fields.insert("signal".into(), end.signal().map(signal_name).into());
        }
        fields.insert("uptime_ms".into(), (r.uptime.as_millis() as u64).into());
        fields.insert("restarts".into(), r.restarts.into());
        if let Outcome::Restart { delay, .. } = r.outcome {
            fields.insert("next_delay_ms".into(), (delay.as_millis() as u64).into());
        }
        if let Some(rec) = &record {
            fields.insert("crash_id".into(), rec.id.clone().into());
            fields.insert("error_type".into(), rec.error_type.clone().into());
            fields.insert("error_message".into(), rec.error_message.clone().into());
        }
        if let Some(detail) = &r.detail {
            fields.insert("detail".into(), detail.clone().into());
        }
        let always = !matches!(r.outcome, Outcome::Restart { .. });
        log.crash(now.mono, level, &msg, fields, always);
        if let Some(rec) = &record {
            let give_up = matches!(r.outcome, Outcome::GiveUp { .. });
            for problem in self.hooks.fire(rec, give_up, &self.cfg.name, now.mono) {
                log.warn(&problem);
            }
        }
        recognised
    }

    fn crash_record(
        &mut self,
        r: &EndReport,
        now: Now,
        tail: &Tail,
        usage: Option<Usage>,
    ) -> CrashRecord {
        self.crash_seq += 1;
        let lines = tail.last_lines(self.cfg.tail_lines);
        // The recogniser sees the whole kept tail (64 KiB), not only the stored lines, so a long
        // Java or Go trace keeps the header line that names the error.
        // A death by signal is explained only by a recognised report (SPEC §6).
        let by_signal = !matches!(r.end, Some(ProcessEnd::Exited(_)));
        let found = match lines {
            Some(_) => traceback::recognise_end(&tail.bytes(), by_signal),
            None => traceback::Recognised::default(),
        };
        let usage = usage.filter(|_| r.end.is_some());
        let fingerprint = fingerprint(
            found.error_type.as_deref(),
            found.error_message.as_deref(),
            found.stack_trace.as_deref(),
        );
        let first_seen = fingerprint
            .as_deref()
            .is_some_and(|f| !self.known.contains(f));
        CrashRecord {
            id: crashlog::new_id(now.wall, self.pid, self.crash_seq),
            name: self.cfg.name.clone(),
            time: state::rfc3339(r.at),
            reason: r.reason.as_str().into(),
            exit_code: r.end.and_then(ProcessEnd::code),
            signal: r.end.and_then(ProcessEnd::signal).map(signal_name),
            core_dumped: matches!(
                r.end,
                Some(ProcessEnd::Signaled {
                    core_dumped: true,
                    ..
                })
            ),
            expected: r.expected,
            pid: r.pid,
            uptime_ms: r.uptime.as_millis() as u64,
            restarts: r.restarts,
            action: r.outcome.action().into(),
            next_delay_ms: match r.outcome {
                Outcome::Restart { delay, .. } => Some(delay.as_millis() as u64),
                _ => None,
            },
            error_type: found.error_type,
            error_message: found.error_message,
            fingerprint,
            first_seen,
            stack_trace: found.stack_trace,
            stderr_tail: lines.map(|t| String::from_utf8_lossy(&t).into_owned()),
            max_rss_kb: usage.map(|u| u.max_rss_kb),
            user_cpu_ms: usage.map(|u| u.user_cpu_ms),
            sys_cpu_ms: usage.map(|u| u.sys_cpu_ms),
            command: self.cfg.command_lossy(),
            cwd: self.cwd.clone(),
            host: self.host.clone(),
            restartd_version: env!("CARGO_PKG_VERSION").into(),
            detail: r.detail.clone(),
            labels: self.cfg.labels.clone(),
        }
    }

    /// `reset --crashes` on the running instance: removes the crash files and the known
    /// fingerprints; the next record starts a new `crashes.jsonl`. `Err` says what could not be
    /// removed.
    pub fn clear_crashes(&mut self) -> Result<(), String> {
        // The record `last_exit.crash_id` named is gone with the history.
        self.last_crash_id = None;
        self.crash_log.clear()?;
        self.known
            .clear()
            .map_err(|e| format!("unable to remove the known errors: {e}"))
    }

    /// Saves `state.json` if it changed, and tells `--metrics-file`.
    pub fn save_if_dirty(
        &mut self,
        machine: &Machine,
        monitors: &Monitors,
        log: &Logger,
        observe: Option<&mut Observe>,
    ) {
        if !self.dirty {
            return;
        }
        self.dirty = false;
        let state = self.state_file(machine, monitors);
        match self.writer.save(&state) {
            Ok(Some(again)) => log.info(&again),
            Ok(None) => {}
            Err(problem) => log.warn(&problem),
        }
        if let Some(observe) = observe {
            if let Err(problem) = observe.saved(&state, !state.status.is_final()) {
                log.warn(&problem);
            }
        }
    }

    /// `state.json` as it stands.
    pub fn state_file(&self, m: &Machine, monitors: &Monitors) -> StateFile {
        let window = m.window();
        StateFile {
            version: state::VERSION,
            name: self.cfg.name.clone(),
            command: self.cfg.command_lossy(),
            status: m.status(),
            supervisor_pid: self.pid,
            child_pid: m.child_pid(),
            started_at: state::rfc3339(self.started_at),
            child_started_at: m.child_started_at().map(state::rfc3339),
            restarts: m.restarts_total(),
            scheduled_restarts: m.scheduled_restarts(),
            recent_restarts: window.times().map(state::rfc3339).collect(),
            max_restarts: window.max(),
            window_secs: window.window().as_secs(),
            last_exit: m.last_exit().map(|last| LastExitJson {
                code: last.end.and_then(ProcessEnd::code),
                signal: last.end.and_then(ProcessEnd::signal).map(signal_name),
                reason: last.reason.as_str().into(),
                at: state::rfc3339(last.at),
                crash_id: self.last_crash_id.clone(),
            }),
            next_restart_at: m.next_restart_at().map(state::rfc3339),
            health: monitors.health_state().map(|h| h.as_str().to_string()),
            // Readiness is known with --notify or a health check (SPEC §13); else null.
            ready: (monitors.notify.is_some() || monitors.health_state().is_some())
                .then(|| m.ready()),
            status_text: monitors.status_text.clone(),
            updated_at: state::rfc3339(SystemTime::now()),
            labels: self.cfg.labels.clone(),
            leftovers: self.tree.clone(),
            sockets: self.sockets.clone(),
            reloads: m.reloads(),
            boot_id: self.boot_id.clone(),
            log_file: self
                .cfg
                .log_file
                .as_ref()
                .map(|l| l.path.to_string_lossy().into_owned()),
        }
    }
}

/// The line restartd prints for an end, and its level.
fn end_line(r: &EndReport, cfg: &Config, error: Option<&str>) -> (Level, String) {
    let mut how = match r.end {
        Some(ProcessEnd::Exited(code)) => format!("exited with code {code}"),
        Some(end @ ProcessEnd::Signaled { .. }) => format!("killed by {}", end.describe()),
        None => String::new(),
    };
    if r.reason == Reason::Oom {
        how.push_str(" (out of memory: the kernel's OOM killer)");
    }
    // A start timeout is restartd's own decision, with no warning before the end (unhealthy,
    // watchdog and memory have theirs): the line says why.
    let error = match (error, r.reason) {
        (Some(e), _) => format!(" ({})", one_line(e)),
        (None, Reason::StartTimeout) => r
            .detail
            .as_deref()
            .map_or(String::new(), |d| format!(" ({})", one_line(d))),
        (None, _) => String::new(),
    };
    let after = match r.end {
        Some(_) => format!("{how} after {}{error}", fmt_duration(r.uptime)),
        // A start that failed for a reason that can pass (SPEC §3).
        None => format!(
            "cannot start '{}': {}",
            cfg.command[0].to_string_lossy(),
            r.detail.as_deref().unwrap_or("unknown error")
        ),
    };
    match r.outcome {
        Outcome::Restart {
            n,
            max,
            window,
            delay,
        } => {
            let of = max.map_or(String::new(), |m| {
                format!(" of {m} in {}", fmt_duration(window))
            });
            (
                Level::Info,
                format!("{after}; restart {n}{of}, next in {}", fmt_duration(delay)),
            )
        }
        Outcome::GiveUp { count, max, window } => {
            let last = match r.end {
                Some(end) => format!("{} after {}", end.describe(), fmt_duration(r.uptime)),
                None => after.clone(),
            };
            let why = if max == 0 {
                "--max-restarts is 0".to_string()
            } else {
                format!(
                    "{count} restarts in the last {} (limit {max})",
                    fmt_duration(window)
                )
            };
            (Level::Warn, format!("giving up: {why}; last exit: {last}"))
        }
        Outcome::Exit(None) => {
            let cmd = cfg.command[0].to_string_lossy();
            let detail = r.detail.as_deref().unwrap_or("unknown error");
            (Level::Error, format!("cannot start '{cmd}': {detail}"))
        }
        Outcome::Exit(Some(Verdict::NoRestartCode(code))) => (
            Level::Info,
            format!("{after}; not restarting: code {code} is in --no-restart-exit-codes"),
        ),
        Outcome::Exit(Some(_)) => (
            Level::Info,
            format!(
                "{after}; not restarting (--restart {})",
                cfg.settings.policy.as_str()
            ),
        ),
        Outcome::Stopped {
            killed: true,
            hurried: true,
        } => (
            Level::Warn,
            "stopped: the child was killed (SIGKILL) by a second stop request".to_string(),
        ),
        Outcome::Stopped {
            killed: true,
            hurried: false,
        } => (
            Level::Warn,
            format!(
                "stopped: the child did not exit within --stop-timeout {} and was killed",
                fmt_duration(cfg.settings.stop_timeout)
            ),
        ),
        Outcome::Stopped { killed: false, .. } => (Level::Info, format!("stopped: child {after}")),
        Outcome::Restarted => (Level::Info, format!("restarting on request: child {after}")),
        Outcome::KeepOld => (
            Level::Warn,
            format!("reload failed: the new child {after}; the old child keeps running"),
        ),
        Outcome::Replaced => (Level::Info, format!("reload: the old child {how}")),
        Outcome::Scheduled => {
            let s = &cfg.settings;
            let jitter = match s.max_runtime_jitter.is_zero() {
                true => String::new(),
                false => format!(" + up to {}", fmt_duration(s.max_runtime_jitter)),
            };
            let max = fmt_duration(s.max_runtime.unwrap_or_default());
            (
                Level::Info,
                format!("scheduled restart (--max-runtime {max}{jitter}): child {after}"),
            )
        }
    }
}

/// The first line of `text`, at most 200 characters, for a log line.
fn one_line(text: &str) -> String {
    let line = text.lines().next().unwrap_or("");
    match line.char_indices().nth(200) {
        Some((i, _)) => format!("{}…", &line[..i]),
        None => line.to_string(),
    }
}

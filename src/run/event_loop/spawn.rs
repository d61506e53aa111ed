//! How the loop starts a child: its environment (`RESTARTD_*`, the `--env-file`s read again),
//! the launch, and what the machine hears back (`Spawned` or `SpawnFailed`).

use std::ffi::OsString;

use crate::process::child;
use crate::supervise::machine::{Input, SpawnError};

use super::{second, Supervisor};

impl Supervisor {
    /// Starts the child, or (`other`) a reload's new child beside it.
    pub(super) fn spawn(&mut self, restarts: u32, other: bool) -> Input {
        let mut env: Vec<(OsString, OsString)> = vec![
            ("RESTARTD_NAME".into(), self.cfg.name.clone().into()),
            ("RESTARTD_RESTARTS".into(), restarts.to_string().into()),
        ];
        if let Some(notify) = &self.monitors.notify {
            env.push(("NOTIFY_SOCKET".into(), notify.address().into()));
        }
        if let Some(watchdog) = self.cfg.watchdog {
            env.push((
                "WATCHDOG_USEC".into(),
                watchdog.as_micros().to_string().into(),
            ));
        }
        if let Some(problem) = self.env_files.put_under(&mut env) {
            self.log.warn(&problem);
        }
        if !other {
            // No other child uses the sockets now: one a child shut down listens again, and
            // they are handed over in blocking mode.
            for problem in self.listeners.listen_again() {
                self.log.warn(&problem);
            }
            second::make_blocking(&self.listeners);
        }
        // A reload's new child gets its own sockets (opened just before, `Sockets::Open`).
        let fds = match other {
            false => self.listeners.fds(),
            true => self.listeners.next_fds(),
        };
        let names = self.listeners.names();
        let start = child::Start {
            command: &self.cfg.command,
            env,
            // What systemd gave restartd is restartd's, not the child's.
            remove: &[
                "NOTIFY_SOCKET",
                "WATCHDOG_USEC",
                "WATCHDOG_PID",
                "LISTEN_FDS",
                "LISTEN_PID",
                "LISTEN_FDNAMES",
            ],
            watchdog_pid: self.cfg.watchdog.is_some(),
            capture_stdout: self.family.output.captures_stdout(),
            listen: (!fds.is_empty()).then_some(child::Listen {
                fds: &fds,
                names: &names,
            }),
        };
        let spawned = match other {
            false => self.family.spawn(start, self.inherited),
            true => {
                let hooks = &self.recorder.hooks;
                let monitors = &self.monitors;
                self.family.spawn_other(start, self.inherited, |pid| {
                    hooks.owns(pid) || monitors.owns(pid)
                })
            }
        };
        match spawned {
            Ok(pid) => {
                self.log.debug(&format!("started pid {pid}"));
                Input::Spawned {
                    pid,
                    jitter: self.jitter_sample(),
                }
            }
            Err(e) => Input::SpawnFailed {
                failure: SpawnError::of(e.raw_os_error()),
                error: e.to_string(),
                jitter: self.jitter_sample(),
            },
        }
    }
}

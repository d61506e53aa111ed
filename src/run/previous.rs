//! What a previous run of the instance left: its restart window and count in `state.json`, and
//! the processes a killed restartd left running, which are stopped before the first start.

use std::time::SystemTime;

use crate::base::values::fmt_duration;
use crate::process::{procs, strays};
use crate::records::instance::Instance;
use crate::records::state::{self, StateFile};
use crate::run::log::Logger;
use crate::supervise::config::Config;
use crate::supervise::window::RestartWindow;

/// Stops what a previous restartd of this instance left running (SPEC §10), before the first
/// start; says so for each.
///
/// Their start times count from the boot they were recorded under: leftovers recorded under
/// another boot id (a reboot since: power loss, panic, a state directory that persists), or
/// with none, are not touched, and the log says why once.
pub fn stop_strays(cfg: &Config, previous: &StateFile, log: &Logger) {
    if let Some(why) = untrusted(previous, procs::boot_id().as_deref()) {
        log.warn(&why);
        return;
    }
    let recorded: Vec<(i32, u64)> = previous
        .leftovers
        .iter()
        .map(|p| (p.pid, p.start_time))
        .collect();
    // The entry that leads the child's group; before `group` was recorded, the child's.
    let groups: Vec<(i32, u64)> = previous
        .leftovers
        .iter()
        .filter(|p| p.group || Some(p.pid) == previous.child_pid)
        .map(|p| (p.pid, p.start_time))
        .collect();
    let found = strays::find(&recorded, &groups);
    if found.is_empty() {
        return;
    }
    let s = &cfg.settings;
    let killed = strays::stop(&found, s.stop_signal, s.stop_timeout);
    for stray in &found {
        let how = match killed.contains(&stray.pid) {
            true => format!(
                " (SIGKILL after --stop-timeout {})",
                fmt_duration(s.stop_timeout)
            ),
            false => String::new(),
        };
        log.warn(&format!(
            "stopped pid {} left running by a previous restartd{how}",
            stray.pid
        ));
    }
}

/// Why the leftovers `previous` names are not touched, if they are not: they were recorded
/// under another boot than `boot` (this one's id), or under none, or this boot's id is unknown.
fn untrusted(previous: &StateFile, boot: Option<&str>) -> Option<String> {
    if previous.leftovers.is_empty() && previous.child_pid.is_none() {
        return None;
    }
    let n = previous.leftovers.len().max(1);
    let why = match (previous.boot_id.as_deref(), boot) {
        (Some(then), Some(now)) if then == now => return None,
        (Some(then), Some(now)) => {
            format!("they were recorded under boot id {then}, this boot is {now}: the machine rebooted since")
        }
        (None, _) => {
            "state.json records no boot_id (written before a reboot could be told)".to_string()
        }
        (Some(_), None) => {
            "this boot's id cannot be read (/proc/sys/kernel/random/boot_id)".to_string()
        }
    };
    Some(format!(
        "not stopping the {n} process(es) a previous restartd recorded in state.json: {why}; their pids may now name unrelated processes"
    ))
}

/// The restart window and total restarts a previous run left in `state.json`, and that state.
pub fn previous_run(
    cfg: &Config,
    instance: &Instance,
    log: &Logger,
    now: SystemTime,
) -> (RestartWindow, u64, Option<StateFile>) {
    let empty = RestartWindow::new(cfg.window, cfg.max_restarts);
    let previous = match state::load(&instance.dir) {
        state::Loaded::Missing => return (empty, 0, None),
        state::Loaded::Corrupt(why) => {
            match state::move_aside(&instance.dir) {
                Ok(to) => log.warn(&format!(
                    "state.json is unreadable ({why}); moved to {} and starting afresh",
                    to.display()
                )),
                Err(e) => log.warn(&format!(
                    "state.json is unreadable ({why}) and could not be moved aside: {e}"
                )),
            }
            return (empty, 0, None);
        }
        state::Loaded::Found(previous) => previous,
    };
    let times = previous
        .recent_restarts
        .iter()
        .filter_map(|t| state::parse_rfc3339(t));
    let mut window = RestartWindow::with_times(cfg.window, cfg.max_restarts, times, now);
    let count = window.count(now);
    if cfg.reset {
        window.clear();
        if count > 0 {
            log.info(&format!(
                "--reset: forgot {count} restarts of a previous run"
            ));
        }
    } else if count > 0 {
        let limit = cfg
            .max_restarts
            .map_or("no limit".to_string(), |m| format!("limit {m}"));
        log.info(&format!(
            "{count} restarts in the last {} from a previous run count toward --max-restarts ({limit}); `restartd reset {}` clears them",
            fmt_duration(cfg.window),
            cfg.name
        ));
    }
    let restarts = previous.restarts;
    (window, restarts, Some(*previous))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::records::state::Proc;

    fn previous(boot_id: Option<&str>, leftovers: bool) -> StateFile {
        let mut s: StateFile = serde_json::from_value(serde_json::json!({
            "version": 1, "name": "x", "command": ["true"], "status": "running",
            "supervisor_pid": 1, "child_pid": null, "started_at": "2026-01-01T00:00:00.000Z",
            "child_started_at": null, "restarts": 0, "recent_restarts": [],
            "max_restarts": 5, "window_secs": 300, "last_exit": null, "next_restart_at": null,
            "health": null, "updated_at": "2026-01-01T00:00:00.000Z"
        }))
        .unwrap();
        s.boot_id = boot_id.map(String::from);
        if leftovers {
            s.child_pid = Some(42);
            s.leftovers = vec![Proc {
                pid: 42,
                start_time: 7,
                group: true,
            }];
        }
        s
    }

    #[test]
    fn leftovers_of_this_boot_are_trusted() {
        assert_eq!(untrusted(&previous(Some("a"), true), Some("a")), None);
    }

    #[test]
    fn leftovers_of_another_boot_or_of_none_are_not() {
        let other = untrusted(&previous(Some("a"), true), Some("b")).unwrap();
        assert!(other.contains("boot id a, this boot is b"), "{other}");
        let none = untrusted(&previous(None, true), Some("b")).unwrap();
        assert!(none.contains("no boot_id"), "{none}");
        assert!(untrusted(&previous(Some("a"), true), None).is_some());
    }

    #[test]
    fn nothing_recorded_says_nothing() {
        assert_eq!(untrusted(&previous(None, false), Some("b")), None);
    }
}

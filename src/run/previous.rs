//! What a previous run of the instance left: its restart window and count in `state.json`, and
//! the processes a killed restartd left running, which are stopped before the first start.

use std::time::SystemTime;

use crate::base::values::fmt_duration;
use crate::process::strays;
use crate::records::instance::Instance;
use crate::records::state::{self, StateFile};
use crate::run::log::Logger;
use crate::supervise::config::Config;
use crate::supervise::window::RestartWindow;

/// Stops what a previous restartd of this instance left running (SPEC §10), before the first
/// start; says so for each.
pub fn stop_strays(cfg: &Config, previous: &StateFile, log: &Logger) {
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

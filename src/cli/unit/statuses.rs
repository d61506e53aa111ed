//! Which of restartd's exit statuses a unit's `Restart=` must act on (SPEC §3, §4, §14).
//!
//! restartd exits with the child's last status both when it gives up (systemd should start it
//! again: `Restart=on-failure`) and when its own `--restart` policy chose not to restart the
//! child (systemd must not undo that). The two share one set of numbers, so the unit tells them
//! apart by the policy: a status restartd can exit with after a give-up keeps systemd's
//! restart; every other status of a child's end is one restartd only exits with when its policy
//! said no, and goes to `RestartPreventExitStatus=`, or to `SuccessExitStatus=` when it is a clean
//! end (exit 0, `--success-exit-codes`, killed by SIGHUP, SIGINT, SIGPIPE or SIGTERM), so an
//! outside SIGTERM to the child leaves the unit `inactive`, not `failed`, as it would without
//! restartd.
//!
//! Read as a status is read everywhere (a shell's `$?`, SPEC §4): a status from 129 to 192 is
//! the signal it names, not an exit code the child chose. A stop restartd made itself (health,
//! `--ready-timeout`, `--max-memory`, the watchdog) ends the child by the stop signal, SIGKILL, or
//! the child's own exit 0 (SIGABRT first for the watchdog), and the kernel's OOM killer by
//! SIGKILL: those statuses can follow such a stop. Pure: no IO.

use nix::libc;

use crate::base::exit::ProcessEnd;
use crate::supervise::policy::{self, Cause, ExitRules, RestartPolicy};

/// What of a run decides its give-up statuses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Exits {
    pub policy: RestartPolicy,
    pub rules: ExitRules,
    /// `--stop-signal`.
    pub stop_signal: i32,
    /// A health check, `--ready-timeout` or `--max-memory`: restartd may stop the child itself.
    pub monitored: bool,
    /// `--watchdog`.
    pub watchdog: bool,
}

/// The unit's restart lines, decided from `Exits`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RestartLines {
    /// `Restart=on-failure` (restartd can give up), or `Restart=no` (it never restarts).
    pub restart: bool,
    /// `SuccessExitStatus=`: clean ends restartd exits with only when it did not restart them.
    pub success: Vec<i32>,
    /// `RestartPreventExitStatus=`: other ends restartd exits with only when it did not restart.
    pub prevent: Vec<i32>,
}

/// The end a status stands for: the signal for 129..=192, else the exit code.
fn end_of(status: i32) -> ProcessEnd {
    if (129..=192).contains(&status) {
        ProcessEnd::Signaled {
            signal: status - 128,
            core_dumped: false,
        }
    } else {
        ProcessEnd::Exited(status)
    }
}

impl Exits {
    /// Whether restartd can exit with `status` after giving up: some end with that status is
    /// one its policy restarts.
    pub fn can_give_up_with(&self, status: i32) -> bool {
        let end = end_of(status);
        let code = match end {
            ProcessEnd::Exited(code) => Some(code),
            ProcessEnd::Signaled { .. } => None,
        };
        let cause = self.rules.classify(end);
        if policy::decide(self.policy, cause, code, &self.rules).restart() {
            return true;
        }
        let restarts = |cause| policy::restarts(self.policy, cause);
        let stopped = [0, 128 + self.stop_signal, 128 + libc::SIGKILL].contains(&status);
        // The kernel's OOM killer: SIGKILL, with the Unhealthy row, whatever the flags.
        (status == 128 + libc::SIGKILL && restarts(Cause::Unhealthy))
            || (self.monitored && stopped && restarts(Cause::Unhealthy))
            || (self.watchdog
                && (stopped || status == 128 + libc::SIGABRT)
                && restarts(Cause::Watchdog))
    }

    /// The unit's `Restart=`, `SuccessExitStatus=` and `RestartPreventExitStatus=`.
    pub fn lines(&self) -> RestartLines {
        let gives_up: Vec<i32> = (0..=255).filter(|&s| self.can_give_up_with(s)).collect();
        if gives_up.is_empty() {
            // `--restart no` (or lists that rule out every restart): restartd never gives up,
            // so systemd restarts nothing; clean ends still count as success.
            let success = (1..=255)
                .filter(|&s| self.rules.classify(end_of(s)) == Cause::Clean)
                .collect();
            return RestartLines {
                restart: false,
                success,
                prevent: Vec::new(),
            };
        }
        let (mut success, mut prevent) = (Vec::new(), Vec::new());
        // 0 is systemd's success already; restartd's own 2 (usage) and 125 (cannot work) are
        // left to systemd's restart: a state directory may become usable again.
        for status in (1..=255).filter(|s| !gives_up.contains(s) && ![2, 125].contains(s)) {
            match self.rules.classify(end_of(status)) {
                Cause::Clean => success.push(status),
                _ => prevent.push(status),
            }
        }
        RestartLines {
            restart: true,
            success,
            prevent,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn exits(policy: RestartPolicy) -> Exits {
        Exits {
            policy,
            rules: ExitRules::default(),
            stop_signal: libc::SIGTERM,
            monitored: false,
            watchdog: false,
        }
    }

    const CLEAN_SIGNALS: [i32; 4] = [129, 130, 141, 143];

    #[test]
    fn no_never_gives_up_so_systemd_restarts_nothing() {
        let lines = exits(RestartPolicy::No).lines();
        assert!(!lines.restart);
        assert_eq!(lines.success, CLEAN_SIGNALS);
        assert!(lines.prevent.is_empty());
    }

    // See: issue 19 (review): an outside SIGTERM to the child made restartd exit 143, and the
    // unit's Restart=on-failure restarted what restartd's policy did not.
    #[test]
    fn on_failure_prevents_the_clean_signals_only() {
        let lines = exits(RestartPolicy::OnFailure).lines();
        assert!(lines.restart);
        assert_eq!(lines.success, CLEAN_SIGNALS);
        assert!(lines.prevent.is_empty(), "{:?}", lines.prevent);
        // With a success code and a no-restart code, both are restartd's "no".
        let mut e = exits(RestartPolicy::OnFailure);
        e.rules.success = vec![3];
        e.rules.no_restart = vec![78];
        let lines = e.lines();
        assert_eq!(lines.success, [3, 129, 130, 141, 143]);
        assert_eq!(lines.prevent, [78]);
    }

    #[test]
    fn always_gives_up_with_anything() {
        let lines = exits(RestartPolicy::Always).lines();
        assert!(lines.restart);
        assert!(lines.success.is_empty() && lines.prevent.is_empty());
        // --no-restart-exit-codes wins over the policy: restartd exits 78 only when it stopped.
        let mut e = exits(RestartPolicy::Always);
        e.rules.no_restart = vec![78];
        assert_eq!(e.lines().prevent, [78]);
    }

    #[test]
    fn on_abort_restarts_unclean_signals_only() {
        let e = exits(RestartPolicy::OnAbort);
        let lines = e.lines();
        assert!(lines.restart);
        // Exit codes 1..=128 and 193..=255 are never restarted; neither are the clean signals.
        assert!(lines.prevent.contains(&1) && lines.prevent.contains(&128));
        assert!(lines.prevent.contains(&255));
        assert_eq!(lines.success, CLEAN_SIGNALS);
        for s in [134, 137, 139] {
            assert!(e.can_give_up_with(s), "{s}");
            assert!(!lines.prevent.contains(&s), "{s}");
        }
        assert!(!lines.prevent.contains(&2) && !lines.prevent.contains(&125));
    }

    #[test]
    fn a_stop_restartd_made_can_end_with_the_stop_signal_sigkill_or_exit_0() {
        let mut e = exits(RestartPolicy::OnFailure);
        e.monitored = true;
        let lines = e.lines();
        // SIGTERM (the stop signal) may follow an unhealthy stop, which on-failure restarts.
        assert_eq!(lines.success, [129, 130, 141]);
        e.stop_signal = libc::SIGINT;
        assert_eq!(e.lines().success, [129, 141, 143]);
        // on-watchdog restarts only the watchdog's stops.
        let mut e = exits(RestartPolicy::OnWatchdog);
        e.watchdog = true;
        for s in [0, 134, 137, 143] {
            assert!(e.can_give_up_with(s), "{s}");
        }
        assert!(!e.can_give_up_with(1));
        e.watchdog = false;
        assert!(
            !e.lines().restart,
            "on-watchdog without --watchdog never restarts"
        );
    }
}

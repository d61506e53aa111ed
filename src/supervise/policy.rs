//! The restart decision and the backoff arithmetic: SPEC §3, as data.
//!
//! Pure: no IO, no clock, no randomness (the jitter sample is an argument). The table in
//! `restarts` is systemd's `Restart=` table; the exit-code lists are its
//! `SuccessExitStatus=`, `RestartPreventExitStatus=` and `RestartForceExitStatus=`.

use std::time::Duration;

use crate::base::exit::ProcessEnd;

/// `--restart`: when an ended child is started again (systemd's `Restart=`). `restarts` is the
/// table; the command line words each policy for `--help`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RestartPolicy {
    /// `Restart=no`.
    No,
    /// `Restart=always`.
    Always,
    /// `Restart=on-success`.
    OnSuccess,
    /// `Restart=on-failure`.
    OnFailure,
    /// `Restart=on-abnormal`.
    OnAbnormal,
    /// `Restart=on-abort`.
    OnAbort,
    /// `Restart=on-watchdog`.
    OnWatchdog,
}

impl RestartPolicy {
    /// Every policy, in the order `--help` and the man page list them.
    pub const ALL: [RestartPolicy; 7] = [
        RestartPolicy::No,
        RestartPolicy::Always,
        RestartPolicy::OnSuccess,
        RestartPolicy::OnFailure,
        RestartPolicy::OnAbnormal,
        RestartPolicy::OnAbort,
        RestartPolicy::OnWatchdog,
    ];

    /// The spelling of the flag value, e.g. `on-failure`.
    pub fn as_str(self) -> &'static str {
        match self {
            RestartPolicy::No => "no",
            RestartPolicy::Always => "always",
            RestartPolicy::OnSuccess => "on-success",
            RestartPolicy::OnFailure => "on-failure",
            RestartPolicy::OnAbnormal => "on-abnormal",
            RestartPolicy::OnAbort => "on-abort",
            RestartPolicy::OnWatchdog => "on-watchdog",
        }
    }
}

/// Why the child ended: the rows of the SPEC §3 table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cause {
    /// Exit 0 or a `--success-exit-codes` code, or killed by SIGHUP, SIGINT, SIGTERM or SIGPIPE.
    Clean,
    /// Any other exit code.
    UncleanExit,
    /// Any other signal, SIGKILL and core dumps included.
    UncleanSignal,
    /// restartd stopped it (unhealthy, not ready within `--ready-timeout`, or over
    /// `--max-memory`), or the kernel's OOM killer killed it: systemd's Timeout and OOM rows.
    Unhealthy,
    /// restartd stopped it: no watchdog ping in time.
    Watchdog,
}

/// The three exit-code lists of SPEC §2.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ExitRules {
    /// `--success-exit-codes`: clean besides 0.
    pub success: Vec<i32>,
    /// `--no-restart-exit-codes`: never restart, whatever the policy.
    pub no_restart: Vec<i32>,
    /// `--force-restart-exit-codes`: always restart, whatever the policy.
    pub force_restart: Vec<i32>,
}

impl ExitRules {
    /// The cause of an end that restartd did not bring about itself.
    pub fn classify(&self, end: ProcessEnd) -> Cause {
        use nix::libc::{SIGHUP, SIGINT, SIGPIPE, SIGTERM};
        match end {
            ProcessEnd::Exited(0) => Cause::Clean,
            ProcessEnd::Exited(code) if self.success.contains(&code) => Cause::Clean,
            ProcessEnd::Exited(_) => Cause::UncleanExit,
            ProcessEnd::Signaled { signal, .. }
                if [SIGHUP, SIGINT, SIGTERM, SIGPIPE].contains(&signal) =>
            {
                Cause::Clean
            }
            ProcessEnd::Signaled { .. } => Cause::UncleanSignal,
        }
    }
}

/// What decided whether to restart, for messages and the crash record's `expected`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// The policy table said so.
    Policy(bool),
    /// The exit code is in `--no-restart-exit-codes`.
    NoRestartCode(i32),
    /// The exit code is in `--force-restart-exit-codes`.
    ForceRestartCode(i32),
}

impl Verdict {
    /// Whether the child is to be started again (the window limit still applies).
    pub fn restart(self) -> bool {
        match self {
            Verdict::Policy(restart) => restart,
            Verdict::NoRestartCode(_) => false,
            Verdict::ForceRestartCode(_) => true,
        }
    }
}

/// Decides whether an end with `cause` restarts. `code` is the exit code when the child exited
/// on its own; the lists apply only to it, never to an end restartd brought about.
pub fn decide(
    policy: RestartPolicy,
    cause: Cause,
    code: Option<i32>,
    rules: &ExitRules,
) -> Verdict {
    if let Some(code) = code {
        if rules.no_restart.contains(&code) {
            return Verdict::NoRestartCode(code);
        }
        if rules.force_restart.contains(&code) {
            return Verdict::ForceRestartCode(code);
        }
    }
    Verdict::Policy(restarts(policy, cause))
}

/// The SPEC §3 table: does `policy` restart a child that ended by `cause`?
pub fn restarts(policy: RestartPolicy, cause: Cause) -> bool {
    use Cause::*;
    use RestartPolicy::*;
    match policy {
        No => false,
        Always => true,
        OnSuccess => cause == Clean,
        OnFailure => cause != Clean,
        OnAbnormal => matches!(cause, UncleanSignal | Unhealthy | Watchdog),
        OnAbort => cause == UncleanSignal,
        OnWatchdog => cause == Watchdog,
    }
}

/// `--delay`, `--backoff-factor`, `--max-delay`, `--jitter`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Backoff {
    pub delay: Duration,
    pub factor: f64,
    pub max_delay: Duration,
    pub jitter: f64,
}

impl Backoff {
    /// The wait before restart `k` (1-based) of a streak: `min(max, delay × factor^(k-1))`,
    /// then scaled by `1 ± jitter` using `sample` in `[0, 1)` (0.5 means no change).
    pub fn delay(&self, k: u32, sample: f64) -> Duration {
        let exponent = k.saturating_sub(1).min(i32::MAX as u32) as i32;
        let base = self.delay.as_secs_f64() * self.factor.powi(exponent);
        let capped = if base.is_finite() {
            base.min(self.max_delay.as_secs_f64())
        } else {
            self.max_delay.as_secs_f64()
        };
        let capped = if self.delay.is_zero() { 0.0 } else { capped };
        let scaled = capped * (1.0 + self.jitter * (2.0 * sample - 1.0));
        Duration::try_from_secs_f64(scaled.max(0.0)).unwrap_or(self.max_delay)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use Cause::*;
    use RestartPolicy::*;

    const POLICIES: [RestartPolicy; 7] = [
        No, Always, OnSuccess, OnFailure, OnAbnormal, OnAbort, OnWatchdog,
    ];

    /// SPEC §3, row by row, columns in the order of `POLICIES`.
    const TABLE: [(Cause, [bool; 7]); 5] = [
        (Clean, [false, true, true, false, false, false, false]),
        (UncleanExit, [false, true, false, true, false, false, false]),
        (UncleanSignal, [false, true, false, true, true, true, false]),
        (Unhealthy, [false, true, false, true, true, false, false]),
        (Watchdog, [false, true, false, true, true, false, true]),
    ];

    #[test]
    fn all_35_cells_of_the_restart_table() {
        let mut cells = 0;
        for (cause, row) in TABLE {
            for (policy, expected) in POLICIES.into_iter().zip(row) {
                assert_eq!(restarts(policy, cause), expected, "{policy:?} × {cause:?}");
                cells += 1;
            }
        }
        assert_eq!(cells, 35);
    }

    #[test]
    fn clean_ends_are_exit_0_success_codes_and_four_signals() {
        let rules = ExitRules {
            success: vec![3],
            ..ExitRules::default()
        };
        let sig = |signal| ProcessEnd::Signaled {
            signal,
            core_dumped: false,
        };
        assert_eq!(rules.classify(ProcessEnd::Exited(0)), Clean);
        assert_eq!(rules.classify(ProcessEnd::Exited(3)), Clean);
        assert_eq!(rules.classify(ProcessEnd::Exited(1)), UncleanExit);
        for clean in [1, 2, 13, 15] {
            assert_eq!(rules.classify(sig(clean)), Clean, "signal {clean}");
        }
        for unclean in [3, 6, 9, 11] {
            assert_eq!(
                rules.classify(sig(unclean)),
                UncleanSignal,
                "signal {unclean}"
            );
        }
    }

    #[test]
    fn no_restart_codes_win_over_everything_and_force_wins_over_policy() {
        let rules = ExitRules {
            success: vec![],
            no_restart: vec![78],
            force_restart: vec![78, 0, 4],
        };
        for policy in POLICIES {
            assert_eq!(
                decide(policy, UncleanExit, Some(78), &rules),
                Verdict::NoRestartCode(78)
            );
            assert!(decide(policy, Clean, Some(0), &rules).restart());
            assert!(decide(policy, UncleanExit, Some(4), &rules).restart());
        }
        // The lists never apply to an end restartd brought about.
        assert!(!decide(No, Unhealthy, None, &rules).restart());
    }

    fn backoff(jitter: f64) -> Backoff {
        Backoff {
            delay: Duration::from_secs(1),
            factor: 2.0,
            max_delay: Duration::from_secs(60),
            jitter,
        }
    }

    #[test]
    fn backoff_doubles_then_stays_at_the_cap() {
        let b = backoff(0.0);
        let secs: Vec<u64> = (1..=20).map(|k| b.delay(k, 0.5).as_secs()).collect();
        assert_eq!(&secs[..7], &[1, 2, 4, 8, 16, 32, 60]);
        assert!(secs[6..].iter().all(|&s| s == 60));
        assert_eq!(b.delay(1000, 0.5), Duration::from_secs(60));
        assert_eq!(b.delay(u32::MAX, 0.5), Duration::from_secs(60));
    }

    #[test]
    fn jitter_stays_within_its_fraction() {
        let b = backoff(0.2);
        assert_eq!(b.delay(1, 0.0), Duration::from_millis(800));
        assert_eq!(b.delay(1, 0.5), Duration::from_secs(1));
        let high = b.delay(1, 0.999);
        assert!(high > Duration::from_millis(1190) && high < Duration::from_millis(1200));
    }

    #[test]
    fn zero_delay_stays_zero_at_any_k() {
        let b = Backoff {
            delay: Duration::ZERO,
            ..backoff(0.5)
        };
        assert_eq!(b.delay(1, 0.9), Duration::ZERO);
        assert_eq!(b.delay(5000, 0.9), Duration::ZERO);
    }

    #[test]
    fn factor_one_is_a_fixed_delay() {
        let b = Backoff {
            factor: 1.0,
            ..backoff(0.0)
        };
        assert_eq!(b.delay(50, 0.5), Duration::from_secs(1));
    }
}

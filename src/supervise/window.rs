//! The trailing restart window of `--max-restarts N --window DUR`, over wall-clock times.
//!
//! Pure: the caller passes `now`. Wall time is used (not monotonic) because the times persist in
//! `state.json` across restartd runs. A restart time in the future (the clock was stepped back)
//! is treated as "now", so a clock step can neither erase the window nor freeze it for long.

use std::collections::VecDeque;
use std::time::{Duration, SystemTime};

/// How many restart times an unlimited window keeps (`recent_restarts` in state.json).
pub const UNLIMITED_KEEP: usize = 100;

/// Restart times inside the trailing window, oldest first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RestartWindow {
    times: VecDeque<SystemTime>,
    window: Duration,
    max: Option<u32>,
}

impl RestartWindow {
    /// An empty window; `max` is `None` for `--max-restarts unlimited`.
    pub fn new(window: Duration, max: Option<u32>) -> RestartWindow {
        RestartWindow {
            times: VecDeque::new(),
            window,
            max,
        }
    }

    /// A window holding `times` (from a previous run), pruned at `now`.
    pub fn with_times(
        window: Duration,
        max: Option<u32>,
        times: impl IntoIterator<Item = SystemTime>,
        now: SystemTime,
    ) -> RestartWindow {
        let mut w = RestartWindow::new(window, max);
        let mut times: Vec<SystemTime> = times.into_iter().map(|t| t.min(now)).collect();
        times.sort();
        w.times.extend(times);
        w.prune(now);
        w
    }

    /// Drops the times that are `--window` or more before `now`.
    pub fn prune(&mut self, now: SystemTime) {
        for t in self.times.iter_mut() {
            *t = (*t).min(now);
        }
        while let Some(&oldest) = self.times.front() {
            match now.duration_since(oldest) {
                Ok(age) if age >= self.window => {
                    self.times.pop_front();
                }
                _ => break,
            }
        }
        // A limit of N needs only the last N times to decide. An unlimited window decides
        // nothing, so it keeps just the last UNLIMITED_KEEP for `status`: state.json is
        // rewritten at every restart, and a crash loop must not make it grow.
        let cap = self.max.map_or(UNLIMITED_KEEP, |m| m as usize + 1);
        while self.times.len() > cap {
            self.times.pop_front();
        }
    }

    /// Restarts inside the window at `now`.
    pub fn count(&mut self, now: SystemTime) -> u32 {
        self.prune(now);
        self.times.len() as u32
    }

    /// Whether the limit is reached at `now`: one more restart would exceed `--max-restarts`.
    pub fn full(&mut self, now: SystemTime) -> bool {
        let count = self.count(now);
        self.max.is_some_and(|max| count >= max)
    }

    /// Records a restart made at `now`.
    pub fn push(&mut self, now: SystemTime) {
        self.prune(now);
        self.times.push_back(now);
    }

    /// Forgets every restart (`--reset`, `restartd reset`).
    pub fn clear(&mut self) {
        self.times.clear();
    }

    /// The times inside the window, oldest first (for `recent_restarts`).
    pub fn times(&self) -> impl Iterator<Item = SystemTime> + '_ {
        self.times.iter().copied()
    }

    /// `--max-restarts`, `None` for unlimited.
    pub fn max(&self) -> Option<u32> {
        self.max
    }

    /// `--window`.
    pub fn window(&self) -> Duration {
        self.window
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(secs: u64) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000 + secs)
    }

    #[test]
    fn a_restart_exactly_window_old_is_outside() {
        let mut w = RestartWindow::new(Duration::from_secs(300), Some(2));
        w.push(at(0));
        w.push(at(100));
        assert!(w.full(at(299)));
        assert_eq!(w.count(at(299)), 2);
        assert_eq!(w.count(at(300)), 1);
        assert!(!w.full(at(300)));
        assert_eq!(w.count(at(400)), 0);
    }

    #[test]
    fn zero_is_always_full_and_unlimited_never() {
        let mut zero = RestartWindow::new(Duration::from_secs(60), Some(0));
        assert!(zero.full(at(0)));
        let mut unlimited = RestartWindow::new(Duration::from_secs(60), None);
        for s in 0..50 {
            unlimited.push(at(s));
        }
        assert!(!unlimited.full(at(50)));
        assert_eq!(unlimited.count(at(50)), 50);
    }

    #[test]
    fn a_crash_loop_keeps_the_window_bounded() {
        let mut unlimited = RestartWindow::new(Duration::from_secs(3600), None);
        let mut limited = RestartWindow::new(Duration::from_secs(3600), Some(3));
        for s in 0..1000 {
            unlimited.push(at(s));
            limited.push(at(s));
        }
        assert_eq!(unlimited.count(at(1000)), UNLIMITED_KEEP as u32);
        assert_eq!(
            unlimited.times().next(),
            Some(at(1000 - UNLIMITED_KEEP as u64))
        );
        // The last max+1 suffice to decide: still full.
        assert!(limited.full(at(1000)));
    }

    #[test]
    fn reload_keeps_only_times_inside_the_window() {
        let w = RestartWindow::with_times(
            Duration::from_secs(60),
            Some(5),
            [at(100), at(10), at(50)],
            at(100),
        );
        let times: Vec<_> = w.times().collect();
        assert_eq!(times, vec![at(50), at(100)]);
    }

    #[test]
    fn future_times_count_as_now_after_a_clock_step_back() {
        let mut w =
            RestartWindow::with_times(Duration::from_secs(60), Some(1), [at(10_000)], at(0));
        assert!(w.full(at(0)));
        assert!(w.full(at(59)));
        assert!(!w.full(at(60)));
    }

    #[test]
    fn clear_forgets_everything() {
        let mut w = RestartWindow::new(Duration::from_secs(60), Some(1));
        w.push(at(0));
        w.clear();
        assert!(!w.full(at(1)));
    }
}

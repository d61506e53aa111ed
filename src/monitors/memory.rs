//! `--max-memory`: the summed RSS of the child's process group and of restartd's reparented
//! descendants (and their groups), read from /proc every `INTERVAL` while the child runs.
//!
//! Only sampling lives here; going over the limit is an input to the machine.

use std::time::{Duration, Instant};

use crate::base::values::fmt_bytes;

/// How often the RSS is sampled (SPEC §5: at least every 5 s).
pub const INTERVAL: Duration = Duration::from_secs(1);

/// The limit and its sampling clock.
pub struct MemoryLimit {
    limit: u64,
    next_at: Option<Instant>,
    /// The last sample, in bytes.
    pub last: Option<u64>,
}

impl MemoryLimit {
    pub fn new(limit: u64) -> MemoryLimit {
        MemoryLimit {
            limit,
            next_at: None,
            last: None,
        }
    }

    /// A child started: sample from now on.
    pub fn child_started(&mut self, now: Instant) {
        self.next_at = Some(now + INTERVAL);
        self.last = None;
    }

    /// The child ended or is being stopped.
    pub fn child_stopped(&mut self) {
        self.next_at = None;
    }

    pub fn deadline(&self) -> Option<Instant> {
        self.next_at
    }

    /// Samples when due; returns the detail for the crash record when over the limit.
    pub fn tick(&mut self, now: Instant, group: i32, others: &[i32]) -> Option<String> {
        if self.next_at.is_none_or(|at| at > now) {
            return None;
        }
        let rss = rss_of(group, others);
        self.last = Some(rss);
        if rss > self.limit {
            self.next_at = None;
            return Some(format!(
                "memory {} over the limit of {} (--max-memory)",
                fmt_bytes(rss),
                fmt_bytes(self.limit)
            ));
        }
        self.next_at = Some(now + INTERVAL);
        None
    }
}

/// Bytes of RSS of every process in group `group`, in the groups of `others`, or one of `others`.
pub fn rss_of(group: i32, others: &[i32]) -> u64 {
    let page = nix::unistd::sysconf(nix::unistd::SysconfVar::PAGE_SIZE)
        .ok()
        .flatten()
        .unwrap_or(4096) as u64;
    let groups: Vec<i32> = std::iter::once(group)
        .chain(
            others
                .iter()
                .filter_map(|&p| crate::process::procs::group_of(p)),
        )
        .collect();
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return 0;
    };
    entries
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<i32>().ok())
        .filter_map(|pid| {
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
            // Fields after the command name, which may hold spaces: state is field 3.
            let fields: Vec<&str> = stat[stat.rfind(')')? + 2..].split_whitespace().collect();
            let pgrp: i32 = fields.get(2)?.parse().ok()?;
            let rss_pages: u64 = fields.get(21)?.parse().ok()?;
            (groups.contains(&pgrp) || others.contains(&pid)).then_some(rss_pages * page)
        })
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_rss_of_a_real_group() {
        let me = std::process::id() as i32;
        let group = nix::unistd::getpgrp().as_raw();
        let rss = rss_of(group, &[me]);
        assert!(rss > 1 << 20, "{rss}");
        let mut m = MemoryLimit::new(1);
        let t0 = Instant::now();
        m.child_started(t0);
        assert_eq!(m.tick(t0, group, &[me]), None, "not due yet");
        let detail = m.tick(t0 + INTERVAL, group, &[me]).unwrap();
        assert!(
            detail.starts_with("memory ")
                && detail.ends_with("over the limit of 0 KiB (--max-memory)"),
            "{detail}"
        );
        assert_eq!(m.deadline(), None);
    }
}

//! Whether the kernel's OOM killer ended the child (SPEC §6, reason `oom`). The facts are read
//! here, at the child's start and at its end; `judge` decides from them and is pure.
//!
//! The sources, in order of certainty:
//! 1. the `oom_kill` count of restartd's own cgroup (cgroup v2 `memory.events`, v1
//!    `memory.oom_control`), which the child shares, when restartd is not in the root cgroup:
//!    it rose during the run;
//! 2. the kernel's `Killed process PID (comm) total-vm:…` line in `/dev/kmsg` (readable by
//!    root, or where `kernel.dmesg_restrict` is 0), logged during the run, for the child's pid
//!    or a pid of its tree that a look saw (`kmsg`);
//! 3. else, for a child that died of a SIGKILL restartd did not send, a rise of `/proc/vmstat`'s
//!    system-wide `oom_kill` during the run makes the OOM kill probable.
//!
//! A clean exit (code 0) is never an OOM kill, whatever the counters did: another process of
//! the cgroup may have been the victim. Nor is a death by another signal than SIGKILL, the OOM
//! killer's, unless the kernel's line names the child itself. (The machine, which knows `--success-exit-codes`, takes
//! the rest of SPEC §3's clean row out the same way.)

use std::fs;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use nix::libc;

use crate::base::exit::ProcessEnd;

mod kmsg;

pub use kmsg::Killed;
use kmsg::Matcher;

/// A counter read at the child's start and at its end.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rise {
    /// Where it was read, for the detail.
    pub source: String,
    pub before: u64,
    pub after: u64,
}

/// What is known at the child's end.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Facts {
    /// restartd's cgroup's `oom_kill`, and its memory limit when it has one (bytes).
    pub cgroup: Option<Rise>,
    pub limit: Option<u64>,
    /// The kernel's kill line for the child or a process of its tree, if `/dev/kmsg` could be
    /// read and has one.
    pub kmsg: Option<Killed>,
    /// `/proc/vmstat`'s `oom_kill`.
    pub vmstat: Option<Rise>,
    /// restartd itself sent the child a SIGKILL during the run (`restartd signal NAME KILL`, a
    /// stop): a SIGKILL death is then no evidence.
    pub restartd_killed: bool,
}

/// The `detail` of an end that was an OOM kill, or `None` (SPEC §6).
pub fn judge(end: ProcessEnd, facts: &Facts) -> Option<String> {
    if end == ProcessEnd::Exited(0) {
        return None;
    }
    let sigkill = matches!(end, ProcessEnd::Signaled { signal, .. } if signal == libc::SIGKILL);
    // The OOM killer sends SIGKILL only: a child that died of another signal (a SIGSEGV, a
    // SIGABRT) died of that, whatever the kernel did to other processes of its cgroup or group;
    // only the kernel's line naming the child itself says otherwise.
    let other_signal = matches!(end, ProcessEnd::Signaled { .. }) && !sigkill;
    if other_signal && facts.kmsg.as_ref().is_none_or(|k| k.group) {
        return None;
    }
    let kernel = facts
        .kmsg
        .as_ref()
        .map(|k| match k.group {
            false => format!("; kernel: {}", k.line),
            true => format!("; kernel (pid {} of the child's group): {}", k.pid, k.line),
        })
        .unwrap_or_default();
    if let Some(c) = facts.cgroup.as_ref().filter(|c| c.after > c.before) {
        if !facts.restartd_killed || !sigkill {
            let limit = facts
                .limit
                .map(|l| format!(", memory limit {}", mib(l)))
                .unwrap_or_default();
            return Some(format!(
                "killed by the kernel's OOM killer: oom_kill of restartd's cgroup ({}) rose from {} to {}{limit}{kernel}",
                c.source, c.before, c.after
            ));
        }
    }
    match &facts.kmsg {
        Some(k) if k.group => {
            return Some(format!(
                "pid {} of the child's group (not the child itself) killed by the kernel's OOM killer (/dev/kmsg); kernel: {}",
                k.pid, k.line
            ))
        }
        Some(_) => return Some(format!("killed by the kernel's OOM killer (/dev/kmsg){kernel}")),
        None => {}
    }
    match &facts.vmstat {
        Some(v) if sigkill && !facts.restartd_killed && v.after > v.before => Some(format!(
            "probably killed by the kernel's OOM killer: a SIGKILL restartd did not send, while oom_kill in {} rose from {} to {} (no cgroup count or kernel log line names the child)",
            v.source, v.before, v.after
        )),
        _ => None,
    }
}

fn mib(bytes: u64) -> String {
    format!("{:.1} MiB", bytes as f64 / (1024.0 * 1024.0))
}

/// Where restartd's memory cgroup keeps its counters: v2 `memory.events` or v1
/// `memory.oom_control`, with its limit file.
#[derive(Debug, Clone)]
struct Cgroup {
    events: PathBuf,
    limit: PathBuf,
}

/// The counters at the child's start; `end` reads them again. Between the two, `/dev/kmsg` is
/// read at each look at the child's tree (`look`).
#[derive(Debug)]
pub struct Watch {
    cgroup: Option<(Cgroup, u64)>,
    vmstat: Option<u64>,
    /// `/dev/kmsg` from the start on, until the end.
    kmsg: Option<kmsg::Kmsg>,
    matcher: Matcher,
    /// `kernel.pid_max` (read again at a look while not known), and where the handing out of
    /// pids stood at the last look.
    pid_max: Option<i32>,
    pids: Option<kmsg::Pids>,
    /// The kernel gives `ns_last_pid` (see `kmsg::reused`).
    pids_guarded: bool,
    restartd_killed: std::cell::Cell<bool>,
}

impl Watch {
    /// Reads the counters and opens `/dev/kmsg` right before the child starts.
    pub fn start() -> Watch {
        let cgroup = own_cgroup().and_then(|c| Some((c.clone(), oom_kill_in(&c.events)?)));
        Watch {
            cgroup,
            vmstat: vmstat_oom_kill(),
            kmsg: kmsg::Kmsg::open(),
            matcher: Matcher::default(),
            pid_max: pid_max(),
            pids: None,
            // Known without a file descriptor, which restartd may lack at a look.
            pids_guarded: Path::new("/proc/sys/kernel/ns_last_pid").exists(),
            restartd_killed: std::cell::Cell::new(false),
        }
    }

    /// restartd sent `sig` to the child (or its group).
    pub fn sent(&self, sig: i32) {
        if sig == libc::SIGKILL {
            self.restartd_killed.set(true);
        }
    }

    /// Whether looks at the child's tree tell this watch anything (`/dev/kmsg` is read).
    pub fn wants_looks(&self) -> bool {
        self.kmsg.is_some()
    }

    /// A look saw the child's tree (`tree`: pids, zombies too; `child`: the main child's pid).
    pub fn look(&mut self, child: i32, tree: &[i32]) {
        if let Some(k) = self.kmsg.as_mut() {
            let lines = k.read();
            let (before, now) = (self.pids, kmsg::Pids::read());
            if self.pid_max.is_none() {
                self.pid_max = pid_max();
            }
            let (pid_max, guarded) = (self.pid_max, self.pids_guarded);
            self.matcher.look(child, tree, lines, |pid| {
                kmsg::reused(pid, before, now, pid_max, guarded)
            });
            self.pids = now;
        }
    }

    /// The `detail` if the end of the child `pid` was an OOM kill. Reads the counters only for
    /// an end that could be one; `/dev/kmsg` is read a last time and closed.
    pub fn end(&mut self, pid: i32, end: ProcessEnd) -> Option<String> {
        let kmsg = self.kmsg.take();
        if end == ProcessEnd::Exited(0) {
            return None;
        }
        if let Some(mut k) = kmsg {
            self.matcher.end(pid, k.read());
        }
        let cgroup = self.cgroup.as_ref().and_then(|(c, before)| {
            Some((
                Rise {
                    source: c.events.display().to_string(),
                    before: *before,
                    after: oom_kill_in(&c.events)?,
                },
                read_u64(&c.limit),
            ))
        });
        let facts = Facts {
            limit: cgroup.as_ref().and_then(|c| c.1),
            cgroup: cgroup.map(|c| c.0),
            kmsg: self.matcher.found(),
            vmstat: self.vmstat.and_then(|before| {
                Some(Rise {
                    source: "/proc/vmstat".into(),
                    before,
                    after: vmstat_oom_kill()?,
                })
            }),
            restartd_killed: self.restartd_killed.get(),
        };
        judge(end, &facts)
    }
}

/// `kernel.pid_max`.
fn pid_max() -> Option<i32> {
    fs::read_to_string("/proc/sys/kernel/pid_max")
        .ok()
        .and_then(|t| t.trim().parse().ok())
}

/// While the child runs, a look at its tree for the OOM watch is due at most once a second,
/// on a turn that happens anyway: `None` when it is due now (`last`: the last look), else
/// when it will be, for a turn that came too soon after the last one.
pub fn next_look(last: Option<Instant>, now: Instant) -> Option<Instant> {
    const EVERY: Duration = Duration::from_secs(1);
    let due = last? + EVERY;
    (due > now).then_some(due)
}

/// restartd's memory cgroup, unless it is the root one.
fn own_cgroup() -> Option<Cgroup> {
    let text = fs::read_to_string("/proc/self/cgroup").ok()?;
    cgroup_of(&text, Path::new("/sys/fs/cgroup"))
}

/// The memory cgroup that `text` (`/proc/self/cgroup`) names under `root`. In a cgroup
/// namespace (a Docker or Kubernetes container on cgroup v2) the path is `/`, yet the cgroup
/// is the container's, not the root one: v2's root cgroup has no `memory.events`, so that file
/// at `root` tells them apart.
fn cgroup_of(text: &str, root: &Path) -> Option<Cgroup> {
    for line in text.lines() {
        let mut parts = line.splitn(3, ':');
        let (id, controllers, path) = (parts.next()?, parts.next()?, parts.next()?);
        let namespaced = id == "0" && controllers.is_empty() && path == "/";
        if path == "/" && !(namespaced && root.join("memory.events").exists()) {
            continue;
        }
        let rel = path.trim_start_matches('/');
        if controllers.split(',').any(|c| c == "memory") {
            let dir = root.join("memory").join(rel);
            let cgroup = Cgroup {
                events: dir.join("memory.oom_control"),
                limit: dir.join("memory.limit_in_bytes"),
            };
            if cgroup.events.exists() {
                return Some(cgroup);
            }
        } else if id == "0" && controllers.is_empty() {
            let dir = root.join(rel);
            let cgroup = Cgroup {
                events: dir.join("memory.events"),
                limit: dir.join("memory.max"),
            };
            if cgroup.events.exists() {
                return Some(cgroup);
            }
        }
    }
    None
}

/// `oom_kill N` in a v2 `memory.events` or v1 `memory.oom_control`.
fn oom_kill_in(path: &std::path::Path) -> Option<u64> {
    field(&fs::read_to_string(path).ok()?, "oom_kill")
}

fn vmstat_oom_kill() -> Option<u64> {
    field(&fs::read_to_string("/proc/vmstat").ok()?, "oom_kill")
}

/// The value of `key value` lines.
fn field(text: &str, key: &str) -> Option<u64> {
    text.lines().find_map(|l| {
        let (k, v) = l.split_once(' ')?;
        (k == key).then(|| v.trim().parse().ok())?
    })
}

/// A number in a file; `max` (v2) and v1's huge "unlimited" are no limit.
fn read_u64(path: &std::path::Path) -> Option<u64> {
    let v: u64 = fs::read_to_string(path).ok()?.trim().parse().ok()?;
    (v < 1 << 60).then_some(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    const KILL: ProcessEnd = ProcessEnd::Signaled {
        signal: libc::SIGKILL,
        core_dumped: false,
    };

    fn rise(before: u64, after: u64) -> Option<Rise> {
        Some(Rise {
            source: "/sys/fs/cgroup/app/memory.events".into(),
            before,
            after,
        })
    }

    fn killed() -> Option<Killed> {
        Some(Killed {
            pid: 42,
            line: "Killed process 42 (python3) total-vm:80000kB, anon-rss:65536kB, file-rss:0kB, shmem-rss:0kB, UID:0 pgtables:200kB oom_score_adj:0".into(),
            group: false,
        })
    }

    #[test]
    fn the_cgroup_count_comes_first_and_names_the_kernel_figures() {
        let facts = Facts {
            cgroup: rise(2, 3),
            limit: Some(64 << 20),
            kmsg: killed(),
            vmstat: rise(7, 8),
            restartd_killed: false,
        };
        assert_eq!(
            judge(KILL, &facts).unwrap(),
            "killed by the kernel's OOM killer: oom_kill of restartd's cgroup (/sys/fs/cgroup/app/memory.events) rose from 2 to 3, memory limit 64.0 MiB; kernel: Killed process 42 (python3) total-vm:80000kB, anon-rss:65536kB, file-rss:0kB, shmem-rss:0kB, UID:0 pgtables:200kB oom_score_adj:0"
        );
        // A worker of the group killed, the main child exiting 1: still the OOM killer.
        assert!(judge(ProcessEnd::Exited(1), &facts).is_some());
        // A clean exit never is.
        assert_eq!(judge(ProcessEnd::Exited(0), &facts), None);
    }

    #[test]
    fn then_the_kernel_line_then_a_probable_kill() {
        let kmsg_only = Facts {
            kmsg: killed(),
            ..Facts::default()
        };
        assert!(judge(KILL, &kmsg_only).unwrap().starts_with(
            "killed by the kernel's OOM killer (/dev/kmsg); kernel: Killed process 42 (python3)"
        ));
        let vmstat = Facts {
            cgroup: rise(0, 0),
            vmstat: Some(Rise {
                source: "/proc/vmstat".into(),
                before: 7,
                after: 9,
            }),
            ..Facts::default()
        };
        assert_eq!(
            judge(KILL, &vmstat).unwrap(),
            "probably killed by the kernel's OOM killer: a SIGKILL restartd did not send, while oom_kill in /proc/vmstat rose from 7 to 9 (no cgroup count or kernel log line names the child)"
        );
        // Not SIGKILL, or restartd's own SIGKILL, or no rise: no OOM kill.
        let segv = ProcessEnd::Signaled {
            signal: libc::SIGSEGV,
            core_dumped: true,
        };
        assert_eq!(judge(segv, &vmstat), None);
        let ours = Facts {
            restartd_killed: true,
            ..vmstat.clone()
        };
        assert_eq!(judge(KILL, &ours), None);
        let flat = Facts {
            vmstat: rise(9, 9),
            ..Facts::default()
        };
        assert_eq!(judge(KILL, &flat), None);
        // restartd's SIGKILL with a cgroup rise: the kill explains the death.
        let cgroup_ours = Facts {
            cgroup: rise(0, 1),
            restartd_killed: true,
            ..Facts::default()
        };
        assert_eq!(judge(KILL, &cgroup_ours), None);
    }

    #[test]
    fn a_process_of_the_childs_group_is_named_as_such() {
        // See: issue 18. `sh -c` whose grandchild was OOM-killed exits 137: the kernel's line
        // names the grandchild, and the detail says it was not the child itself.
        let group = || {
            Some(Killed {
                pid: 43,
                line: "Killed process 43 (python3) total-vm:80000kB".into(),
                group: true,
            })
        };
        let facts = Facts {
            kmsg: group(),
            ..Facts::default()
        };
        let detail = "pid 43 of the child's group (not the child itself) killed by the kernel's OOM killer (/dev/kmsg); kernel: Killed process 43 (python3) total-vm:80000kB";
        assert_eq!(judge(ProcessEnd::Exited(137), &facts).unwrap(), detail);
        assert_eq!(judge(ProcessEnd::Exited(1), &facts).unwrap(), detail);
        assert_eq!(judge(KILL, &facts).unwrap(), detail);
        assert_eq!(judge(ProcessEnd::Exited(0), &facts), None);
        // See: issue 18 (review). A child that aborted after the group's kill died of its
        // SIGABRT: it was recorded as an OOM kill, which `--restart on-abort` does not restart.
        let abort = ProcessEnd::Signaled {
            signal: libc::SIGABRT,
            core_dumped: true,
        };
        assert_eq!(judge(abort, &facts), None);
        let cgroup_only = Facts {
            cgroup: rise(0, 1),
            ..Facts::default()
        };
        assert_eq!(judge(abort, &cgroup_only), None);
        assert!(judge(KILL, &cgroup_only).is_some());
        // The kernel's line for the child itself still names it (killed while dumping core).
        let own = Facts {
            kmsg: killed(),
            ..Facts::default()
        };
        assert!(judge(abort, &own).is_some());
        // The cgroup count still comes first; the line is named as the group's.
        let both = Facts {
            cgroup: rise(0, 1),
            ..facts
        };
        assert!(judge(ProcessEnd::Exited(1), &both).unwrap().ends_with(
            "rose from 0 to 1; kernel (pid 43 of the child's group): Killed process 43 (python3) total-vm:80000kB"
        ));
    }

    #[test]
    fn a_look_is_due_at_most_once_a_second() {
        let t = Instant::now();
        assert_eq!(next_look(None, t), None);
        let s = Duration::from_secs(1);
        assert_eq!(next_look(Some(t), t + s), None);
        assert_eq!(next_look(Some(t), t + s * 5), None);
        let soon = t + Duration::from_millis(300);
        assert_eq!(next_look(Some(t), soon), Some(t + s));
    }

    #[test]
    fn the_cgroup_is_found_under_its_root_and_in_a_cgroup_namespace() {
        // See: issue 18 (review). In a container with a cgroup namespace of its own (Docker's
        // and Kubernetes' default on cgroup v2) /proc/self/cgroup says `0::/`: restartd took
        // that for the root cgroup and never read the container's own oom_kill count.
        let root = tempfile::tempdir().unwrap();
        let r = root.path();
        assert!(cgroup_of("0::/\n", r).is_none(), "the root cgroup of v2");
        fs::write(r.join("memory.events"), "oom_kill 0\n").unwrap();
        let c = cgroup_of("0::/\n", r).expect("a container's cgroup");
        assert_eq!(
            (c.events, c.limit),
            (r.join("memory.events"), r.join("memory.max"))
        );
        fs::create_dir_all(r.join("system.slice/app.service")).unwrap();
        fs::write(r.join("system.slice/app.service/memory.events"), "").unwrap();
        let c = cgroup_of("0::/system.slice/app.service\n", r).unwrap();
        assert_eq!(c.events, r.join("system.slice/app.service/memory.events"));
        // cgroup v1: the memory hierarchy's line; `/` there is the root.
        fs::create_dir_all(r.join("memory/api")).unwrap();
        fs::write(r.join("memory/api/memory.oom_control"), "").unwrap();
        let v1 = "5:pids:/api\n4:memory:/api\n0::/\n";
        let c = cgroup_of(v1, r).unwrap();
        assert_eq!(c.events, r.join("memory/api/memory.oom_control"));
        fs::remove_file(r.join("memory.events")).unwrap();
        assert!(cgroup_of("4:memory:/\n0::/\n", r).is_none());
    }

    #[test]
    fn counters_are_read_from_key_value_lines() {
        let events = "low 0\nhigh 0\nmax 12\noom 3\noom_kill 2\noom_group_kill 0\n";
        assert_eq!(field(events, "oom_kill"), Some(2));
        assert_eq!(
            field("oom_kill_disable 0\nunder_oom 0\noom_kill 5\n", "oom_kill"),
            Some(5)
        );
        assert_eq!(field("nr_free_pages 1\n", "oom_kill"), None);
    }
}

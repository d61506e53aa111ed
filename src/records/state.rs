//! `state.json`: what a running or past instance is doing, replaced atomically at every change.
//!
//! Writes go to a temporary file beside it and are renamed over `state.json` (SPEC §6,
//! `files::replace`), so a reader never sees a partial file. The write is fsync'd before the
//! rename only when the change records a restart, a give-up or a reset (`Durable`): the restart
//! window must survive a power loss, a status or pid change need not (after a power loss a file
//! written without fsync may come back empty on some filesystems; it is then reported, moved
//! aside and replaced, as any corrupt file). After an fsync'd write the directory is fsync'd too,
//! so the rename of a recorded restart survives; after any other, the previous complete state may
//! come back. A file that cannot be read is moved aside to `state.json.corrupt` and never stops supervision.

use std::fs;
use std::io::{self, Read};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use serde::{Deserialize, Serialize};

use crate::base::files;
use crate::records::instance::STATE;
use crate::supervise::machine::Status;

/// The format version in `version`.
pub const VERSION: u32 = 1;

/// `state.json`, field for field (SPEC §6).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StateFile {
    pub version: u32,
    pub name: String,
    pub command: Vec<String>,
    pub status: Status,
    pub supervisor_pid: u32,
    pub child_pid: Option<i32>,
    pub started_at: String,
    pub child_started_at: Option<String>,
    pub restarts: u64,
    /// `--max-runtime` restarts over all runs (SPEC §13); not crashes, not in the window.
    #[serde(default)]
    pub scheduled_restarts: u64,
    pub recent_restarts: Vec<String>,
    pub max_restarts: Option<u32>,
    pub window_secs: u64,
    pub last_exit: Option<LastExitJson>,
    pub next_restart_at: Option<String>,
    pub health: Option<String>,
    /// With `--notify`: whether the child sent `READY=1` (null without `--notify`).
    #[serde(default)]
    pub ready: Option<bool>,
    /// With `--notify`: the child's last `STATUS=` text.
    #[serde(default)]
    pub status_text: Option<String>,
    pub updated_at: String,
    /// `--label`s (SPEC §9).
    #[serde(default)]
    pub labels: std::collections::BTreeMap<String, String>,
    /// The processes of the child's tree restartd knows of (the running child, the descendants
    /// it adopted), so that the next restartd can stop what this one leaves behind (SPEC §10).
    #[serde(default)]
    pub leftovers: Vec<Proc>,
    /// The boot id (`/proc/sys/kernel/random/boot_id`) under which `child_pid` and `leftovers`
    /// were recorded: their start times count from that boot, so after a reboot they are not
    /// trusted (SPEC §10).
    #[serde(default)]
    pub boot_id: Option<String>,
    /// `--log-file`, as an absolute path (null without one), for `restartd logs`.
    #[serde(default)]
    pub log_file: Option<String>,
    /// The `--socket`s held for the child (SPEC §11).
    #[serde(default)]
    pub sockets: Vec<SocketJson>,
    /// Reloads done by this restartd (SPEC §11).
    #[serde(default)]
    pub reloads: u64,
}

/// One of `state.json`'s `sockets`: its name, address and the child's fd.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SocketJson {
    pub name: String,
    pub address: String,
    pub fd: i32,
}

/// A process, named so that a reused pid is not taken for it: its pid and its start time
/// (`/proc/PID/stat` field 22, clock ticks since boot).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Proc {
    pub pid: i32,
    pub start_time: u64,
    /// `"group": true`: it leads the child's process group (it is the child), so members of
    /// group `pid` that started no earlier are the child's too. Left out when false.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub group: bool,
}

/// `state.json`'s `last_exit`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LastExitJson {
    pub code: Option<i32>,
    pub signal: Option<String>,
    pub reason: String,
    pub at: String,
    pub crash_id: Option<String>,
}

/// The `status NAME --json` object (also `GET /status`): the state file's fields plus
/// `running`; `{"name", "running"}` without a state file. `status` and `health` are as a
/// reader reports them (`shown_status`, `shown_health`), not as a gone restartd left them.
pub fn status_json(name: &str, state: Option<&StateFile>, running: bool) -> serde_json::Value {
    let mut value = match state {
        Some(state) => serde_json::to_value(state).unwrap_or(serde_json::Value::Null),
        None => serde_json::json!({ "name": name }),
    };
    if let (serde_json::Value::Object(map), Some(state)) = (&mut value, state) {
        map.insert("status".into(), shown_status(state, running).into());
        map.insert("health".into(), shown_health(state, running).into());
    }
    if let serde_json::Value::Object(map) = &mut value {
        map.insert("running".into(), running.into());
    }
    value
}

/// The status a live instance's restartd can no longer report (SPEC §8).
pub const DEAD: &str = "dead";

/// The status a reader reports: the file's, except that a restartd that is gone (`running`
/// false: its lock is free) left a status that is no longer true. `starting`, `running`,
/// `backoff` and `stopping` then read as `dead`; the final ones (`stopped`, `exited`,
/// `gave-up`) were written on the way out and stay.
pub fn shown_status(state: &StateFile, running: bool) -> &'static str {
    if running || state.status.is_final() {
        state.status.as_str()
    } else {
        DEAD
    }
}

/// The health a reader reports: none for an instance that is not running, whatever its last
/// check said (SPEC §8).
pub fn shown_health(state: &StateFile, running: bool) -> Option<&str> {
    state.health.as_deref().filter(|_| running)
}

/// RFC 3339 UTC with milliseconds, e.g. `2026-11-23T10:00:00.123Z`.
pub fn rfc3339(t: SystemTime) -> String {
    humantime::format_rfc3339_millis(t).to_string()
}

/// Parses an RFC 3339 time as written by `rfc3339`.
pub fn parse_rfc3339(s: &str) -> Option<SystemTime> {
    humantime::parse_rfc3339_weak(s).ok()
}

/// What reading `state.json` found.
pub enum Loaded {
    Missing,
    Found(Box<StateFile>),
    Corrupt(String),
}

/// A `state.json` larger than this is corrupt and is not read into memory. A real one holds the
/// command line and at most `--max-restarts` + 1 (unlimited: 100) `recent_restarts` of about
/// 30 bytes: under 16 MiB unless `--max-restarts` is above about 500,000 and all are in the window.
pub const MAX_SIZE: u64 = 16 << 20;

impl StateFile {
    /// Parses the bytes of a `state.json`: the pure half of `load`, also used by the fuzzer.
    /// Any input gives `Ok` or a one-line reason; it never panics.
    pub fn parse(bytes: &[u8]) -> Result<StateFile, String> {
        let parsed = serde_json::from_slice::<StateFile>(bytes);
        if let Ok(state) = &parsed {
            if state.version == VERSION {
                return parsed.map_err(|e| e.to_string());
            }
        }
        // Another version may have other fields, and saying which version it is tells more
        // than a missing field.
        #[derive(Deserialize)]
        struct Versioned {
            version: serde_json::Value,
        }
        if let Ok(v) = serde_json::from_slice::<Versioned>(bytes) {
            if v.version != serde_json::json!(VERSION) {
                return Err(format!(
                    "unknown version {} (this restartd reads and writes version {VERSION})",
                    v.version
                ));
            }
        }
        parsed.map_err(|e| e.to_string())
    }
}

/// Reads `DIR/state.json`, never through a symlink and never more than `MAX_SIZE` bytes.
pub fn load(dir: &Path) -> Loaded {
    let path = dir.join(STATE);
    let file = fs::OpenOptions::new()
        .read(true)
        .custom_flags(nix::libc::O_NOFOLLOW | nix::libc::O_CLOEXEC)
        .open(&path);
    let mut bytes = Vec::new();
    let read = file.and_then(|f| f.take(MAX_SIZE + 1).read_to_end(&mut bytes));
    match read {
        Ok(_) if bytes.len() as u64 > MAX_SIZE => {
            return Loaded::Corrupt(format!("larger than {} MiB", MAX_SIZE >> 20))
        }
        Ok(_) => {}
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Loaded::Missing,
        Err(e) => return Loaded::Corrupt(e.to_string()),
    }
    match StateFile::parse(&bytes) {
        Ok(state) => Loaded::Found(Box::new(state)),
        Err(why) => Loaded::Corrupt(why),
    }
}

/// Renames `state.json` to `state.json.corrupt`, replacing an older one.
pub fn move_aside(dir: &Path) -> io::Result<PathBuf> {
    let to = dir.join(format!("{STATE}.corrupt"));
    fs::rename(dir.join(STATE), &to)?;
    Ok(to)
}

/// Writes `state.json` atomically.
pub struct StateWriter {
    dir: PathBuf,
    /// The last `save` failed and was reported.
    failing: bool,
    /// What the last fsync'd file said of the restarts (see `Durable`).
    durable: Durable,
}

/// The part of `state.json` that must survive a power loss (SPEC §6): the restart count and
/// window, and a give-up. A change of anything else (status, pids, health) is written but not
/// fsync'd: losing it costs nothing a restart would not rewrite.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct Durable {
    restarts: u64,
    recent_restarts: Vec<String>,
    gave_up: bool,
}

impl Durable {
    fn of(state: &StateFile) -> Durable {
        Durable {
            restarts: state.restarts,
            recent_restarts: state.recent_restarts.clone(),
            gave_up: state.status == Status::GaveUp,
        }
    }
}

impl StateWriter {
    /// A writer for `dir`, which must exist.
    pub fn new(dir: &Path) -> io::Result<StateWriter> {
        if !dir.is_dir() {
            return Err(io::Error::new(io::ErrorKind::NotFound, "no such directory"));
        }
        Ok(StateWriter {
            dir: dir.to_path_buf(),
            failing: false,
            durable: Durable::default(),
        })
    }

    /// What is on disk already (a previous run's file): its restarts need no fsync again.
    pub fn on_disk(&mut self, previous: &StateFile) {
        self.durable = Durable::of(previous);
    }

    /// `write`, saying only what changed: `Err(msg)` for the first failure in a row (a full
    /// disk fails every write), `Ok(Some(msg))` for the first success after it.
    pub fn save(&mut self, state: &StateFile) -> Result<Option<String>, String> {
        let path = self.dir.join(STATE);
        let durable = Durable::of(state);
        let sync = self.needs_sync(state);
        match self.write(state, sync) {
            Ok(()) if sync => {
                self.durable = durable;
                Ok(self.failing.then(|| {
                    self.failing = false;
                    format!("{} is written again", path.display())
                }))
            }
            Ok(()) if self.failing => {
                self.failing = false;
                Ok(Some(format!("{} is written again", path.display())))
            }
            Ok(()) => Ok(None),
            Err(_) if self.failing => Ok(None),
            Err(e) => {
                self.failing = true;
                Err(format!(
                    "unable to write {}: {e}; supervision goes on, and this is not repeated until it works again",
                    path.display()
                ))
            }
        }
    }

    /// Whether writing `state` must be fsync'd: it records a restart, a give-up or a reset.
    fn needs_sync(&self, state: &StateFile) -> bool {
        Durable::of(state) != self.durable
    }

    /// Replaces `state.json` with `state`: write, fsync when `sync`, rename.
    pub fn write(&self, state: &StateFile, sync: bool) -> io::Result<()> {
        let mut bytes = serde_json::to_vec_pretty(state).map_err(io::Error::other)?;
        bytes.push(b'\n');
        files::replace(&self.dir.join(STATE), &bytes, 0o600, sync)?;
        if sync {
            // The rename itself must survive a power loss too, or the old window comes back.
            files::sync_dir(&self.dir)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn only_a_restart_a_give_up_or_a_reset_is_fsyncd() {
        let dir = tempfile::tempdir().unwrap();
        let mut w = StateWriter::new(dir.path()).unwrap();
        let mut s = sample();
        s.restarts = 0;
        s.recent_restarts.clear();
        s.status = Status::Running;
        assert!(!w.needs_sync(&s), "a first start has no restart to lose");
        w.save(&s).unwrap();
        s.status = Status::Backoff;
        s.child_pid = None;
        assert!(!w.needs_sync(&s), "a status change");
        s.restarts = 1;
        s.recent_restarts = vec!["2026-12-05T09:00:00.000Z".into()];
        assert!(w.needs_sync(&s), "a restart");
        w.save(&s).unwrap();
        assert!(!w.needs_sync(&s));
        s.recent_restarts.clear();
        assert!(w.needs_sync(&s), "a reset");
        w.save(&s).unwrap();
        s.status = Status::GaveUp;
        assert!(w.needs_sync(&s), "a give-up");
        // A previous run's file is on disk already.
        let mut w = StateWriter::new(dir.path()).unwrap();
        w.on_disk(&s);
        assert!(!w.needs_sync(&s));
    }

    use super::*;

    fn sample() -> StateFile {
        StateFile {
            version: VERSION,
            name: "api".into(),
            command: vec!["sleep".into(), "1".into()],
            status: Status::GaveUp,
            supervisor_pid: 1,
            child_pid: None,
            started_at: rfc3339(SystemTime::UNIX_EPOCH),
            child_started_at: None,
            restarts: 3,
            scheduled_restarts: 0,
            recent_restarts: vec![],
            max_restarts: None,
            window_secs: 300,
            last_exit: Some(LastExitJson {
                code: Some(1),
                signal: None,
                reason: "exit".into(),
                at: rfc3339(SystemTime::UNIX_EPOCH),
                crash_id: None,
            }),
            next_restart_at: None,
            health: None,
            ready: None,
            status_text: None,
            updated_at: rfc3339(SystemTime::UNIX_EPOCH),
            labels: Default::default(),
            leftovers: Vec::new(),
            sockets: Vec::new(),
            reloads: 0,
            boot_id: None,
            log_file: None,
        }
    }

    #[test]
    fn round_trips_and_spells_status_as_in_the_spec() {
        let dir = tempfile::tempdir().unwrap();
        let w = StateWriter::new(dir.path()).unwrap();
        w.write(&sample(), true).unwrap();
        let text = fs::read_to_string(dir.path().join(STATE)).unwrap();
        assert!(text.contains("\"status\": \"gave-up\""), "{text}");
        assert!(
            text.contains("\"started_at\": \"1970-01-01T00:00:00.000Z\""),
            "{text}"
        );
        match load(dir.path()) {
            Loaded::Found(s) => assert_eq!(*s, sample()),
            _ => panic!("not loaded"),
        }
        assert!(!files::temp_path(&dir.path().join(STATE)).unwrap().exists());
    }

    #[test]
    fn a_gone_restartds_live_status_reads_as_dead_and_its_health_as_null() {
        let mut s = sample();
        s.health = Some("healthy".into());
        for (status, running, shown) in [
            (Status::Running, true, "running"),
            (Status::Running, false, DEAD),
            (Status::Starting, false, DEAD),
            (Status::Backoff, false, DEAD),
            (Status::Stopping, false, DEAD),
            (Status::Stopped, false, "stopped"),
            (Status::Exited, false, "exited"),
            (Status::GaveUp, false, "gave-up"),
            (Status::GaveUp, true, "gave-up"),
        ] {
            s.status = status;
            let v = status_json("api", Some(&s), running);
            assert_eq!(v["status"], shown, "{status:?} running={running}");
            assert_eq!(v["running"], running);
            let health = if running {
                "healthy".into()
            } else {
                serde_json::Value::Null
            };
            assert_eq!(v["health"], health, "{status:?} running={running}");
        }
        let v = status_json("api", None, false);
        assert_eq!(v, serde_json::json!({"name": "api", "running": false}));
    }

    #[test]
    fn corrupt_truncated_and_wrong_version_files_are_reported() {
        let dir = tempfile::tempdir().unwrap();
        assert!(matches!(load(dir.path()), Loaded::Missing));
        let full = serde_json::to_string(&sample()).unwrap();
        let other = full.replace("\"version\":1", "\"version\":2");
        for bad in ["", "{", "null", &full[..full.len() / 2], &other] {
            fs::write(dir.path().join(STATE), bad).unwrap();
            assert!(matches!(load(dir.path()), Loaded::Corrupt(_)), "{bad:?}");
        }
        move_aside(dir.path()).unwrap();
        assert!(dir.path().join("state.json.corrupt").exists());
    }
}

//! What `--listen` and `--metrics-file` need from the supervisor, in one place: the HTTP server,
//! the crash counts behind `restartd_crashes_total` and the metrics file. The event loop calls
//! in at fixed points (poll set, deadline, a turn, a crash, a state save) and stays the only
//! poll(2).

pub mod access;
pub mod dashboard;
pub mod endpoints;
pub mod http;
pub mod metrics;
pub mod server;

use std::os::fd::BorrowedFd;
use std::path::{Path, PathBuf};
use std::time::{Instant, SystemTime};

use nix::poll::PollFlags;

use crate::records::crashlog::CrashRecord;
use crate::records::state::StateFile;
use crate::supervise::config::Config;
use access::Access;
use endpoints::View;
use metrics::{CrashCounts, Extra};
use server::{Incoming, Server};

pub struct Observe {
    /// The `--listen` server and who may ask it.
    server: Option<(Server, Access)>,
    metrics_file: Option<PathBuf>,
    crashes: CrashCounts,
    dir: PathBuf,
    /// A metrics-file write failed and was reported; quiet until one works again.
    failing: bool,
}

impl Observe {
    /// Binds `--listen` and counts the crash records so far. `Ok(None)` without either flag.
    pub fn new(cfg: &Config, dir: &Path) -> anyhow::Result<Option<Observe>> {
        if cfg.listen.is_none() && cfg.metrics_file.is_none() {
            return Ok(None);
        }
        let server = match cfg.listen {
            Some(addr) => {
                let server = Server::bind(addr).map_err(|e| {
                    anyhow::anyhow!("unable to listen on {addr} (--listen): {e}; pick another port")
                })?;
                let bound = server.local_addr().unwrap_or(addr);
                Some((server, Access::new(bound, cfg.listen_token.clone())))
            }
            None => None,
        };
        let crashes = metrics::count_crashes(dir).unwrap_or_default();
        Ok(Some(Observe {
            server,
            metrics_file: cfg.metrics_file.clone(),
            crashes,
            dir: dir.to_path_buf(),
            failing: false,
        }))
    }

    /// `http://ADDR/`, for the start message.
    pub fn url(&self) -> Option<String> {
        let addr = self.server.as_ref()?.0.local_addr().ok()?;
        Some(format!("http://{addr}/"))
    }

    pub fn fds(&self) -> impl Iterator<Item = (BorrowedFd<'_>, PollFlags)> {
        self.server.iter().flat_map(|(server, _)| server.fds())
    }

    /// The earliest connection deadline; none while no client is connected.
    pub fn deadline(&self) -> Option<Instant> {
        self.server
            .as_ref()
            .and_then(|(server, _)| server.deadline())
    }

    /// Accepts and reads what is ready: the requests to `answer`. Call `finish` after.
    pub fn io(&mut self, now: Instant) -> Vec<(usize, Incoming)> {
        self.server
            .as_mut()
            .map_or_else(Vec::new, |(server, _)| server.io(now))
    }

    /// Answers the requests `io` returned, from `state`.
    pub fn answer(
        &mut self,
        incoming: Vec<(usize, Incoming)>,
        state: &StateFile,
        wall: SystemTime,
    ) {
        let Some((server, access)) = &mut self.server else {
            return;
        };
        let rss = state
            .child_pid
            .map(|pid| crate::monitors::memory::rss_of(pid, &[]));
        let view = View {
            state,
            crashes: &self.crashes,
            dir: &self.dir,
            child_rss_bytes: rss,
            now: wall,
        };
        for (slot, what) in incoming {
            server.reply(slot, endpoints::respond(what, access, &view));
        }
    }

    /// Writes what the sockets take and closes finished or overdue connections.
    pub fn finish(&mut self, now: Instant) {
        if let Some((server, _)) = &mut self.server {
            server.finish(now);
        }
    }

    /// A crash record was written.
    pub fn crashed(&mut self, record: &CrashRecord) {
        let key = (
            record.reason.clone(),
            record.error_type.clone().unwrap_or_default(),
        );
        *self.crashes.entry(key).or_default() += 1;
    }

    /// The crash history was removed (`reset --crashes`): the counts start again from zero, as
    /// they would for a restartd started now (a Prometheus counter reset, which `rate()` and
    /// `increase()` handle).
    pub fn crashes_cleared(&mut self) {
        self.crashes.clear();
    }

    /// The state changed: rewrite the metrics file. `Err` only for the first failure in a row.
    pub fn saved(&mut self, state: &StateFile, up: bool) -> Result<(), String> {
        let Some(path) = &self.metrics_file else {
            return Ok(());
        };
        let text = metrics::render(
            state,
            &Extra {
                up,
                crashes: &self.crashes,
                child_rss_bytes: state
                    .child_pid
                    .map(|pid| crate::monitors::memory::rss_of(pid, &[])),
                now: SystemTime::now(),
            },
        );
        match metrics::write_atomically(path, &text) {
            Ok(()) => {
                self.failing = false;
                Ok(())
            }
            Err(_) if self.failing => Ok(()),
            Err(e) => {
                self.failing = true;
                Err(format!(
                    "unable to write --metrics-file {}: {e}; supervision goes on",
                    path.display()
                ))
            }
        }
    }
}

//! The loop's side of a reload (SPEC §11): the second child's facts (its end, its leftovers;
//! its readiness is the monitors' `Ready`, as for any child), the answer to `reload` clients, and the `--socket`s as
//! `state.json` shows them. Decides nothing: the machine's `Reloading`/`Draining` states do.

use std::collections::VecDeque;
use std::os::fd::BorrowedFd;

use crate::process::sockets::Listeners;
use crate::records::state::SocketJson;
use crate::supervise::machine::{Input, Reply, Request, Sockets};

use super::{Event, Supervisor};

impl Supervisor {
    /// After reaping: the second child's end, or while it is being cleaned up, its leftovers.
    pub(super) fn other_ended(&mut self, events: &mut VecDeque<Event>) {
        if let Some((end, problems)) = self.family.check_other_end() {
            for problem in problems {
                self.log.warn(&problem);
            }
            let leftovers = self.other_leftovers_alive();
            events.push_back(Input::OtherEnded { end, leftovers }.into());
        } else if self.machine.cleaning_other() {
            let alive = self.other_leftovers_alive();
            events.push_back(Input::OtherLeftovers { alive }.into());
        }
    }

    pub(super) fn other_leftovers_alive(&self) -> bool {
        self.family
            .other_leftovers_alive(self.subreaper, |pid| self.not_the_childs(pid))
    }

    /// A reload's own sockets, as the machine says (issue 20). A new socket that cannot be
    /// opened is no failure of the reload: the new child shares the old sockets then, as before.
    /// The switch is answered (`Switched`): refused, nothing was changed.
    pub(super) fn sockets(&mut self, step: Sockets) -> Option<Input> {
        let problem = match step {
            Sockets::Open => match self.listeners.open_next() {
                Ok(_) => None,
                Err(e) => Some(format!(
                    "{e}: the new child shares the old socket, so the old child may still take \
                     connections until it stops"
                )),
            },
            Sockets::ToNew => {
                let refused = match self.listeners.to_next() {
                    Ok(problem) => {
                        if let Some(problem) = problem {
                            self.log.warn(&format!("reload: {problem}"));
                        }
                        None
                    }
                    Err(why) => Some(why),
                };
                return Some(Input::Switched { refused });
            }
            Sockets::KeepNew => self.listeners.keep_next(),
            Sockets::KeepOld => {
                self.listeners.keep_old();
                None
            }
        };
        if let Some(problem) = problem {
            self.log.warn(&format!("reload: {problem}"));
        }
        None
    }

    /// A reload is over: say so, and answer the `reload` clients.
    pub(super) fn reloaded(&mut self, result: Result<String, String>) {
        match &result {
            Ok(msg) => self.log.info(&format!("reload done: {msg}")),
            Err(msg) => self.log.warn(&format!("reload failed: {msg}")),
        }
        // state.json says so before the `reload` clients hear it.
        self.recorder.changed();
        self.save();
        self.control.reloaded(&result);
    }

    /// The `reload` and `restart` requests queued behind a reload that is over: answered as
    /// the machine answered the `request` it handled in their name.
    pub(super) fn reply_queued(&mut self, request: Request, reply: Reply) {
        let (wait, line) = match reply {
            Reply::WhenReloaded => (true, String::new()),
            Reply::Ok => (false, "ok".into()),
            Reply::OkSaying(msg) => (false, format!("ok: {msg}")),
            Reply::Refused(msg) => (false, format!("error: {msg}")),
            // Not answers to a reload or restart (the machine queues only during a reload).
            Reply::WhenStopped | Reply::AfterReload => (
                false,
                "error: the request queued during the reload was not carried out; try again".into(),
            ),
        };
        if line.starts_with("ok") {
            // As `reply`: what the requesters read in state.json once answered is what they
            // asked for.
            self.recorder.changed();
            self.save();
        }
        // Said whether or not the requesters are still there: it happens all the same.
        match (wait, request) {
            (true, _) => self
                .log
                .info("the reload requested during the last one starts now"),
            (false, Request::Restart) if line.starts_with("ok") => self
                .log
                .info("the restart requested during the reload starts now"),
            (false, _) => {}
        }
        // A `restart` requester hears what any `restart` hears: a bare `ok` as the restart
        // begins; what a restart shared with queued `reload`s says is for them.
        let restart_line = match (request, line.starts_with("ok")) {
            (Request::Restart, true) => "ok",
            _ => &line,
        };
        self.control.reply_queued(wait, &line, restart_line);
    }
}

/// `state.json`'s `sockets`: name, address (with the port the kernel chose) and the child's fd.
pub(super) fn sockets_json(listeners: &Listeners) -> Vec<SocketJson> {
    listeners
        .list
        .iter()
        .zip(3..)
        .map(|(l, fd)| SocketJson {
            name: l.name.clone(),
            address: l.address.to_string(),
            fd,
        })
        .collect()
}

/// Clears O_NONBLOCK on the sockets (a child may have set it on the shared description) so
/// that each child gets them in blocking mode, as sd_listen_fds(3) promises. Only when no other
/// child uses them: a reload's new child gets them as the old child left them, since switching
/// the mode under the old child's accept loop could block it.
pub(super) fn make_blocking(listeners: &Listeners) {
    for fd in listeners.fds() {
        // SAFETY: the descriptor is held by `listeners` for restartd's lifetime.
        let fd = unsafe { BorrowedFd::borrow_raw(fd) };
        if let Ok(flags) = nix::fcntl::fcntl(fd, nix::fcntl::FcntlArg::F_GETFL) {
            let flags = nix::fcntl::OFlag::from_bits_truncate(flags);
            if flags.contains(nix::fcntl::OFlag::O_NONBLOCK) {
                let blocking = flags - nix::fcntl::OFlag::O_NONBLOCK;
                let _ = nix::fcntl::fcntl(fd, nix::fcntl::FcntlArg::F_SETFL(blocking));
            }
        }
    }
}

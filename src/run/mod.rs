//! `restartd [OPTIONS] -- COMMAND` at run time: the event loop (the fds, one clock read a turn,
//! feeding the machine and carrying out its actions) and the parts it drives, each owning one
//! thing: `family` the child, its group and its output; `monitors` what watches the child;
//! `recorder` the crash records, `state.json` and hooks; `lineage` whose each adopted process is.
//! Also the control socket the subcommands talk to, restartd's own log lines, and the
//! `--env-file`s read before each start.
//!
//! Imports every layer below it; nothing below imports it.

pub mod control;
pub mod envfiles;
pub mod event_loop;
pub mod family;
pub mod lineage;
pub mod log;
pub mod monitors;
pub mod previous;
pub mod recorder;

//! `restartd [OPTIONS] -- COMMAND` at run time: the event loop (the fds, one clock read a turn,
//! feeding the machine and carrying out its actions), the control socket the subcommands talk
//! to, and restartd's own log lines.
//!
//! Imports every layer below it; nothing below imports it.

pub mod control;
pub mod event_loop;
pub mod log;

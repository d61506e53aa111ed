//! restartd as a library: every module of the binary, so that `src/main.rs` stays a recipe and
//! the fuzz targets in `fuzz/` can call the parsers, the traceback recogniser and the state
//! loader directly. Nothing here is a stable API; the command line is the interface.

pub mod argv;
pub mod child;
pub mod cli;
pub mod commands;
pub mod config;
pub mod control;
pub mod crashes;
pub mod crashlog;
pub mod dashboard;
pub mod doc;
pub mod endpoints;
pub mod event_loop;
pub mod exit;
pub mod health;
pub mod hooks;
pub mod http;
pub mod http_server;
pub mod instance;
pub mod log;
pub mod logfile;
pub mod machine;
pub mod memory;
pub mod metrics;
pub mod notify;
pub mod observe;
pub mod output;
pub mod policy;
pub mod report;
pub mod signals;
pub mod state;
pub mod tail;
pub mod traceback;
pub mod trim;
pub mod window;

//! restartd as a library: every module of the binary, so that `src/main.rs` stays a recipe and
//! the fuzz targets in `fuzz/` can call the parsers, the traceback recogniser and the state
//! loader directly. Nothing here is a stable API; the command line is the interface.
//!
//! The folders are layers; from the bottom up: `base`, `supervise`, `process`, `monitors`,
//! `records`, `observe`, `run`, `cli`. A module imports only from its own folder and the layers
//! below it (ARCHITECTURE.md draws them).

pub mod base;
pub mod cli;
pub mod monitors;
pub mod observe;
pub mod process;
pub mod records;
pub mod run;
pub mod supervise;

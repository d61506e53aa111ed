//! The subcommands for running and past instances: `status`, `list`, `reset`, `stop`,
//! `restart`, `signal`; and `man` and `completions`, which `doc` writes.
//!
//! They read `state.json` and test the `lock`; they change a running instance only through its
//! control channel, and a stopped one only while holding its lock.

use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use serde_json::Value;

use crate::base::exit::code;
use crate::cli::args::{StateDir, Sub};
use crate::cli::config;
use crate::cli::report::{print_table, Row};
use crate::records::state::{self, Loaded};
use crate::records::{crashlog, instance};
use crate::run::control::{self, Request};

/// Runs a subcommand; returns the exit status.
pub fn run(sub: Sub) -> u8 {
    let result = match sub {
        Sub::Status { name, json, dir } => status(&state_dir(dir), name.as_deref(), json),
        Sub::List { json, dir } => list(&state_dir(dir), json),
        Sub::Crashes {
            name,
            since,
            n,
            id,
            fingerprint,
            stats,
            json,
            dir,
        } => {
            let query = crate::records::crashes::Query {
                since,
                n,
                id: id.as_deref(),
                fingerprint: fingerprint.as_deref(),
                stats,
                json,
            };
            crate::records::crashes::run(&instance::dir(&state_dir(dir), &name), &name, &query)
        }
        Sub::Reset { name, crashes, dir } => reset(&state_dir(dir), &name, crashes),
        Sub::Stop { name, dir } => ask(&state_dir(dir), &name, Request::Stop),
        Sub::Restart { name, dir } => ask(&state_dir(dir), &name, Request::Restart),
        Sub::Signal { name, signal, dir } => ask(&state_dir(dir), &name, Request::Signal(signal.0)),
        Sub::Metrics { name, dir } => metrics(&state_dir(dir), &name),
        Sub::Logs(args) => {
            let dir = state_dir(args.dir.clone());
            crate::cli::logs::run(&dir, &args)
        }
        Sub::Completions { shell } => print(|out| {
            crate::cli::doc::completions(shell, out);
            Ok(())
        }),
        Sub::Man => print(crate::cli::doc::man),
        Sub::Unit { user, args } => return crate::cli::unit::run(user, args),
    };
    match result {
        Ok(status) => status,
        // `restartd status | head`: a closed stdout ends quietly (ripgrep's main.rs).
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => 0,
        Err(e) => {
            eprintln!("restartd: {e}");
            code::CANNOT_WORK
        }
    }
}

/// Writes what `write` makes to stdout through a buffer; a closed stdout ends quietly.
fn print(write: impl FnOnce(&mut dyn Write) -> io::Result<()>) -> io::Result<u8> {
    let mut buf = Vec::new();
    write(&mut buf)?;
    io::stdout().lock().write_all(&buf)?;
    Ok(0)
}

fn state_dir(dir: StateDir) -> PathBuf {
    config::state_dir(dir.state_dir, &|key| std::env::var_os(key))
}

fn all_rows(state_dir: &Path, with_error: bool) -> Vec<Row> {
    instance::names(state_dir)
        .unwrap_or_default()
        .iter()
        .filter_map(|name| Row::read(state_dir, name, with_error))
        .collect()
}

fn status(state_dir: &Path, name: Option<&str>, json: bool) -> io::Result<u8> {
    let rows = match name {
        Some(name) => match Row::read(state_dir, name, !json) {
            Some(row) => vec![row],
            None => {
                eprintln!("restartd: no instance '{name}' in {}", state_dir.display());
                return Ok(code::NO_SUCH);
            }
        },
        None => all_rows(state_dir, !json),
    };
    if json {
        let value = match name {
            Some(_) => rows[0].json(),
            None => Value::Array(rows.iter().map(Row::json).collect()),
        };
        writeln!(io::stdout().lock(), "{value}")?;
    } else if !rows.is_empty() {
        print_table(&rows)?;
    }
    Ok(if rows.is_empty() {
        code::NO_SUCH
    } else if rows.iter().all(|r| r.running) {
        code::RUNNING
    } else {
        code::NOT_RUNNING
    })
}

fn list(state_dir: &Path, json: bool) -> io::Result<u8> {
    let rows = all_rows(state_dir, !json);
    if json {
        let value = Value::Array(rows.iter().map(Row::json).collect());
        writeln!(io::stdout().lock(), "{value}")?;
    } else if !rows.is_empty() {
        print_table(&rows)?;
    }
    Ok(0)
}

fn reset(state_dir: &Path, name: &str, crashes: bool) -> io::Result<u8> {
    let dir = instance::dir(state_dir, name);
    if !dir.is_dir() {
        eprintln!("restartd: no instance '{name}' in {}", state_dir.display());
        return Ok(code::NO_SUCH);
    }
    match instance::acquire(state_dir, name) {
        Ok(held) => {
            // Not running: edit the files while holding the lock.
            if crashes {
                crashlog::remove(&held.dir)?;
                crate::records::known::remove(&held.dir)?;
            }
            if let Loaded::Found(mut s) = state::load(&held.dir) {
                s.recent_restarts.clear();
                if crashes {
                    // It names a record only while that is on disk.
                    if let Some(last) = &mut s.last_exit {
                        last.crash_id = None;
                    }
                }
                s.updated_at = state::rfc3339(SystemTime::now());
                state::StateWriter::new(&held.dir)?.write(&s, true)?;
            }
        }
        Err(instance::AcquireError::AlreadyRunning { .. }) => {
            // Running: the instance holds crashes.jsonl open; it removes the files itself and
            // starts a new one (SPEC §6), so no later record goes into a removed file.
            let reply = control::send(&dir, Request::Reset { crashes })?;
            if reply != "ok" {
                eprintln!("restartd: {name}: {}", reply.trim_start_matches("error: "));
                return Ok(code::CANNOT_WORK);
            }
        }
        Err(instance::AcquireError::Unusable(e)) => {
            eprintln!("restartd: {e:#}");
            return Ok(code::CANNOT_WORK);
        }
    }
    let what = if crashes {
        "restart window and crash history"
    } else {
        "restart window"
    };
    println!("{name}: {what} cleared");
    Ok(0)
}

/// `metrics NAME`: the Prometheus text, from `state.json` and `crashes.jsonl`.
fn metrics(state_dir: &Path, name: &str) -> io::Result<u8> {
    let dir = instance::dir(state_dir, name);
    let running = instance::running(&dir).is_some();
    match crate::observe::metrics::from_files(&dir, running, SystemTime::now())? {
        Some(text) => print(|out| out.write_all(text.as_bytes())),
        None => {
            eprintln!(
                "restartd: no instance '{name}' in {} (no state.json)",
                state_dir.display()
            );
            Ok(code::NO_SUCH)
        }
    }
}

/// `stop`, `restart`, `signal`: one request to a running instance.
fn ask(state_dir: &Path, name: &str, request: Request) -> io::Result<u8> {
    let dir = instance::dir(state_dir, name);
    if instance::running(&dir).is_none() {
        eprintln!("restartd: {name} is not running");
        return Ok(code::NOT_RUNNING);
    }
    match control::send(&dir, request) {
        Ok(reply) if reply == "ok" => Ok(0),
        Ok(reply) => {
            eprintln!("restartd: {name}: {}", reply.trim_start_matches("error: "));
            Ok(code::NOT_RUNNING)
        }
        Err(e)
            if matches!(
                e.kind(),
                io::ErrorKind::NotFound | io::ErrorKind::ConnectionRefused
            ) =>
        {
            eprintln!("restartd: {name} is not running");
            Ok(code::NOT_RUNNING)
        }
        Err(e) => Err(e),
    }
}

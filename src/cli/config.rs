//! From parsed flags and the environment to the `Config` restartd runs with.
//!
//! Only the combining lives here (defaults that depend on other flags, the state-directory
//! chain); the types are below the command line, in `base::config` and `supervise::config`.
//! Pure: the environment is passed in as a lookup function, so the state-directory chain of
//! SPEC §6 is tested without touching the process environment.

use std::ffi::OsString;
use std::path::PathBuf;

use crate::base::config::{HealthConfig, LogFileConfig, Probe, Token, Verbosity};
use crate::base::values::default_name;
use crate::cli::args::RunArgs;
use crate::supervise::config::Config;
use crate::supervise::machine::Settings;
use crate::supervise::policy::{Backoff, ExitRules};

/// The `Config` of a run: the flags combined with the environment and the token read from
/// `--listen-token-file` (`observe::access::read_token_file`). `args.command` must not be
/// empty.
pub fn from_args(
    args: RunArgs,
    listen_token: Option<Token>,
    env: &dyn Fn(&str) -> Option<OsString>,
) -> Config {
    let name = args.name.unwrap_or_else(|| default_name(&args.command[0]));
    let verbosity = match (args.quiet, args.verbose) {
        (true, _) => Verbosity::Quiet,
        (false, true) => Verbosity::Verbose,
        (false, false) => Verbosity::Normal,
    };
    let probe = match (args.health_cmd, args.health_url, args.readiness.health_tcp) {
        (Some(cmd), _, _) => Some(Probe::Command(cmd)),
        (None, Some(url), _) => Some(Probe::Http(url)),
        (None, None, Some(tcp)) => Some(Probe::Tcp(tcp)),
        (None, None, None) => None,
    };
    let health = probe.map(|probe| HealthConfig {
        probe,
        interval: args.health_interval,
        timeout: args.health_timeout,
        retries: args.health_retries,
        start_period: args.health_start_period,
    });
    let log_file = args.log_file.map(|path| LogFileConfig {
        // Absolute, so that `restartd logs` (state.json's `log_file`) finds it from anywhere.
        path: std::path::absolute(&path).unwrap_or(path),
        max_size: args.log_max_size,
        keep: args.log_keep,
        timestamps: args.log.log_timestamps,
        max_age: args.log.log_max_age,
        compress: args.log.log_compress,
    });
    Config {
        name,
        state_dir: state_dir(args.state_dir, env),
        command: args.command,
        settings: Settings {
            policy: args.restart,
            rules: ExitRules {
                success: args.success_exit_codes.unwrap_or_default().0,
                no_restart: args.no_restart_exit_codes.unwrap_or_default().0,
                force_restart: args.force_restart_exit_codes.unwrap_or_default().0,
            },
            backoff: Backoff {
                delay: args.delay,
                factor: args.backoff_factor,
                max_delay: args.max_delay.max(args.delay),
                jitter: args.jitter,
            },
            min_uptime: args.min_uptime,
            stop_signal: args.stop_signal.0,
            stop_timeout: args.stop_timeout,
            notify: args.notify || args.watchdog.is_some(),
            max_runtime: args.lifecycle.max_runtime,
            max_runtime_jitter: args.lifecycle.max_runtime_jitter,
            health: health.is_some(),
            ready_timeout: args.readiness.ready_timeout,
        },
        window: args.window,
        max_restarts: args.max_restarts.0,
        reset: args.reset,
        tail_lines: args.tail_lines,
        health,
        notify: args.notify || args.watchdog.is_some(),
        watchdog: args.watchdog,
        max_memory: args.max_memory,
        log_file,
        on_crash: args.on_crash,
        on_give_up: args.on_give_up,
        alert_limit: args.alert_limit,
        verbosity,
        log_format: args.log_format,
        labels: args.labels.into_iter().map(|l| (l.key, l.value)).collect(),
        listen: args.listen,
        listen_token,
        metrics_file: args.metrics_file,
        env_files: args.lifecycle.env_files,
        env: Vec::new(),
    }
}

/// The first of `--state-dir`, `$RESTARTD_STATE_DIR`, `$STATE_DIRECTORY` (its first entry),
/// `$XDG_STATE_HOME/restartd`, `$HOME/.local/state/restartd`, `/var/lib/restartd`.
/// Empty variables count as unset.
pub fn state_dir(flag: Option<PathBuf>, env: &dyn Fn(&str) -> Option<OsString>) -> PathBuf {
    use std::os::unix::ffi::OsStrExt;
    let var = |key: &str| env(key).filter(|v| !v.is_empty());
    if let Some(dir) = flag {
        return dir;
    }
    if let Some(dir) = var("RESTARTD_STATE_DIR") {
        return dir.into();
    }
    if let Some(dirs) = var("STATE_DIRECTORY") {
        // systemd joins several StateDirectory= entries with ':'.
        let first = dirs.as_bytes().split(|&b| b == b':').next().unwrap_or(b"");
        if !first.is_empty() {
            return PathBuf::from(std::ffi::OsStr::from_bytes(first));
        }
    }
    if let Some(dir) = var("XDG_STATE_HOME") {
        return PathBuf::from(dir).join("restartd");
    }
    if let Some(home) = var("HOME") {
        return PathBuf::from(home).join(".local/state/restartd");
    }
    PathBuf::from("/var/lib/restartd")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resolve(flag: Option<&str>, vars: &[(&str, &str)]) -> PathBuf {
        let env = |key: &str| {
            vars.iter()
                .find(|(k, _)| *k == key)
                .map(|(_, v)| OsString::from(v))
        };
        state_dir(flag.map(PathBuf::from), &env)
    }

    #[test]
    fn state_dir_resolution_order() {
        let all = [
            ("RESTARTD_STATE_DIR", "/r"),
            ("STATE_DIRECTORY", "/s:/s2"),
            ("XDG_STATE_HOME", "/x"),
            ("HOME", "/h"),
        ];
        assert_eq!(resolve(Some("/flag"), &all), PathBuf::from("/flag"));
        assert_eq!(resolve(None, &all), PathBuf::from("/r"));
        assert_eq!(resolve(None, &all[1..]), PathBuf::from("/s"));
        assert_eq!(resolve(None, &all[2..]), PathBuf::from("/x/restartd"));
        assert_eq!(
            resolve(None, &all[3..]),
            PathBuf::from("/h/.local/state/restartd")
        );
        assert_eq!(resolve(None, &[]), PathBuf::from("/var/lib/restartd"));
        assert_eq!(
            resolve(None, &[("RESTARTD_STATE_DIR", ""), ("HOME", "/h")]),
            PathBuf::from("/h/.local/state/restartd")
        );
    }
}

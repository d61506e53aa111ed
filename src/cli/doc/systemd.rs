//! The man page's UNDER SYSTEMD section (SPEC §13, §14): readiness, what `restartd unit` writes
//! and why, and the sd_notify messages restartd understands. Plain text; `doc.rs` lays it out.

/// When the child is ready, and what systemd hears.
pub const READINESS: &str =
    "A child is ready when it sends READY=1 (with `--notify`), else at its first passing health \
     check (with `--health-cmd`, `--health-url` or `--health-tcp`), else as soon as it runs. \
     Under systemd (`NOTIFY_SOCKET` in restartd's environment) restartd sends READY=1 once, when \
     its first child is ready: a `Type=notify` unit stays `activating` until then. With \
     `--ready-timeout DUR` a child not ready DUR after its start is stopped with a crash record \
     of reason `start-timeout`, and the policy decides as for an unhealthy child. While restartd \
     waits to restart, its STATUS= says so (`restart 2 of 5 in 5m, next in 4s: \
     ZeroDivisionError: division by zero`), so `systemctl status` shows why; once the child runs \
     again it says `running after restart 2 of 5 in 5m (last end: …)` until the child sends a \
     STATUS= of its own. If systemd gave restartd `WATCHDOG_USEC`, restartd pings systemd's \
     watchdog at half the interval while its loop runs.";

/// Before the unit's lines.
pub const UNIT_INTRO: &str =
    "`restartd unit [--user] [RUN OPTIONS] -- COMMAND` prints a unit that runs `restartd RUN \
     OPTIONS -- COMMAND` and works as it is; it passes `systemd-analyze verify`. Its lines, and \
     why:";

/// Each line `restartd unit` writes, and why.
pub const UNIT_LINES: &[(&str, &str)] = &[
    (
        "Type=notify, NotifyAccess=main",
        "systemd waits for restartd's READY=1, which comes when the child is ready; only \
         restartd (the main process) may speak to systemd, the child speaks to restartd",
    ),
    (
        "ExecStart=",
        "restartd's absolute path (from /proc/self/exe), the options as given, and the command, \
         whose bare program name is resolved through the current `PATH` (systemd's own `PATH` is \
         short). Every word is quoted for systemd: `$` as `$$` and `%` as `%%` (no variable or \
         specifier expansion), C escapes for backslashes, quotes, newlines, tabs and other control \
         characters, a lone `;` as `\\;`. An argument that is not UTF-8 is refused (exit 2): a \
         unit file is UTF-8 text",
    ),
    (
        "WorkingDirectory=",
        "the directory `restartd unit` ran in (none for /), so relative paths in the command \
         mean what they meant there",
    ),
    (
        "User=",
        "for a system unit made by a user other than root: that user",
    ),
    (
        "StateDirectory=restartd",
        "systemd creates /var/lib/restartd (with `--user`: ~/.local/state/restartd) and passes \
         it as `STATE_DIRECTORY`, which restartd takes as its state directory. `restartd \
         status NAME` in a shell needs `RESTARTD_STATE_DIR=/var/lib/restartd` (or `--state-dir`)",
    ),
    (
        "KillMode=mixed",
        "`systemctl stop` sends SIGTERM to restartd only, which stops the child (one SIGTERM, \
         `--stop-timeout`, SIGKILL) and its leftovers; with the default `control-group` the \
         child would get systemd's SIGTERM and restartd's. What is left after restartd exits \
         gets systemd's SIGKILL",
    ),
    (
        "TimeoutStopSec=",
        "twice `--stop-timeout` (one for the child, one for what it leaves behind) plus 5 s \
         (plus 30 s with `--on-crash` or `--on-give-up`, the longest \
         restartd waits for a hook before it exits), so systemd does not SIGKILL restartd in the \
         middle of its own stop",
    ),
    (
        "TimeoutStartSec=infinity",
        "only with `--ready-timeout`: restartd bounds each start itself, restarts a child that \
         is not ready in time, and gives up by its window; without it systemd's default start \
         timeout applies, and a child's EXTEND_TIMEOUT_USEC= is forwarded until ready",
    ),
    (
        "OOMPolicy=continue",
        "an OOM kill of the child must not make systemd stop the whole unit (the default, \
         `DefaultOOMPolicy=stop`, would stop restartd too); restartd records the child's end and \
         the policy decides",
    ),
    (
        "WatchdogSec=",
        "only with `--watchdog DUR`, and set to DUR: restartd pings systemd while its loop runs, \
         the child pings restartd",
    ),
    (
        "Restart=on-failure, RestartSec=",
        "when restartd gives up it exits with the child's status; systemd starts it again after \
         `--max-delay`. The restart window is kept in state.json, so the new restartd keeps \
         counting until the window has passed (or `restartd reset NAME`)",
    ),
    (
        "SuccessExitStatus=, RestartPreventExitStatus=",
        "only with `--success-exit-codes` / `--no-restart-exit-codes`, the same codes: a child \
         that ends with one is not restarted and restartd exits with its code, which systemd \
         must then not restart either",
    ),
    (
        "WantedBy=multi-user.target",
        "`systemctl enable` starts it at boot; with `--user`, `default.target`",
    ),
];

/// Before the messages.
pub const NOTIFY_INTRO: &str =
    "With `--notify` (or `--watchdog`) the child gets `NOTIFY_SOCKET` and may send \
     (sd_notify(3); only datagrams from the child's process group count):";

/// Each sd_notify message restartd understands from its child.
pub const NOTIFY_MESSAGES: &[(&str, &str)] = &[
    ("READY=1", "the child is ready"),
    (
        "STATUS=…",
        "kept as `status_text` in state.json and forwarded to systemd",
    ),
    (
        "WATCHDOG=1, WATCHDOG_USEC=…",
        "a watchdog ping; a new interval from now",
    ),
    (
        "WATCHDOG=trigger",
        "a watchdog failure at once (SIGABRT, then the stop sequence; reason `watchdog`)",
    ),
    (
        "RESTART_RESET=1",
        "ends the crash streak and clears the restart window, as `restartd reset` (logged)",
    ),
    (
        "EXTEND_TIMEOUT_USEC=…",
        "forwarded to systemd while restartd has not reported ready",
    ),
    (
        "RELOADING=1, MONOTONIC_USEC=…",
        "forwarded (with the child's MONOTONIC_USEC=, else restartd's clock), and the child's \
         next READY=1 with it, so a reload through `ExecReload=` is seen by systemd",
    ),
    (
        "ERRNO=…, EXIT_STATUS=…",
        "kept for the `detail` of the child's next crash record",
    ),
    ("STOPPING=1", "logged"),
];

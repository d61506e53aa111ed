//! The words of the manual page that clap cannot know, as tables of `(tag, text)`.
//!
//! Text marks `code` spans with backquotes: the man page sets them in bold, `--help` drops the
//! marks. Keep each fact here once; the README says the same for people browsing the source.

/// The paragraphs of DESCRIPTION, before the numbered list.
pub const DESCRIPTION: &[&str] = &[
    "`restartd` runs one command as its child and keeps it running. It replaces the \
     hand-written `while true` restart loops, monitor scripts, crash handlers and \
     restart-count files that are written around servers. It is one small binary with one \
     thread and no daemon: use it in a terminal, in tmux or screen, as `ExecStart=` of a \
     systemd unit, or as a container's entrypoint (PID 1).",
    "What it does, in order:",
];

/// DESCRIPTION's numbered list.
pub const WHAT_IT_DOES: &[&str] = &[
    "Takes the instance's lock in `STATE_DIR/NAME/` (see FILES); a second restartd for the \
     same NAME exits 125.",
    "Starts COMMAND in a new process group, with stdin `/dev/null`, restartd's stdout, and its \
     stderr passed through restartd (the last lines are kept for crash records).",
    "When the child ends, writes a crash record (unless it was a clean exit or a stop that was \
     asked for), then decides by `--restart` (see WHEN IT RESTARTS) whether to start it again, \
     after a backoff delay.",
    "Gives up after `--max-restarts` restarts inside the trailing `--window`, and exits with the \
     child's last status, so whatever started restartd (systemd, a shell, the kubelet) sees \
     how the child ended.",
    "Meanwhile, forwards signals, reaps orphans, runs health checks and the watchdog when \
     asked, and keeps `state.json` up to date for `restartd status`.",
];

/// DESCRIPTION's last paragraph: the value forms the flags share (`-h` says the same, shorter).
pub const VALUES: &str =
    "Values: DUR is a duration, `500ms`, `10s`, `5m`, `1h 30m` (a bare `0` is zero), of at \
     most `10y` (a year being 365.25 days, so `10y 1s` and `3653d` are refused); SIZE is \
     `512M` or `2G` (K, M, G, T are powers of 1024); LIST is exit codes 0-255 with commas, \
     `1,3,78`. A bad value is a usage error that names the flag and the accepted form: \
     restartd exits 2 and starts nothing.";

/// SUBCOMMANDS' first paragraph.
pub const SUBCOMMANDS_INTRO: &str =
    "Every subcommand accepts `--state-dir DIR`; without it, the state directory is found as \
     for a run (see FILES). A state file whose restartd is gone (its lock is free) reads as not \
     running, whatever it says: `running` is false, a `status` of `starting`, `running`, \
     `backoff` or `stopping` reads as `dead` (in the table: `dead (restartd pid P is gone)`), \
     and `status NAME` exits 3. The health of an instance that is not running is `-` in the \
     table and null in JSON.";

/// The causes of an end: the columns of the restart table (a short head, then the long form
/// listed under it), with the `policy::Cause` each stands for.
pub const CAUSES: &[(&str, &str, crate::supervise::policy::Cause)] = {
    use crate::supervise::policy::Cause::*;
    &[
        (
            "clean",
            "exit 0 or a code in `--success-exit-codes`, or killed by SIGHUP, SIGINT, SIGTERM \
             or SIGPIPE",
            Clean,
        ),
        ("exit", "any other exit code", UncleanExit),
        (
            "signal",
            "killed by any other signal, SIGKILL and core dumps included",
            UncleanSignal,
        ),
        (
            "unhealthy",
            "restartd stopped it: failed health checks, not ready within `--ready-timeout`, or \
             over `--max-memory`, or the kernel's OOM killer killed it (reason `oom`) \
             (systemd's timeout and OOM rows)",
            Unhealthy,
        ),
        (
            "watchdog",
            "restartd stopped it: no WATCHDOG=1 within `--watchdog`",
            Watchdog,
        ),
    ]
};

/// WHEN IT RESTARTS, before the table.
pub const RESTART_INTRO: &str =
    "Each end of the child has a cause; `--restart POLICY` decides whether it restarts, \
     exactly as systemd's `Restart=` does. An X marks a restart:";

/// WHEN IT RESTARTS, between the table and the causes.
pub const CAUSES_INTRO: &str = "The causes:";

/// WHEN IT RESTARTS, after the table.
pub const RESTART_RULES: &[&str] = &[
    "`--no-restart-exit-codes` wins over everything; `--force-restart-exit-codes` wins over \
     the policy. Both apply to exit codes only. A stop that was asked for (SIGTERM, SIGINT or \
     SIGQUIT to restartd, `restartd stop`) never restarts. The cause of a child that restartd \
     itself stopped (unhealthy, memory, watchdog) is restartd's reason, not the signal the \
     child died of; so is an OOM kill's: the OOM killer's SIGKILL counts as unhealthy, not \
     as a signal.",
    "Limit: before restart k of a streak, restartd counts the restarts it made inside the \
     trailing `--window`. If that count is already `--max-restarts`, it gives up: it writes a \
     crash record with action `give-up`, runs `--on-give-up`, sets the status to `gave-up`, and \
     exits with the child's last status. The restart times persist in `state.json`, so a \
     restartd that is itself restarted keeps counting; it says so at start, and `--reset` or \
     `restartd reset NAME` clears them. A restart asked for with `restartd restart` is no \
     crash, costs no backoff and is not counted.",
    "Backoff: restart k of a streak waits min(`--max-delay`, `--delay` x \
     `--backoff-factor`^(k-1)), randomised by plus or minus `--jitter`. A run of at least `--min-uptime` \
     ends the streak. A stop request during a backoff ends restartd at once with status 0.",
    "A command that cannot be started (not found, not executable) is not retried: restartd \
     says why, writes a crash record with reason `spawn-failed`, and exits 127 or 126.",
];

/// SIGNALS: what each signal to restartd does.
pub const SIGNALS: &[(&str, &str)] = &[
    (
        "SIGTERM, SIGINT, SIGQUIT",
        "A stop request: the same signal goes to the child's process group (and to reparented \
         descendants); after `--stop-timeout`, SIGKILL. A second stop request sends SIGKILL at \
         once. restartd exits 0 when the child ended in time, 137 when it had to be killed.",
    ),
    (
        "SIGHUP, SIGUSR1, SIGUSR2, SIGWINCH",
        "Forwarded to the child's process group; nothing else changes. `restartd signal NAME \
         SIG` sends any signal the same way. restartd's handler counts each signal and the loop \
         acts on it: a signal that came twice before the loop looked is forwarded twice, as two \
         stop signals are two stop requests.",
    ),
    (
        "SIGTSTP (Ctrl-Z)",
        "Stops the child's process group with SIGSTOP, then restartd itself; SIGCONT resumes \
         both.",
    ),
    (
        "SIGCHLD",
        "restartd is a child subreaper: descendants that daemonise are reparented to it and \
         reaped, so no zombie is left, also as PID 1 in a container.",
    ),
];

/// SIGNALS, after the list: what the child gets.
pub const PROCESSES: &str =
    "The child leads its own process group. It gets a parent-death signal (SIGTERM), so it \
     never outlives a killed restartd, and the signal mask and ignored signals restartd itself \
     inherited (SIGPIPE included). When the child ends, \
     what is left of its process group and of its reparented descendants gets the stop signal, \
     then SIGKILL after `--stop-timeout`, before the next start: a restarted server never \
     finds its port still held. Hooks and health checks are restartd's own and never part of \
     that cleanup, nor is what they leave behind. The child is reaped only once its group's \
     cleanup is over, so its group id cannot be reused meanwhile: restartd never signals a \
     process that is not its own. Whose an adopted process is, restartd records by pid and \
     start time while it sees it in a tree (it walks its children's trees at every reap and \
     before acting on the child's tree), and judges an orphan it never saw by the end that \
     orphaned it: the child's end makes it the child's, the end of a hook or health check that \
     started before it a helper's (unless it carries the instance's `RESTARTD_NAME` without a \
     hook's `RESTARTD_EVENT`: then it is the child's); when it cannot tell, it never signals it. As PID 1, an orphan whose group or \
     session is led from outside the container (a `docker exec` job) is never the child's. A \
     child left running by a restartd that was killed (named in `state.json`'s `leftovers` by \
     pid and start time), what else of its tree was recorded there, and the members of its \
     process group are stopped by the next restartd before it starts its own, unless they \
     were recorded under another boot (`boot_id`). What SIGKILL cannot end (another user's \
     process, uninterruptible sleep) gets `--stop-timeout` more, then is named in a warning, \
     left alone and never signalled again, and restartd goes on as the policy says. \
     `restartd stop` and the stops restartd decides itself use `--stop-signal`.";

/// SIGNALS, last: output that nobody reads (SPEC §10).
pub const STALLED_OUTPUT: &str =
    "restartd never waits to write. When its stderr cannot take more (a terminal after Ctrl-S, \
     a stuck `| logger`, a stalled journal), it stops reading the child's stderr until it can, \
     so the child blocks as it would writing there itself; signals, timers, control requests, \
     health checks and reaping go on, and a stop is served within `--stop-timeout`. The same \
     holds for stdout with `--log-file` (the log file still gets every byte, each stream's in \
     its order). What the child \
     wrote before it ended still reaches its crash record. restartd's own lines wait in order \
     behind the child's output; past 64 KiB of them the rest are dropped and counted, in one \
     line once stderr drains. At exit what still waits gets one second, and never more than \
     what is left of a requested stop's `--stop-timeout`; the rest is dropped.";

/// EXIT STATUS of a run.
pub const EXIT_STATUS: &[(&str, &str)] = &[
    (
        "CODE",
        "the child exited with CODE and the policy does not restart it, or restartd gave up",
    ),
    (
        "128+N",
        "the same, but signal N killed the child (e.g. 139 for SIGSEGV)",
    ),
    (
        "0",
        "a stop that was asked for, and the child ended within --stop-timeout (or it was in a \
         backoff)",
    ),
    (
        "137",
        "a stop that was asked for, and the child had to be SIGKILLed",
    ),
    ("127", "the command was not found"),
    ("126", "the command exists but cannot be executed"),
    ("2", "usage error: a bad flag or value; nothing was started"),
    (
        "125",
        "restartd itself could not work: the instance is already running, the state \
         directory is unusable, or a `--socket` cannot be bound",
    ),
];

/// EXIT STATUS of the subcommands.
pub const SUBCOMMAND_STATUS: &[(&str, &str)] = &[
    (
        "0",
        "success; for `status`, the instance (every instance, without NAME) is running",
    ),
    (
        "3",
        "`status`: not running (without NAME: not every instance runs); `stop`, `restart`, \
         `reload`, `signal`: the instance is not running",
    ),
    (
        "1",
        "`reload`: the new child failed (or was not ready in time, or its sockets could not be \
         switched to it); the old one keeps running",
    ),
    (
        "4",
        "no such instance (`status`, `crashes`, `reset`, `logs`), no crash record with that \
         `--id`, or (`logs`) an instance without `--log-file`",
    ),
    ("2", "usage error"),
    ("125", "a file could not be read or written"),
];

/// ENVIRONMENT: what restartd reads.
pub const ENV_READ: &[(&str, &str)] = &[
    (
        "RESTARTD_STATE_DIR",
        "the state directory, unless `--state-dir` is given",
    ),
    (
        "STATE_DIRECTORY",
        "set by systemd's `StateDirectory=`: the state directory after `$RESTARTD_STATE_DIR`",
    ),
    (
        "XDG_STATE_HOME, HOME",
        "the state directory after those: `$XDG_STATE_HOME/restartd`, else \
         `$HOME/.local/state/restartd`",
    ),
    (
        "NOTIFY_SOCKET, WATCHDOG_USEC, WATCHDOG_PID",
        "set by systemd for `Type=notify` and `WatchdogSec=`: restartd sends READY=1 once the \
         child is ready (see UNDER SYSTEMD), forwards its STATUS=, EXTEND_TIMEOUT_USEC= and \
         RELOADING=1, says why while it waits to restart, says STOPPING=1, and pings the \
         watchdog at half the interval. The child does not see restartd's values.",
    ),
    (
        "JOURNAL_STREAM",
        "set by systemd when stderr is the journal; when its device:inode is restartd's \
         stderr, text log lines carry a <N> priority and no time (see JSON OUTPUT)",
    ),
    (
        "NO_COLOR",
        "when set and not empty, `status` and `list` print no colour (they use colour only \
         on a terminal)",
    ),
    ("TZ", "the local time zone of the time in text log lines"),
];

/// ENVIRONMENT, before the child's variables.
pub const ENV_CHILD_INTRO: &str =
    "The child gets restartd's environment (without restartd's own NOTIFY_SOCKET, \
     WATCHDOG_USEC and WATCHDOG_PID, and without LISTEN_FDS, LISTEN_PID and LISTEN_FDNAMES), then the variables of the `--env-file`s, read again \
     before every start (later files and lines win; a file that cannot be read or parsed at a \
     later start keeps the environment read last, said once), plus these, which win over the \
     files:";

/// ENVIRONMENT: what the child gets.
pub const ENV_CHILD: &[(&str, &str)] = &[
    ("RESTARTD_NAME", "the instance name"),
    (
        "RESTARTD_RESTARTS",
        "the restarts so far in this run of restartd (0 for the first start)",
    ),
    (
        "NOTIFY_SOCKET",
        "with `--notify` or `--watchdog`: the socket for sd_notify(3) messages",
    ),
    (
        "WATCHDOG_USEC, WATCHDOG_PID",
        "with `--watchdog`: the interval in microseconds, and the child's own pid",
    ),
    (
        "LISTEN_FDS, LISTEN_PID, LISTEN_FDNAMES",
        "with `--socket`: the number of sockets at fds 3, 4, ..., the child's own pid, and \
         their names separated by `:` (sd_listen_fds(3))",
    ),
];

/// ENVIRONMENT: what hooks get.
pub const ENV_HOOKS: &str =
    "Hooks (`--on-crash`, `--on-give-up`) run with `sh -c` and get the crash record as one \
     JSON line on stdin, and RESTARTD_EVENT (`crash` or `give-up`), RESTARTD_NAME, \
     RESTARTD_CRASH_ID, RESTARTD_REASON, RESTARTD_EXIT_CODE, RESTARTD_SIGNAL (empty when not \
     applicable), RESTARTD_RESTARTS, RESTARTD_ACTION, RESTARTD_FINGERPRINT (empty when none), \
     RESTARTD_FIRST_SEEN (`1` for a new error, else `0`) and RESTARTD_SUPPRESSED (crash hooks \
     skipped by `--alert-limit` since the last one ran). `--alert-limit` never holds back the \
     hook of a new error. Crash data is never pasted into the command string. A hook's \
     stdout and stderr go to a 64 KiB in-memory file (a sealed memfd), never to restartd's own \
     stderr, which a stalled reader could leave full: a hook never blocks on it. What does not \
     fit is refused (EPERM) and lost, with a warning; when the hook ends, its output is passed \
     on to restartd's stderr through its never-blocking output path.";

/// JSON OUTPUT: each `--json` output and its shape. These are stable: fields are only added.
pub const JSON_SCHEMAS: &[(&str, &str)] = &[
    (
        "status NAME --json",
        "One object: every field of `state.json` (see FILES) plus `running` (true when the \
         instance's restartd holds its lock). When it does not, `status` is \"dead\" where the \
         file says `starting`, `running`, `backoff` or `stopping`, and `health` is null. An \
         instance without a readable state file is {\"name\": NAME, \"running\": BOOL}.",
    ),
    (
        "status --json, list --json",
        "An array of those objects, sorted by name.",
    ),
    (
        "crashes NAME --json",
        "One crash record a line (see FILES), newest first; with `--id`, that one record.",
    ),
    (
        "crashes NAME --stats --json",
        "One object: `last_hour`, `last_24h` and `total` (counts), `by_reason` and \
         `by_error_type` (objects from a reason or error type to a count; a record without a \
         recognised type counts as \"(none)\"), `by_fingerprint` (an array, the error seen \
         last first, of objects with `fingerprint`, `count`, `first` and `last` (times), \
         `error_type` and `error_message` (the latest)), and `status`: \"degraded\" when there \
         was a crash in the last hour, else \"healthy\".",
    ),
];

/// JSON OUTPUT: restartd's own text lines.
pub const LOG_TEXT: &str =
    "restartd's own messages go to stderr, one line each. As `text` (the default) a line reads \
     `12:03:44 restartd[NAME]: exited with code 1 after 3.2s; restart 2 of 5 in 5m, next in \
     2s`: the local time, then the instance. Under systemd, when JOURNAL_STREAM names \
     restartd's stderr, the time is left out (the journal has it) and the line starts with \
     its syslog priority instead, so the journal keeps the level: <3> error, <4> warning, \
     <6> info, <7> debug. In a crash loop at most 10 crash lines a minute are printed, then a \
     count of those held back. `-q` prints only warnings and errors; `-v` adds every start, \
     forwarded signal and reaped orphan.";

/// JSON OUTPUT, before the log fields.
pub const LOG_JSON_INTRO: &str =
    "With `--log-format json`, each message is one JSON object a line, with no priority \
     prefix or local time. Fields:";

/// JSON OUTPUT: the fields of a JSON log line.
pub const LOG_FIELDS: &[(&str, &str)] = &[
    ("time", "RFC 3339 UTC with milliseconds"),
    ("level", "`error`, `warn`, `info` or `debug`"),
    ("name", "the instance name"),
    ("msg", "the text line's message"),
    (
        "event",
        "for an end of the child: what restartd does next, `restart`, `give-up` or `exit`",
    ),
    (
        "reason, pid, exit_code, signal, uptime_ms, restarts",
        "for an end of the child: as in its crash record",
    ),
    ("next_delay_ms", "with event `restart`: the backoff delay"),
    (
        "crash_id, error_type, error_message",
        "when the end wrote a crash record",
    ),
    (
        "detail",
        "for an unhealthy, start-timeout, memory or watchdog stop, as in the crash record",
    ),
    (
        "suppressed",
        "on the crash-loop summary: how many crash lines were held back",
    ),
];

/// The examples of `--help`: (what, command line).
pub const HELP_EXAMPLES: &[(&str, &str)] = &[
    ("keep a server running", "restartd -- uvicorn main:app"),
    (
        "restart even after exit 0; give up after 10 restarts in a minute",
        "restartd --restart always --max-restarts 10 --window 1m -- ./worker",
    ),
    (
        "restart when the health URL fails 3 times in a row",
        "restartd --health-url http://127.0.0.1:8000/healthz -- ./server",
    ),
    (
        "post every crash record to a webhook",
        "restartd --on-crash 'curl -fsS --data-binary @- \"$HOOK_URL\"' -- ./server",
    ),
    ("every instance, aligned", "restartd status"),
    (
        "the last crashes, with the error each printed",
        "restartd crashes server",
    ),
    ("stop it gracefully", "restartd stop server"),
    (
        "timestamped, gzipped log; an env file; a fresh start every day",
        "restartd --log-file /var/log/api.log --log-timestamps --log-compress \\\n    \
         --env-file /etc/api.env --max-runtime 24h --max-runtime-jitter 30m -- ./server",
    ),
    (
        "follow that log across rotations",
        "restartd logs server -f",
    ),
];

/// EXAMPLES: (title, introduction, code).
pub const EXAMPLES: &[(&str, &str, &str)] = &[
    (
        "In a terminal",
        "A program that fails at once: restartd restarts it twice, gives up, and exits with its \
         status; `restartd crashes` then lists the crash records with the error each printed.",
        "restartd --delay 0 --max-restarts 2 -- sh -c 'echo \"Error: boom\" >&2; exit 3'\n\
         restartd crashes sh\n\
         restartd status sh",
    ),
    (
        "In tmux",
        "Keep a development server running in a detached session; look at it from anywhere.",
        "tmux new-session -d -s api 'restartd --name api -- ./server --port 8000'\n\
         restartd status api\n\
         tmux attach -t api",
    ),
    (
        "A systemd unit",
        "`restartd unit` prints a unit for the same options (UNDER SYSTEMD explains each line). \
         systemd waits until the server is ready, `systemctl status` says why restartd waits to \
         restart, and if restartd gives up systemd starts it again, and it remembers the \
         restarts it already made. `StateDirectory=` is its state directory.",
        "restartd unit -n api --notify --watchdog 30s --ready-timeout 2m \\\n\
         \x20   -- /srv/api/bin/server > /etc/systemd/system/api.service\n\
         systemctl daemon-reload && systemctl enable --now api\n\
         RESTARTD_STATE_DIR=/var/lib/restartd restartd status api",
    ),
    (
        "Logs, an env file and a daily restart",
        "The output goes to a file with a UTC time on each line, rotated at 10 MiB into \
         gzipped files, the oldest deleted after a week; the environment file is read again \
         before every start, so a changed secret is taken at the next restart; the server is \
         restarted gracefully after a day (plus up to 30 minutes, so a fleet does not restart \
         at once), which is no crash. `restartd logs api -f` follows the file across \
         rotations and ends when the instance stops.",
        "restartd --name api --log-file /var/log/api/out.log --log-timestamps \\\n\
         \x20   --log-compress --log-max-age 7d --env-file /etc/api/env \\\n\
         \x20   --max-runtime 24h --max-runtime-jitter 30m -- /srv/api/bin/server\n\
         restartd logs api -n 100 --since 1h\n\
         restartd logs api -f",
    ),
    (
        "A Dockerfile",
        "As PID 1, restartd forwards `docker stop`'s SIGTERM, reaps every orphan, and exits \
         with the child's status when it gives up.",
        "ENTRYPOINT [\"restartd\", \"--stop-timeout\", \"8s\", \"--\", \"node\", \"server.js\"]",
    ),
    (
        "Kubernetes",
        "Inside a pod, restartd restarts a crashed process in seconds instead of the kubelet's \
         growing CrashLoopBackOff, without recreating the container, and keeps crash records \
         with the error (`kubectl exec POD -- restartd crashes api`). When it gives up it exits \
         with the child's status: the container ends with that exit code, the kubelet applies \
         the pod's `restartPolicy`, and with `FallbackToLogsOnError` the last log lines, \
         restartd's `giving up` among them, become the termination message. Keep `--stop-timeout` below \
         `terminationGracePeriodSeconds`.",
        "containers:\n\
         \x20 - name: api\n\
         \x20   image: example/api:1.4.2\n\
         \x20   command: [\"restartd\", \"--name\", \"api\", \"--stop-timeout\", \"20s\",\n\
         \x20             \"--\", \"/srv/api/bin/server\"]\n\
         \x20   env:\n\
         \x20     - name: RESTARTD_STATE_DIR\n\
         \x20       value: /var/lib/restartd\n\
         \x20   volumeMounts:\n\
         \x20     - name: restartd\n\
         \x20       mountPath: /var/lib/restartd\n\
         \x20   terminationMessagePolicy: FallbackToLogsOnError\n\
         volumes:\n\
         \x20 - name: restartd\n\
         \x20   emptyDir: {}",
    ),
];

/// SEE ALSO.
pub const SEE_ALSO: &str =
    "systemd.service(5) (Restart=, RestartSec=, StartLimitBurst=), systemd.kill(5), \
     sd_notify(3), supervisord(1), pm2(1), s6-supervise(8), tini(1), dumb-init(1), signal(7), \
     wait4(2), prctl(2) (PR_SET_CHILD_SUBREAPER, PR_SET_PDEATHSIG).";

//! The manual page's FILES section: the state directory, `state.json`'s fields and the crash
//! record's, as tables of `(tag, text)` marked up like `text.rs`.

/// FILES, before the list.
pub const FILES_INTRO: &str =
    "The state directory STATE_DIR is the first of `--state-dir`, `$RESTARTD_STATE_DIR`, \
     `$STATE_DIRECTORY` (set by systemd's `StateDirectory=`; its first entry), \
     `$XDG_STATE_HOME/restartd`, `$HOME/.local/state/restartd`, `/var/lib/restartd`. Each \
     instance has a directory `STATE_DIR/NAME/` (mode 0700, files 0600) holding:";

/// FILES: the instance directory.
pub const FILES: &[(&str, &str)] = &[
    (
        "lock",
        "An exclusive flock(2) held by the running restartd, with its pid. A second restartd \
         for the instance exits 125: `instance NAME is already running (pid P); pass --name`.",
    ),
    (
        "state.json",
        "What the instance is doing, replaced atomically (write, rename) at every change, fsync'd \
         first when the change records a restart, a give-up or a reset. \
         An unreadable file is reported, moved aside to `state.json.corrupt` and replaced; it \
         never stops supervision. Fields below.",
    ),
    (
        "crashes.jsonl, crashes.jsonl.1",
        "One crash record a line for every end of the child except a clean exit and a stop \
         that was asked for; appended and fsync'd before restartd acts on the crash, rotated \
         past 10 MiB. An append that fails part way (a full disk) is cut back, so the next \
         record starts on a line of its own; the directory is fsync'd after the file is \
         created or rotated. `restartd reset NAME --crashes` on a running instance goes \
         through the instance, which removes the files and starts a new one: no later record \
         is lost. Fields below.",
    ),
    (
        "fingerprints",
        "The fingerprint of every error recorded so far, one a line, appended and fsync'd after \
         the first record of each: a crash record's `first_seen` stays right across restarts of \
         restartd and rotations. Built from the crash files when missing; `reset --crashes` \
         removes it.",
    ),
    (
        "control",
        "A unix socket for `stop`, `restart`, `reload`, `signal` and `reset` (one request \
         line, one reply line, sent within 5 s of connecting; the client may shut its sending \
         side down after its newline); only the owner's uid may use it.",
    ),
    (
        "notify",
        "With `--notify`, the datagram socket the child gets as `NOTIFY_SOCKET` (an abstract \
         socket when the path is too long).",
    ),
];

/// FILES: `state.json`'s fields. Times are RFC 3339 UTC with milliseconds.
pub const STATE_FIELDS: &[(&str, &str)] = &[
    ("version", "1"),
    ("name", "the instance name"),
    ("command", "the command, an array of strings"),
    (
        "status",
        "`starting`, `running`, `backoff`, `stopping`, `stopped`, `exited`, `gave-up` or \
         `reloading`",
    ),
    ("supervisor_pid", "restartd's pid"),
    ("child_pid", "the child's pid, or null"),
    ("started_at", "when restartd started"),
    (
        "child_started_at",
        "when the current child started, or null",
    ),
    (
        "restarts",
        "restarts in total, over every run of the instance",
    ),
    (
        "scheduled_restarts",
        "`--max-runtime` restarts in total, over every run of the instance (also counted in \
         `restarts`; never in `recent_restarts`)",
    ),
    (
        "recent_restarts",
        "the times of the restarts inside the trailing `--window`, oldest first; with \
         `--max-restarts unlimited`, at most the last 100",
    ),
    ("max_restarts", "the limit; null is unlimited"),
    ("window_secs", "`--window` in seconds"),
    (
        "last_exit",
        "the last end of the child: an object with `code`, `signal` (e.g. \"SIGSEGV\"), \
         `reason`, `at` and `crash_id` (each may be null), or null",
    ),
    ("next_restart_at", "when the backoff ends, or null"),
    (
        "health",
        "`starting`, `healthy`, `unhealthy`, or null without a health check",
    ),
    (
        "ready",
        "with `--notify` or a health check, whether the child is ready (its READY=1, else its \
         first passing check); null without",
    ),
    (
        "status_text",
        "with `--notify`, the child's last STATUS= text, or null",
    ),
    (
        "labels",
        "the `--label KEY=VALUE`s as an object, `{}` without",
    ),
    ("updated_at", "when the file was written"),
    (
        "log_file",
        "the `--log-file` as an absolute path, or null; `restartd logs` reads it",
    ),
    (
        "leftovers",
        "the processes of the child's tree restartd knows of (the child, the descendants it \
         saw or adopted), each `{pid, start_time}` (clock ticks since boot); the child's entry \
         also has `\"group\": true` (its process group is swept too), so that the next \
         restartd stops what a killed one left running",
    ),
    (
        "sockets, reloads",
        "the `--socket`s, each `{name, address, fd}` (a TCP port 0 shows the port chosen), and \
         the reloads done by this restartd",
    ),
    (
        "boot_id",
        "this boot's id (`/proc/sys/kernel/random/boot_id`), under which `child_pid` and \
         `leftovers` were recorded: their start times count from that boot. Leftovers recorded \
         under another boot id (a reboot since), or with none, are never touched; restartd says \
         once why",
    ),
];

/// FILES, before the crash record fields.
pub const CRASH_INTRO: &str =
    "Strings or null where no value applies; counts are integers, `expected` and \
     `core_dumped` booleans. `error_type`, `error_message` and `stack_trace` come from the \
     stderr tail: the last traceback or panic of Python, Node.js, Rust, Go, Java/JVM, Ruby, \
     PHP, .NET, Elixir or Deno (the error that ended the program, not its printed causes or \
     inner exceptions), or the last fatal report: C++ `terminate` (type the class, message \
     `what()`), a failed `assert` (`assertion failed`), glibc's heap checks (`heap \
     corruption`) and `*** stack smashing detected ***` (`stack smashing`), \
     AddressSanitizer, LeakSanitizer and UndefinedBehaviorSanitizer reports (the sanitizer's \
     name), Go's `fatal error:`, Python's `Fatal Python error:`, Node's `FATAL ERROR:` (heap \
     out of memory), the JVM's OutOfMemoryError and fatal error banner (`hs_err`; the JVM \
     prints these on stdout, so send its stdout to stderr), Rust's `fatal runtime error:` \
     (stack overflow). Otherwise, for an exit with a non-zero code, the message is the last \
     non-empty line that is not an access-log line or an INFO/DEBUG/TRACE log line, and the \
     type is null; for a death by signal, message and type are null.";

/// FILES: crash record fields.
pub const CRASH_FIELDS: &[(&str, &str)] = &[
    (
        "id",
        "unique and sortable by time, e.g. 20261123T040710.677Z-4200-1",
    ),
    ("name", "the instance name"),
    ("time", "RFC 3339 UTC with milliseconds"),
    (
        "reason",
        "`exit`, `signal`, `unhealthy`, `watchdog`, `memory`, `spawn-failed`, `start-timeout` \
         or `oom` (the kernel's OOM killer ended the child or a process of its group: known \
         from the `oom_kill` count of restartd's cgroup, else the kernel's `Killed process PID` \
         line in /dev/kmsg for the child's pid or a pid of its tree (seen at the look at the \
         child's tree that read the line or the one before: restartd looks when a child of its \
         own ends and, while the child runs, at most once a second on turns it wakes for anyway, \
         so a process forked and killed between two looks is missed; not in a PID namespace of \
         its own), else, for a SIGKILL restartd did not send, a rise of /proc/vmstat's \
         `oom_kill`: probable; `detail` says which, with the kernel's figures, and whether the \
         victim was not the child itself; a death by another signal than SIGKILL is that \
         signal's unless the kernel's line names the child)",
    ),
    (
        "exit_code, signal, core_dumped",
        "how it ended; `signal` as \"SIGSEGV\"",
    ),
    (
        "expected",
        "the exit code is one the configuration names (`--no-restart-exit-codes`, \
         `--force-restart-exit-codes`)",
    ),
    ("pid, uptime_ms", "the child, and how long it ran"),
    ("restarts", "restarts made before this crash"),
    (
        "action, next_delay_ms",
        "what restartd did next: `restart` (after that delay), `give-up`, `exit`, or \
         `keep-old` (a reload's new child failed; the old one kept running)",
    ),
    (
        "error_type, error_message, stack_trace",
        "the recognised error, e.g. `ZeroDivisionError` and `division by zero`; Rust and Go \
         panics have type `panic`",
    ),
    (
        "fingerprint",
        "16 hex digits naming the error, not the occurrence: the type and the stack frames' \
         file and function names (no numbers or addresses), or without frames the type and the \
         message with numbers, hex and quoted values masked; null when nothing names it",
    ),
    (
        "first_seen",
        "true when no earlier record of the instance had this fingerprint: a new error \
         (remembered in the instance's `fingerprints` file across restarts and rotations; \
         `reset --crashes` forgets them)",
    ),
    (
        "stderr_tail",
        "the last `--tail-lines` lines of stderr, at most 64 KiB",
    ),
    (
        "max_rss_kb, user_cpu_ms, sys_cpu_ms",
        "the child's peak memory and CPU time, from wait4(2)",
    ),
    ("command, cwd, host, restartd_version", "context"),
    (
        "labels",
        "the `--label KEY=VALUE`s as an object, `{}` without",
    ),
    (
        "detail",
        "the spawn error, the last health check's output, the memory figure, the missed \
         watchdog interval or `--ready-timeout`, how an OOM kill was known, and the child's \
         last sd_notify ERRNO= and EXIT_STATUS=",
    ),
];

//! The manual's SOCKETS AND RELOAD section (SPEC §11): what `--socket` and `restartd reload`
//! do, and the choices restartd makes where the SPEC is silent. Plain text, rendered by `doc.rs`.

/// SOCKETS AND RELOAD, paragraph by paragraph.
pub const SOCKETS: &[&str] = &[
    "With `--socket [NAME=]ADDR` restartd binds and listens on ADDR itself, once, before the \
     first start, and holds the socket until it exits. ADDR is `tcp://HOST:PORT` (an IPv4 \
     address, `[IPv6]`, or `localhost`, which means 127.0.0.1; port 0 picks a free port, \
     shown in `state.json`'s `sockets`) or `unix:PATH`. TCP sockets get SO_REUSEADDR and SO_REUSEPORT (see below); a unix \
     socket file left over with nobody listening is replaced, one with a listener is an \
     error. The backlog asked for is 4096 (the kernel caps it at net.core.somaxconn). A \
     malformed ADDR is a usage error (2); an address that cannot be bound exits 125 naming it \
     and the error. restartd never accepts a connection itself.",
    "Every child gets the sockets as fds 3, 4, ... in the order given, without close-on-exec, \
     with LISTEN_FDS, LISTEN_PID (its own pid) and LISTEN_FDNAMES (NAME, or `socket1`, \
     `socket2`, ... by position): systemd's socket activation, which gunicorn, uvicorn `--fd \
     3`, Node `listen({fd: 3})`, Go `net.FileListener` and Rust `listenfd` accept. Before a \
     start with no other child running, restartd clears O_NONBLOCK (a child may have set it on \
     the shared socket), so each child gets them in blocking mode, and binds again, with a \
     warning, a TCP socket that no longer listens (a child that shut it down with shutdown(2) \
     stopped it for restartd too). Hooks and health checks never get them.",
    "Because the socket outlives every child, a connection that arrives while the child is \
     down (crashed, in backoff, restarting) waits in the backlog and is served by the next \
     child: clients see a delay, never `connection refused`. A request the crashed child had \
     already accepted is lost with it. This also ends `address already in use` at a restart: \
     the new child does not bind, it inherits.",
    "`restartd reload NAME` starts a new child on the same sockets while the old one keeps \
     serving (status `reloading`; `child_pid` names the old child until the switch). The new \
     child is ready at its READY=1 with `--notify`; else at its first passing health check \
     (the first check runs `--health-interval` after its start; a check over the shared port \
     may be answered by the old child, so prefer `--notify` or a check that asks the new \
     child); else at once after its start. Then the old child gets `--stop-signal`, SIGKILL \
     after `--stop-timeout`, and what it left (its process group and the descendants adopted \
     from it) is cleaned up; `reload` returns 0 once that is over. No connection is refused, \
     and no request fails, even with a server that closes, when stopped, what it accepted but \
     had not read yet (uvicorn).",
    "How: a TCP socket is bound exclusively (another process on the port is `address already \
     in use`) and then joins a SO_REUSEPORT group of its own. At a reload restartd binds a \
     second socket on the same address into the group for the new child, and a classic BPF \
     program (SO_ATTACH_REUSEPORT_CBPF) gives every new connection to the old socket until the \
     new child is ready, to the new one from then on. The old child gets its stop signal once \
     its socket's accept queue is empty (looked at first 0.5 s after the switch, so that \
     handshakes under way then land first; at most 1 s, or `--stop-timeout` if shorter), and the \
     old socket is closed once the old child is gone. Connections still queued on it then \
     (an old child that accepted none for that long, or a new child that ended after the \
     switch) are reset, unless net.ipv4.tcp_migrate_req=1 (TCP). A unix:PATH socket is \
     handed over as nginx does it: the new child's socket is bound at PATH.restartd-reload \
     (same directory, mode and owner as PATH) and renamed over PATH at the switch, atomically; \
     the old one, nameless then, is held until its queue is empty (it is no longer readable) \
     as above. If the new child fails, the temporary name is removed and PATH still names the \
     old socket. A socket a killed restartd left at the temporary name is replaced; anything \
     else there (a file, a symlink, a listening socket) is left alone and the reload shares \
     the old socket, with a warning. No symlink is followed, and nothing is renamed over PATH \
     once something other than restartd's socket was put there, nor a temporary name that no \
     longer names the new socket: such a switch is refused before anything changes (every \
     unix socket is checked before the first rename; a TCP socket already steered is steered \
     back), and the reload fails as below, its record's detail and `reload`'s message naming \
     the path and what to do (remove what was put at PATH and reload; reload again). A TCP \
     switch cannot be refused that way. After a reload the child's \
     socket reports PATH.restartd-reload as its own address (getsockname). Another process of the same user that joins the group (SO_REUSEPORT) \
     gets no connection; a reload that finds one there (/proc/net/tcp) shares the old socket \
     instead, with a warning (one that joins during a reload is warned about when it is \
     over). But such a process may also bind a narrower address on the \
     same port with SO_REUSEPORT (127.0.0.1 while restartd holds 0.0.0.0, or 0.0.0.0 while \
     it holds [::]): that socket is outside the group, the kernel prefers it for the \
     connections to its address, and restartd does not see it. The child is such a \
     process too: a server that binds the port itself with SO_REUSEPORT (gunicorn \
     `--reuse-port`, nginx `reuseport`) instead of taking fd 3 binds without error and gets \
     no connection on that address.",
    "If the new child exits, cannot be started, becomes unhealthy, misses its watchdog, is \
     not ready within `--ready-timeout` (60 s without it) or its sockets cannot be switched to \
     it, it is stopped, a crash record with action `keep-old` is written \
     (hooks run as for any crash), the old child keeps running, and `reload` exits 1 saying \
     why. A reload is no crash: no backoff, nothing in the restart window, and \
     `RESTARTD_RESTARTS` stays as it was; `state.json`'s `reloads` and \
     `restartd_reloads_total` count the reloads done. While a reload runs, the health checks, \
     watchdog and memory limit watch the new child; the old one's resume if it is kept.",
    "Another `reload` during a reload (before its switch, or while the old child is held or \
     stopping) waits, as a reload job queued behind a running one does under systemd: once \
     the reload under way is over (replaced or failed), another one starts, with the command \
     as it is then, and the waiting `reload` exits as that one ends (0, or 1); more `reload`s \
     meanwhile wait for the same one. If the reload under way ends otherwise (restartd \
     stopping, the old child ending before the switch, the new child failing after it), they \
     are answered as a `reload` sent then would be: exit 3 while restartd stops, or stops the \
     failed child before it restarts one; while it waits to restart after a crash the child \
     starts at once (exit 0). A `restart` during a reload waits too, as a restart job \
     queued behind a running reload job does under systemd: once the reload is over, the \
     child it left is restarted and `restart` exits 0 (3 if restartd stops instead, as a \
     `restart` sent then would); `reload`s waiting with it share that restart (exit 0, saying \
     so). A stop stops both children. If \
     the old child ends before the switch, the reload is abandoned, the new child is stopped \
     with the old one's leftovers, and the end is handled as any crash. The two children's \
     trees are kept apart by process group: cleaning up one never signals the other's group. \
     A process that leaves both groups (setsid) while both children run stays with the new \
     child. In a reload's new child a socket still shared (when restartd could not open one of \
     its own, with a warning) keeps the blocking mode the old child left, since changing it would change it under the old child's accept loop. `reload` \
     while restartd waits to restart after a crash starts the child at once, as `restart` \
     does, and says there was nothing to replace. Under systemd a reload sends RELOADING=1 \
     (with MONOTONIC_USEC=) when it starts and READY=1 when it is over. Without `--socket`, \
     `reload` is `restart` (the port is closed meanwhile) and says so. With `--socket`, a \
     `--max-runtime` restart is done as a reload (counted in `scheduled_restarts` and \
     `reloads`); if its new child fails, the old one is tried again a `--max-runtime` later.",
];

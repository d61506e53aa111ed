"""Issue 17 (point 1): a process group id reused by a bystander after restartd reaped the child.

    reuse_pgid.py driver RESTARTD STATE_DIR    as PID 1 of a new PID namespace (unshare)
    reuse_pgid.py child DIR                    the child restartd supervises

The driver starts restartd (its child, not PID 1: restartd is a child subreaper below this init)
on `reuse_pgid.py child`. That child, pid G, leading group G, forks a leftover that starts a
session of its own (pid and group S) and ignores SIGTERM, writes `G S` to DIR/pids, and exits 1.
restartd signals the leftover with SIGTERM, which it ignores, and waits --stop-timeout before its
SIGKILL. Once the child is gone, its group G has no member left.

Once state.json has the child's end (restartd handled it: on a restartd that reaps the child at
once, pid G is free by then), the driver writes G-1 to /proc/sys/kernel/ns_last_pid and forks a
bystander, which calls setsid(): if pid G was free, the bystander is G and leads a process group G
that has nothing to do with restartd. Then the driver waits for the cleanup's SIGKILL (the
leftover is gone), and then for the bystander's death or the restart (a new child in state.json),
whichever comes first (after a death it still waits a little for the restart, for the record).
It prints what it saw, one `key=value` per line, and exits, which (as PID 1)
kills everything left in the namespace:

    skipped=WHY             ns_last_pid cannot be written here (nothing else is printed)
    child=G                 the first child
    leftover=S              its leftover
    pid_g_at_fork=...       pid G when the bystander was forked: gone, or state/ppid of who held it
    bystander=B             the bystander
    bystander_pgid=P        its group, after its setsid()
    leftover_at_fork=...    alive: the bystander was in place before the cleanup's SIGKILL
    leftover_end=gone       the cleanup's SIGKILL happened
    bystander_end=...       alive, or how it ended (`signal 9`)
    restarted=PID|none      the new child's pid, or none within a few seconds
    status=...              state.json's status at the end
    timeout=WHAT            a wait failed (exit 1)
"""
import json
import os
import signal
import sys
import time

WAIT = 8.0


def say(line):
    os.write(1, (line + "\n").encode())


def child(d):
    if os.environ.get("RESTARTD_RESTARTS", "0") != "0":
        os.execvp("sleep", ["sleep", "300"])
    r, w = os.pipe()
    leftover = os.fork()
    if leftover == 0:
        os.setsid()
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        null = os.open("/dev/null", os.O_RDWR)
        for fd in (0, 1, 2):
            os.dup2(null, fd)
        os.write(w, b"x")
        # SIG_IGN survives exec: a daemon that ignores SIGTERM.
        os.execvp("sleep", ["sleep", "300"])
    os.close(w)
    os.read(r, 1)
    tmp = os.path.join(d, "pids.tmp")
    with open(tmp, "w") as f:
        f.write(f"{os.getpid()} {leftover}\n")
    os.rename(tmp, os.path.join(d, "pids"))
    sys.exit(1)


def until(what, cond, limit=WAIT):
    end = time.monotonic() + limit
    while True:
        value = cond()
        if value:
            return value
        if time.monotonic() > end:
            say(f"timeout={what}")
            sys.exit(1)
        time.sleep(0.005)


def stat(pid):
    """(state, ppid, pgrp) of pid, or None when it is gone."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            text = f.read()
    except (FileNotFoundError, ProcessLookupError):
        return None
    fields = text[text.rindex(")") + 2 :].split()
    return fields[0], int(fields[1]), int(fields[2])


def running(pid):
    s = stat(pid)
    return s is not None and s[0] != "Z"


def state(path):
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def driver(restartd, d):
    assert os.getpid() == 1, "the driver is PID 1 of its namespace"
    try:
        with open("/proc/sys/kernel/ns_last_pid") as f:
            last = f.read().strip()
        with open("/proc/sys/kernel/ns_last_pid", "w") as f:
            f.write(last)
    except OSError as e:
        say(f"skipped=/proc/sys/kernel/ns_last_pid cannot be written: {e}")
        return
    state_json = os.path.join(d, "pg", "state.json")
    rd = os.fork()
    if rd == 0:
        os.execv(
            restartd,
            [restartd, "--state-dir", d, "-n", "pg", "-v", "--restart", "always",
             "--delay", "0", "--stop-timeout", "2s",
             "--", sys.executable, os.path.abspath(__file__), "child", d],
        )
    until("the child's end in state.json",
          lambda: (state(state_json) or {}).get("last_exit") is not None)
    with open(os.path.join(d, "pids")) as f:
        g, s = (int(x) for x in f.read().split())
    say(f"child={g}")
    say(f"leftover={s}")

    # Steer the next pid to G and fork the bystander, which leads a group of its own.
    held = stat(g)
    with open("/proc/sys/kernel/ns_last_pid", "w") as f:
        f.write(str(g - 1))
    r, w = os.pipe()
    b = os.fork()
    if b == 0:
        os.setsid()
        os.write(w, b"x")
        os.execvp("sleep", ["sleep", "300"])
    os.close(w)
    os.read(r, 1)
    say("pid_g_at_fork=" + ("gone" if held is None else f"state {held[0]} ppid {held[1]}"))
    say(f"bystander={b}")
    say(f"bystander_pgid={os.getpgid(b)}")
    say(f"leftover_at_fork={'alive' if running(s) else 'gone'}")

    # The cleanup's SIGKILL: the leftover ignores SIGTERM.
    until("the cleanup's SIGKILL to the leftover", lambda: not running(s))
    say("leftover_end=gone")

    def restarted():
        st = state(state_json) or {}
        pid = st.get("child_pid")
        if st.get("restarts", 0) >= 1 and isinstance(pid, int) and pid != g:
            return pid
        return None

    def ended():
        pid, status = os.waitpid(b, os.WNOHANG)
        if pid == 0:
            return None
        if os.WIFSIGNALED(status):
            return f"signal {os.WTERMSIG(status)}"
        return f"exit {os.WEXITSTATUS(status)}"

    # Then the bystander's end or the restart (the cleanup is over), whichever comes first.
    end, pid = None, None
    deadline = time.monotonic() + 5
    while end is None and pid is None and time.monotonic() < deadline:
        end, pid = ended(), restarted()
        time.sleep(0.005)
    if end is None:
        end = ended() or ("alive" if running(b) else "not running")
    else:
        # For the record: does the restart still come?
        deadline = time.monotonic() + 1.5
        while pid is None and time.monotonic() < deadline:
            pid = restarted()
            time.sleep(0.005)
    say(f"bystander_end={end}")
    say(f"restarted={pid or 'none'}")
    say(f"status={(state(state_json) or {}).get('status')}")

if __name__ == "__main__":
    if sys.argv[1] == "child":
        child(sys.argv[2])
    else:
        driver(sys.argv[2], sys.argv[3])

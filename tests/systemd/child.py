"""The child restartd supervises in the systemd tests (tests/it/systemd.rs), inside the container.

    child.py CTL [argv ARGS...]

It writes what happens to CTL/events, one line each (`start pid=N`, `signal SIGTERM`, `ping N`),
and takes commands from the FIFO CTL/cmd, one a line, so the test drives it without sleeping:
  ready            send READY=1
  status TEXT      send STATUS=TEXT
  reset            send RESTART_RESET=1
  trigger          send WATCHDOG=trigger
  notify K=V       send K=V
  reloading        send RELOADING=1 with MONOTONIC_USEC= (CLOCK_MONOTONIC)
  crash            raise ZeroDivisionError (a traceback on stderr, exit 1)
With `argv ARGS...` it writes its arguments as JSON to CTL/argv.json and sends READY=1 at once.
With `crash-at-once` it exits 1 at once. With WATCHDOG_USEC set it pings WATCHDOG=1 four times
per interval and writes `ping N` for every fourth.
"""
import json
import os
import select
import signal
import socket
import sys
import time

ctl = sys.argv[1]
mode = sys.argv[2] if len(sys.argv) > 2 else ""


def event(line):
    with open(os.path.join(ctl, "events"), "a") as f:
        f.write(line + "\n")


def notify(msg):
    addr = os.environ.get("NOTIFY_SOCKET")
    if not addr:
        return
    if addr.startswith("@"):
        addr = "\0" + addr[1:]
    s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    try:
        s.connect(addr)
        s.sendall(msg.encode())
    finally:
        s.close()


def on_signal(signum, _frame):
    event("signal " + signal.Signals(signum).name)
    if signum in (signal.SIGTERM, signal.SIGINT):
        sys.exit(0)


for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
    signal.signal(sig, on_signal)

event("start pid=%d restarts=%s state_directory=%s" % (
    os.getpid(), os.environ.get("RESTARTD_RESTARTS"), os.environ.get("STATE_DIRECTORY")))

if mode == "crash-at-once":
    print("crashing at once", file=sys.stderr, flush=True)
    sys.exit(1)
if mode == "argv":
    with open(os.path.join(ctl, "argv.json"), "w") as f:
        json.dump(sys.argv[3:], f)
    notify("READY=1")

fifo = os.path.join(ctl, "cmd")
fd = os.open(fifo, os.O_RDWR | os.O_NONBLOCK)  # RDWR: never an EOF when writers come and go
usec = int(os.environ.get("WATCHDOG_USEC", "0"))
every = usec / 4e6 if usec else None
pings = 0
buf = b""
while True:
    ready, _, _ = select.select([fd], [], [], every)
    if every:
        notify("WATCHDOG=1")
        pings += 1
        if pings % 4 == 0:
            event("ping %d" % pings)
    if not ready:
        continue
    try:
        buf += os.read(fd, 4096)
    except BlockingIOError:
        continue
    while b"\n" in buf:
        line, buf = buf.split(b"\n", 1)
        cmd, _, arg = line.decode().partition(" ")
        event("got " + line.decode())
        if cmd == "ready":
            notify("READY=1")
        elif cmd == "status":
            notify("STATUS=" + arg)
        elif cmd == "reset":
            notify("RESTART_RESET=1")
        elif cmd == "trigger":
            notify("WATCHDOG=trigger")
        elif cmd == "notify":
            notify(arg)
        elif cmd == "reloading":
            usec = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
            notify("RELOADING=1\nMONOTONIC_USEC=%d" % usec)
        elif cmd == "crash":
            print(1 / 0)

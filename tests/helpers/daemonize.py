"""A child that leaves a daemon behind, the way a badly behaved server does.

    daemonize.py DIR [--stay]

First run (RESTARTD_RESTARTS=0): double-fork a grandchild that starts a new session, listens on
an ephemeral 127.0.0.1 port and writes DIR/daemon-port and DIR/daemon.pid; print
`daemon pid=N port=P`; then exit 1 (or, with --stay, keep running). Any later run binds the same
port again and prints `bound again port=P`.
"""
import os
import socket
import sys
import time

d = sys.argv[1]
pidfile = os.path.join(d, "daemon.pid")
portfile = os.path.join(d, "daemon-port")

if os.environ.get("RESTARTD_RESTARTS", "0") != "0":
    port = int(open(portfile).read())
    s = socket.socket()
    s.bind(("127.0.0.1", port))
    s.listen()
    print(f"bound again port={port}", flush=True)
    while True:
        time.sleep(3600)

middle = os.fork()
if middle == 0:
    os.setsid()
    if os.fork() == 0:
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        s.listen()
        open(portfile, "w").write(str(s.getsockname()[1]))
        open(pidfile + ".tmp", "w").write(str(os.getpid()))
        os.rename(pidfile + ".tmp", pidfile)
        while True:
            time.sleep(3600)
    os._exit(0)
os.waitpid(middle, 0)
while not os.path.exists(pidfile):
    time.sleep(0.01)
print(f"daemon pid={open(pidfile).read()} port={open(portfile).read()}", flush=True)
if "--stay" in sys.argv:
    while True:
        time.sleep(3600)
sys.exit(1)

"""A child that reports itself, then prints each signal it receives, one name per line.

Exits 0 on SIGTERM/SIGINT/SIGQUIT unless started with --ignore-term (then TERM is only printed).
With --grandchild it first forks a second process in its process group that does the same,
printing `forked pid=N pgid=M` once and `forked SIGNAME` per signal, so a test can tell a signal
sent to the group from one sent to the pid. The model is dumb-init's testing/print_signals.py.
"""
import os
import signal
import sys
import time

ignore_term = "--ignore-term" in sys.argv
STOPPING = {signal.SIGTERM, signal.SIGINT, signal.SIGQUIT}
prefix = ""


def say(line):
    # One write(2) per line: two processes share the pipe, and print() may write in pieces.
    os.write(1, (line + "\n").encode())


def handler(signum, _frame):
    say(prefix + signal.Signals(signum).name)
    if signum in STOPPING and not (ignore_term and signum == signal.SIGTERM):
        sys.exit(0)


for sig in [signal.SIGTERM, signal.SIGINT, signal.SIGQUIT, signal.SIGHUP,
            signal.SIGUSR1, signal.SIGUSR2, signal.SIGWINCH]:
    signal.signal(sig, handler)

if "--grandchild" in sys.argv:
    r, w = os.pipe()
    if os.fork() == 0:
        prefix = "forked "
        os.close(r)
        say(f"forked pid={os.getpid()} pgid={os.getpgid(0)}")
        os.write(w, b"x")
        os.close(w)
        while True:
            time.sleep(3600)
    os.close(w)
    os.read(r, 1)
    os.close(r)

stdin_is_null = os.path.samefile("/dev/stdin", "/dev/null") if os.path.exists("/dev/stdin") else False
say(f"ready pid={os.getpid()} pgid={os.getpgid(0)} "
    f"name={os.environ.get('RESTARTD_NAME')} restarts={os.environ.get('RESTARTD_RESTARTS')} "
    f"stdin_null={stdin_is_null}")
while True:
    time.sleep(3600)

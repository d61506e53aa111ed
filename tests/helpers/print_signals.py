"""A child that reports itself, then prints each signal it receives, one name per line.

Exits 0 on SIGTERM/SIGINT/SIGQUIT unless started with --ignore-term (then TERM is only printed).
The model is dumb-init's testing/print_signals.py.
"""
import os
import signal
import sys
import time

ignore_term = "--ignore-term" in sys.argv
STOPPING = {signal.SIGTERM, signal.SIGINT, signal.SIGQUIT}


def handler(signum, _frame):
    print(signal.Signals(signum).name, flush=True)
    if signum in STOPPING and not (ignore_term and signum == signal.SIGTERM):
        sys.exit(0)


for sig in [signal.SIGTERM, signal.SIGINT, signal.SIGQUIT, signal.SIGHUP,
            signal.SIGUSR1, signal.SIGUSR2, signal.SIGWINCH]:
    signal.signal(sig, handler)

stdin_is_null = os.path.samefile("/dev/stdin", "/dev/null") if os.path.exists("/dev/stdin") else False
print(f"ready pid={os.getpid()} pgid={os.getpgid(0)} "
      f"name={os.environ.get('RESTARTD_NAME')} restarts={os.environ.get('RESTARTD_RESTARTS')} "
      f"stdin_null={stdin_is_null}", flush=True)
while True:
    time.sleep(3600)

#!/usr/bin/env python3
"""Interleaved A/B of what a busy child costs restartd itself: the child (a tree of four
processes: sh, two sleeps and python3) writes a line to stderr every INTERVAL ms for SECONDS s,
then says so in a file and goes quiet. restartd's own CPU time (/proc/PID/schedstat) and
voluntary context switches are read then, and once more after 3 quiet seconds. Each binary runs
ROUNDS times, alternating, so the machine's slow and fast phases hit both alike.

    python3 bench/chatty_ab.py 6 10 5 OLD/restartd NEW/restartd
"""
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time

CHILD = r"""
import sys, time
end = time.monotonic() + float(sys.argv[2])
while time.monotonic() < end:
    print('GET / 200', file=sys.stderr, flush=True)
    time.sleep(float(sys.argv[1]) / 1000)
open(sys.argv[3], 'w').close()
time.sleep(3600)
"""


def sample(pid):
    with open(f"/proc/{pid}/schedstat") as f:
        cpu_ns = int(f.read().split()[0])
    with open(f"/proc/{pid}/status") as f:
        vol = next(int(l.split()[1]) for l in f if l.startswith("voluntary_ctxt_switches"))
    return cpu_ns, vol


def one(binary, interval, seconds):
    with tempfile.TemporaryDirectory() as d:
        done = os.path.join(d, "done")
        script = f"sleep 3600 & sleep 3600 & exec python3 -c \"$0\" {interval} {seconds} {done}"
        p = subprocess.Popen(
            [binary, "--state-dir", d, "-n", "chatty", "-q", "--restart", "no", "--",
             "sh", "-c", script, CHILD],
            stderr=subprocess.DEVNULL, stdout=subprocess.DEVNULL, start_new_session=True)
        start = sample(p.pid)
        while not os.path.exists(done):
            time.sleep(0.05)
        busy = sample(p.pid)
        time.sleep(3)
        quiet = sample(p.pid)
        p.send_signal(signal.SIGTERM)
        p.wait()
        return ((busy[0] - start[0]) / 1e6, busy[1] - start[1], quiet[1] - busy[1])


def main():
    rounds, interval, seconds = int(sys.argv[1]), sys.argv[2], sys.argv[3]
    binaries = sys.argv[4:]
    results = {b: [] for b in binaries}
    for _ in range(rounds):
        for b in binaries:
            results[b].append(one(b, interval, seconds))
    print(f"child: a line every {interval} ms for {seconds} s; {rounds} rounds, alternating")
    print("binary | CPU ms while busy (median, min-max) | wakeups while busy | wakeups in 3 quiet s")
    for b, rs in results.items():
        cpu = [r[0] for r in rs]
        print(f"{b} | {statistics.median(cpu):.1f} ({min(cpu):.1f}-{max(cpu):.1f}) | "
              f"{statistics.median([r[1] for r in rs]):.0f} | "
              f"{max(r[2] for r in rs)} (max)")


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""Interleaved A/B of start-up overhead: runs every command ROUNDS times in shuffled order
(posix_spawn + waitpid, output to /dev/null), so the machine's slow and fast phases hit every
command alike. The first command is the bare baseline, the second the reference (tini);
overhead = median - baseline median, ratio = overhead / the reference's overhead.

    python3 bench/ab.py 1000 /bin/true "tini -s -- /bin/true" \\
        "OLD/restartd --state-dir /dev/shm/a -n s -q --restart no -- /bin/true" \\
        "NEW/restartd --state-dir /dev/shm/b -n s -q --restart no -- /bin/true"
"""
import os
import random
import shlex
import shutil
import statistics
import sys
import time

WARMUP = 20


def main():
    rounds = int(sys.argv[1])
    commands = [shlex.split(c) for c in sys.argv[2:]]
    if len(commands) < 2:
        sys.exit("usage: ab.py ROUNDS BASELINE REFERENCE [COMMAND...]")
    for c in commands:
        c[0] = shutil.which(c[0]) or c[0]
    times = [[] for _ in commands]
    null = os.open(os.devnull, os.O_RDWR)
    actions = [(os.POSIX_SPAWN_DUP2, null, 1), (os.POSIX_SPAWN_DUP2, null, 2)]
    for r in range(WARMUP + rounds):
        order = list(range(len(commands)))
        random.shuffle(order)
        for i in order:
            t0 = time.perf_counter_ns()
            pid = os.posix_spawn(commands[i][0], commands[i], os.environ, file_actions=actions)
            os.waitpid(pid, 0)
            if r >= WARMUP:
                times[i].append((time.perf_counter_ns() - t0) / 1e6)
    base = statistics.median(times[0])
    ref = statistics.median(times[1]) - base
    for text, t in zip(sys.argv[2:], times):
        m = statistics.median(t)
        print(f"{m:7.3f} ms  overhead {m - base:6.3f} ms  ratio {(m - base) / ref:5.2f}  {text}")


if __name__ == "__main__":
    main()

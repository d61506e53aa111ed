#!/usr/bin/env python3
"""Interleaved A/B of signal latency (goal 5): SIGTERM to the wrapper → the child's handler runs,
for tini and any number of restartd binaries, each round in shuffled order, so the machine's slow
and fast phases hit every binary alike. Prints median (min–max) and the ratio to tini.

    python3 bench/signal_ab.py ROUNDS SETTLE_S OLD/restartd NEW/restartd

BENCH_ALL=1 also prints every run's figure, sorted (the distribution is bimodal: see
BENCHMARKS.md, session 10).
"""
import os
import random
import statistics
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import run  # noqa: E402


def main():
    rounds, settle = int(sys.argv[1]), float(sys.argv[2])
    binaries = sys.argv[3:]
    tmp = tempfile.mkdtemp()
    out = os.path.join(tmp, "t")
    child = [os.path.join(run.C, "sigchild"), out]
    wrappers = [("tini", ["tini", "-s", "--", *child], out)]
    for i, b in enumerate(binaries):
        argv = [b, "--state-dir", os.path.join(tmp, f"s{i}"), "-n", "bench", "-q", "--", *child]
        wrappers.append((b, argv, out))
    results = {}
    for _ in range(rounds):
        random.shuffle(wrappers)
        for name, v in run.signal_latencies(wrappers, 1, settle).items():
            results.setdefault(name, []).extend(v)
    tini = statistics.median(results["tini"])
    for name, v in results.items():
        m = statistics.median(v)
        print(f"{name:40} {m:7.0f} µs ({min(v):.0f}–{max(v):.0f})  {m / tini:.2f}× tini")
        if os.environ.get("BENCH_ALL"):
            print("    every run, sorted:", " ".join(f"{x:.0f}" for x in sorted(v)))


if __name__ == "__main__":
    main()

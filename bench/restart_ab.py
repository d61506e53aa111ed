#!/usr/bin/env python3
"""Interleaved A/B of the restart rate (goal 1): each restartd binary supervises bench/c/count
(appends a byte to a file, exits 1) with `--restart always --delay 0 --max-restarts unlimited`,
as bench/run.py does, for SECONDS; each round in shuffled order. Prints restarts/s per binary.

    python3 bench/restart_ab.py ROUNDS SECONDS OLD/restartd NEW/restartd
"""
import os
import random
import statistics
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import run  # noqa: E402


def main():
    rounds, seconds, binaries = int(sys.argv[1]), float(sys.argv[2]), sys.argv[3:]
    count = os.path.join(run.C, "count")
    results = {}
    for _ in range(rounds):
        for binary in random.sample(binaries, len(binaries)):
            with tempfile.TemporaryDirectory() as tmp:
                counter = os.path.join(tmp, "count")
                argv = [binary, "--state-dir", os.path.join(tmp, "state"), "-n", "bench", "-q",
                        "--restart", "always", "--delay", "0", "--max-restarts", "unlimited",
                        "--", count, counter]
                results.setdefault(binary, []).append(
                    run.restarts_per_second(argv, {}, counter, seconds))
    for binary, rates in results.items():
        print(f"{binary:40} {statistics.median(rates):7.1f} restarts/s "
              f"({min(rates):.0f}–{max(rates):.0f})")


if __name__ == "__main__":
    main()

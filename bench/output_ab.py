#!/usr/bin/env python3
"""Interleaved A/B of `--log-file` throughput (goal 3): 256 MiB of 100-byte stderr lines from
bench/c/spew, through each restartd binary into a log file on /dev/shm, and through a direct
pipe to `cat` as the baseline; each round in shuffled order, so the machine's slow and fast
phases hit every command alike. Extra restartd options (e.g. --log-timestamps) go after `--`.

    python3 bench/output_ab.py ROUNDS OLD/restartd NEW/restartd [-- OPTION...]
"""
import os
import random
import shutil
import statistics
import sys
import tempfile
import uuid

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import run  # noqa: E402


def main():
    args = sys.argv[2:]
    extra = args[args.index("--") + 1:] if "--" in args else []
    binaries = args[:args.index("--")] if "--" in args else args
    rounds = int(sys.argv[1])
    spew = [os.path.join(run.C, "spew"), "256"]
    results = {}
    for _ in range(rounds):
        order = ["direct pipe", *binaries]
        random.shuffle(order)
        for name in order:
            tmp = tempfile.mkdtemp(dir=run.SHM)
            if name == "direct pipe":
                argv = ["sh", "-c", '"$0" "$1" 2>&1 | cat > /dev/null', *spew]
                t, _ = run.timed_run(argv, uuid.uuid4().hex)
            else:
                argv = [name, "--state-dir", os.path.join(tmp, "s"), "-n", "b", "-q",
                        "--restart", "no", "--log-file", os.path.join(tmp, "app.log"), *extra,
                        "--", *spew]
                t, _ = run.timed_run(argv, uuid.uuid4().hex, stderr_to_cat=True)
            results.setdefault(name, []).append(t)
            shutil.rmtree(tmp, ignore_errors=True)
    direct = statistics.median(results["direct pipe"])
    for name, times in results.items():
        med = statistics.median(times)
        print(f"{name:40} {med:.3f} s ({min(times):.3f}–{max(times):.3f})  "
              f"{direct / med:.2f}× the direct pipe")


if __name__ == "__main__":
    main()

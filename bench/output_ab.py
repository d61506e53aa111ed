#!/usr/bin/env python3
"""Interleaved A/B of `--log-file` throughput (goal 3): 256 MiB of 100-byte stderr lines from
bench/c/spew, through each restartd binary into a log file on /dev/shm, and through a direct
pipe to `cat` as the baseline, and through `cat` into a file on /dev/shm (what writing the
file alone costs: the floor for any --log-file; with --log-timestamps also the same lines with
a timestamp in front, through `cat` into a file: the floor for timestamps); each round in
shuffled order, so the machine's slow and fast phases hit every command alike. Extra restartd
options (e.g. --log-timestamps) go after `--`. BENCH_SPEW=text makes the lines access-log-like
(gzip has real work); with --log-compress the rotated files left plain at exit are counted.
BENCH_STDERR=null or BENCH_STDERR=file sends restartd's own stderr to /dev/null or to a file on
/dev/shm instead of a pipe read by `cat` (no tee(2) then: only the reads and the file's writes).

    python3 bench/output_ab.py ROUNDS OLD/restartd NEW/restartd [-- OPTION...]
"""
import os
import random
import shutil
import statistics
import subprocess
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
    spew = [os.path.join(run.C, "spew"), "256", *([os.environ["BENCH_SPEW"]]
                                                    if os.environ.get("BENCH_SPEW") else [])]
    results = {}
    plain = {}
    floors = ["cat to a file"]
    if "--log-timestamps" in extra:
        # The same lines with a timestamp in front, made once: what writing the stamped bytes
        # alone costs, the floor for --log-timestamps.
        stamped = os.path.join(run.SHM, f"stamped-{uuid.uuid4().hex}")
        lines = subprocess.run(spew, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE).stderr
        with open(stamped, "wb") as f:
            for line in lines.splitlines(keepends=True):
                f.write(b"2026-12-05T18:39:16.936Z " + line)
        del lines
        floors.append("stamped lines, cat to a file")
    for _ in range(rounds):
        order = ["direct pipe", *floors, *binaries]
        random.shuffle(order)
        for name in order:
            tmp = tempfile.mkdtemp(dir=run.SHM)
            if name == "direct pipe":
                argv = ["sh", "-c", '"$@" 2>&1 | cat > /dev/null', "sh", *spew]
                t, _ = run.timed_run(argv, uuid.uuid4().hex)
            elif name == "cat to a file":
                argv = ["sh", "-c", 'f=$1; shift; "$@" 2>&1 | cat > "$f"', "sh",
                        os.path.join(tmp, "app.log"), *spew]
                t, _ = run.timed_run(argv, uuid.uuid4().hex)
            elif name == "stamped lines, cat to a file":
                argv = ["sh", "-c", 'cat "$1" | cat > "$2"', "sh", stamped,
                        os.path.join(tmp, "app.log")]
                t, _ = run.timed_run(argv, uuid.uuid4().hex)
            else:
                argv = [name, "--state-dir", os.path.join(tmp, "s"), "-n", "b", "-q",
                        "--restart", "no", "--log-file", os.path.join(tmp, "app.log"), *extra,
                        "--", *spew]
                where = os.environ.get("BENCH_STDERR", "cat")
                if where == "file":
                    argv = ["sh", "-c", 'f=$1; shift; exec "$@" 2>"$f"', "sh",
                            os.path.join(tmp, "stderr"), *argv]
                t, _ = run.timed_run(argv, uuid.uuid4().hex, stderr_to_cat=where == "cat")
                left = [f for f in os.listdir(tmp) if f.startswith("app.log.")
                        and not f.endswith((".gz", ".tmp"))]
                if "--log-compress" in extra:
                    plain.setdefault(name, []).append(len(left))
            results.setdefault(name, []).append(t)
            shutil.rmtree(tmp, ignore_errors=True)
    if "--log-timestamps" in extra:
        os.unlink(stamped)
    direct = statistics.median(results["direct pipe"])
    for name, times in results.items():
        med = statistics.median(times)
        left = f"  rotated files left plain: max {max(plain[name])}" if name in plain else ""
        print(f"{name:40} {med:.3f} s ({min(times):.3f}–{max(times):.3f})  "
              f"{direct / med:.2f}× the direct pipe{left}")


if __name__ == "__main__":
    main()

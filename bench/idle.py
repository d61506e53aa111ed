#!/usr/bin/env python3
"""Idle memory and wakeups of one supervisor whose child sleeps, interleaved: each command is
started ROUNDS times in shuffled order; SETTLE s after the start its smaps_rollup is read (RSS,
PSS, USS = Private_Clean + Private_Dirty, Anonymous, in kB; the supervisor alone, not its
child), then its context switches are counted for WINDOW s. Prints medians as a Markdown table.
In COMMAND, {sd} is a fresh state directory on /dev/shm, removed afterwards. Each supervisor is
stopped with SIGTERM (SIGKILL after 5 s), and the children it had are killed by PID.

    python3 bench/idle.py 6 3 2 \\
        "old=OLD/restartd --state-dir {sd} -n idle -q -- sleep 1000" \\
        "new=NEW/restartd --state-dir {sd} -n idle -q -- sleep 1000" \\
        "tini=tini -s -- sleep 1000"
"""
import os
import random
import shlex
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time


def rollup(pid):
    fields = {}
    with open(f"/proc/{pid}/smaps_rollup") as f:
        for line in f:
            key, _, value = line.partition(":")
            if value.strip().endswith("kB"):
                fields[key] = int(value.split()[0])
    return fields


def switches(pid):
    with open(f"/proc/{pid}/status") as f:
        return sum(int(l.split()[1]) for l in f
                   if l.startswith(("voluntary_ctxt_switches", "nonvoluntary_ctxt_switches")))


def children(pid):
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as f:
            return [int(c) for c in f.read().split()]
    except OSError:
        return []


def main():
    if len(sys.argv) < 5:
        sys.exit("usage: idle.py ROUNDS SETTLE WINDOW NAME=COMMAND...")
    rounds, settle, window = int(sys.argv[1]), float(sys.argv[2]), float(sys.argv[3])
    commands = [a.split("=", 1) for a in sys.argv[4:]]
    slot = {name: str(i) for i, (name, _) in enumerate(commands)}
    results = {name: [] for name, _ in commands}
    scratch = tempfile.mkdtemp(dir="/dev/shm", prefix="restartd-idle-")
    try:
        for _ in range(rounds):
            order = list(commands)
            random.shuffle(order)
            for name, command in order:
                state_dir = os.path.join(scratch, slot[name])
                p = subprocess.Popen(shlex.split(command.format(sd=state_dir)),
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                time.sleep(settle)
                if p.poll() is not None:
                    sys.exit(f"{name}: ended with status {p.returncode} before it was measured")
                m = rollup(p.pid)
                before = switches(p.pid)
                time.sleep(window)
                woke = switches(p.pid) - before
                results[name].append((m["Rss"], m["Pss"], m["Private_Clean"] + m["Private_Dirty"],
                                      m["Private_Clean"], m["Anonymous"], woke))
                kids = children(p.pid)
                p.terminate()
                try:
                    p.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait()
                for kid in kids:
                    try:
                        os.kill(kid, signal.SIGKILL)
                    except ProcessLookupError:
                        pass
                shutil.rmtree(state_dir, ignore_errors=True)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    print(f"kB, median of {rounds} rounds, {settle:g} s after start; wakeups in the next {window:g} s")
    print()
    print("| command | RSS | PSS | USS | Private_Clean | Anonymous | wakeups |")
    print("|---|---|---|---|---|---|---|")
    for name, _ in commands:
        columns = list(zip(*results[name]))
        print(f"| {name} | " + " | ".join(f"{statistics.median(c):.0f}" for c in columns) + " |")


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""restartd's benchmarks against its peers, side by side in one run.

Run by hand, as root, never by CI:

    bash bench/install.sh             # peers and C helpers
    cargo build --release
    python3 bench/run.py              # every metric; or name some: restart idle output startup
                                      #   signal queries scale logfile

Prints Markdown tables (median, min-max, ratios) and writes them to bench/results/latest.md.
Every process a measurement starts carries BENCH_RUN=<id> in its environment; cleanup kills
exactly those (by PID), whatever sessions or groups they made.
"""

import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
RESTARTD = os.path.join(ROOT, "target", "release", "restartd")
C = os.path.join(HERE, "c")
PM2_RUNTIME = os.path.join(HERE, ".npm", "node_modules", "pm2", "bin", "pm2-runtime")
CIRCUSD = os.path.join(HERE, ".venv", "bin", "circusd")
SHM = "/dev/shm" if os.path.isdir("/dev/shm") else tempfile.gettempdir()
_shm_scratch = []


def shm_state_dir():
    """A fresh state directory path on tmpfs, inside one scratch directory that main() removes."""
    if not _shm_scratch:
        _shm_scratch.append(tempfile.mkdtemp(dir=SHM, prefix="restartd-bench-"))
    return os.path.join(_shm_scratch[0], uuid.uuid4().hex)

RESTART_SECONDS = 5
RESTART_REPEATS = 3
IDLE_SECONDS = 10
OUTPUT_MIB = 1024
OUTPUT_REPEATS = 3
SIGNAL_RUNS = 200
SIGNAL_IDLE_RUNS = 30
SCALE_INSTANCES = 100

out_lines = []


def say(line=""):
    print(line, flush=True)
    out_lines.append(line)


# ---- process bookkeeping ---------------------------------------------------------------------

def marked_pids(marker):
    """PIDs of every live process whose environment has BENCH_RUN=marker."""
    needle = ("BENCH_RUN=" + marker).encode()
    pids = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/environ", "rb") as f:
                if needle in f.read().split(b"\0"):
                    pids.append(int(entry))
        except OSError:
            pass
    return pids


def kill_marked(marker):
    for _ in range(50):
        pids = marked_pids(marker)
        if not pids:
            return
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        time.sleep(0.05)


def spawn(argv, marker, **kw):
    env = dict(os.environ, BENCH_RUN=marker, **kw.pop("env", {}))
    return subprocess.Popen(argv, env=env, start_new_session=True, **kw)


def stat_fields(pid):
    with open(f"/proc/{pid}/stat") as f:
        text = f.read()
    return text[text.rfind(")") + 2:].split()


def cpu_ticks(pid):
    fields = stat_fields(pid)
    return int(fields[11]) + int(fields[12])  # utime + stime


def status_field(pid, name):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(name + ":"):
                return int(line.split()[1])
    return 0


def rollup_kb(pid):
    """(PSS, USS) of a process in kB from /proc/PID/smaps_rollup; USS = Private_Clean +
    Private_Dirty, the pages only this process maps (what it costs beyond the shared libraries
    and page cache every peer also maps). (0, 0) if the process is gone."""
    pss = uss = 0
    try:
        with open(f"/proc/{pid}/smaps_rollup") as f:
            for line in f:
                key, _, rest = line.partition(":")
                if key == "Pss":
                    pss = int(rest.split()[0])
                elif key in ("Private_Clean", "Private_Dirty"):
                    uss += int(rest.split()[0])
    except OSError:
        pass
    return pss, uss


def comm(pid):
    try:
        with open(f"/proc/{pid}/comm") as f:
            return f.read().strip()
    except OSError:
        return ""


def median_range(values, fmt="{:.0f}"):
    if not values:
        return "n/a"
    med = statistics.median(values)
    return f"{fmt.format(med)} ({fmt.format(min(values))}–{fmt.format(max(values))})"


def table(header, rows):
    say("| " + " | ".join(header) + " |")
    say("|" + "---|" * len(header))
    for row in rows:
        say("| " + " | ".join(str(c) for c in row) + " |")
    say()


# ---- peer setups: each returns argv (and writes any config into tmp) ---------------------------

def service_dir(tmp, name, child):
    d = os.path.join(tmp, name)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "run"), "w") as f:
        f.write("#!/bin/sh\nexec " + " ".join(child) + "\n")
    os.chmod(os.path.join(d, "run"), 0o755)
    return d


def supervisord_conf(tmp, child, autorestart=True, stderr_log=None):
    conf = os.path.join(tmp, "supervisord.conf")
    with open(conf, "w") as f:
        f.write(f"""[supervisord]
nodaemon=true
logfile={tmp}/supervisord.log
pidfile={tmp}/supervisord.pid
[program:x]
command={" ".join(child)}
autorestart={"true" if autorestart else "false"}
startsecs=0
startretries=1000000
exitcodes=0
stdout_logfile=NONE
stderr_logfile={stderr_log or "NONE"}
""")
    return ["supervisord", "-c", conf]


def circus_conf(tmp, child, respawn=True, stderr_file=None):
    conf = os.path.join(tmp, "circus.ini")
    stream = ""
    if stderr_file:
        stream = f"stderr_stream.class = FileStream\nstderr_stream.filename = {stderr_file}\n"
    with open(conf, "w") as f:
        f.write(f"""[circus]
endpoint = ipc://{tmp}/circus.sock
pubsub_endpoint = ipc://{tmp}/circus-pub.sock
stats_endpoint = ipc://{tmp}/circus-stats.sock
statsd = False
[watcher:x]
cmd = {child[0]}
args = {" ".join(child[1:])}
numprocesses = 1
copy_env = True
respawn = {"True" if respawn else "False"}
max_retry = -1
{stream}""")
    return [CIRCUSD, conf]


def pm2_conf(tmp, child, autorestart=True):
    eco = os.path.join(tmp, "ecosystem.json")
    with open(eco, "w") as f:
        json.dump({"apps": [{
            "name": "x", "script": child[0], "args": child[1:], "interpreter": "none",
            "autorestart": autorestart, "restart_delay": 0, "max_restarts": 100000000,
            "min_uptime": 0, "exp_backoff_restart_delay": 0,
        }]}, f)
    return ["node", PM2_RUNTIME, eco], {"PM2_HOME": os.path.join(tmp, "pm2")}


def restartd_argv(tmp, child, *extra):
    return [RESTARTD, "--state-dir", os.path.join(tmp, "state"), "-n", "bench", "-q", *extra,
            "--", *child]


def supervisors(tmp, child):
    """The restarting supervisors, as (name, argv, extra env)."""
    pm2_argv, pm2_env = pm2_conf(tmp, child)
    return [
        ("restartd", restartd_argv(tmp, child, "--restart", "always", "--delay", "0",
                                   "--max-restarts", "unlimited"), {}),
        ("restartd, state dir on tmpfs", restartd_argv(
            shm_state_dir(), child, "--restart", "always", "--delay", "0",
            "--max-restarts", "unlimited"), {}),
        ("supervisord", supervisord_conf(tmp, child), {}),
        ("runit (runsv)", ["runsv", service_dir(tmp, "runit", child)], {}),
        ("daemontools (supervise)", ["supervise", service_dir(tmp, "dt", child)], {}),
        ("s6 (s6-supervise)", ["s6-supervise", service_dir(tmp, "s6", child)], {}),
        ("circus", circus_conf(tmp, child), {}),
        ("PM2 (pm2-runtime)", pm2_argv, pm2_env),
    ]


# ---- 1. restart rate -------------------------------------------------------------------------

def restarts_per_second(argv, env, counter, seconds):
    """Runs a supervisor of bench/c/count (a byte appended to `counter` per start) for `seconds`
    from the child's first start on, not from the supervisor's own startup."""
    marker = uuid.uuid4().hex
    p = spawn(argv, marker, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 30
    while not os.path.exists(counter) and time.monotonic() < deadline:
        time.sleep(0.005)
    start_size = os.path.getsize(counter) if os.path.exists(counter) else 0
    time.sleep(seconds)
    size = os.path.getsize(counter) if os.path.exists(counter) else 0
    kill_marked(marker)
    p.wait()
    return (size - start_size) / seconds


def bench_restart():
    say(f"## Restart rate: a child that exits 1 at once, zero delay ({RESTART_SECONDS} s, "
        f"{RESTART_REPEATS} runs)")
    say()
    say("restartd: `--restart always --delay 0 --max-restarts unlimited`, a crash record "
        "appended and fsync'd and state.json replaced atomically at every restart.")
    say()
    results = {}
    count = os.path.join(C, "count")
    for rep in range(RESTART_REPEATS):
        with tempfile.TemporaryDirectory() as tmp:
            counter = os.path.join(tmp, "bare.count")
            out = subprocess.run([os.path.join(C, "forkloop"), str(RESTART_SECONDS), count, counter],
                                 capture_output=True, text=True, check=True)
            results.setdefault("bare fork+exec+wait loop (C)", []).append(
                int(out.stdout) / RESTART_SECONDS)
        with tempfile.TemporaryDirectory() as tmp:
            peers = len(supervisors(tmp, ["x"]))
        for i in range(peers):
            with tempfile.TemporaryDirectory() as tmp:
                counter = os.path.join(tmp, "count")
                name, argv, env = supervisors(tmp, [count, counter])[i]
                results.setdefault(name, []).append(
                    restarts_per_second(argv, env, counter, RESTART_SECONDS))
    bare = statistics.median(results["bare fork+exec+wait loop (C)"])
    rows = []
    for name, rates in sorted(results.items(), key=lambda kv: -statistics.median(kv[1])):
        rows.append([name, median_range(rates, "{:.1f}"),
                     f"{statistics.median(rates) / bare:.3f}×"])
    table(["supervisor", "restarts/s median (min–max)", "vs bare loop"], rows)
    rd = statistics.median(results["restartd"])
    pm2 = statistics.median(results["PM2 (pm2-runtime)"])
    say(f"Goal 1 (restartd ≥ 0.5× bare): {rd / bare:.3f}× — "
        f"{'met' if rd / bare >= 0.5 else 'MISSED'}; restartd vs PM2: {rd / max(pm2, 1e-9):.1f}×")
    say()


# ---- 2. idle cost ----------------------------------------------------------------------------

def bench_idle():
    say(f"## Idle cost: the child sleeps, {IDLE_SECONDS} s")
    say()
    say("Every process of the supervision tree except the supervised `sleep` is counted "
        "(wakeups = voluntary + involuntary context switches).")
    say()
    child = ["sleep", "3600"]
    tmp = tempfile.mkdtemp()
    runs = [(n, a, e) for n, a, e in supervisors(tmp, child) if "tmpfs" not in n]
    runs.append(("tini", ["tini", "-s", "--", *child], {}))
    runs.append(("dumb-init", ["dumb-init", *child], {}))
    started = []
    for name, argv, env in runs:
        marker = uuid.uuid4().hex
        p = spawn(argv, marker, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        started.append((name, marker, p))
    time.sleep(5)  # let every supervisor settle (PM2 and circus start slowly)

    def sample(marker):
        total = {"switches": 0, "ticks": 0, "rss": 0, "pss": 0, "uss": 0}
        for pid in marked_pids(marker):
            if comm(pid) == "sleep":
                continue
            try:
                total["switches"] += status_field(pid, "voluntary_ctxt_switches") + \
                    status_field(pid, "nonvoluntary_ctxt_switches")
                total["ticks"] += cpu_ticks(pid)
                total["rss"] += status_field(pid, "VmRSS")
                pss, uss = rollup_kb(pid)
                total["pss"] += pss
                total["uss"] += uss
            except OSError:
                pass
        return total

    before = {name: sample(marker) for name, marker, _ in started}
    time.sleep(IDLE_SECONDS)
    after = {name: sample(marker) for name, marker, _ in started}
    for _, marker, p in started:
        kill_marked(marker)
        p.wait()
    shutil.rmtree(tmp, ignore_errors=True)
    hz = os.sysconf("SC_CLK_TCK")
    rows = []
    for name, _, _ in started:
        b, a = before[name], after[name]
        rows.append([name, a["switches"] - b["switches"],
                     f"{(a['ticks'] - b['ticks']) * 1000 / hz:.0f} ms",
                     f"{a['rss'] / 1024:.1f} MiB", f"{a['pss'] / 1024:.2f} MiB",
                     f"{a['uss'] / 1024:.2f} MiB"])
    table(["supervisor", f"wakeups in {IDLE_SECONDS} s", "CPU", "RSS", "PSS", "USS"], rows)
    rd, s6 = after["restartd"], after["s6 (s6-supervise)"]
    uss = rd["uss"] / max(s6["uss"], 1)
    say(f"Goal 2: restartd wakeups {rows[0][1]}, CPU {rows[0][2]}; USS {uss:.2f}× s6-supervise "
        f"(goal ≤ 1.5×) — {'met' if uss <= 1.5 else 'MISSED'}; for information, RSS "
        f"{rd['rss'] / max(s6['rss'], 1):.2f}×, PSS {rd['pss'] / max(s6['pss'], 1):.2f}×")
    say()


# ---- 3. output throughput --------------------------------------------------------------------

def timed_run(argv, marker, env=None, stderr_to_cat=False):
    """Runs argv to its end; returns (seconds, cpu seconds of the first process, sampled)."""
    cat = None
    if stderr_to_cat:
        cat = subprocess.Popen(["cat"], stdin=subprocess.PIPE, stdout=subprocess.DEVNULL)
        err = cat.stdin
    else:
        err = subprocess.DEVNULL
    t0 = time.monotonic()
    p = spawn(argv, marker, env=env or {}, stdout=subprocess.DEVNULL, stderr=err)
    cpu = 0
    while p.poll() is None:
        try:
            cpu = cpu_ticks(p.pid)
        except OSError:
            pass
        time.sleep(0.01)
    elapsed = time.monotonic() - t0
    if cat:
        cat.stdin.close()
        cat.wait()
    return elapsed, cpu / os.sysconf("SC_CLK_TCK")


def wait_gone(marker, name, timeout=600):
    """Waits until a process called `name` has appeared under `marker`, then until it is gone;
    returns the seconds from its appearance to its end."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if any(comm(p) == name for p in marked_pids(marker)):
            break
        time.sleep(0.002)
    else:
        raise RuntimeError(f"{name} never started")
    appeared = time.monotonic()
    deadline = appeared + timeout
    while time.monotonic() < deadline:
        if not any(comm(p) == name for p in marked_pids(marker)):
            return time.monotonic() - appeared
        time.sleep(0.005)
    raise RuntimeError(f"{name} did not end")


def bench_output():
    say(f"## Output: {OUTPUT_MIB} MiB of 100-byte stderr lines through the capture path "
        f"({OUTPUT_REPEATS} runs)")
    say()
    say("`direct pipe`: the generator's stderr is a pipe read by `cat`. restartd "
        "`passthrough`: the child's stderr is a pipe read by restartd (which keeps the tail) "
        "and written on to restartd's stderr, itself a pipe read by `cat`. The log writers write "
        f"to {SHM}. Peers that only pass the fd through (tini, dumb-init) have no capture path.")
    say()
    spew = [os.path.join(C, "spew"), str(OUTPUT_MIB)]
    gib = OUTPUT_MIB / 1024
    results, cpu = {}, {}
    for rep in range(OUTPUT_REPEATS):
        tmp = tempfile.mkdtemp(dir=SHM)
        t, _ = timed_run(["sh", "-c", '"$0" "$1" 2>&1 | cat > /dev/null', *spew], uuid.uuid4().hex)
        results.setdefault("direct pipe", []).append(t)
        t, c = timed_run(restartd_argv(tmp, spew, "--restart", "no"), uuid.uuid4().hex,
                         stderr_to_cat=True)
        results.setdefault("restartd passthrough", []).append(t)
        cpu.setdefault("restartd passthrough", []).append(c)
        t, c = timed_run(restartd_argv(tmp, spew, "--restart", "no", "--log-file",
                                       os.path.join(tmp, "app.log")), uuid.uuid4().hex,
                         stderr_to_cat=True)
        results.setdefault("restartd --log-file", []).append(t)
        cpu.setdefault("restartd --log-file", []).append(c)
        for name, logger in [("s6-log", ["s6-log", os.path.join(tmp, "s6log")]),
                             ("svlogd (runit)", ["svlogd", os.path.join(tmp, "svlogd")]),
                             ("multilog (daemontools)", ["multilog", os.path.join(tmp, "multilog")])]:
            os.makedirs(logger[-1], exist_ok=True)
            script = '"$0" "$1" 2>&1 | "$2" "$3"'
            t, _ = timed_run(["sh", "-c", script, *spew, *logger], uuid.uuid4().hex)
            results.setdefault(name, []).append(t)
        for name, argv, env in [
            ("supervisord", supervisord_conf(tmp, spew, autorestart=False,
                                             stderr_log=os.path.join(tmp, "sv.log")), {}),
            ("circus", circus_conf(tmp, spew, respawn=False,
                                   stderr_file=os.path.join(tmp, "circus.log")), {}),
            ("PM2 (pm2-runtime)", *pm2_conf(tmp, spew, autorestart=False)),
        ]:
            marker = uuid.uuid4().hex
            p = spawn(argv, marker, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            # Timed from the generator's start until it is gone: it cannot end before the
            # capture path took all but a pipe buffer of its output (the supervisors' own
            # startup, a second for supervisord, is left out).
            results.setdefault(name, []).append(wait_gone(marker, "spew"))
            kill_marked(marker)
            p.wait()
        shutil.rmtree(tmp, ignore_errors=True)
    direct = statistics.median(results["direct pipe"])
    rows = []
    for name, times in results.items():
        med = statistics.median(times)
        rate = median_range([OUTPUT_MIB / 1024 * 1.073741824 / t for t in times], "{:.2f}")
        cpu_cell = "n/a"
        if name in cpu:
            cpu_cell = f"{statistics.median(cpu[name]) / gib:.2f} s"
        rows.append([name, rate, f"{direct / med:.2f}×", cpu_cell])
    table(["capture path", "GB/s median (min–max)", "vs direct pipe", "wrapper CPU per GiB"], rows)
    pt = direct / statistics.median(results["restartd passthrough"])
    lf = direct / statistics.median(results["restartd --log-file"])
    say(f"Goal 3: passthrough {pt:.2f}× (goal ≥ 0.9×) — {'met' if pt >= 0.9 else 'MISSED'}; "
        f"--log-file {lf:.2f}× (goal ≥ 0.8×) — {'met' if lf >= 0.8 else 'MISSED'}")
    say()


def bench_logfile():
    """--log-file with and without --log-timestamps and --log-compress, against the direct pipe,
    interleaved round by round (the machine is shared: each round runs every variant once, in
    the same order, so load that comes and goes spreads over all of them)."""
    mib = int(os.environ.get("BENCH_LOG_MIB", OUTPUT_MIB))
    rounds = int(os.environ.get("BENCH_LOG_ROUNDS", OUTPUT_REPEATS))
    say(f"## Log file: {mib} MiB of 100-byte access-log-like stderr lines ({rounds} interleaved "
        "rounds)")
    say()
    say("`spew MIB text`: lines with varying numbers (gzip -6 makes them about 5× smaller), so "
        "compression has real work. The log file is on "
        f"{SHM}, rotated at the default 10 MiB (about {mib // 10} rotations), `--log-keep 1000`. "
        "restartd's own stderr is a pipe read by `cat`, as in the output section. Time is from "
        "start to restartd's exit (which waits up to 1 s for compression still under way; "
        "`gz left plain` counts rotated files it left uncompressed).")
    say()
    spew = [os.path.join(C, "spew"), str(mib), "text"]
    variants = [
        ("--log-file", []),
        ("--log-file --log-timestamps", ["--log-timestamps"]),
        ("--log-file --log-compress", ["--log-compress"]),
        ("--log-file --log-timestamps --log-compress", ["--log-timestamps", "--log-compress"]),
    ]
    # BENCH_BASE_RESTARTD=PATH adds PATH's plain --log-file (e.g. the build before a change).
    base = os.environ.get("BENCH_BASE_RESTARTD")
    results, cpu, plain = {}, {}, {}
    for _ in range(rounds):
        if base:
            tmp = tempfile.mkdtemp(dir=SHM)
            argv = restartd_argv(tmp, spew, "--restart", "no", "--log-file",
                                 os.path.join(tmp, "app.log"), "--log-keep", "1000")
            argv[0] = base
            t, c = timed_run(argv, uuid.uuid4().hex, stderr_to_cat=True)
            results.setdefault("--log-file (BENCH_BASE_RESTARTD)", []).append(t)
            cpu.setdefault("--log-file (BENCH_BASE_RESTARTD)", []).append(c)
            shutil.rmtree(tmp, ignore_errors=True)
        t, _ = timed_run(["sh", "-c", '"$0" "$1" "$2" 2>&1 | cat > /dev/null', *spew],
                         uuid.uuid4().hex)
        results.setdefault("direct pipe", []).append(t)
        for name, extra in variants:
            tmp = tempfile.mkdtemp(dir=SHM)
            log = os.path.join(tmp, "app.log")
            t, c = timed_run(restartd_argv(tmp, spew, "--restart", "no", "--log-file", log,
                                           "--log-keep", "1000", *extra),
                             uuid.uuid4().hex, stderr_to_cat=True)
            results.setdefault(name, []).append(t)
            cpu.setdefault(name, []).append(c)
            left = [f for f in os.listdir(tmp) if f.startswith("app.log.") and
                    not f.endswith(".gz")]
            plain.setdefault(name, []).append(len(left) if "--log-compress" in extra else 0)
            shutil.rmtree(tmp, ignore_errors=True)
    direct = statistics.median(results["direct pipe"])
    rows = []
    for name, times in results.items():
        rate = median_range([mib / 1024 * 1.073741824 / t for t in times], "{:.2f}")
        cpu_cell = (f"{statistics.median(cpu[name]) / (mib / 1024):.2f} s" if name in cpu
                    else "n/a")
        left = f"{max(plain[name])}" if name in plain else "n/a"
        rows.append([name, rate, f"{direct / statistics.median(times):.2f}×", cpu_cell, left])
    table(["path", "GB/s median (min–max)", "vs direct pipe", "restartd CPU per GiB",
           "gz left plain (max)"], rows)
    ts = direct / statistics.median(results["--log-file --log-timestamps"])
    say(f"Goal: --log-file --log-timestamps {ts:.2f}× the direct pipe (goal ≥ 0.8×) — "
        f"{'met' if ts >= 0.8 else 'MISSED'}")
    say()


# ---- 4. startup ------------------------------------------------------------------------------

def hyperfine(commands, runs=300):
    with tempfile.NamedTemporaryFile(suffix=".json") as f:
        subprocess.run(["hyperfine", "-N", "--warmup", "20", "--runs", str(runs), "--export-json",
                        f.name, *commands], check=True, capture_output=True)
        data = json.load(open(f.name))
    return [r for r in data["results"]]


def bench_startup():
    say("## Startup: wrapping `/bin/true` once (hyperfine, 300 runs)")
    say()
    tmp = tempfile.mkdtemp()
    commands = [
        "/bin/true",
        "tini -s -- /bin/true",
        "dumb-init /bin/true",
        f"{RESTARTD} --state-dir {tmp}/state -n startup -q --restart no -- /bin/true",
        f"{RESTARTD} --state-dir {SHM}/restartd-bench-{os.getpid()} -n startup -q --restart no -- /bin/true",
    ]
    results = hyperfine(commands)
    bare = results[0]["median"]
    rows = []
    names = ["bare /bin/true", "tini", "dumb-init", "restartd", "restartd, state dir on tmpfs"]
    for name, r in zip(names, results):
        rows.append([name, f"{r['median'] * 1e3:.3f} ms",
                     f"{r['min'] * 1e3:.3f}–{r['max'] * 1e3:.3f} ms",
                     f"{(r['median'] - bare) * 1e3:.3f} ms"])
    table(["command", "median", "min–max", "overhead over bare"], rows)
    tini = results[1]["median"] - bare
    dumb_init = results[2]["median"] - bare
    rd = results[3]["median"] - bare
    rd_tmpfs = results[4]["median"] - bare

    def ratio(x, peer):
        return f"{x / peer:.2f}" if peer > 0 else "n/a"

    say(f"Startup, no target: reported beside the peers. restartd overhead / tini overhead = "
        f"{ratio(rd, tini)}, / dumb-init overhead = {ratio(rd, dumb_init)} (restartd includes "
        "the state directory, lock, two fsync'd state.json writes and the control socket); with "
        f"the state directory on tmpfs: {ratio(rd_tmpfs, tini)} and {ratio(rd_tmpfs, dumb_init)}")
    shutil.rmtree(f"{SHM}/restartd-bench-{os.getpid()}", ignore_errors=True)
    say()
    shutil.rmtree(tmp, ignore_errors=True)


# ---- 5. signal latency -----------------------------------------------------------------------

def signal_latencies(wrappers, runs, settle):
    """SIGTERM → the child's handler, in µs, `runs` times per wrapper, `settle` s after `ready`."""
    results = {}
    for _ in range(runs):
        for name, argv, out in wrappers:
            marker = uuid.uuid4().hex
            p = spawn(argv, marker, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
            assert p.stdout.readline() == b"ready\n"
            time.sleep(settle)
            t0 = time.clock_gettime_ns(time.CLOCK_MONOTONIC)
            os.kill(p.pid, signal.SIGTERM)
            p.wait()
            with open(out) as f:
                t1 = int(f.read())
            results.setdefault(name, []).append((t1 - t0) / 1000)
            kill_marked(marker)
    return results


def bench_signal():
    say(f"## Signal latency: SIGTERM to the wrapper → the child's handler runs ({SIGNAL_RUNS} runs)")
    say()
    say("Each wrapper gets 20 ms after the child's `ready` before the signal. The second table "
        "waits 1.5 s: every wrapper has been idle a while. restartd's handler only records the "
        "signal and wakes the loop, which asks the machine and signals the child's group "
        "(src/process/signals.rs, since issue 16).")
    say()
    tmp = tempfile.mkdtemp()
    out = os.path.join(tmp, "t")
    child = [os.path.join(C, "sigchild"), out]
    wrappers = [
        ("tini", ["tini", "-s", "--", *child], out),
        ("dumb-init", ["dumb-init", *child], out),
        ("restartd", restartd_argv(tmp, child), out),
    ]
    results = signal_latencies(wrappers, SIGNAL_RUNS, 0.02)
    rows = [[name, median_range(v, "{:.0f} µs")] for name, v in results.items()]
    table(["wrapper", "latency median (min–max)"], rows)
    ratio = statistics.median(results["restartd"]) / statistics.median(results["tini"])
    say(f"Goal 5: restartd median / tini median = {ratio:.2f} (goal ≤ 1.5) — "
        f"{'met' if ratio <= 1.5 else 'MISSED'}")
    say()
    idle = signal_latencies(wrappers, SIGNAL_IDLE_RUNS, 1.5)
    rows = [[name, median_range(v, "{:.0f} µs")] for name, v in idle.items()]
    say(f"After 1.5 s idle ({SIGNAL_IDLE_RUNS} runs):")
    say()
    table(["wrapper", "latency median (min–max)"], rows)
    ratio = statistics.median(idle["restartd"]) / statistics.median(idle["tini"])
    say(f"restartd median / tini median after idle = {ratio:.2f}")
    say()
    shutil.rmtree(tmp, ignore_errors=True)


# ---- 6. queries ------------------------------------------------------------------------------

FIELD_ORDER = ["id", "name", "time", "reason", "exit_code", "signal", "core_dumped", "expected",
               "pid", "uptime_ms", "restarts", "action", "next_delay_ms", "error_type",
               "error_message", "stack_trace", "stderr_tail", "max_rss_kb", "user_cpu_ms",
               "sys_cpu_ms", "command", "cwd", "host", "restartd_version", "detail"]


def write_records(dir_, n):
    os.makedirs(dir_, exist_ok=True)
    base = {
        "name": "q", "reason": "exit", "exit_code": 1, "signal": None, "core_dumped": False,
        "expected": False, "pid": 4242, "uptime_ms": 1234, "action": "restart",
        "next_delay_ms": 1000, "error_type": "ZeroDivisionError",
        "error_message": "division by zero",
        "stack_trace": "Traceback (most recent call last):\n  File \"app.py\", line 2, in <module>\n"
                       "ZeroDivisionError: division by zero",
        "stderr_tail": "starting\nTraceback (most recent call last):\n  File \"app.py\", line 2, "
                       "in <module>\nZeroDivisionError: division by zero\n",
        "max_rss_kb": 12000, "user_cpu_ms": 20, "sys_cpu_ms": 5, "command": ["python3", "app.py"],
        "cwd": "/srv/app", "host": "bench", "restartd_version": "0.1.0", "detail": None,
    }
    t = time.time() - n  # one a second, up to now
    half = n // 2
    for fname, rng in [("crashes.jsonl.1", range(0, half)), ("crashes.jsonl", range(half, n))]:
        with open(os.path.join(dir_, fname), "w") as f:
            for i in rng:
                ts = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t + i)) + ".000Z"
                rec = dict(base, id=f"{ts.replace('-', '').replace(':', '')}-1-{i}", time=ts,
                           restarts=i)
                # restartd's own field order (CrashRecord), as in a real crashes.jsonl.
                rec = {k: rec[k] for k in FIELD_ORDER}
                f.write(json.dumps(rec, separators=(",", ":")) + "\n")


def bench_queries():
    say("## Queries over 100,000 crash records (hyperfine, 30 runs)")
    say()
    tmp = tempfile.mkdtemp()
    write_records(os.path.join(tmp, "q"), 100_000)
    size = sum(os.path.getsize(os.path.join(tmp, "q", f)) for f in os.listdir(os.path.join(tmp, "q")))
    # A state file for `status`.
    subprocess.run([RESTARTD, "--state-dir", tmp, "-n", "q", "-q", "--restart", "no", "--", "true"],
                   check=True)
    commands = [f"{RESTARTD} crashes q --stats --state-dir {tmp}",
                f"{RESTARTD} crashes q -n 20 --state-dir {tmp}",
                f"{RESTARTD} status q --state-dir {tmp}"]
    results = []
    for cmd in commands:
        with tempfile.NamedTemporaryFile(suffix=".json") as f:
            subprocess.run(["hyperfine", "-N", "-i", "--warmup", "3", "--runs", "30", "--export-json",
                            f.name, cmd], check=True, capture_output=True)
            results.append(json.load(open(f.name))["results"][0])
    rows = []
    for name, goal, r in zip(["crashes --stats", "crashes -n 20", "status"], [0.3, 0.3, 0.01], results):
        rows.append([name, f"{r['median'] * 1e3:.1f} ms", f"{r['min'] * 1e3:.1f}–{r['max'] * 1e3:.1f} ms",
                     f"< {goal * 1e3:.0f} ms", "met" if r["median"] < goal else "MISSED"])
    say(f"The two files hold {size / 2**20:.1f} MiB.")
    say()
    table(["query", "median", "min–max", "goal", ""], rows)
    shutil.rmtree(tmp, ignore_errors=True)


# ---- 7. scale --------------------------------------------------------------------------------

def bench_scale():
    say(f"## Scale: {SCALE_INSTANCES} restartd instances, each supervising `sleep`")
    say()
    tmp = tempfile.mkdtemp()
    marker = uuid.uuid4().hex
    procs = [spawn([RESTARTD, "--state-dir", tmp, "-n", f"s{i:03}", "-q", "--", "sleep", "3600"],
                   marker, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
             for i in range(SCALE_INSTANCES)]
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        ok = sum(1 for i in range(SCALE_INSTANCES)
                 if os.path.exists(os.path.join(tmp, f"s{i:03}", "state.json")))
        if ok == SCALE_INSTANCES:
            break
        time.sleep(0.05)
    time.sleep(1)
    pids = [p.pid for p in procs]

    def totals():
        return (sum(status_field(p, "voluntary_ctxt_switches") + status_field(p, "nonvoluntary_ctxt_switches")
                    for p in pids),
                sum(status_field(p, "VmRSS") for p in pids),
                *map(sum, zip(*(rollup_kb(p) for p in pids))))
    s0, _, _, _ = totals()
    time.sleep(IDLE_SECONDS)
    s1, rss, pss, uss = totals()
    with tempfile.NamedTemporaryFile(suffix=".json") as f:
        subprocess.run(["hyperfine", "-N", "--warmup", "3", "--runs", "30", "--export-json", f.name,
                        f"{RESTARTD} list --state-dir {tmp}"], check=True, capture_output=True)
        r = json.load(open(f.name))["results"][0]
    kill_marked(marker)
    for p in procs:
        p.wait()
    shutil.rmtree(tmp, ignore_errors=True)
    table(["figure", "value"], [
        ["total RSS of the restartd processes", f"{rss / 1024:.1f} MiB ({rss / SCALE_INSTANCES / 1024:.2f} MiB each)"],
        ["total PSS", f"{pss / 1024:.1f} MiB ({pss / SCALE_INSTANCES / 1024:.2f} MiB each)"],
        ["total USS", f"{uss / 1024:.1f} MiB ({uss / SCALE_INSTANCES / 1024:.2f} MiB each)"],
        [f"total wakeups in {IDLE_SECONDS} s", s1 - s0],
        ["`restartd list` median (min–max)", f"{r['median'] * 1e3:.1f} ms ({r['min'] * 1e3:.1f}–{r['max'] * 1e3:.1f} ms), goal < 100 ms: {'met' if r['median'] < 0.1 else 'MISSED'}"],
    ])


METRICS = {
    "restart": bench_restart, "idle": bench_idle, "output": bench_output, "startup": bench_startup,
    "signal": bench_signal, "queries": bench_queries, "scale": bench_scale,
    "logfile": bench_logfile,
}


def main():
    # The peers are configured as for a system service; the log-file section runs restartd only.
    if os.geteuid() != 0 and sys.argv[1:] != ["logfile"]:
        sys.exit("run as root (peers are configured as for a system service)")
    if not os.path.exists(RESTARTD):
        sys.exit("build first: cargo build --release")
    chosen = sys.argv[1:] or list(METRICS)
    for name in chosen:
        if name not in METRICS:
            sys.exit(f"unknown metric {name!r}; choose from {', '.join(METRICS)}")
    say(f"# restartd benchmarks — {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}")
    say()
    say(f"Machine: {os.cpu_count()} cores, kernel {os.uname().release}. restartd "
        f"{subprocess.run([RESTARTD, '--version'], capture_output=True, text=True).stdout.strip()}.")
    say()
    try:
        for name in chosen:
            METRICS[name]()
    finally:
        for d in _shm_scratch:
            shutil.rmtree(d, ignore_errors=True)
    os.makedirs(os.path.join(HERE, "results"), exist_ok=True)
    with open(os.path.join(HERE, "results", "latest.md"), "w") as f:
        f.write("\n".join(out_lines) + "\n")


if __name__ == "__main__":
    main()

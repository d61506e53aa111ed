#!/usr/bin/env python3
"""Availability under crashes and deploys: what clients of a supervised server see.

Run by hand, never by CI (the peers come from bench/install.sh, uvicorn into bench/.venv):

    bash bench/install.sh
    cargo build --release
    python3 bench/availability.py [--crash-every S] [--deploy-every S] [--seconds S]

A real uvicorn app (bench/app.py) runs under each supervisor in turn, on 127.0.0.1, while a
steady load of HTTP requests (a new connection each, CLIENTS threads) is sent by this script:

  (a) crashes: the app kills itself (os._exit(1)) CRASH_EVERY seconds after each start. Per
      crash: requests refused (ECONNREFUSED), requests failed (connected, no complete answer),
      and the time from the crash to the first request a new child answered.
  (b) deploys: every DEPLOY_EVERY seconds the supervisor's own deploy command replaces the
      app (restartd reload / restart, supervisorctl restart, pm2 reload, a SIGTERM to the
      child of a shell loop). Per deploy: refused and failed requests.

Every supervisor restarts after the same 100 ms (restartd --delay 100ms --backoff-factor 1,
PM2 --restart-delay 100, the loop's sleep 0.1; supervisord has no delay). Prints a Markdown
table and writes it to bench/results/availability.md. Every process it starts carries
BENCH_RUN=<id> in its environment; cleanup kills exactly those, by PID.
"""

import argparse
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
RESTARTD = os.path.join(ROOT, "target", "release", "restartd")
UVICORN = os.path.join(HERE, ".venv", "bin", "uvicorn")
PM2 = os.path.join(HERE, ".npm", "node_modules", "pm2", "bin", "pm2")
CLIENTS = 4
CONTROL = "restartd --socket, tests/helpers/listen_server.py instead of uvicorn"

sys.path.insert(0, HERE)
from run import kill_marked, spawn  # noqa: E402  (the same process bookkeeping as run.py)


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


class Load:
    """CLIENTS threads sending `GET /` one after another: (start, end, outcome, pid) each."""

    def __init__(self, port):
        self.port = port
        self.stop = threading.Event()
        self.results = []
        self.lock = threading.Lock()
        self.threads = [threading.Thread(target=self.client, daemon=True) for _ in range(CLIENTS)]
        for t in self.threads:
            t.start()

    def one(self):
        s = socket.socket()
        s.settimeout(10)
        try:
            s.connect(("127.0.0.1", self.port))
        except ConnectionRefusedError:
            return "refused", None
        except OSError as e:
            return "failed", f"connect: {type(e).__name__}"
        try:
            s.sendall(b"GET / HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n\r\n")
            data = b""
            while True:
                chunk = s.recv(4096)
                if not chunk:
                    break
                data += chunk
        except OSError as e:
            return "failed", f"{type(e).__name__} after {len(data)} bytes"
        finally:
            s.close()
        if data.startswith(b"HTTP/1.1 200") and b"pid=" in data:
            return "ok", data.split(b"pid=")[1].split()[0].decode()
        return "failed", f"closed after {len(data)} bytes" if not data else "bad answer"

    def client(self):
        while not self.stop.is_set():
            start = time.time()
            outcome, pid = self.one()
            with self.lock:
                self.results.append((start, time.time(), outcome, pid))
            time.sleep(0.005)

    def finish(self):
        self.stop.set()
        for t in self.threads:
            t.join()
        return self.results


def wait_served(port, limit=30):
    deadline = time.time() + limit
    while time.time() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1) as s:
                s.sendall(b"GET / HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n\r\n")
                if s.recv(100).startswith(b"HTTP/1.1 200"):
                    return True
        except OSError:
            pass
        time.sleep(0.05)
    return False


def child_pids(pid):
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as f:
            return [int(p) for p in f.read().split()]
    except OSError:
        return []


# ---- the supervisors: (name, start argv, env, deploy function) --------------------------------

def uvicorn_argv(port, socket_fd):
    where = ["--fd", "3"] if socket_fd else ["--host", "127.0.0.1", "--port", str(port)]
    return [UVICORN, "app:app", "--app-dir", HERE, "--no-access-log", "--log-level", "warning",
            *where]


def setups(tmp, port):
    state = os.path.join(tmp, "state")
    restartd_common = [RESTARTD, "--state-dir", state, "-n", "app", "-q", "--restart", "always",
                       "--max-restarts", "unlimited", "--delay", "100ms", "--backoff-factor", "1"]
    conf = os.path.join(tmp, "supervisord.conf")
    with open(conf, "w") as f:
        f.write(f"""[supervisord]
nodaemon=true
logfile={tmp}/supervisord.log
pidfile={tmp}/supervisord.pid
[unix_http_server]
file={tmp}/supervisor.sock
[rpcinterface:supervisor]
supervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface
[supervisorctl]
serverurl=unix://{tmp}/supervisor.sock
[program:app]
command={" ".join(uvicorn_argv(port, False))}
autorestart=true
startsecs=0
startretries=1000000
stopsignal=TERM
stdout_logfile=NONE
stderr_logfile=NONE
""")
    pm2_env = {"PM2_HOME": os.path.join(tmp, "pm2")}
    loop = "while true; do " + " ".join(uvicorn_argv(port, False)) + "; sleep 0.1; done"

    def run(argv, env=None):
        return lambda: subprocess.run(argv, capture_output=True,
                                      env=dict(os.environ, **(env or {})))

    def loop_deploy(proc):
        for pid in child_pids(proc.pid):
            os.kill(pid, 15)

    return [
        ("restartd --socket", [*restartd_common, "--socket", f"tcp://127.0.0.1:{port}", "--",
                               *uvicorn_argv(port, True)], {},
         run([RESTARTD, "reload", "app", "--state-dir", state]), "restartd reload"),
        ("restartd (no --socket)", [*restartd_common, "--", *uvicorn_argv(port, False)], {},
         run([RESTARTD, "restart", "app", "--state-dir", state]), "restartd restart"),
        ("supervisord", ["supervisord", "-c", conf], {},
         run(["supervisorctl", "-c", conf, "restart", "app"]), "supervisorctl restart"),
        ("PM2 (fork mode)", None, pm2_env, run(["node", PM2, "reload", "app"], pm2_env),
         "pm2 reload"),
        ("shell loop", ["sh", "-c", loop], {}, loop_deploy, "SIGTERM to the child"),
        # A control for the deploys: a server that answers every connection it accepted before
        # it exits on SIGTERM (uvicorn closes those it has not read yet). No crash run.
        (CONTROL, [*restartd_common, "--socket", f"tcp://127.0.0.1:{port}", "--", "python3",
                   os.path.join(ROOT, "tests", "helpers", "listen_server.py")], {},
         run([RESTARTD, "reload", "app", "--state-dir", state]), "restartd reload"),
    ]


def start(name, argv, env, marker, port, crash_every, crash_log):
    child_env = dict(env, CRASH_LOG=crash_log)
    if crash_every:
        child_env["CRASH_EVERY"] = str(crash_every)
    if argv is None:  # PM2: its daemon, then the app in fork mode.
        subprocess.run(["node", PM2, "start", UVICORN, "--name", "app", "--interpreter", "none",
                        "--restart-delay", "100", "--", *uvicorn_argv(port, False)[1:]],
                       env=dict(os.environ, BENCH_RUN=marker, **child_env),
                       capture_output=True, check=True)
        return None
    return spawn(argv, marker, env=child_env, stdout=subprocess.DEVNULL,
                 stderr=subprocess.DEVNULL)


def crashes(crash_log):
    try:
        with open(crash_log) as f:
            return [(p, float(t)) for p, t in (line.split() for line in f if line.strip())]
    except FileNotFoundError:
        return []


def scenario(name, setup, mode, seconds, every):
    """One supervisor, one scenario; returns (refused, failed, events, crash-to-served list)."""
    with tempfile.TemporaryDirectory() as tmp:
        port = free_port()
        this = {s[0]: s for s in setups(tmp, port)}[name]
        argv, env, deploy = this[1], this[2], this[3]
        marker = uuid.uuid4().hex
        crash_log = os.path.join(tmp, "crashes")
        proc = start(name, argv, env, marker, port, every if mode == "crash" else None,
                     crash_log)
        try:
            if not wait_served(port):
                raise RuntimeError(f"{name}: the app never served on port {port}")
            load = Load(port)
            began = time.time()
            deploys = 0
            if mode == "deploy":
                while time.time() - began < seconds:
                    time.sleep(every)
                    (deploy(proc) if name == "shell loop" else deploy())
                    deploys += 1
                time.sleep(2)  # the last deploy's requests finish
            else:
                time.sleep(seconds)
            results = load.finish()
        finally:
            if name.startswith("PM2"):
                subprocess.run(["node", PM2, "kill"], env=dict(os.environ, **env),
                               capture_output=True)
            kill_marked(marker)
            if proc:
                proc.wait()
        refused = sum(1 for r in results if r[2] == "refused")
        failed = sum(1 for r in results if r[2] == "failed")
        ok = sum(1 for r in results if r[2] == "ok")
        gaps = []
        events = deploys
        if mode == "crash":
            seen = [c for c in crashes(crash_log) if began < c[1] < began + seconds - 1]
            events = len(seen)
            for pid, at in seen:
                served = [r[1] for r in results if r[2] == "ok" and r[3] != pid and r[1] > at]
                if served:
                    gaps.append(min(served) - at)
        kinds = {}
        for r in results:
            if r[2] == "failed":
                kinds[r[3]] = kinds.get(r[3], 0) + 1
        return refused, failed, ok, events, gaps, kinds


def startup_time():
    """How long uvicorn takes from exec to its first answer here (the floor for crash-to-served)."""
    port = free_port()
    marker = uuid.uuid4().hex
    t0 = time.time()
    p = spawn(uvicorn_argv(port, False), marker, stdout=subprocess.DEVNULL,
              stderr=subprocess.DEVNULL)
    wait_served(port)
    took = time.time() - t0
    kill_marked(marker)
    p.wait()
    return took


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--crash-every", type=float, default=4.0)
    ap.add_argument("--deploy-every", type=float, default=4.0)
    ap.add_argument("--seconds", type=float, default=20.0)
    ap.add_argument("--only", help="run only the supervisor whose name starts with this")
    ap.add_argument("--exact", action="store_true", help="--only names one supervisor exactly")
    ap.add_argument("--deploys-only", action="store_true", help="skip the crash scenario")
    args = ap.parse_args()
    for tool in (RESTARTD, UVICORN, PM2):
        if not os.path.exists(tool):
            sys.exit(f"missing {tool}: run bash bench/install.sh and cargo build --release")
    lines = []

    def say(line=""):
        print(line, flush=True)
        lines.append(line)

    starts = [startup_time() for _ in range(3)]
    say(f"## Availability: uvicorn under a steady load ({CLIENTS} clients, a new connection per "
        f"request, {args.seconds:.0f} s per run)")
    say()
    say(f"uvicorn's own start-up here (exec to first answer): median "
        f"{statistics.median(starts) * 1000:.0f} ms; restart delay 100 ms everywhere "
        f"(supervisord: none). Machine: {os.cpu_count()} cores, shared.")
    say()
    rows = []
    notes = []
    with tempfile.TemporaryDirectory() as tmp:
        names = [(s[0], s) for s in setups(tmp, 0)]
    for name, setup in names:
        if args.only and not (name == args.only if args.exact else name.startswith(args.only)):
            continue
        if args.deploys_only or name == CONTROL:
            c_ref, c_fail, c_ok, c_n, gaps, c_kinds = 0, 0, 0, 0, [], {}
        else:
            c_ref, c_fail, c_ok, c_n, gaps, c_kinds = scenario(name, setup, "crash",
                                                               args.seconds, args.crash_every)
        d_ref, d_fail, d_ok, d_n, _, d_kinds = scenario(name, setup, "deploy", args.seconds,
                                                        args.deploy_every)
        if c_kinds or d_kinds:
            notes.append(f"{name}: failed requests at crashes {c_kinds or '{}'}, "
                         f"at deploys {d_kinds or '{}'}")
        per = lambda x, n: f"{x / n:.2f}" if n else "n/a"  # noqa: E731
        gap = (f"{statistics.median(gaps) * 1000:.0f} ({min(gaps) * 1000:.0f}–"
               f"{max(gaps) * 1000:.0f})" if gaps else "n/a")
        rows.append([name, str(c_n), per(c_ref, c_n), per(c_fail, c_n), gap, setup[4], str(d_n),
                     per(d_ref, d_n), per(d_fail, d_n), str(c_ok + d_ok)])
        print(f"  {name}: {rows[-1]}", file=sys.stderr, flush=True)
    header = ["supervisor", "crashes", "refused/crash", "failed/crash",
              "crash → served ms, median (min–max)", "deploy command", "deploys",
              "refused/deploy", "failed/deploy", "requests served"]
    say("| " + " | ".join(header) + " |")
    say("|" + "---|" * len(header))
    for row in rows:
        say("| " + " | ".join(row) + " |")
    say()
    say("How the failed requests failed (connected, then no complete answer):")
    say()
    for note in notes:
        say(f"- {note}")
    say()
    os.makedirs(os.path.join(HERE, "results"), exist_ok=True)
    with open(os.path.join(HERE, "results", "availability.md"), "w") as f:
        f.write("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()

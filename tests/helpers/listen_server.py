"""An HTTP server that takes its listening sockets from restartd (systemd's socket activation:
LISTEN_FDS, LISTEN_PID, LISTEN_FDNAMES) and answers every request with its own pid.

It prints `ready pid=N fds=N names=A:B pid_ok=1 blocking=1 cloexec=0` once it serves. With a
NOTIFY_SOCKET it sends READY=1 then. What it does at start comes from the first word of the file
named by SERVER_MODE (read at each start, so a test can change the next child's behaviour):

  ok        serve (the default)
  exit      exit 3 at once, before serving
  hang      never become ready: serve nothing, send no READY=1, wait for SIGTERM
  crash N   serve N requests, then exit 1 (at once: the next request waits in the backlog)
  slow S    sleep S seconds before serving (a slow start-up)
  fork      serve, with a grandchild in its group that ignores SIGTERM (prints `grandchild pid=N`)

With SERVER_SET_NONBLOCK set it puts the sockets in non-blocking mode after reporting (as Node or
asyncio would), to show that the next child still gets them blocking.

SIGTERM is a graceful stop: a request being answered is finished, then it exits 0.
"""
import fcntl
import os
import select
import signal
import socket
import sys
import time

stopping = False


def on_term(_signum, _frame):
    global stopping
    stopping = True


def say(line):
    os.write(1, (line + "\n").encode())


def mode():
    path = os.environ.get("SERVER_MODE")
    if not path:
        return ["ok"]
    try:
        with open(path) as f:
            return f.read().split() or ["ok"]
    except FileNotFoundError:
        return ["ok"]


def notify(message):
    addr = os.environ.get("NOTIFY_SOCKET")
    if not addr:
        return
    if addr.startswith("@"):
        addr = "\0" + addr[1:]
    s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    s.sendto(message.encode(), addr)
    s.close()


def main():
    signal.signal(signal.SIGTERM, on_term)
    words = mode()
    if words[0] == "exit":
        say(f"exiting pid={os.getpid()}")
        sys.exit(3)
    n = int(os.environ.get("LISTEN_FDS", "0"))
    pid_ok = os.environ.get("LISTEN_PID") == str(os.getpid())
    names = os.environ.get("LISTEN_FDNAMES", "")
    socks = [socket.socket(fileno=3 + i) for i in range(n)]
    # O_NONBLOCK as the kernel has it (not Python's own idea of the socket's timeout).
    blocking = all(not fcntl.fcntl(3 + i, fcntl.F_GETFL) & os.O_NONBLOCK for i in range(n))
    if os.environ.get("SERVER_SET_NONBLOCK"):
        # As Node and asyncio servers do: on the description the next child shares.
        for i in range(n):
            os.set_blocking(3 + i, False)
    cloexec = any(os.get_inheritable(3 + i) is False for i in range(n))
    if words[0] == "hang":
        say(f"hanging pid={os.getpid()}")
        while not stopping:
            time.sleep(0.05)
        sys.exit(0)
    if words[0] == "slow":
        time.sleep(float(words[1]))
    if words[0] == "fork":
        r, w = os.pipe()
        if os.fork() == 0:
            signal.signal(signal.SIGTERM, signal.SIG_IGN)
            for s in socks:
                s.close()
            say(f"grandchild pid={os.getpid()} of={os.getppid()}")
            os.close(w)
            while True:
                time.sleep(1)
        os.close(w)
        os.read(r, 1)
    crash_after = int(words[1]) if words[0] == "crash" else None
    say(f"ready pid={os.getpid()} fds={n} names={names} pid_ok={int(pid_ok)} "
        f"blocking={int(blocking)} cloexec={int(cloexec)}")
    notify("READY=1")
    served = 0
    while not stopping:
        try:
            ready, _, _ = select.select(socks, [], [], 0.05)
        except InterruptedError:
            continue
        for s in ready:
            # Blocking: if the other child took the connection, this waits for the next one,
            # which is harmless (nothing is accepted and left unanswered).
            conn, _ = s.accept()
            with conn:
                data = b""
                while b"\r\n\r\n" not in data:
                    chunk = conn.recv(4096)
                    if not chunk:
                        break
                    data += chunk
                body = f"pid={os.getpid()}\n".encode()
                conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: " + str(len(body)).encode()
                             + b"\r\nConnection: close\r\n\r\n" + body)
            served += 1
            if crash_after is not None and served >= crash_after:
                say(f"crashing pid={os.getpid()}")
                os._exit(1)
    sys.exit(0)


main()

"""An HTTP server that stops as uvicorn does: on SIGTERM it stops accepting and closes every
connection it has accepted but not read a request from yet (uvicorn's H11Protocol.shutdown closes
a connection whose cycle is None), then exits 0. Requests it has read are answered.

Like uvicorn's event loop, it accepts what is queued in one turn and reads those connections in
the next, and it notices SIGTERM on a tick every 100 ms (uvicorn's main_loop). It takes fd 3 from
restartd (LISTEN_FDS), prints `ready pid=N` once it serves and sends READY=1 to a NOTIFY_SOCKET.
"""
import os
import select
import signal
import socket
import time

stopping = False


def on_term(_signum, _frame):
    global stopping
    stopping = True


def notify(message):
    addr = os.environ.get("NOTIFY_SOCKET")
    if not addr:
        return
    if addr.startswith("@"):
        addr = "\0" + addr[1:]
    s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    s.sendto(message.encode(), addr)
    s.close()


def answer(conn):
    conn.setblocking(True)
    conn.settimeout(5)
    data = b""
    try:
        while b"\r\n\r\n" not in data:
            chunk = conn.recv(4096)
            if not chunk:
                return
            data += chunk
        body = f"pid={os.getpid()}\n".encode()
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: " + str(len(body)).encode()
                     + b"\r\nConnection: close\r\n\r\n" + body)
    except OSError:
        pass
    finally:
        conn.close()


def main():
    signal.signal(signal.SIGTERM, on_term)
    listener = socket.socket(fileno=3)
    listener.setblocking(False)
    print(f"ready pid={os.getpid()}", flush=True)
    notify("READY=1")
    accepted = []  # accepted in the last turn, not read yet
    next_tick = time.monotonic() + 0.1
    while True:
        if time.monotonic() >= next_tick:
            next_tick += 0.1
            if stopping:
                listener.close()
                for conn in accepted:
                    conn.close()
                os._exit(0)
        # Last turn's connections are read now, this turn's next time.
        fresh = []
        try:
            ready, _, _ = select.select([listener], [], [], 0.005)
        except InterruptedError:
            ready = []
        if ready:
            while True:
                try:
                    conn, _ = listener.accept()
                except (BlockingIOError, InterruptedError):
                    break
                fresh.append(conn)
        for conn in accepted:
            answer(conn)
        accepted = fresh


main()

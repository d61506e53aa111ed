"""The availability benchmark's server: a minimal ASGI app run by uvicorn (bench/availability.py).

GET / answers `pid=N`. With CRASH_EVERY=S in its environment it crashes (os._exit(1), as a
segfault or an OOM kill would end it) S seconds after its start-up, after appending
`PID TIME` to the file named by CRASH_LOG.
"""
import asyncio
import os
import time


async def crash_later(seconds):
    await asyncio.sleep(seconds)
    with open(os.environ["CRASH_LOG"], "a") as f:
        f.write(f"{os.getpid()} {time.time():.6f}\n")
    os._exit(1)


async def app(scope, receive, send):
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                every = os.environ.get("CRASH_EVERY")
                if every:
                    asyncio.get_running_loop().create_task(crash_later(float(every)))
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    body = f"pid={os.getpid()}\n".encode()
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"text/plain"), (b"connection", b"close")]})
    await send({"type": "http.response.body", "body": body})

"""A minimal ASGI app for `uvicorn --fd 3` under restartd (tests/it/sockets.rs).

GET / answers `pid=N`; GET /crash ends the process at once (os._exit(1)), as a crash would.
"""
import os


async def app(scope, receive, send):
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    if scope["path"] == "/crash":
        os._exit(1)
    body = f"pid={os.getpid()}\n".encode()
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"text/plain"), (b"connection", b"close")]})
    await send({"type": "http.response.body", "body": body})

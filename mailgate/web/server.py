"""uvicorn inside our event loop: ``start`` binds and serves, ``Running.stop`` ends it.

``serve`` owns the signals (SIGTERM, SIGHUP); uvicorn must not take them over, so
its signal capture is switched off here. The socket is bound by us, so
``listen = "127.0.0.1:0"`` works and the address actually bound is known.

Inside ``serve`` the desk shares the process (and its interpreter lock) with the
listener: ``Bounded`` lets at most ``SERVE_SLOTS`` pages be worked on at once, the
others wait their turn in the event loop (never blocking it), so 8 browsers asking
back to back cannot take the whole process from the intake.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from collections.abc import Generator
from dataclasses import dataclass
from typing import Any

import uvicorn

from mailgate.context import Context
from mailgate.errors import ConfigError
from mailgate.logs import event

log = logging.getLogger("mailgate.web")

# Pages worked on at once by the desk inside ``serve`` (issue 15, bench/web_intake.py).
SERVE_SLOTS: int | None = 2


class Bounded:
    """ASGI middleware: at most ``slots`` HTTP requests in the application at once.

    A request waits (an ``await``: the loop goes on) until a slot is free; the slot is
    given back when the response starts, so a long download does not hold it.
    """

    def __init__(self, app: Any, slots: int) -> None:
        self.app = app
        self.slots = asyncio.Semaphore(slots)

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        await self.slots.acquire()
        held = True

        def give_back() -> None:
            nonlocal held
            if held:
                held = False
                self.slots.release()

        async def sending(message: Any) -> None:
            if message["type"] == "http.response.start":
                give_back()
            await send(message)

        try:
            await self.app(scope, receive, sending)
        finally:
            give_back()


class _Server(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        yield  # serve's own handlers stay in charge


@dataclass
class Running:
    server: _Server
    task: asyncio.Task[None]
    host: str
    port: int
    root_path: str

    @property
    def url(self) -> str:
        return url_of(self.host, self.port, self.root_path)

    async def stop(self) -> None:
        self.server.should_exit = True
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.wait_for(asyncio.shield(self.task), timeout=10)


def url_of(host: str, port: int, root_path: str) -> str:
    """The desk's address as ``serve`` and ``mailgate web`` print it."""
    shown = f"[{host}]" if ":" in host else host
    return f"http://{shown}:{port}{root_path}/"


def bind(listen: str, path: str) -> socket.socket:
    """The listening socket for ``host:port``; one config line when it is taken."""
    host, _, port = listen.rpartition(":")
    host = host.strip("[]")
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    # Accepted connections inherit it: without it a response written in two parts (headers,
    # body) waits for the client's delayed ACK — about 40 ms on every keep-alive request.
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    try:
        sock.bind((host, int(port)))
    except OSError as exc:
        sock.close()
        raise ConfigError(
            f"web.listen: cannot listen on {listen}: {exc.strerror or exc} (in {path})"
        ) from None
    sock.listen(128)
    sock.setblocking(False)
    return sock


async def start(ctx: Context, metrics: Any = None, *, bounded: bool = True) -> Running:
    """Serve the desk on ``[web] listen`` in the running loop; ``bounded``: at most
    ``SERVE_SLOTS`` pages at once (else as many as the thread pool takes). ``serve``
    runs the desk in a process of its own instead (``web.process.spawn``)."""
    sock = bind(ctx.config.web.listen, str(ctx.config.path))
    return await serve_socket(ctx, sock, metrics, bounded=bounded)


async def serve_socket(
    ctx: Context, sock: socket.socket, metrics: Any = None, *, bounded: bool = True
) -> Running:
    """Serve the desk on a bound, listening socket in the running loop."""
    from mailgate.web.app import create_app

    web = ctx.config.web
    app: Any = create_app(ctx, metrics=metrics)
    if bounded and SERVE_SLOTS is not None:
        app = Bounded(app, SERVE_SLOTS)
    config = uvicorn.Config(
        app,
        lifespan="off",
        log_config=None,
        access_log=False,
        server_header=False,
        proxy_headers=False,  # app.py believes X-Forwarded-* from trusted proxies only
        root_path=web.root_path,
    )
    server = _Server(config)
    task = asyncio.get_running_loop().create_task(server.serve(sockets=[sock]))
    while not server.started:
        if task.done():
            task.result()  # raises what stopped it
            raise ConfigError(f"web.listen: the desk did not start on {web.listen}")
        await asyncio.sleep(0.01)
    host, port = sock.getsockname()[:2]
    running = Running(server, task, host, port, web.root_path)
    event(log, "web.started", url=running.url)
    return running


def run(ctx: Context) -> int:
    """``mailgate web``: the desk alone, until SIGTERM/SIGINT."""
    if not ctx.config.web.listen:
        raise ConfigError(f"web.listen: not set, so there is no desk to run (in {ctx.config.path})")

    async def main() -> int:
        import signal

        stopping = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            with contextlib.suppress(ValueError, RuntimeError):
                loop.add_signal_handler(sig, stopping.set)
        running = await start(ctx, bounded=False)  # alone: the process is the desk's
        print(f"mailgate: the desk is on {running.url}", flush=True)
        await stopping.wait()
        await running.stop()
        return 0

    return asyncio.run(main())

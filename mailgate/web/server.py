"""uvicorn inside our event loop: ``start`` binds and serves, ``Running.stop`` ends it.

``serve`` owns the signals (SIGTERM, SIGHUP); uvicorn must not take them over, so
its signal capture is switched off here. The socket is bound by us, so
``listen = "127.0.0.1:0"`` works and the address actually bound is known.

``mailgate web`` serves the desk with ``run`` (and ``[web] workers`` - 1 helper
processes on the same socket, 1 by default: ``web.process.start_helpers``); ``serve`` runs the same
``serve_socket`` in a child process of its own at a lower CPU priority
(``web.process``), so pages never take the interpreter or the CPU from the
listener. (It used to share serve's process, bounded to 2 pages at once: intake
fell to 0.38 of its rate under 8 browsers.)
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import time
from collections.abc import Generator
from dataclasses import dataclass
from typing import Any

import uvicorn

from mailgate.context import Context
from mailgate.errors import ConfigError
from mailgate.logs import event

log = logging.getLogger("mailgate.web")


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


async def start(ctx: Context, metrics: Any = None) -> Running:
    """Serve the desk on ``[web] listen`` in the running loop (``serve`` runs it in a
    process of its own instead: ``web.process.spawn``)."""
    sock = bind(ctx.config.web.listen, str(ctx.config.path))
    return await serve_socket(ctx, sock, metrics)


async def serve_socket(
    ctx: Context, sock: socket.socket, metrics: Any = None, processes: int = 1, clock: Any = None
) -> Running:
    """Serve the desk on a bound, listening socket in the running loop, one of
    ``processes`` that serve it (``[web] workers``); inside serve, ``clock`` tells when
    mail is arriving, and the desk then keeps to its share of the CPU (``yielding.py``)."""
    from mailgate.web.app import create_app

    web = ctx.config.web
    app: Any = create_app(ctx, metrics=metrics)
    if clock is not None and web.intake_share < 1.0:
        from mailgate.web.yielding import Pace

        # the share is the whole desk's: each of serve's desk processes takes its part
        app = Pace(app, clock, web.intake_share / web.processes(inside_serve=True))
    if processes > 1:
        app = Spread(app)
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


class Spread:
    """Ends a keep-alive connection with its first response after ``AGE`` seconds, when
    several processes serve the port (``[web] workers``).

    A connection stays with the process that accepted it. Clients that never pause
    (a proxy's pool, the benchmark's 8 browsers) kept 7 of 8 connections on one
    process and 1 on the other for good: one core queued pages while the other
    idled. Reconnecting every second lets them spread again, to whichever process
    accepts first — the less busy one, as a rule; it costs a TCP handshake a second
    per client. Outermost, so ``client`` is the connection's own address."""

    AGE = 1.0

    def __init__(self, app: Any) -> None:
        self.app = app
        self.since: dict[tuple[Any, ...], float] = {}

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        client = scope.get("client") if scope["type"] == "http" else None
        if not client:
            await self.app(scope, receive, send)
            return
        key, now = tuple(client), time.monotonic()
        since = self.since.setdefault(key, now)
        if now - since < self.AGE:
            await self.app(scope, receive, send)
            return
        del self.since[key]
        if len(self.since) > 10_000:  # connections that ended on their own
            self.since = {k: t for k, t in self.since.items() if now - t < self.AGE}

        async def closing(message: Any) -> None:
            if message["type"] == "http.response.start":
                headers = [*message.get("headers", []), (b"connection", b"close")]
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, closing)


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
        from mailgate.web.process import start_helpers, stop_helpers

        sock = bind(ctx.config.web.listen, str(ctx.config.path))
        processes = ctx.config.web.processes(inside_serve=False)
        running = await serve_socket(ctx, sock, processes=processes)
        helpers = await start_helpers(ctx, sock, None, processes - 1)
        print(f"mailgate: the desk is on {running.url}", flush=True)
        await stopping.wait()
        await asyncio.gather(running.stop(), stop_helpers(helpers))
        return 0

    return asyncio.run(main())

"""The desk inside ``serve``, in a child process of its own at a lower CPU priority.

Why a process: in serve's own process the desk and the SMTP listener took turns on
one interpreter lock, and 8 browsers reading back to back cut the listener's intake
to 0.38 of its rate even with the desk held to 2 pages at once (issue 15,
``bench/web_intake.py``). In a child process that the kernel schedules after the
listener (``os.nice(WEB_NICE)``), the desk gets the CPU the listener does not use:
browsing waits for intake, never the other way round.

What stays the same for users: ``serve`` binds ``[web] listen`` itself (so port 0
works and ``serve.started web=URL`` says where the desk is) and hands the socket to
the child; the child answers only once its application is built; SIGTERM to
``serve`` stops the desk with it, and the desk never outlives ``serve`` (the
kernel's parent-death signal and a watchdog, as for the ingest worker).
``/metrics`` on the desk's port shows serve's counters: the child asks serve for
them over a pipe. ``mailgate web`` runs the same application in its own process
(``server.run``), at the normal priority: there is no listener to give way to.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import multiprocessing
import os
import signal
import socket
import threading
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from pathlib import Path
from typing import Any

from mailgate.context import Context
from mailgate.errors import ConfigError
from mailgate.logs import event

log = logging.getLogger("mailgate.web")

# How much lower the desk's CPU priority is than serve's (``nice``: 0 same, 19 lowest).
WEB_NICE = 10
# How long the desk may take to import and build its application.
STARTUP_SECONDS = 60.0
# How long a stopping desk may take to finish its pages before it is killed.
STOP_SECONDS = 10.0


class _Metrics:
    """serve's metrics, asked for over the pipe (``render`` is all a page uses)."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        self.lock = threading.Lock()

    def render(self) -> bytes:
        with self.lock:
            self.conn.send("metrics")
            found: bytes = self.conn.recv()
            return found


# --- inside the desk process ---------------------------------------------------------------


def _main(
    sock: socket.socket,
    conn: Connection,
    config_path: str,
    log_level: int,
    log_format: str,
    parent: int,
    counted: bool,
) -> None:
    """The desk process: serve ``sock`` until SIGTERM or until serve is gone."""
    from mailgate import logs
    from mailgate.config import load
    from mailgate.context import open_context
    from mailgate.worker import follow_parent

    follow_parent(parent)  # ends us within seconds of serve, however serve ended
    for sig in (signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, signal.SIG_IGN)  # serve decides when the desk stops
    with contextlib.suppress(OSError):
        os.nice(WEB_NICE)
    try:
        logs.setup(log_format, log_level)
        ctx = open_context(load(Path(config_path)), create_secret=False)
        asyncio.run(_serve(ctx, sock, conn, _Metrics(conn) if counted else None))
    except Exception as exc:  # noqa: BLE001 - serve reports it
        with contextlib.suppress(OSError):
            conn.send(("error", f"{type(exc).__name__}: {exc}"))


async def _serve(ctx: Context, sock: socket.socket, conn: Connection, metrics: Any) -> None:
    from mailgate.web.server import serve_socket

    stopping = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stopping.set)
    running = await serve_socket(ctx, sock, metrics)
    conn.send(("ready", None))
    await stopping.wait()
    await running.stop()


# --- the serve side ------------------------------------------------------------------------


class DeskProcess:
    """The desk serve started in a child process: where it is, and how to stop it."""

    def __init__(self, process: BaseProcess, conn: Connection, url: str, metrics: Any) -> None:
        self.process, self.conn, self.url, self.metrics = process, conn, url, metrics
        self._answering = threading.Thread(
            target=self._answer, name="mailgate-web-metrics", daemon=True
        )

    @property
    def pid(self) -> int | None:
        return self.process.pid

    def _answer(self) -> None:
        """Render serve's metrics whenever the desk asks (its ``/metrics``)."""
        while True:
            try:
                self.conn.recv()
                page = self.metrics.render() if self.metrics is not None else b""
                self.conn.send(page)
            except (EOFError, OSError):
                return  # the desk is gone

    def wait_ready(self) -> None:
        """Until the desk answers (its application built), or the reason it did not."""
        try:
            ready = self.conn.poll(STARTUP_SECONDS)
            status, detail = self.conn.recv() if ready else ("error", "no answer")
        except (EOFError, OSError) as exc:
            status, detail = "error", str(exc) or "it died"
        if status != "ready":
            self.kill()
            raise ConfigError(f"web: the desk did not start: {detail}")
        self._answering.start()

    def kill(self) -> None:
        if self.process.is_alive():
            self.process.kill()
        self.process.join(STOP_SECONDS)
        self.conn.close()

    def close(self) -> None:
        """SIGTERM, and the pages in hand are finished (killed after ``STOP_SECONDS``)."""
        if self.process.is_alive():
            self.process.terminate()
        self.process.join(STOP_SECONDS)
        self.kill()

    async def stop(self) -> None:
        await asyncio.get_running_loop().run_in_executor(None, self.close)


def spawn(ctx: Context, metrics: Any = None) -> DeskProcess:
    """Bind ``[web] listen`` here and start the desk on it in a child process.

    Call it from a thread that lives as long as serve (the event loop's): the
    kernel's parent-death signal follows the thread that started the child.
    Then ``wait_ready()`` (it blocks: from an executor)."""
    from mailgate import logs
    from mailgate.web.server import bind, url_of

    web = ctx.config.web
    sock = bind(web.listen, str(ctx.config.path))
    context = multiprocessing.get_context("spawn")
    ours, theirs = context.Pipe()
    process = context.Process(
        target=_main,
        args=(sock, theirs, str(ctx.config.path), logging.getLogger().level,
              logs.current_format(), os.getpid(), metrics is not None),
        name="mailgate-web",
        daemon=False,
    )  # fmt: skip
    host, port = sock.getsockname()[:2]
    try:
        process.start()
    finally:
        sock.close()  # the child has its own copy; serve never accepts on it
        theirs.close()
    desk = DeskProcess(process, ours, url_of(host, port, web.root_path), metrics)
    event(log, "web.process", pid=process.pid, nice=WEB_NICE)
    return desk

"""The desk inside ``serve``, in a child process of its own at a lower CPU priority.

Why a process: in serve's own process the desk and the SMTP listener took turns on
one interpreter lock, and 8 browsers reading back to back cut the listener's intake
to 0.38 of its rate even with the desk held to 2 pages at once (issue 15,
``bench/web_intake.py``). In a child process that the kernel schedules after the
listener, the desk gets the CPU the listener does not use: browsing waits for intake,
never the other way round. ``nice`` +10 alone did not do that: a page costs the desk
about 11 ms of CPU, and at the 89 pages/s of 8 browsers reading back to back the desk
had about half of a 2-core machine while intake fell to 0.53 of its rate (issue 15)
— intake is a relay of short wake-ups (SMTP client → listener → ingest worker →
listener) that leaves gaps a lower-priority task fills, and a nice value only weighs
shares. Once its application is built the desk (each of its threads) runs under
``SCHED_IDLE`` (``yield_cpu``): a task of the normal class that wakes up takes the CPU
from it at once, and the kernel counts a CPU that runs only the desk as idle when it
places a waking task. It starts at ``nice`` +10, as before (where ``SCHED_IDLE`` is
refused, that stays). The price: while intake runs flat out, pages wait.

What stays the same for users: ``serve`` binds ``[web] listen`` itself (so port 0
works and ``serve.started web=URL`` says where the desk is) and hands the socket to
the child; the child answers only once its application is built; SIGTERM to
``serve`` stops the desk with it, and the desk never outlives ``serve`` (the
kernel's parent-death signal and a watchdog, as for the ingest worker).
``/metrics`` on the desk's port shows serve's counters: the child asks serve for
them over a pipe. SIGHUP's reload starts a new desk on the same socket (it reads the
new config: an agent removed is out at once) and the old one finishes its pages; a
desk that died is started again by serve's heartbeat within ``HEARTBEAT_SECONDS``.
``mailgate web`` runs the same application in its own process
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
from mailgate.web.yielding import MailClock

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
    primary: bool = True,
    clock: MailClock | None = None,
) -> None:
    """The desk process: serve ``sock`` until SIGTERM or until its parent is gone.

    The primary (serve's child) lowers its priority and starts ``[web] workers`` - 1
    helpers on the same socket (``start_helpers``; none by default: intake comes
    first, and two desk processes took more of it); a helper keeps the priority it
    was born with and starts none."""
    from mailgate import logs
    from mailgate.config import load
    from mailgate.context import open_context
    from mailgate.worker import follow_parent

    follow_parent(parent)  # ends us within seconds of serve, however serve ended
    for sig in (signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, signal.SIG_IGN)  # serve decides when the desk stops
    if primary:
        with contextlib.suppress(OSError):
            os.nice(WEB_NICE)
    try:
        logs.setup(log_format, log_level)
        ctx = open_context(load(Path(config_path)), create_secret=False)
        helpers = ctx.config.web.processes(inside_serve=True) - 1 if primary else 0
        metrics = _Metrics(conn) if counted else None
        asyncio.run(_serve(ctx, sock, conn, metrics, helpers, primary, clock))
    except Exception as exc:  # noqa: BLE001 - serve reports it
        with contextlib.suppress(OSError):
            conn.send(("error", f"{type(exc).__name__}: {exc}"))


async def _serve(
    ctx: Context,
    sock: socket.socket,
    conn: Connection,
    metrics: Any,
    helpers: int,
    primary: bool = True,
    clock: MailClock | None = None,
) -> None:
    from mailgate.web.server import serve_socket

    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, stopping.set)
    if not primary:
        # The desk that started it is gone (its config may be an old one): take no
        # more pages at once, rather than in follow_parent's grace (the watchdog
        # thread still ends us if stopping hangs).
        loop.add_signal_handler(signal.SIGUSR1, stopping.set)
    # A helper exists only beside another process (of serve's desk or of mailgate web).
    processes = ctx.config.web.processes(inside_serve=True) if primary else 2
    running = await serve_socket(ctx, sock, metrics, processes, clock)
    if primary:  # serve's desk; its helpers inherit it (those of ``mailgate web`` do not)
        yield_cpu()  # not before: starting (imports, the application) would wait for intake
    conn.send(("ready", None))
    started = await start_helpers(ctx, sock, metrics, helpers, clock)
    await stopping.wait()
    await asyncio.gather(running.stop(), stop_helpers(started))


def yield_cpu() -> bool:
    """Every thread of this process from now on runs only on a CPU nothing else wants
    (``SCHED_IDLE``; the threads it starts inherit it): whether the kernel agreed.

    Linux only, and per thread (hence each of ``/proc/self/task``). Lowering one's own
    scheduling class needs no privilege; elsewhere the process keeps its ``nice``."""
    try:
        for task in os.listdir("/proc/self/task"):
            os.sched_setscheduler(int(task), os.SCHED_IDLE, os.sched_param(0))
    except (AttributeError, OSError):
        return False
    return True


async def start_helpers(
    ctx: Context, sock: socket.socket, metrics: Any, count: int, clock: MailClock | None = None
) -> list[DeskProcess]:
    """``count`` more processes serving ``sock`` beside this one (``[web] workers``).

    The desk's pages are Python: one process computes one page at a time on one core
    (SQLite lets go of the interpreter only inside a query), so with 8 agents browsing
    one process left the second core of a 2-core machine mostly idle. The kernel
    hands each connection to whichever process accepts it first. A helper follows
    this process (it ends when this one ends, however), has the same priority, and
    asks this process for serve's metrics, which asks serve. One that does not start
    is logged; the desk goes on with the others."""
    loop = asyncio.get_running_loop()
    started: list[DeskProcess] = []
    for _ in range(count):
        helper = DeskProcess(sock.dup(), str(ctx.config.path), "", metrics, os.getpid(), clock)
        helper.primary = False
        try:
            helper.process, helper.conn = helper._start()
            await loop.run_in_executor(None, helper.wait_ready)
        except (ConfigError, OSError) as exc:
            event(log, "web.helper_failed", logging.WARNING, error=str(exc))
            helper.kill()
            continue
        started.append(helper)
    return started


async def stop_helpers(helpers: list[DeskProcess]) -> None:
    """Each helper finishes its pages (killed after ``STOP_SECONDS``)."""
    loop = asyncio.get_running_loop()
    await asyncio.gather(*(loop.run_in_executor(None, h.close) for h in helpers))


# --- the serve side ------------------------------------------------------------------------


class DeskProcess:
    """The desk serve runs in a child process: where it is, how to renew and stop it.

    serve keeps the listening socket (it never accepts on it) so that a new desk can
    take over on the same address: after SIGHUP's reload (the desk reads the config
    when it starts — a removed agent must lose the desk at once) and when the desk
    died (``revive``, from serve's heartbeat). The old desk finishes its pages.
    """

    def __init__(
        self,
        sock: socket.socket,
        config_path: str,
        url: str,
        metrics: Any,
        parent: int,
        clock: MailClock | None = None,
    ) -> None:
        self.sock, self.config_path, self.url, self.metrics = sock, config_path, url, metrics
        self.parent = parent
        # serve's desk and its helpers: stamped with each mail serve hands to its worker,
        # the desk's pace (yielding.py); none for ``mailgate web``'s helpers
        self.clock = clock
        self.process: BaseProcess | None = None
        self.conn: Connection | None = None
        self.stopped = False
        self.primary = True  # false: a helper of the desk (start_helpers)

    @property
    def pid(self) -> int | None:
        return None if self.process is None else self.process.pid

    def mail_arrives(self) -> None:
        """serve handed a mail to its worker: the desk keeps to its share for a while."""
        if self.clock is not None:
            self.clock.mark()

    def alive(self) -> bool:
        return self.process is not None and self.process.is_alive()

    def _start(self) -> tuple[BaseProcess, Connection]:
        """A new desk process on serve's socket (from the event loop's thread: see spawn)."""
        from mailgate import logs

        context = multiprocessing.get_context("spawn")
        ours, theirs = context.Pipe()
        process = context.Process(
            target=_main,
            args=(self.sock, theirs, self.config_path, logging.getLogger().level,
                  logs.current_format(), self.parent, self.metrics is not None, self.primary,
                  self.clock),
            name="mailgate-web" if self.primary else "mailgate-web-helper",
            daemon=False,
        )  # fmt: skip
        try:
            process.start()
        finally:
            theirs.close()
        if self.primary:
            event(log, "web.process", pid=process.pid, nice=WEB_NICE)
        else:
            event(log, "web.helper", pid=process.pid)
        return process, ours

    def _answer(self, conn: Connection) -> None:
        """Render serve's metrics whenever this desk asks (its ``/metrics``)."""
        while True:
            try:
                conn.recv()
                page = self.metrics.render() if self.metrics is not None else b""
                conn.send(page)
            except (EOFError, OSError):
                return  # that desk is gone

    def _ready(self, process: BaseProcess, conn: Connection) -> None:
        """Until ``process`` answers (its application built), or the reason it did not."""
        try:
            ready = conn.poll(STARTUP_SECONDS)
            status, detail = conn.recv() if ready else ("error", "no answer")
        except (EOFError, OSError) as exc:
            status, detail = "error", str(exc) or "it died"
        if status != "ready":
            _kill(process, conn)
            raise ConfigError(f"web: the desk did not start: {detail}")
        threading.Thread(
            target=self._answer, args=(conn,), name="mailgate-web-metrics", daemon=True
        ).start()

    def wait_ready(self) -> None:
        """Until the first desk answers (it blocks: from an executor)."""
        assert self.process is not None and self.conn is not None
        self._ready(self.process, self.conn)

    async def renew(self, why: str) -> bool:
        """A new desk (reading the config afresh) takes over; the old one finishes its pages.

        On the event loop. If the new one does not start, the old one (if alive) stays."""
        if self.stopped:
            return False
        loop = asyncio.get_running_loop()
        process, conn = self._start()
        try:
            await loop.run_in_executor(None, self._ready, process, conn)
        except ConfigError as exc:
            event(log, "web.renew_failed", logging.WARNING, why=why, error=str(exc))
            return False
        old = (self.process, self.conn)
        self.process, self.conn = process, conn
        event(log, "web.renewed", why=why, pid=process.pid)
        if old[0] is not None and old[1] is not None:
            await loop.run_in_executor(None, _close, old[0], old[1])
        return True

    async def revive(self) -> None:
        """The heartbeat's check: a desk that died is started again."""
        if not self.stopped and not self.alive():
            code = None if self.process is None else self.process.exitcode
            event(log, "web.died", logging.WARNING, exitcode=code)
            await self.renew("the desk process ended")

    def kill(self) -> None:
        self.stopped = True
        if self.process is not None and self.conn is not None:
            _kill(self.process, self.conn)
        self.sock.close()

    def close(self) -> None:
        """SIGTERM, and the pages in hand are finished (killed after ``STOP_SECONDS``)."""
        self.stopped = True
        if self.process is not None and self.conn is not None:
            _close(self.process, self.conn)
        self.sock.close()

    async def stop(self) -> None:
        self.stopped = True
        await asyncio.get_running_loop().run_in_executor(None, self.close)


def _kill(process: BaseProcess, conn: Connection) -> None:
    if process.is_alive():
        process.kill()
    process.join(STOP_SECONDS)
    conn.close()


def _close(process: BaseProcess, conn: Connection) -> None:
    if process.is_alive():
        process.terminate()
    process.join(STOP_SECONDS)
    _kill(process, conn)


def spawn(ctx: Context, metrics: Any = None) -> DeskProcess:
    """Bind ``[web] listen`` here and start the desk on it in a child process.

    Call it from a thread that lives as long as serve (the event loop's): the
    kernel's parent-death signal follows the thread that started the child.
    Then ``wait_ready()`` (it blocks: from an executor)."""
    from mailgate.web.server import bind, url_of

    web = ctx.config.web
    sock = bind(web.listen, str(ctx.config.path))
    host, port = sock.getsockname()[:2]
    desk = DeskProcess(
        sock, str(ctx.config.path), url_of(host, port, web.root_path), metrics, os.getpid(),
        MailClock(),
    )  # fmt: skip
    try:
        desk.process, desk.conn = desk._start()
    except BaseException:
        sock.close()
        raise
    return desk

"""The serve side of the ingest workers: calls handed over ahead, deadlines watched, restarts.

Measured on main (bench/transports.py, README "Figures measured"): the listener
handed one mail at a time to the worker through serve's database thread and waited
for the answer before it sent the next. Between two mails the worker sat idle while
the answer travelled back (a thread woken from the pipe, waiting for the interpreter
lock the event loop held, the next mail pickled): about a millisecond in eight.

So each worker process has two threads of its own in serve: a *writer* that hands it
calls as they come — up to ``WINDOW`` ahead of its answers, so the next mail already
waits in its socket when it finishes one — and a *reader* that takes the answers,
resolves each call's future (the event loop awaits it without any thread of its own)
and watches the deadline. The process works through its calls strictly in order, so
the first unanswered call is the one in hand and it started when the one before was
answered: its deadline is counted from then, not from the hand-over.

When the call in hand overruns its deadline (the process answers "overdue", or does
not answer and is killed) or the process dies, that call alone fails (``Overdue``,
``TemporaryFailure``); the calls handed over behind it were never started, and go to
the fresh process that starts at once. Several processes (``Pool``, PostgreSQL
only: there ``intake/order.py`` keeps replies behind their parents across processes)
take calls by who has the fewest outstanding.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import json
import logging
import os
import socket
import subprocess
import sys
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from mailgate.errors import TemporaryFailure
from mailgate.worker.process import (
    SHUTDOWN_SECONDS,
    STARTUP_SECONDS,
    Overdue,
    hard_stop_after,
    ready,
)

log = logging.getLogger("mailgate.worker")

# Calls handed to one process ahead of its answers. Two keep it busy (one in hand, one
# waiting in its socket); more would only mean more to hand again after a restart.
WINDOW = 2
# How often the reader looks at the state when nothing arrives (it is woken for news).
TICK = 1.0

_LAUNCH = (
    "import sys, json; sys.path[:0] = json.loads(sys.argv[2]); "
    "from mailgate.worker.process import child; child()"
)


@dataclass(eq=False)
class _Call:
    fn: Callable[..., Any]
    args: tuple[Any, ...]
    kwargs: dict[str, Any]
    deadline: float | None
    future: concurrent.futures.Future[Any] = field(default_factory=concurrent.futures.Future)


class _Process:
    """One running worker process and our end of its socket."""

    def __init__(self, popen: subprocess.Popen[bytes], ours: socket.socket) -> None:
        self.popen = popen
        self.sock = ours
        self.conn = Connection(os.dup(ours.fileno()))

    def alive(self) -> bool:
        return self.popen.poll() is None

    def stop(self, *, kill: bool) -> None:
        """End it (killed, or given ``SHUTDOWN_SECONDS`` to exit) and cut the socket, which
        also ends a write blocked on it in another thread."""
        if kill:
            with contextlib.suppress(OSError):
                self.popen.kill()
        try:
            self.popen.wait(SHUTDOWN_SECONDS)
        except subprocess.TimeoutExpired:
            self.popen.kill()
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.popen.wait(SHUTDOWN_SECONDS)
        with contextlib.suppress(OSError):
            self.sock.shutdown(socket.SHUT_RDWR)
        # The descriptors are closed when the last thread lets go of this object: never
        # under a write in flight, whose descriptor number could meanwhile be reused.


def launch(config_path: Path, log_format: str) -> _Process:
    """Start a worker process and wait until it has opened its context."""
    ours, theirs = socket.socketpair()
    settings = [
        theirs.fileno(),
        str(config_path),
        logging.getLogger().level,
        log_format,
        os.getpid(),
    ]
    try:
        popen = subprocess.Popen(
            [sys.executable, "-c", _LAUNCH, json.dumps(settings), json.dumps(sys.path)],
            pass_fds=(theirs.fileno(),),
            stdin=subprocess.DEVNULL,
        )
    except OSError as exc:
        ours.close()
        raise TemporaryFailure(f"the ingest worker did not start: {exc}") from exc
    finally:
        theirs.close()
    process = _Process(popen, ours)
    try:
        if not process.conn.poll(STARTUP_SECONDS):
            raise TemporaryFailure(f"the ingest worker did not start in {STARTUP_SECONDS:g} s")
        status, value = process.conn.recv()
    except (EOFError, OSError) as exc:
        process.stop(kill=True)
        raise TemporaryFailure(f"the ingest worker did not start: {exc or 'it died'}") from exc
    except TemporaryFailure:
        process.stop(kill=True)
        raise
    if status != "ready":
        process.stop(kill=True)
        raise value
    return process


class Worker:
    """One ingest process at a time, fed ahead; started again after it died or overran."""

    def __init__(self, config_path: Path, *, log_format: str | None = None, name: str = "") -> None:
        from mailgate import logs

        self.config_path = config_path
        self.log_format = log_format or logs.current_format()
        self._lock = threading.Condition()
        self._queue: deque[_Call] = deque()  # not handed over yet
        self._sent: deque[_Call] = deque()  # handed over, unanswered, in order
        self._since = 0.0  # when the first of _sent started
        self._process: _Process | None = None
        self._closing = False
        self._retire = False  # restart(): the calls from now on go to a fresh process
        name = name or "mailgate-worker"
        # The writer also starts the processes: the kernel's parent-death signal follows
        # the thread that started a process, and this one lives as long as we do.
        self._writer = threading.Thread(target=self._write_loop, name=f"{name}-in", daemon=True)
        self._reader = threading.Thread(target=self._read_loop, name=f"{name}-out", daemon=True)
        self._writer.start()
        self._reader.start()

    @property
    def pid(self) -> int | None:
        process = self._process
        return process.popen.pid if process is not None and process.alive() else None

    @property
    def outstanding(self) -> int:
        return len(self._queue) + len(self._sent)

    def submit(
        self, fn: Callable[..., Any], *args: Any, deadline: float | None = None, **kwargs: Any
    ) -> concurrent.futures.Future[Any]:
        """Hand ``fn(ctx, *args, **kwargs)`` to the worker (``fn`` must be importable).

        The future fails with ``TemporaryFailure`` when the worker died under the call,
        with ``Overdue`` past its ``deadline`` (seconds); both leave a fresh worker."""
        call = _Call(fn, args, kwargs, deadline)
        with self._lock:
            if self._closing:
                raise TemporaryFailure("the gateway is stopping")
            self._queue.append(call)
            self._lock.notify_all()
        return call.future

    def call(
        self, fn: Callable[..., Any], *args: Any, deadline: float | None = None, **kwargs: Any
    ) -> Any:
        """``submit`` and wait for the answer (from a thread, never the event loop)."""
        return self.submit(fn, *args, deadline=deadline, **kwargs).result()

    def warm_up(self) -> None:
        """Start the process now, so the first mail does not wait for it."""
        self.call(ready)

    def restart(self) -> None:
        """Let the calls handed over finish, then stop the process; later calls get a new one."""
        with self._lock:
            self._retire = True
            self._lock.notify_all()
            self._lock.wait_for(lambda: not self._retire, timeout=4 * SHUTDOWN_SECONDS)

    def close(self) -> None:
        """Stop the worker after the calls already given (killed if it does not stop in time)."""
        with self._lock:
            self._closing = True
            self._lock.notify_all()
        self._writer.join()
        self._reader.join()

    # --- the writer: hands calls over, starts and retires processes ---------------------

    def _write_loop(self) -> None:
        while True:
            with self._lock:
                self._lock.wait_for(self._writer_has_work)
                if not self._sent and (self._retire or (self._closing and not self._queue)):
                    process, self._process = self._process, None
                    retiring = self._retire
                else:
                    process, retiring = None, None
            if retiring is not None:
                if process is not None:
                    with contextlib.suppress(OSError):
                        process.conn.send(None)  # finish and exit
                    process.stop(kill=False)
                with self._lock:
                    self._retire = False
                    self._lock.notify_all()
                if not retiring:
                    return  # closing
                continue
            self._hand_over()

    def _writer_has_work(self) -> bool:
        if not self._sent and (self._retire or (self._closing and not self._queue)):
            return True
        return bool(self._queue) and len(self._sent) < WINDOW and not self._retire

    def _hand_over(self) -> None:
        with self._lock:
            process = self._process
        if process is None:
            try:
                process = launch(self.config_path, self.log_format)
            except Exception as exc:  # noqa: BLE001 - every waiting call hears why
                with self._lock:
                    waiting = list(self._queue)
                    self._queue.clear()
                for call in waiting:
                    _resolve(call, "error", exc)
                return
            with self._lock:
                self._process = process
                self._lock.notify_all()
        with self._lock:
            if not self._queue or self._process is not process:
                return  # taken meanwhile, or the process died: look again
            call = self._queue.popleft()
            if not self._sent:
                self._since = time.monotonic()
            self._sent.append(call)
            self._lock.notify_all()
        try:
            process.conn.send((call.fn, call.args, call.kwargs, call.deadline))
        except (OSError, ValueError):
            pass  # the process is gone: the reader hears it and hands the call again
        except Exception as exc:  # noqa: BLE001 - e.g. an argument that does not pickle
            self._forget(call, exc)

    def _forget(self, call: _Call, error: BaseException) -> None:
        """A call that never reached the process: it fails alone."""
        with self._lock:
            if call in self._sent:
                self._sent.remove(call)
            self._lock.notify_all()
        _resolve(call, "error", error)

    # --- the reader: answers, deadlines, deaths -----------------------------------------

    def _read_loop(self) -> None:
        while True:
            with self._lock:
                self._lock.wait_for(
                    lambda: (self._process is not None and bool(self._sent)) or self._closed()
                )
                if self._process is None or not self._sent:
                    return
                process, head, since = self._process, self._sent[0], self._since
            self._read_one(process, head, since)

    def _closed(self) -> bool:
        return self._closing and self._process is None and not self._queue and not self._sent

    def _read_one(self, process: _Process, head: _Call, since: float) -> None:
        limit = None if head.deadline is None else since + hard_stop_after(head.deadline)
        wait = TICK if limit is None else max(0.0, min(TICK, limit - time.monotonic()))
        try:
            if not process.conn.poll(wait):
                if limit is not None and time.monotonic() >= limit:
                    assert head.deadline is not None
                    overdue = Overdue(
                        f"no answer within {hard_stop_after(head.deadline):g} s: killed"
                    )
                    self._lost(process, overdue, kill=True)
                elif not process.alive():
                    self._lost(process, _died(None), kill=True)
                return
            status, value = process.conn.recv()
        except (EOFError, OSError) as exc:
            self._lost(process, _died(exc), kill=True)
            return
        if status == "overdue":
            self._lost(process, Overdue(f"interrupted after {head.deadline:g} s"), kill=False)
            return
        with self._lock:
            self._sent.popleft()
            self._since = time.monotonic()
            self._lock.notify_all()
        _resolve(head, status, value)

    def _lost(self, process: _Process, error: BaseException, *, kill: bool) -> None:
        """The call in hand fails with ``error``; the ones behind it go to a fresh process."""
        if isinstance(error, TemporaryFailure):
            log.warning("ingest worker stopped; a new one starts with the next mail")
        process.stop(kill=kill)
        with self._lock:
            head = self._sent.popleft()
            self._queue.extendleft(reversed(self._sent))
            self._sent.clear()
            if self._process is process:
                self._process = None
            self._lock.notify_all()
        _resolve(head, "error", error)


def _resolve(call: _Call, status: str, value: Any) -> None:
    # A call whose waiter went away (the SMTP client hung up) is cancelled: nobody to tell.
    with contextlib.suppress(concurrent.futures.InvalidStateError):
        if status == "error":
            call.future.set_exception(value)
        else:
            call.future.set_result(value)


def _died(exc: BaseException | None) -> TemporaryFailure:
    return TemporaryFailure(f"the ingest worker stopped: {exc or 'it died'}")


class Pool:
    """Several ingest processes: each call goes to the one with the fewest outstanding."""

    def __init__(self, config_path: Path, size: int = 1, *, log_format: str | None = None) -> None:
        self.workers = [
            Worker(config_path, log_format=log_format, name=f"mailgate-worker{i}")
            for i in range(max(1, size))
        ]

    @property
    def pid(self) -> int | None:
        """The first worker's process id (None when it is not running)."""
        return self.workers[0].pid

    @property
    def pids(self) -> list[int]:
        return [p for p in (w.pid for w in self.workers) if p is not None]

    def submit(
        self, fn: Callable[..., Any], *args: Any, deadline: float | None = None, **kwargs: Any
    ) -> concurrent.futures.Future[Any]:
        worker = min(self.workers, key=lambda w: w.outstanding)
        return worker.submit(fn, *args, deadline=deadline, **kwargs)

    def call(
        self, fn: Callable[..., Any], *args: Any, deadline: float | None = None, **kwargs: Any
    ) -> Any:
        return self.submit(fn, *args, deadline=deadline, **kwargs).result()

    def warm_up(self) -> None:
        for worker in self.workers:
            worker.warm_up()

    def restart(self) -> None:
        for worker in self.workers:
            worker.restart()

    def close(self) -> None:
        for worker in self.workers:
            worker.close()

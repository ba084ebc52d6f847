"""The ingest worker: a process of its own that runs ``ingest()`` for ``mailgate serve``.

Why a process and not a thread: Python runs one thread at a time, so the SMTP
sessions of the event loop and the parse-and-store work of ingest took turns on
one core (measured: the listener reached a third of the rate of ``ingest()``
alone). In a process of its own ingest uses the second core. And a mail that
crashes the parser or exhausts memory takes down the worker, not the gateway:
the worker is started again, the mail is answered "try again later", and after
three such attempts its receipt quarantines it.

The worker opens its own context from the config file; it shares nothing with
the serve process but the database and the blob store.
"""

from __future__ import annotations

import concurrent.futures
import logging
import multiprocessing
import signal
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from mailgate.config import load
from mailgate.context import Context, open_context
from mailgate.errors import TemporaryFailure

log = logging.getLogger("mailgate.worker")

_context: Context | None = None


def _start(config_path: str, log_level: int) -> None:
    global _context
    from mailgate import logs

    # Ctrl-C and systemd's SIGTERM reach the whole process group; the serve process
    # decides when the worker stops (after the mails in flight), not the signal.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    logs.setup("text", log_level)
    _context = open_context(load(Path(config_path)), create_secret=False)


def _call(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    assert _context is not None, "the worker was not started"
    return fn(_context, *args, **kwargs)


class Worker:
    """One ingest process; restarted when it dies."""

    def __init__(self, config_path: Path) -> None:
        self.config_path = config_path
        self._pool: concurrent.futures.ProcessPoolExecutor | None = None
        self._lock = threading.Lock()

    def _executor(self) -> concurrent.futures.ProcessPoolExecutor:
        with self._lock:
            if self._pool is None:
                self._pool = concurrent.futures.ProcessPoolExecutor(
                    1,
                    mp_context=multiprocessing.get_context("spawn"),
                    initializer=_start,
                    initargs=(str(self.config_path), logging.getLogger().level),
                )
            return self._pool

    def submit(
        self, fn: Callable[..., Any], *args: Any, **kwargs: Any
    ) -> concurrent.futures.Future[Any]:
        """Run ``fn(ctx, *args, **kwargs)`` in the worker; ``fn`` must be importable."""
        return self._executor().submit(_call, fn, *args, **kwargs)

    def call(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """``submit`` and wait; a worker that died becomes ``TemporaryFailure``."""
        try:
            return self.submit(fn, *args, **kwargs).result()
        except concurrent.futures.process.BrokenProcessPool as exc:
            self.restart()
            raise TemporaryFailure(f"the ingest worker stopped: {exc}") from exc

    def restart(self) -> None:
        with self._lock:
            pool, self._pool = self._pool, None
        if pool is not None:
            log.warning("ingest worker stopped; starting a new one")
            pool.shutdown(wait=False, cancel_futures=True)

    def warm_up(self) -> None:
        """Start the process now, so the first mail does not wait for it."""
        self.call(_ready)

    def close(self) -> None:
        with self._lock:
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=True)


def _ready(ctx: Context) -> bool:
    return True

"""Inside an ingest worker: a process of its own that runs ``ingest()`` for ``mailgate serve``.

Why a process and not a thread: Python runs one thread at a time, so the SMTP
sessions of the event loop and the parse-and-store work of ingest took turns on
one core (measured: the listener reached a third of the rate of ``ingest()``
alone). In a process of its own ingest uses the second core. And a mail that
crashes the parser or exhausts memory takes down the worker, not the gateway:
the worker is started again, the mail is answered "try again later", and after
three such attempts its receipt quarantines it.

One mail must never stall intake for everyone, so a call may carry a deadline:

* inside the worker, SIGALRM interrupts the call when it passes (tasks run in
  the worker's main thread, where Python delivers signals): the worker answers
  "overdue" and exits, so the next mail meets a fresh process with no half-done
  state (an open transaction, a cache changed halfway);
* the serve side waits a little longer; a worker stuck where a signal cannot
  reach it (C code that never returns to the interpreter) is killed.

Either way the call fails with ``Overdue`` and the next call starts a new worker;
the caller quarantines the mail (``app.py``). The serve side is ``pool.py``.

The worker never outlives ``serve`` by more than ``ORPHAN_GRACE`` seconds, however
``serve`` ended (``kill -9`` included): on Linux the kernel signals it when its
parent dies (``PR_SET_PDEATHSIG``), and a watchdog thread that sees the parent pid
change is the fallback. It then finishes the mail in hand — so the sender's retry
finds it stored and processed, instead of leased by a process that no longer
exists — and exits; a kernel timer armed at that moment (SIGALRM, default action)
ends it after the grace whatever it is doing. A call also carries a CPU-time limit
with the kernel's default action (SIGPROF), so even code stuck in C where no
Python signal handler runs cannot keep a worker alive for long. The death signal
follows the *thread* that started the process, so processes are started from one
thread of their own that lives as long as the ``Worker`` (``pool.py``).
SIGINT, SIGTERM and SIGHUP reach the whole process group from a terminal or
systemd; the worker ignores them — ``serve`` decides when it stops.

The worker opens its own context from the config file; it shares nothing with
the serve process but the database and the blob store. It is started as a plain
``python -c`` (``child``), not through ``multiprocessing``: no resource-tracker process
beside it and no re-import of serve's ``__main__`` (each cost megabytes of memory).
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import logging
import os
import signal
import sys
import threading
import time
from collections.abc import Callable
from multiprocessing.connection import Connection
from pathlib import Path
from types import FrameType
from typing import Any

from mailgate import store
from mailgate.config import load
from mailgate.context import Context, open_context
from mailgate.worker import heap

log = logging.getLogger("mailgate.worker")

# How long a new worker may take to import and open its context.
STARTUP_SECONDS = 60.0
# How long a stopping worker may take to finish before it is killed.
SHUTDOWN_SECONDS = 10.0
# How often the watchdog looks whether the parent is still there.
WATCH_SECONDS = 0.5
# How long an orphaned worker may take to finish the mail in hand before the kernel ends it.
ORPHAN_GRACE = 4.0
_PR_SET_PDEATHSIG = 1
# SQLite pages a worker keeps in memory (KiB): the operating system caches the file as
# well, and 16 MiB (the default of store.open_database) grew the worker by as much as
# the database grew (bench/memory.py).
PAGE_CACHE_KIB = 4000

_context: Context | None = None
_orphaned = False


class Overdue(Exception):
    """A call passed its deadline; the worker was stopped (the next call starts a new one)."""


class TookTooLong(BaseException):
    """Raised inside the worker by SIGALRM. A BaseException, so that no ``except
    Exception`` on the way turns it into another outcome (a quarantine for a
    "parser error", say) before the worker can answer "overdue"."""


def hard_stop_after(deadline: float) -> float:
    """When the serve side gives up on a worker that does not answer."""
    return deadline + max(5.0, deadline / 2)


# --- inside the worker process ------------------------------------------------------------


def child() -> None:
    """The worker's entry point: ``python -c`` with its socket's descriptor and settings in argv
    (see ``pool.launch``)."""
    fd, config_path, log_level, log_format, parent = json.loads(sys.argv[1])
    _main(Connection(fd), config_path, log_level, log_format, parent)
    _leave()


def _leave() -> None:
    """Exit without the interpreter's teardown of every module and object (a tenth of a
    second of CPU, which the stopping ``serve`` waits for): the worker holds nothing but
    its database connection and its log output, closed and flushed here."""
    with contextlib.suppress(Exception):
        store.close()
    logging.shutdown()
    with contextlib.suppress(Exception):
        sys.stdout.flush()
        sys.stderr.flush()
    os._exit(0)


def ready(ctx: Context) -> None:
    """A call that does nothing: the process is up and its context open."""


def _main(conn: Connection, config_path: str, log_level: int, log_format: str, parent: int) -> None:
    """The worker process: answer calls from the pipe until told to stop or the parent is gone."""
    follow_parent(parent)
    heap.tune()
    try:
        _start(config_path, log_level, log_format)
    except Exception as exc:  # noqa: BLE001 - the parent reports it
        conn.send(("error", _portable(exc)))
        return
    conn.send(("ready", None))
    while True:
        try:
            request = conn.recv()
        except (EOFError, OSError):
            return  # the serve process closed the pipe, or is gone
        if request is None:
            return
        fn, args, kwargs, deadline = request
        try:
            reply: tuple[str, Any] = ("ok", _call(fn, deadline, *args, **kwargs))
        except TookTooLong:
            conn.send(("overdue", None))
            return  # a fresh process for the next mail: nothing half-done survives
        except Exception as exc:  # noqa: BLE001 - the caller raises it
            reply = ("error", _portable(exc))
        if _orphaned:
            os._exit(0)  # the mail in hand is done; nobody is waiting for the answer
        try:
            conn.send(reply)
        except Exception as exc:  # noqa: BLE001 - e.g. a result that does not pickle
            conn.send(("error", RuntimeError(f"the worker could not answer: {exc!r}")))
        del request, reply
        if not conn.poll(0):  # nothing waiting: a moment to give freed memory back
            heap.trim()


def _start(config_path: str, log_level: int, log_format: str = "text") -> None:
    global _context
    from mailgate import logs

    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, signal.SIG_IGN)
    logs.setup(log_format, log_level)
    _context = open_context(load(Path(config_path)), create_secret=False)
    store.limit_page_cache(PAGE_CACHE_KIB)
    # Loaded now, before "ready": not inside the first mail's deadline.
    import mailgate.intake
    import mailgate.spool  # noqa: F401


def _call(fn: Callable[..., Any], deadline: float | None, *args: Any, **kwargs: Any) -> Any:
    assert _context is not None, "the worker was not started"
    if not deadline:
        return fn(_context, *args, **kwargs)

    def expired(signum: int, frame: FrameType | None) -> None:
        raise TookTooLong(f"over {deadline:g} s")

    previous = signal.signal(signal.SIGALRM, expired)
    signal.setitimer(signal.ITIMER_REAL, deadline)
    # The kernel's own stop, for code no Python handler can interrupt: CPU time well
    # past the point where serve kills a worker that does not answer.
    signal.setitimer(signal.ITIMER_PROF, 2 * hard_stop_after(deadline))
    try:
        return fn(_context, *args, **kwargs)
    finally:
        signal.setitimer(signal.ITIMER_PROF, 0)
        if not _orphaned:  # an orphan's timer is its end: keep it
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, previous)


def _portable(exc: BaseException) -> BaseException:
    """The exception itself when it survives pickling, else a RuntimeError that says what it was."""
    import pickle

    try:
        pickle.loads(pickle.dumps(exc))  # noqa: S301 - our own object, a round trip
    except Exception:  # noqa: BLE001
        return RuntimeError(f"{type(exc).__name__}: {exc}")
    return exc


def follow_parent(parent: int, interval: float = WATCH_SECONDS) -> None:
    """End this process within ``ORPHAN_GRACE`` seconds once ``parent`` ends, however it ends.

    Linux: the kernel sends SIGUSR1 when the parent dies (``PR_SET_PDEATHSIG``).
    Everywhere: a daemon thread sends it once the parent pid is no longer ``parent``.
    Must be called in the main thread (it installs a signal handler).
    """
    signal.signal(signal.SIGUSR1, _orphan)
    signal.setitimer(signal.ITIMER_PROF, 0)
    signal.signal(signal.SIGPROF, signal.SIG_DFL)
    if sys.platform.startswith("linux"):
        with contextlib.suppress(OSError, AttributeError):
            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(_PR_SET_PDEATHSIG, int(signal.SIGUSR1), 0, 0, 0)
    if os.getppid() != parent:  # the parent died before the death signal was armed
        os._exit(1)
    threading.Thread(
        target=_watch_parent, args=(parent, interval), name="mailgate-parent-watch", daemon=True
    ).start()


def _orphan(signum: int = 0, frame: FrameType | None = None) -> None:
    """The parent is gone: finish the call in hand and exit; the kernel ends us after the grace."""
    global _orphaned
    if _orphaned:
        return
    _orphaned = True
    signal.signal(signal.SIGALRM, signal.SIG_DFL)  # the default action of SIGALRM: terminate
    signal.setitimer(signal.ITIMER_REAL, ORPHAN_GRACE)


def _watch_parent(parent: int, interval: float) -> None:
    while os.getppid() == parent:
        time.sleep(interval)
    os.kill(os.getpid(), signal.SIGUSR1)  # the main thread arms the kernel's timer
    time.sleep(ORPHAN_GRACE + interval)
    os._exit(1)  # only if the main thread could not run its handler

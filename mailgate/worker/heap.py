"""The C heap of serve and its workers: fewer arenas, and freed memory given back.

Measured with bench/memory.py (PSS summed over serve and its processes): glibc's
malloc gives each thread that meets contention an arena of its own (up to eight per
core) and keeps what is freed in each for later; serve has a dozen threads (the loop,
the database, the outbox, webhooks, jobs, the heartbeat, two per worker) and every
mail passes through it as bytes. Two arenas and a low trim threshold, plus an
explicit trim when idle, took several MiB off serve and its worker. Linux with glibc
only; elsewhere these do nothing.
"""

from __future__ import annotations

import contextlib
import ctypes
import sys
import time

_M_TRIM_THRESHOLD = -1
_M_ARENA_MAX = -8
ARENAS = 2
TRIM_THRESHOLD = 128 * 1024
# A trim walks the heap: at most this often.
TRIM_SECONDS = 5.0

_libc: ctypes.CDLL | None = None
_last_trim = 0.0


def _c() -> ctypes.CDLL | None:
    global _libc
    if _libc is None and sys.platform.startswith("linux"):
        with contextlib.suppress(OSError):
            libc = ctypes.CDLL(None)
            if hasattr(libc, "mallopt") and hasattr(libc, "malloc_trim"):
                _libc = libc
    return _libc


def tune() -> None:
    """Fewer arenas and a lower trim threshold, for threads and memory from now on."""
    libc = _c()
    if libc is not None:
        libc.mallopt(_M_ARENA_MAX, ARENAS)
        libc.mallopt(_M_TRIM_THRESHOLD, TRIM_THRESHOLD)


def trim() -> None:
    """Give the pages freed in every arena back to the system (at most every TRIM_SECONDS)."""
    global _last_trim
    libc = _c()
    now = time.monotonic()
    if libc is not None and now - _last_trim >= TRIM_SECONDS:
        _last_trim = now
        libc.malloc_trim(0)

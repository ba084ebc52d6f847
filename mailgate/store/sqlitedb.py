"""SQLite's connection, whose write transactions wait for the write lock in fine steps.

Imports peewee and the standard library only.
"""

from __future__ import annotations

import contextlib
import sqlite3
import time

import peewee as pw

# SQLite: how long a connection waits for another one's write lock before "database is
# locked" (a TemporaryFailure: the sender is told to retry).
BUSY_TIMEOUT_MS = 30000
# Waiting for the write lock at BEGIN IMMEDIATE: the first pause and the longest (seconds).
_WAIT_FIRST = 0.0001
_WAIT_MOST = 0.002
_SQLITE_BUSY = 5
_PEEWEE_ERRORS = vars(pw)["__exception_wrapper__"]


class SqliteDatabase(pw.SqliteDatabase):
    """SQLite whose write transactions wait for the write lock in fine steps.

    serve's threads and its ingest worker take turns at the one write lock, each for a
    millisecond or two. SQLite's own busy handler (``busy_timeout``) sleeps 1, 2, 5, 10,
    15, 20, 25 … ms between tries, so a lock held 1.5 ms cost its waiter 3 ms, and one
    whose holder waited for the CPU 10–25 ms. BEGIN IMMEDIATE — where a write
    transaction waits, as nothing inside one waits again in WAL mode — tries instead
    every 0.1 ms at first, doubling up to 2 ms, for as long as the busy timeout (then
    "database is locked", as before). Any other statement keeps SQLite's handler.
    """

    def begin(self, lock_type: str | None = None) -> None:
        if (lock_type or "").upper() != "IMMEDIATE":
            super().begin(lock_type)
            return
        with _PEEWEE_ERRORS:  # sqlite3's errors as peewee's, as every other statement's
            _begin_immediate(self.connection())  # type: ignore[no-untyped-call]


def _begin_immediate(connection: sqlite3.Connection) -> None:
    """BEGIN IMMEDIATE, tried again in fine steps while another connection writes."""
    restore = f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}"
    connection.execute("PRAGMA busy_timeout = 0")
    try:
        _begin_when_free(connection)
    except BaseException:
        with contextlib.suppress(sqlite3.Error):  # the error that matters is the first
            connection.execute(restore)
        raise
    try:
        connection.execute(restore)
    except BaseException:
        connection.execute("ROLLBACK")  # peewee never learns of this transaction
        raise


def _begin_when_free(connection: sqlite3.Connection) -> None:
    deadline = 0.0
    pause = _WAIT_FIRST
    while True:
        try:
            connection.execute("BEGIN IMMEDIATE")
            return
        except sqlite3.OperationalError as exc:
            if exc.sqlite_errorcode & 0xFF != _SQLITE_BUSY:
                raise
            now = time.monotonic()
            deadline = deadline or now + BUSY_TIMEOUT_MS / 1000
            if now >= deadline:
                raise
        time.sleep(min(pause, deadline - now))
        pause = min(pause * 2, _WAIT_MOST)

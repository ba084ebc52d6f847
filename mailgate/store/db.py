"""The database connection: the URL, transactions, and the errors that mean "not now".

One schema serves SQLite (default, WAL mode, one process) and PostgreSQL
(several gateway processes sharing one database). Timestamps are naive UTC
(``utcnow()``) on every backend, so comparisons never mix zones.

The peewee errors the rest of mailgate must tell apart are re-exported here
under their peewee names, so that nothing outside ``store/`` imports peewee.
Imports peewee, ``mailgate.errors`` and the standard library only.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import peewee as pw
from peewee import DataError, IntegrityError, InterfaceError, OperationalError, PeeweeException
from playhouse.db_url import connect as url_connect

from mailgate.errors import ConfigError
from mailgate.store import faults

db = pw.DatabaseProxy()

# Errors a caller reacts to (the rest of mailgate catches these names, never peewee's module):
# a unique key taken by another process a moment ago, a value the database refuses, and
# the database being unreachable (the CLI answers 75, a transport answers "later").
UNAVAILABLE: tuple[type[Exception], ...] = (OperationalError, InterfaceError)
__all__ = [
    "UNAVAILABLE",
    "DataError",
    "IntegrityError",
    "PeeweeException",
    "close",
    "db",
    "is_sqlite",
    "limit_page_cache",
    "new_message_id",
    "open_database",
    "pgcode",
    "savepoint",
    "utcnow",
    "write_transaction",
]


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)


def new_message_id(domain: str) -> str:
    return f"<{uuid.uuid4().hex}@{domain}>"


def open_database(url: str, *, sync: str = "normal") -> pw.Database:
    """Connect the models to the database at ``url`` and return it.

    Query parameters of the URL go to the driver, e.g.
    ``postgresql://host/db?options=-c%20search_path%3Dhelpdesk`` for a schema.
    """
    scheme = url.partition("://")[0]
    kwargs: dict[str, Any] = {}
    if scheme == "sqlite":
        path = url.partition("://")[2][1:]
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        kwargs["pragmas"] = {
            "journal_mode": "wal",
            "synchronous": "full" if sync == "full" else "normal",
            "foreign_keys": 1,
            "busy_timeout": 30000,
            "cache_size": -16000,
            "wal_autocheckpoint": 10000,
        }
        kwargs["timeout"] = 30
    try:
        database = url_connect(url, **kwargs)
    except (ValueError, RuntimeError) as exc:
        raise ConfigError(f"database.url: {exc}") from None
    db.initialize(database)
    return database  # type: ignore[no-any-return]


def limit_page_cache(kib: int) -> None:
    """SQLite: every connection of this process opened from now on (and this thread's)
    keeps at most ``kib`` KiB of pages in memory (``open_database`` allows 16,000)."""
    if is_sqlite():
        db.obj.pragma("cache_size", -kib, permanent=True)


def close() -> None:
    """Close this thread's connection (if the database was ever opened)."""
    if db.obj is not None:
        db.close()


def is_sqlite() -> bool:
    return isinstance(db.obj, pw.SqliteDatabase)


@contextmanager
def write_transaction() -> Iterator[None]:
    """A transaction that will write: IMMEDIATE on SQLite so two writers queue instead of failing.

    Database errors that mean "not now" (locked, connection lost, disk full, corrupt)
    become ``TemporaryFailure``; the caller retries or tells the sender to. A query with
    too many variables is a bug of ours, never temporary (``faults.QueryTooLarge``).
    """
    try:
        with db.atomic("IMMEDIATE") if is_sqlite() else db.atomic():
            yield
    except (pw.OperationalError, pw.InterfaceError) as exc:
        # Told apart (busy, disk full, corrupt, too many variables), each its own log line.
        if not _is_conflict(exc):
            _reset_connection()
        raise faults.translate(exc) from exc
    except (pw.InternalError, pw.DatabaseError) as exc:
        # A corrupt file or page (SQLite's DatabaseError, PostgreSQL's XX001) is no fault
        # of the mail: the MTA keeps it until an admin repairs the database.
        if isinstance(exc, (pw.IntegrityError, pw.DataError)) or faults.kind_of(exc) not in (
            "corrupt",
            "disk_full",
        ):
            raise
        _reset_connection()
        raise faults.translate(exc) from exc


@contextmanager
def savepoint() -> Iterator[None]:
    """A savepoint inside ``write_transaction``: an exception takes back only its writes."""
    with db.atomic():
        yield


# SQLSTATEs of a transaction that lost to another one (deadlock, serialization, lock
# timeout): the connection is healthy. Keeping it keeps its session's advisory locks,
# which say what this process is working on (store/inflight.py, store/imapclaims.py).
_CONFLICTS = frozenset({"40P01", "40001", "55P03"})


def _is_conflict(exc: BaseException) -> bool:
    return pgcode(exc) in _CONFLICTS


def pgcode(exc: BaseException) -> str | None:
    """The PostgreSQL SQLSTATE behind a peewee error (the driver's error is its context)."""
    seen: BaseException | None = exc
    for _ in range(3):
        if seen is None:
            break
        code = getattr(seen, "pgcode", None)
        if code:
            return str(code)
        seen = seen.__cause__ or seen.__context__
    return None


def _reset_connection() -> None:
    """Drop a connection that failed, so the next call opens a fresh one."""
    # A broken driver connection may raise anything on close; it is being thrown away.
    with contextlib.suppress(Exception):
        if not db.is_closed() and db.transaction_depth() == 0:
            db.close()

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
import secrets
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import peewee as pw
from peewee import DataError, IntegrityError, InterfaceError, OperationalError, PeeweeException

from mailgate.errors import ConfigError
from mailgate.store import drivers, faults
from mailgate.store.pgdb import PostgresDatabase, pgcode
from mailgate.store.sqlitedb import BUSY_TIMEOUT_MS, SqliteDatabase

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
    "ordered_token",
    "pgcode",
    "reads",
    "savepoint",
    "single_statement",
    "transaction_cache",
    "utcnow",
    "write_transaction",
]


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)


def new_message_id(domain: str) -> str:
    return f"<{ordered_token()}@{domain}>"


def ordered_token() -> str:
    """32 hex digits that sort in the order they were made (the time in ms, then 80
    random bits, which keep our Message-IDs unguessable): as keys of an index (our
    Message-IDs in ``message``, ``outbox_item``) they land on its rightmost page, where
    a uuid4 dirtied a random page of its own for the commit to write (issue 16)."""
    return f"{time.time_ns() // 1_000_000:012x}{secrets.token_hex(10)}"


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
            "busy_timeout": BUSY_TIMEOUT_MS,
            "cache_size": -16000,
            "wal_autocheckpoint": 10000,
        }
        kwargs["timeout"] = BUSY_TIMEOUT_MS / 1000
    try:
        database = _connect(url, **kwargs)
    except (ValueError, RuntimeError) as exc:
        raise ConfigError(f"database.url: {exc}") from None
    if type(database) is pw.PostgresqlDatabase:
        database = PostgresDatabase(database.database, **database.connect_params)
    db.initialize(database)
    return database


# The schemes of database.url that peewee serves itself. playhouse.db_url knows these and
# many more, and imports the module of every other backend to do so (apsw, MySQL,
# CockroachDB, the SQLite extensions, the pools): a tenth of the start of a command. It
# is imported only for a scheme not listed here, which then fails as it always did.
_DATABASES: dict[str, type[pw.Database]] = {
    "sqlite": SqliteDatabase,
    "postgresql": pw.PostgresqlDatabase,
    "postgres": pw.PostgresqlDatabase,
    # the driver's names, which the config accepts too (config.blobs.POSTGRES_SCHEMES)
    "psycopg2": pw.PostgresqlDatabase,
    "postgresql+psycopg2": pw.PostgresqlDatabase,
}


def _connect(url: str, **kwargs: Any) -> pw.Database:
    """What ``playhouse.db_url.connect(url, **kwargs)`` does, for the schemes above."""
    from urllib.parse import parse_qsl, urlparse

    parsed = urlparse(url)
    database_class = _DATABASES.get(parsed.scheme)
    if database_class is not SqliteDatabase:
        drivers.postgresql()  # peewee was imported without it (drivers.py)
    if database_class is None:
        from playhouse.db_url import connect

        return connect(url, **kwargs)  # type: ignore[no-any-return]
    params: dict[str, Any] = {"database": parsed.path[1:]}
    if parsed.username:
        params["user"] = parsed.username
    if parsed.password:
        params["password"] = parsed.password
    if parsed.hostname:
        params["host"] = parsed.hostname
    if parsed.port:
        params["port"] = parsed.port
    if parsed.scheme == "sqlite" and not params["database"]:
        params["database"] = ":memory:"
    for key, value in parse_qsl(parsed.query, keep_blank_values=True):
        params[key] = _query_value(value)
    params.update(kwargs)
    if not params.get("database"):
        raise ValueError(
            f'"{url}" has no database name. Local databases take three slashes'
            f' ("{parsed.scheme}:///dbname"), remote ones "{parsed.scheme}://host/dbname".'
        )
    return database_class(**params)


def _query_value(value: str) -> Any:
    """A query parameter as playhouse.db_url reads it: booleans, numbers, None, text."""
    if value.lower() == "false":
        return False
    if value.lower() == "true":
        return True
    if value.isdigit():
        return int(value)
    if "." in value and all(p.isdigit() for p in value.split(".", 1)):
        with contextlib.suppress(ValueError):
            return float(value)
    if value.lower() in ("null", "none"):
        return None
    return value


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
def write_transaction(*, durable: bool = True) -> Iterator[None]:
    """A transaction that will write: IMMEDIATE on SQLite so two writers queue instead of failing.

    ``durable=False`` (PostgreSQL; the outermost transaction only): its COMMIT returns
    without waiting for the server's fsync (``SET LOCAL synchronous_commit = off``); the
    server writes it within a fraction of a second. Only for work that a crash of the
    server may take back because it is redone: the processing of a mail, whose receipt
    (committed durably before) stays ``received`` and leased when the processing is
    lost, so the recovery finishes it exactly once. Any later durable commit makes it
    durable too (the write-ahead log is flushed in order), so nothing that depends on it
    — a notice claimed for sending, the next mail's 250 — can outlive it.

    Database errors that mean "not now" (locked, connection lost, disk full, corrupt)
    become ``TemporaryFailure``; the caller retries or tells the sender to. A query with
    too many variables is a bug of ours, never temporary (``faults.QueryTooLarge``).
    """
    with _translated_faults(), db.atomic("IMMEDIATE") if is_sqlite() else db.atomic():
        if not durable and isinstance(db.obj, PostgresDatabase):
            if db.obj.transaction_depth() == 1:
                db.obj.defer("SET LOCAL synchronous_commit = off")
        try:
            yield
        except BaseException:
            cache = transaction_cache()  # a nested one is a savepoint: as ``savepoint``
            if cache and db.transaction_depth() > 1:
                cache.clear()
            raise


@contextmanager
def single_statement() -> Iterator[None]:
    """One statement that needs no transaction of its own (an advisory lock, a read):
    on PostgreSQL a single round trip instead of BEGIN, the statement and COMMIT.
    Faults are told apart as in ``write_transaction``. Inside a transaction it is
    simply part of it."""
    with _translated_faults():
        if is_sqlite():
            with db.atomic("IMMEDIATE"):
                yield
        else:
            yield


@contextmanager
def reads() -> Iterator[None]:
    """Statements that only read, outside any transaction: each sees what was committed
    when it runs, and takes no lock (on SQLite no write lock, so a writer elsewhere never
    waits for it). Faults are told apart as in ``write_transaction``."""
    with _translated_faults():
        yield


@contextmanager
def _translated_faults() -> Iterator[None]:
    try:
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
    """A savepoint inside ``write_transaction``: an exception takes back only its writes
    (and forgets what ``transaction_cache`` kept, which may have been read after them)."""
    with db.atomic():
        try:
            yield
        except BaseException:
            cache = transaction_cache()
            if cache:
                cache.clear()
            raise


def transaction_cache() -> dict[Any, Any] | None:
    """A dict that lives as long as this thread's open transaction; None outside one.

    For reads that only the transaction's own writes change (the writer forgets its
    entry): read once per transaction, not once per caller. A savepoint that rolls
    back empties it (``savepoint``)."""
    database = db.obj
    if database is None:
        return None
    transactions = database._state.transactions
    if not transactions:
        return None
    outermost = transactions[0]
    cache: dict[Any, Any] | None = getattr(outermost, "mailgate_cache", None)
    if cache is None:
        cache = outermost.mailgate_cache = {}
    return cache


# SQLSTATEs of a transaction that lost to another one (deadlock, serialization, lock
# timeout): the connection is healthy. Keeping it keeps its session's advisory locks,
# which say what this process is working on (store/inflight.py, store/imapclaims.py).
_CONFLICTS = frozenset({"40P01", "40001", "55P03"})


def _is_conflict(exc: BaseException) -> bool:
    return pgcode(exc) in _CONFLICTS


def _reset_connection() -> None:
    """Drop a connection that failed, so the next call opens a fresh one."""
    # A broken driver connection may raise anything on close; it is being thrown away.
    with contextlib.suppress(Exception):
        if not db.is_closed() and db.transaction_depth() == 0:
            db.close()

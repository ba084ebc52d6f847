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
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import peewee as pw
from peewee import DataError, IntegrityError, InterfaceError, OperationalError, PeeweeException

from mailgate.errors import ConfigError
from mailgate.store import drivers, faults
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
        database = _PostgresDatabase(database.database, **database.connect_params)
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


class _PostgresDatabase(pw.PostgresqlDatabase):
    """PostgreSQL with fewer round trips: what needs no answer travels with what does.

    peewee runs the driver in autocommit mode and sends ``BEGIN`` on its own, a round
    trip of its own for every transaction (four or five per mail). Here ``begin()``
    only notes it, and the first statement of the transaction carries it (psycopg2
    sends ``BEGIN; INSERT …`` as one simple query, whose result is the last
    statement's). A transaction that ran no statement sends neither BEGIN nor COMMIT.
    ``SET LOCAL`` settings (``write_transaction(durable=False)``) and writes whose
    result nobody reads (``sql.later``: events, attachments, counters, the receipt's
    last update) travel the same way, with the next statement or the COMMIT; an error
    in one of them is raised there, still inside the transaction, which rolls back.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._pending = threading.local()  # peewee keeps one connection per thread

    def _take_pending(self) -> tuple[str, bool]:
        """(the statements waiting to be sent, whether BEGIN is among them)."""
        text: str = getattr(self._pending, "text", "")
        unsent: bool = getattr(self._pending, "unsent_begin", False)
        self._pending.text, self._pending.unsent_begin = "", False
        return text, unsent

    def _take_after_commit(self) -> list[tuple[str, Callable[[], None]]]:
        after: list[tuple[str, Callable[[], None]]] = getattr(self._pending, "after", [])
        self._pending.after = []
        return after

    def send_after_commit(self, statement: str, sent: Callable[[], None]) -> None:
        """Send ``statement`` right after this transaction's COMMIT, in the same round
        trip (the server runs it once the COMMIT succeeded); ``sent()`` is called when
        it ran. A rollback, or a COMMIT that fails, drops it unsent."""
        after: list[tuple[str, Callable[[], None]]] = getattr(self._pending, "after", [])
        self._pending.after = [*after, (statement, sent)]

    def execute_alone(self, sql: str, params: Any = None) -> Any:
        """``sql`` as the transaction's first statement, committing on its own: sent
        without BEGIN, the server runs it in a transaction of its own and commits it
        (durably) before answering — one round trip instead of two. The transaction
        then goes on as if it had just begun. Inside a transaction that already ran
        something (or a nested one) it is simply one more statement of it."""
        pending = getattr(self._pending, "text", "")
        if self.transaction_depth() != 1 or pending != "BEGIN; ":
            return self.execute_sql(sql, params)
        self._pending.text = ""
        try:
            return super().execute_sql(sql, params)  # type: ignore[no-untyped-call]
        finally:
            self._pending.text, self._pending.unsent_begin = "BEGIN; ", True

    def begin(self, isolation_level: Any = None) -> None:
        if isolation_level is not None or getattr(self, "_isolation_level", None):
            super().begin(isolation_level)
            return
        if self.is_closed():
            # Connecting resets peewee's per-thread state (the open transactions among it):
            # it must happen now, not with the first statement.
            self.connect()
        self._pending.text, self._pending.unsent_begin = "BEGIN; ", True

    def defer(self, statement: str, params: Any = None) -> None:
        """Send ``statement`` with the transaction's next statement (or its COMMIT); at
        once when no transaction is open."""
        if self.transaction_depth() == 0:
            self.execute_sql(statement, params)
            return
        if params is not None:
            cursor = self.connection().cursor()  # type: ignore[no-untyped-call]
            statement = cursor.mogrify(statement, params).decode()
        pending: str = getattr(self._pending, "text", "")
        self._pending.text = f"{pending}{statement}; "

    # Prepared statements a connection keeps at most (IN lists of every length are texts
    # of their own; past this many the rest is sent as text).
    PREPARED_MAX = 200

    def execute_prepared(self, text: str, params: tuple[Any, ...]) -> Any:
        """``text`` (``?`` for parameters, as ``store.sql`` writes it) as a prepared
        statement of this connection from its second use on: the server parses and
        plans it once instead of every time (measured: a third to a fifth of the
        server's CPU for the hot path's joins). The first PREPARE travels with that
        use (``PREPARE …; EXECUTE …``), inside a savepoint when a transaction is open,
        so a text the server cannot prepare (a parameter whose type it cannot infer:
        SQLSTATE class 42) costs a ROLLBACK TO SAVEPOINT and is sent as plain text from
        then on; any other error is the statement's own and raised as it was before.
        (Session state: a pooler in transaction mode must not sit in between — nor may
        it for the advisory locks of ``store/inflight.py``.)"""
        plain = text.replace("%", "%%").replace("?", "%s")
        state = self._pending
        connection = self.connection()  # type: ignore[no-untyped-call]
        if getattr(state, "prepared_on", None) is not connection:
            state.prepared_on, state.prepared, state.named = connection, {}, 0
        statements: dict[str, str | None] = state.prepared
        name = statements.get(text, "")
        if text not in statements:  # the first use: plain; prepared when it comes again
            if len(statements) < self.PREPARED_MAX:
                statements[text] = ""
            return self.execute_sql(plain, params)
        if name is None:
            return self.execute_sql(plain, params)
        if name:
            marks = ", ".join("%s" for _ in params)
            return self.execute_sql(
                f"EXECUTE {name}({marks})" if params else f"EXECUTE {name}", params
            )
        parts = text.split("?")
        if len(parts) - 1 != len(params):
            statements[text] = None
            return self.execute_sql(plain, params)
        state.named += 1
        name = f"mailgate_{state.named}"
        body = parts[0] + "".join(f"${i}{part}" for i, part in enumerate(parts[1:], 1))
        execute = (
            f"EXECUTE {name}({', '.join('%s' for _ in params)})" if params else f"EXECUTE {name}"
        )
        prepare = f"PREPARE {name} AS {body.replace('%', '%%')}"
        inside = self.transaction_depth() > 0
        if inside:
            sent = f"SAVEPOINT mp; {prepare}; RELEASE SAVEPOINT mp; {execute}"
        else:
            sent = f"{prepare}; {execute}"
        try:
            cursor = self.execute_sql(sent, params)
        except PeeweeException as exc:
            statements[text] = None  # (PREPARE outlives a rollback: never this name again)
            if not (pgcode(exc) or "").startswith("42"):
                raise  # the statement's own error (a deadlock, a taken key…): as before
            if inside:
                try:
                    super().execute_sql("ROLLBACK TO SAVEPOINT mp")  # type: ignore[no-untyped-call]
                except PeeweeException:
                    raise exc from None
            return self.execute_sql(plain, params)
        statements[text] = name
        return cursor

    def execute_sql(self, sql: str, params: Any = None) -> Any:
        pending, _ = self._take_pending()
        if pending:
            # peewee always passes parameters, so psycopg2 reads % in the whole text.
            sql = pending.replace("%", "%%") + sql
        return super().execute_sql(sql, params)  # type: ignore[no-untyped-call]

    def commit(self) -> None:
        pending, unsent_begin = self._take_pending()
        after = self._take_after_commit()
        if unsent_begin and not pending.removeprefix("BEGIN; "):
            pending = ""  # nothing ran: nothing to commit
            if not after:
                return
            text = "; ".join(statement for statement, _ in after)
        else:
            text = "; ".join(["COMMIT", *(statement for statement, _ in after)])
        if pending or after:
            # The server runs the statements after COMMIT only once it succeeded.
            super().execute_sql(pending.replace("%", "%%") + text)  # type: ignore[no-untyped-call]
            for _, sent in after:
                sent()
            return
        super().commit()

    def rollback(self) -> None:
        _, unsent_begin = self._take_pending()  # writes not sent yet: simply dropped
        self._take_after_commit()
        if not unsent_begin:
            super().rollback()

    def close(self) -> bool:
        self._take_pending()
        self._take_after_commit()
        return bool(super().close())


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
        if not durable and isinstance(db.obj, _PostgresDatabase):
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

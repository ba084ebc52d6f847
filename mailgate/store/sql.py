"""Hand-written SQL for the hot path: the statements every ingested mail runs.

peewee builds each query anew, which costs 50–300 µs of Python per statement —
more than parsing the mail. The few statements a mail needs are written here
once, in the subset of SQL that SQLite (≥ 3.35) and PostgreSQL share
(``RETURNING``, ``ON CONFLICT DO NOTHING``), and run on peewee's connection, so
they take part in the same transactions. The modules of ``store/`` use these
helpers; the admin read models (``views.py``) use the models.

Write ``?`` for parameters (never inside string literals); timestamps go
through ``ts()``, JSON through ``js()``.
"""

from __future__ import annotations

import datetime as dt
import functools
import json
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

import peewee as pw

from mailgate.store.db import db, is_sqlite

_translated: dict[str, str] = {}
# peewee's translation of driver errors into its own (IntegrityError, OperationalError…).
_PEEWEE_ERRORS = pw.__exception_wrapper__  # type: ignore[attr-defined]


def _sql(text: str) -> str:
    if is_sqlite():
        return text
    sql = _translated.get(text)
    if sql is None:
        sql = _translated[text] = text.replace("%", "%%").replace("?", "%s")
    return sql


def run(text: str, *params: Any) -> Any:
    database = db.obj
    if isinstance(database, pw.SqliteDatabase):
        # Straight to the connection: peewee's execute_sql adds nothing here but its
        # error translation (kept) and ~10 µs of Python, three dozen times a mail.
        with _PEEWEE_ERRORS:
            connection = database.connection()  # type: ignore[no-untyped-call]
            return connection.execute(text, tuple(map(clean, params)))
    if "pg_" in text or ";" in text:
        # Advisory locks (nothing to plan, no savepoint around them) and texts of several
        # statements (PREPARE takes one): as text.
        return database.execute_sql(_sql(text), tuple(map(clean, params)))
    return database.execute_prepared(text, tuple(map(clean, params)))


def one_committed(text: str, *params: Any) -> tuple[Any, ...] | None:
    """The first statement of a ``write_transaction`` that needs nothing after it to be
    committed (a receipt): on PostgreSQL it commits on its own, durably, in the one round
    trip (``pgdb.PostgresDatabase.execute_alone``), and the transaction goes on as if
    just begun. On SQLite it is part of the transaction, committed with it."""
    database = db.obj
    if isinstance(database, pw.SqliteDatabase):
        return one(text, *params)
    row: tuple[Any, ...] | None = database.execute_alone(
        text, tuple(map(clean, params))
    ).fetchone()
    return row


def later(text: str, *params: Any) -> None:
    """A write whose result (rows, rowcount) nobody reads: on PostgreSQL it travels with
    the transaction's next statement or its COMMIT instead of a round trip of its own
    (``pgdb.PostgresDatabase``); an error in it is raised there, inside the transaction.
    At once on SQLite and outside a transaction."""
    database = db.obj
    if isinstance(database, pw.SqliteDatabase):
        run(text, *params)
    elif "pg_" in text or ";" in text:  # as in run(): as text
        database.defer(_sql(text), tuple(map(clean, params)))
    else:  # prepared from its second use on, as run() prepares
        database.defer_prepared(text, tuple(map(clean, params)))


def clean(value: Any) -> Any:
    """Text the database can store: no NUL (PostgreSQL refuses it), no lone surrogates.

    Mail is full of raw bytes in odd places; whatever slips through parsing must never
    make a mail unstorable.
    """
    if not isinstance(value, str):
        return value
    if "\x00" in value:
        value = value.replace("\x00", "")
    if not value.isascii():
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            try:  # raw bytes smuggled in as surrogate escapes: decode them as well as we can
                value = value.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
            except UnicodeEncodeError:
                value = value.encode("utf-8", "replace").decode("utf-8")
    return value


def one(text: str, *params: Any) -> tuple[Any, ...] | None:
    row: tuple[Any, ...] | None = run(text, *params).fetchone()
    return row


def rows(text: str, *params: Any) -> list[tuple[Any, ...]]:
    return list(run(text, *params).fetchall())


def value(text: str, *params: Any) -> Any:
    row = one(text, *params)
    return None if row is None else row[0]


def insert(text: str, *params: Any) -> int:
    """An INSERT; returns the new row's id."""
    return int(one(text + " RETURNING id", *params)[0])  # type: ignore[index]


# Variables one statement may carry: SQLite before 3.32 allows 999, PostgreSQL 65,535.
# Lists that grow with a mail (its Cc, its references) are cut into statements of this size.
MAX_VARIABLES = 900


def insert_many(table: str, columns: Sequence[str], records: Iterable[Sequence[Any]]) -> None:
    """Multi-row INSERTs (one parse) for all ``records``, as few as the variable limit
    allows; sent with the next statement (``later``)."""
    records = list(records)
    if not records:
        return
    per_statement = max(1, MAX_VARIABLES // max(1, len(columns)))
    for start in range(0, len(records), per_statement):
        batch = records[start : start + per_statement]
        # later() cleans every value
        later(_insert_text(table, tuple(columns), len(batch)), *[v for r in batch for v in r])


@functools.lru_cache(maxsize=256)
def _insert_text(table: str, columns: tuple[str, ...], count: int) -> str:
    """The text of an INSERT of ``count`` rows: the same few every mail, built once."""
    row = "(" + ", ".join("?" for _ in columns) + ")"
    return f"INSERT INTO {table} ({', '.join(columns)}) VALUES " + ", ".join(
        row for _ in range(count)
    )


def chunks(values: Sequence[Any], size: int = MAX_VARIABLES - 10) -> Iterator[Sequence[Any]]:
    """``values`` in slices an IN list may hold (a few variables left for the rest)."""
    for start in range(0, len(values), size):
        yield values[start : start + size]


def placeholders(count: int) -> str:
    return ", ".join("?" for _ in range(count))


def ts(when: dt.datetime | None) -> Any:
    """A naive UTC timestamp as peewee stores it on this backend."""
    if when is None or not is_sqlite():
        return when
    return when.isoformat(" ")


def read_ts(raw: Any) -> dt.datetime | None:
    """A timestamp read back with raw SQL (SQLite gives text)."""
    if raw is None or isinstance(raw, dt.datetime):
        return raw
    return dt.datetime.fromisoformat(str(raw))


def js(data: Any) -> str:
    if type(data) is list and all(type(item) is str for item in data):
        # A list of addresses or trace lines (four a notice): the text the encoder makes,
        # '["a", "b"]', without its recursion through every item.
        return "[" + ", ".join(map(_json_string, data)) + "]"
    return _JSON.encode(data)


_json_string = json.encoder.encode_basestring


# json.dumps(data, ensure_ascii=False), without building the encoder anew for every call
# (json caches only the encoder of its default arguments).
_JSON = json.JSONEncoder(ensure_ascii=False)

"""The store: the only package that talks to the database.

Everything mailgate keeps lives behind this package: the peewee models
(``models.py``, imported by nobody outside ``store/``), the hand-written SQL of
the hot path (``sql.py``), one module of queries and writes per kind of thing
(tickets, messages, receipts, people, directory, events, outbox, breaker, ledger,
views), and the schema as named migrations (``schema.py``, ``migrations/``).
Queries return frozen rows (``rows.py``), never live ORM objects; the writes of
ticket state (status, assignee, team, priority, …) are called by
``mailgate.lifecycle`` only.

This front door holds what every caller needs: connecting, transactions, the
database errors worth telling apart, and the schema. Import the rest as
``from mailgate.store import tickets``.
"""

# First, before anything imports peewee: it is imported without psycopg2 (drivers.py).
from mailgate.store import drivers  # noqa: F401  # isort: skip
from mailgate.store.db import (
    UNAVAILABLE,
    DataError,
    IntegrityError,
    PeeweeException,
    close,
    is_sqlite,
    limit_page_cache,
    new_message_id,
    open_database,
    ordered_token,
    reads,
    savepoint,
    single_statement,
    utcnow,
    write_transaction,
)
from mailgate.store.faults import TEMPORARY_PREFIX, QueryTooLarge, is_temporary_reason
from mailgate.store.schema import require_schema, schema_status, upgrade
from mailgate.store.sql import clean

__all__ = [
    "TEMPORARY_PREFIX",
    "UNAVAILABLE",
    "DataError",
    "IntegrityError",
    "PeeweeException",
    "QueryTooLarge",
    "clean",
    "close",
    "is_sqlite",
    "is_temporary_reason",
    "limit_page_cache",
    "new_message_id",
    "open_database",
    "ordered_token",
    "reads",
    "require_schema",
    "savepoint",
    "schema_status",
    "single_statement",
    "upgrade",
    "utcnow",
    "write_transaction",
]

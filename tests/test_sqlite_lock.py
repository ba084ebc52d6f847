"""SQLite's one write lock, shared by serve's threads and the ingest worker.

A write transaction waits for another writer in fine steps (``store/sqlitedb.py``)
and goes on as soon as it is free; the outbox and webhook runs that find nothing to do
take no write lock at all, so the worker never waits for them. The other writer here
is a plain ``sqlite3`` connection, as another process would be.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from mailgate import outbox, store, webhooks
from mailgate.context import Context
from mailgate.store.sqlitedb import BUSY_TIMEOUT_MS

pytestmark = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)


@pytest.fixture
def other_writer(ctx: Context) -> Iterator[sqlite3.Connection]:
    """Another connection to the gateway's database file, in autocommit mode."""
    path = Path(ctx.config.database.url.partition("://")[2][1:])
    connection = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    yield connection
    if connection.in_transaction:
        connection.execute("ROLLBACK")
    connection.close()


def test_a_write_transaction_goes_on_as_soon_as_the_other_writer_commits(
    ctx: Context, other_writer: sqlite3.Connection
) -> None:
    other_writer.execute("BEGIN IMMEDIATE")
    release = threading.Timer(0.3, lambda: other_writer.execute("COMMIT"))
    started = time.monotonic()
    release.start()
    with store.write_transaction():
        waited = time.monotonic() - started
        store.db.db.execute_sql("CREATE TABLE waited (x)")
    release.join()
    assert 0.3 <= waited < 5
    # Statements outside write transactions keep SQLite's own busy handler.
    assert store.db.db.execute_sql("PRAGMA busy_timeout").fetchone() == (BUSY_TIMEOUT_MS,)


def test_outbox_and_webhook_runs_with_nothing_due_take_no_write_lock(
    ctx: Context, other_writer: sqlite3.Connection
) -> None:
    outbox.deliver(ctx.config)  # whatever the fresh gateway queued
    other_writer.execute("BEGIN IMMEDIATE")
    started = time.monotonic()
    outbox.deliver(ctx.config)
    webhooks.deliver(ctx.config)
    # A write transaction would have waited for the other writer (30 s, then "busy").
    assert time.monotonic() - started < 5

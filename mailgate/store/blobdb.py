"""Blobs in PostgreSQL (``storage.blob_url = postgresql://…``), and which blobs the
database references (``mailgate blobs copy``).

``BlobTable`` keeps its own connection per thread and process, in autocommit: a blob is
written before (and apart from) the transaction that references it, exactly as a file
is, so a rollback leaves an unreferenced blob, never a reference to a missing one. The
URL may name the gateway's own database or another one; the table is created if it is
not there (the statement of migration 0013). A database that cannot be reached is a
``TemporaryFailure``: the sender retries. Imports psycopg2, the store's SQL helpers and
errors.
"""

from __future__ import annotations

import contextlib
import importlib
import os
import threading
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import psycopg2
import psycopg2.errors

from mailgate.errors import TemporaryFailure
from mailgate.store import sql
from mailgate.store.outbox import BLOB_MARK, referenced_blob

_DDL = importlib.import_module("mailgate.store.migrations.0013_blobs")


def libpq_url(url: str) -> str:
    """``postgres://``, ``psycopg2://`` … as libpq spells them (``postgresql://``)."""
    scheme, sep, rest = url.partition("://")
    return f"postgresql://{rest}" if sep and scheme != "postgresql" else url


def without_password(url: str) -> str:
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.hostname or ""
    netloc = f"{parts.username}@{host}" if parts.username else host
    if parts.port:
        netloc += f":{parts.port}"
    return urlunsplit(parts._replace(netloc=netloc))


class BlobTable:
    def __init__(self, url: str) -> None:
        self.url = libpq_url(url)
        self.shown = without_password(self.url)
        self._local = threading.local()

    def _connection(self) -> Any:
        conn = getattr(self._local, "conn", None)
        if conn is not None and self._local.pid == os.getpid() and not conn.closed:
            return conn
        conn = psycopg2.connect(self.url, connect_timeout=10)
        conn.autocommit = True
        # another process may have created it a moment ago
        exists = (psycopg2.errors.UniqueViolation, psycopg2.errors.DuplicateTable)
        with conn.cursor() as cur, contextlib.suppress(*exists):
            cur.execute(_DDL.STATEMENTS[0].format(**_DDL.TYPES["postgresql"]))
        self._local.conn, self._local.pid = conn, os.getpid()
        return conn

    @contextlib.contextmanager
    def _cursor(self) -> Iterator[Any]:
        try:
            with self._connection().cursor() as cur:
                yield cur
        except (psycopg2.OperationalError, psycopg2.InterfaceError) as exc:
            self._drop()
            raise TemporaryFailure(f"blob store {self.shown}: {str(exc).strip()}") from exc

    def _drop(self) -> None:
        conn = getattr(self._local, "conn", None)
        self._local.conn = None
        with contextlib.suppress(Exception):  # a broken connection may fail to close
            if conn is not None:
                conn.close()

    def insert(self, sha256: str, data: bytes) -> None:
        with self._cursor() as cur:
            cur.execute(
                'INSERT INTO "blob" (sha256, size, content, stored_at)'
                " VALUES (%s, %s, %s, now() AT TIME ZONE 'UTC') ON CONFLICT (sha256) DO NOTHING",
                (sha256, len(data), psycopg2.Binary(data)),
            )

    def content(self, sha256: str) -> bytes | None:
        with self._cursor() as cur:
            cur.execute('SELECT content FROM "blob" WHERE sha256 = %s', (sha256,))
            row = cur.fetchone()
        return None if row is None else bytes(row[0])

    def part(self, sha256: str, offset: int, length: int) -> bytes:
        """``length`` bytes from ``offset`` (0-based): how a big blob is streamed."""
        with self._cursor() as cur:
            cur.execute(
                'SELECT substring(content FROM %s FOR %s) FROM "blob" WHERE sha256 = %s',
                (offset + 1, length, sha256),
            )
            row = cur.fetchone()
        return b"" if row is None else bytes(row[0])

    def size(self, sha256: str) -> int | None:
        with self._cursor() as cur:
            cur.execute('SELECT size FROM "blob" WHERE sha256 = %s', (sha256,))
            row = cur.fetchone()
        return None if row is None else int(row[0])

    def delete(self, sha256: str) -> None:
        with self._cursor() as cur:
            cur.execute('DELETE FROM "blob" WHERE sha256 = %s', (sha256,))

    def close(self) -> None:
        self._drop()


def referenced() -> Iterator[str]:
    """Every sha256 the gateway's database refers to (raw mails, kept files, notices
    composed into the blob store), each once, in no particular order."""
    seen: set[str] = set()
    queries = (
        "SELECT sha256 FROM receipt",
        "SELECT raw_sha256 FROM message WHERE raw_sha256 <> ''",
        "SELECT sha256 FROM attachment WHERE kept",
    )
    for query in queries:
        for (sha256,) in sql.rows(query):
            if sha256 and sha256 not in seen:
                seen.add(sha256)
                yield str(sha256)
    for (content,) in sql.rows(
        "SELECT content FROM outbox_item WHERE length(content) = ?", len(BLOB_MARK) + 64
    ):
        sha256 = referenced_blob(bytes(content))
        if sha256 and sha256 not in seen:
            seen.add(sha256)
            yield sha256

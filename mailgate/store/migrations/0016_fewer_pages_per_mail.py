"""0016 — fewer index pages written per mail (issue 16: ingest's commit on SQLite).

Each B-tree page a mail's transactions change is one more page its commit writes
(SQLite's WAL, PostgreSQL's WAL and heap). Counted per mail (``bench/wal_pages.py``):

* ``receipt_content_fingerprint`` only indexes receipts that have a content
  fingerprint: a receipt is committed with none (''), and its processing writes it.
  Indexing the '' took a page in the receipt's commit, and the processing another
  to take it out again, besides the page the fingerprint goes to. Nothing looks
  up '' (``store.receipts._SAME_CONTENT`` says ``content_fingerprint <> ''``, which
  lets both planners use the partial index).
* ``auto_mail_log_at`` goes: only the hourly prune read it, which deletes by id now
  (``store.breaker.prune``); the windows read the (recipient, at) and (ticket, at)
  indexes.
"""

from __future__ import annotations

from typing import Any


def apply(db: Any, dialect: str) -> None:
    db.execute_sql("DROP INDEX IF EXISTS receipt_content_fingerprint")
    db.execute_sql(
        "CREATE INDEX receipt_content_fingerprint ON receipt (content_fingerprint)"
        " WHERE content_fingerprint <> ''"
    )
    db.execute_sql("DROP INDEX IF EXISTS auto_mail_log_at")

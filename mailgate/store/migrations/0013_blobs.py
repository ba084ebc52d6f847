"""0013 — blobs in the database: raw mails and files by sha256 (storage.blob_url = postgresql://).

With a PostgreSQL blob store the database is the only state gateway machines share.
One row per blob, written once (``INSERT … ON CONFLICT DO NOTHING``) and never changed.
The blob store creates the same table by itself in a database of its own (another URL
than ``database.url``), so this statement is the one definition of it.
"""

from __future__ import annotations

from typing import Any

TYPES = {
    "sqlite": {"blob": "BLOB", "timestamp": "DATETIME"},
    "postgresql": {"blob": "BYTEA", "timestamp": "TIMESTAMP"},
}

STATEMENTS = (
    """
    CREATE TABLE IF NOT EXISTS "blob" (
        "sha256" VARCHAR(64) NOT NULL PRIMARY KEY,
        "size" BIGINT NOT NULL,
        "content" {blob} NOT NULL,
        "stored_at" {timestamp} NOT NULL
    )
    """,
)


def apply(db: Any, dialect: str) -> None:
    for statement in STATEMENTS:
        db.execute_sql(statement.format(**TYPES[dialect]))

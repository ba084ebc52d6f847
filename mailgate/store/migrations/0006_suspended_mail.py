"""0006 — the suspended queue: mail a spam filter marked, or from a blocked sender (issue 13).

One row per suspended mail, keyed by its receipt (whose status is ``suspended``):
who sent it, its subject and the reason, so ``mailgate suspended list`` needs no blob.
"""

from __future__ import annotations

from typing import Any

_TYPES = {
    "sqlite": {"id": "INTEGER NOT NULL PRIMARY KEY", "timestamp": "DATETIME"},
    "postgresql": {"id": "SERIAL NOT NULL PRIMARY KEY", "timestamp": "TIMESTAMP"},
}

STATEMENTS = (
    """
    CREATE TABLE IF NOT EXISTS "suspended_mail" (
        "id" {id},
        "receipt_id" INTEGER NOT NULL,
        "sender" VARCHAR(320) NOT NULL,
        "subject" TEXT NOT NULL,
        "reason" TEXT NOT NULL,
        "score" REAL,
        "received_at" {timestamp} NOT NULL,
        FOREIGN KEY ("receipt_id") REFERENCES "receipt" ("id") ON DELETE CASCADE
    )
    """,
    (
        'CREATE UNIQUE INDEX IF NOT EXISTS "suspendedmail_receipt_id"'
        ' ON "suspended_mail" ("receipt_id")'
    ),
    'CREATE INDEX IF NOT EXISTS "suspendedmail_received_at" ON "suspended_mail" ("received_at")',
)


def apply(db: Any, dialect: str) -> None:
    for statement in STATEMENTS:
        db.execute_sql(statement.format(**_TYPES[dialect]))

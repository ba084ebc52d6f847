"""0009 — IMAP claims: two gateways polling one mailbox take each mail once.

One row per (account, UIDVALIDITY, UID) a gateway process took: ``claimed`` while
it is being stored (the process also holds an advisory lock on it, so a claim of a
process that died is taken over at once), ``done`` once it was marked processed on
the server, so a process that saw the mail in an older search skips it.
"""

from __future__ import annotations

from typing import Any

_TYPES = {"sqlite": {"timestamp": "DATETIME"}, "postgresql": {"timestamp": "TIMESTAMP"}}

STATEMENTS = (
    """
    CREATE TABLE IF NOT EXISTS "imap_claim" (
        "account" VARCHAR(200) NOT NULL,
        "uidvalidity" BIGINT NOT NULL,
        "uid" BIGINT NOT NULL,
        "state" VARCHAR(10) NOT NULL,
        "owner" VARCHAR(100) NOT NULL,
        "claimed_at" {timestamp} NOT NULL,
        PRIMARY KEY ("account", "uidvalidity", "uid")
    )
    """,
    'CREATE INDEX IF NOT EXISTS "imap_claim_claimed_at" ON "imap_claim" ("claimed_at")',
)


def apply(db: Any, dialect: str) -> None:
    for statement in STATEMENTS:
        db.execute_sql(statement.format(**_TYPES[dialect]))

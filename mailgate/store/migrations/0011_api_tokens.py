"""0011 — API tokens: per-agent bearer tokens for the JSON API (issue 15).

One row per token ``mailgate agents token KEY`` issued: the SHA-256 of the token
(never the token itself), whose agent it is, when it was made, last used and
revoked. Deleting an agent's row deletes its tokens.
"""

from __future__ import annotations

from typing import Any

_TYPES = {
    "sqlite": {"id": "INTEGER NOT NULL PRIMARY KEY", "timestamp": "DATETIME"},
    "postgresql": {"id": "SERIAL NOT NULL PRIMARY KEY", "timestamp": "TIMESTAMP"},
}

STATEMENTS = (
    """
    CREATE TABLE IF NOT EXISTS "api_token" (
        "id" {id},
        "agent_id" INTEGER NOT NULL,
        "token_hash" VARCHAR(64) NOT NULL,
        "created_at" {timestamp} NOT NULL,
        "last_used_at" {timestamp},
        "revoked_at" {timestamp},
        FOREIGN KEY ("agent_id") REFERENCES "agent" ("id") ON DELETE CASCADE
    )
    """,
    'CREATE UNIQUE INDEX IF NOT EXISTS "apitoken_token_hash" ON "api_token" ("token_hash")',
    'CREATE INDEX IF NOT EXISTS "apitoken_agent_id" ON "api_token" ("agent_id")',
)


def apply(db: Any, dialect: str) -> None:
    for statement in STATEMENTS:
        db.execute_sql(statement.format(**_TYPES[dialect]))

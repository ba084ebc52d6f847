"""0010 — logins to the web desk: password hashes, sessions, login attempts, login links.

``web_password``: one Argon2 hash per agent (by the agent's config key).
``web_session``: server-side sessions, keyed by the SHA-256 of the session id (the
id itself lives only in the agent's cookie), with the session's CSRF token.
``web_login_attempt``: every login tried, for the rate limits by account and by
client address. ``web_login_link``: one-time login links, keyed by the SHA-256 of
the token mailed to the agent.
"""

from __future__ import annotations

from typing import Any

_TYPES = {
    "sqlite": {"id": "INTEGER NOT NULL PRIMARY KEY", "timestamp": "DATETIME", "bool": "INTEGER"},
    "postgresql": {
        "id": "SERIAL NOT NULL PRIMARY KEY",
        "timestamp": "TIMESTAMP",
        "bool": "BOOLEAN",
    },
}

STATEMENTS = (
    """
    CREATE TABLE IF NOT EXISTS "web_password" (
        "agent_key" VARCHAR(100) NOT NULL PRIMARY KEY,
        "hash" VARCHAR(255) NOT NULL,
        "set_at" {timestamp} NOT NULL
    )
    """,
    """
    CREATE TABLE IF NOT EXISTS "web_session" (
        "id_hash" VARCHAR(64) NOT NULL PRIMARY KEY,
        "agent_key" VARCHAR(100) NOT NULL,
        "csrf" VARCHAR(100) NOT NULL,
        "created_at" {timestamp} NOT NULL,
        "seen_at" {timestamp} NOT NULL,
        "ended_at" {timestamp}
    )
    """,
    'CREATE INDEX IF NOT EXISTS "websession_agent_key" ON "web_session" ("agent_key")',
    'CREATE INDEX IF NOT EXISTS "websession_seen_at" ON "web_session" ("seen_at")',
    """
    CREATE TABLE IF NOT EXISTS "web_login_attempt" (
        "id" {id},
        "account" VARCHAR(320) NOT NULL,
        "client" VARCHAR(100) NOT NULL,
        "at" {timestamp} NOT NULL,
        "ok" {bool} NOT NULL
    )
    """,
    (
        'CREATE INDEX IF NOT EXISTS "webloginattempt_account_at"'
        ' ON "web_login_attempt" ("account", "at")'
    ),
    (
        'CREATE INDEX IF NOT EXISTS "webloginattempt_client_at"'
        ' ON "web_login_attempt" ("client", "at")'
    ),
    'CREATE INDEX IF NOT EXISTS "webloginattempt_at" ON "web_login_attempt" ("at")',
    """
    CREATE TABLE IF NOT EXISTS "web_login_link" (
        "token_hash" VARCHAR(64) NOT NULL PRIMARY KEY,
        "agent_key" VARCHAR(100) NOT NULL,
        "created_at" {timestamp} NOT NULL,
        "expires_at" {timestamp} NOT NULL,
        "used_at" {timestamp}
    )
    """,
    'CREATE INDEX IF NOT EXISTS "webloginlink_expires_at" ON "web_login_link" ("expires_at")',
    (
        'CREATE INDEX IF NOT EXISTS "webloginlink_agent_key_created_at"'
        ' ON "web_login_link" ("agent_key", "created_at")'
    ),
)


def apply(db: Any, dialect: str) -> None:
    for statement in STATEMENTS:
        db.execute_sql(statement.format(**_TYPES[dialect]))

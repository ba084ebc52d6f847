"""0001 — the first released schema (version 1), exactly as mailgate created it then.

This module never changes: it is what a version-1 database is. A database that
mailgate created before migrations had names (``schema_version`` = 1) is taken
to have run it already. Every later change is a new module beside this one.

The statements are literal SQL, written once with the few types SQLite and
PostgreSQL spell differently as placeholders.
"""

from __future__ import annotations

from typing import Any

_TYPES = {
    "sqlite": {
        "id": "INTEGER NOT NULL PRIMARY KEY",
        "timestamp": "DATETIME",
        "bigint": "INTEGER",
        "boolean": "INTEGER",
        "blob": "BLOB",
    },
    "postgresql": {
        "id": "SERIAL NOT NULL PRIMARY KEY",
        "timestamp": "TIMESTAMP",
        "bigint": "BIGINT",
        "boolean": "BOOLEAN",
        "blob": "BYTEA",
    },
}

STATEMENTS = (
    """
    CREATE TABLE IF NOT EXISTS "schema_version" (
        "version" INTEGER NOT NULL PRIMARY KEY,
        "applied_at" {timestamp} NOT NULL
    )
    """,
    """
    CREATE TABLE IF NOT EXISTS "setting" (
        "key" VARCHAR(100) NOT NULL PRIMARY KEY,
        "value" {bigint} NOT NULL
    )
    """,
    """
    CREATE TABLE IF NOT EXISTS "team" (
        "id" {id},
        "key" VARCHAR(100) NOT NULL,
        "name" VARCHAR(200) NOT NULL,
        "address" VARCHAR(320) NOT NULL
    )
    """,
    'CREATE UNIQUE INDEX IF NOT EXISTS "team_key" ON "team" ("key")',
    """
    CREATE TABLE IF NOT EXISTS "agent" (
        "id" {id},
        "key" VARCHAR(100) NOT NULL,
        "name" VARCHAR(200) NOT NULL,
        "emails" TEXT NOT NULL,
        "role" VARCHAR(20) NOT NULL,
        "active" {boolean} NOT NULL
    )
    """,
    'CREATE UNIQUE INDEX IF NOT EXISTS "agent_key" ON "agent" ("key")',
    """
    CREATE TABLE IF NOT EXISTS "contact" (
        "id" {id},
        "email" VARCHAR(320) NOT NULL,
        "name" VARCHAR(300) NOT NULL,
        "created_at" {timestamp} NOT NULL,
        "undeliverable_until" {timestamp},
        "undeliverable_reason" TEXT NOT NULL
    )
    """,
    'CREATE UNIQUE INDEX IF NOT EXISTS "contact_email" ON "contact" ("email")',
    """
    CREATE TABLE IF NOT EXISTS "ticket" (
        "id" {id},
        "number" {bigint} NOT NULL,
        "subject" TEXT NOT NULL,
        "status" VARCHAR(20) NOT NULL,
        "priority" VARCHAR(20) NOT NULL,
        "mailbox" VARCHAR(100) NOT NULL,
        "team_id" INTEGER,
        "assignee_id" INTEGER,
        "requester_id" INTEGER NOT NULL,
        "category" VARCHAR(100) NOT NULL,
        "tags" TEXT NOT NULL,
        "foreign_tags" TEXT NOT NULL,
        "merged_into_id" INTEGER,
        "created_at" {timestamp} NOT NULL,
        "updated_at" {timestamp} NOT NULL,
        "first_response_at" {timestamp},
        "resolved_at" {timestamp},
        "closed_at" {timestamp},
        FOREIGN KEY ("team_id") REFERENCES "team" ("id") ON DELETE SET NULL,
        FOREIGN KEY ("assignee_id") REFERENCES "agent" ("id") ON DELETE SET NULL,
        FOREIGN KEY ("requester_id") REFERENCES "contact" ("id"),
        FOREIGN KEY ("merged_into_id") REFERENCES "ticket" ("id") ON DELETE SET NULL
    )
    """,
    'CREATE UNIQUE INDEX IF NOT EXISTS "ticket_number" ON "ticket" ("number")',
    'CREATE INDEX IF NOT EXISTS "ticket_status" ON "ticket" ("status")',
    'CREATE INDEX IF NOT EXISTS "ticket_team_id" ON "ticket" ("team_id")',
    'CREATE INDEX IF NOT EXISTS "ticket_assignee_id" ON "ticket" ("assignee_id")',
    'CREATE INDEX IF NOT EXISTS "ticket_updated_at" ON "ticket" ("updated_at")',
    """
    CREATE TABLE IF NOT EXISTS "participant" (
        "id" {id},
        "ticket_id" INTEGER NOT NULL,
        "contact_id" INTEGER NOT NULL,
        "role" VARCHAR(20) NOT NULL,
        FOREIGN KEY ("ticket_id") REFERENCES "ticket" ("id") ON DELETE CASCADE,
        FOREIGN KEY ("contact_id") REFERENCES "contact" ("id")
    )
    """,
    'CREATE INDEX IF NOT EXISTS "participant_ticket_id" ON "participant" ("ticket_id")',
    'CREATE UNIQUE INDEX IF NOT EXISTS "participant_ticket_id_contact_id"'
    ' ON "participant" ("ticket_id", "contact_id")',
    """
    CREATE TABLE IF NOT EXISTS "ticket_link" (
        "id" {id},
        "ticket_id" INTEGER NOT NULL,
        "other_id" INTEGER NOT NULL,
        "kind" VARCHAR(30) NOT NULL,
        FOREIGN KEY ("ticket_id") REFERENCES "ticket" ("id") ON DELETE CASCADE,
        FOREIGN KEY ("other_id") REFERENCES "ticket" ("id") ON DELETE CASCADE
    )
    """,
    'CREATE INDEX IF NOT EXISTS "ticket_link_ticket_id" ON "ticket_link" ("ticket_id")',
    'CREATE INDEX IF NOT EXISTS "ticket_link_other_id" ON "ticket_link" ("other_id")',
    """
    CREATE TABLE IF NOT EXISTS "receipt" (
        "id" {id},
        "message_id" VARCHAR(998) NOT NULL, "sha256" VARCHAR(64) NOT NULL,
        "fingerprint" VARCHAR(64) NOT NULL,
        "size" INTEGER NOT NULL,
        "sender" VARCHAR(320) NOT NULL,
        "envelope" TEXT NOT NULL,
        "source" VARCHAR(20) NOT NULL,
        "mailbox" VARCHAR(100) NOT NULL,
        "status" VARCHAR(20) NOT NULL,
        "action" VARCHAR(20) NOT NULL,
        "reason" TEXT NOT NULL,
        "attempts" INTEGER NOT NULL,
        "ticket_id" INTEGER,
        "received_at" {timestamp} NOT NULL,
        "processed_at" {timestamp},
        "lease_until" {timestamp},
        FOREIGN KEY ("ticket_id") REFERENCES "ticket" ("id") ON DELETE SET NULL
    )
    """,
    'CREATE UNIQUE INDEX IF NOT EXISTS "receipt_message_id" ON "receipt" ("message_id")',
    """
    CREATE TABLE IF NOT EXISTS "message" (
        "id" {id},
        "ticket_id" INTEGER NOT NULL,
        "receipt_id" INTEGER,
        "direction" VARCHAR(3) NOT NULL,
        "kind" VARCHAR(20) NOT NULL,
        "message_id" VARCHAR(998) NOT NULL,
        "from_addr" VARCHAR(320) NOT NULL,
        "from_name" VARCHAR(300) NOT NULL,
        "to_addrs" TEXT NOT NULL,
        "cc_addrs" TEXT NOT NULL,
        "subject" TEXT NOT NULL,
        "date" {timestamp},
        "text" TEXT NOT NULL,
        "full_text" TEXT NOT NULL,
        "html" TEXT NOT NULL, "raw_sha256" VARCHAR(64) NOT NULL,
        "trace" TEXT NOT NULL,
        "verified" {boolean} NOT NULL,
        "created_at" {timestamp} NOT NULL,
        FOREIGN KEY ("ticket_id") REFERENCES "ticket" ("id") ON DELETE CASCADE,
        FOREIGN KEY ("receipt_id") REFERENCES "receipt" ("id") ON DELETE SET NULL
    )
    """,
    'CREATE INDEX IF NOT EXISTS "message_ticket_id" ON "message" ("ticket_id")',
    'CREATE INDEX IF NOT EXISTS "message_message_id" ON "message" ("message_id")',
    """
    CREATE TABLE IF NOT EXISTS "attachment" (
        "id" {id},
        "message_id" INTEGER NOT NULL, "sha256" VARCHAR(64) NOT NULL,
        "size" {bigint} NOT NULL,
        "content_type" VARCHAR(200) NOT NULL,
        "filename" VARCHAR(255) NOT NULL,
        "content_id" VARCHAR(998) NOT NULL,
        "inline" {boolean} NOT NULL,
        FOREIGN KEY ("message_id") REFERENCES "message" ("id") ON DELETE CASCADE
    )
    """,
    'CREATE INDEX IF NOT EXISTS "attachment_message_id" ON "attachment" ("message_id")',
    """
    CREATE TABLE IF NOT EXISTS "event" (
        "id" {id},
        "ticket_id" INTEGER NOT NULL,
        "at" {timestamp} NOT NULL,
        "actor" VARCHAR(400) NOT NULL,
        "kind" VARCHAR(40) NOT NULL,
        "old" TEXT NOT NULL,
        "new" TEXT NOT NULL,
        "message_id" INTEGER,
        "detail" TEXT NOT NULL,
        FOREIGN KEY ("ticket_id") REFERENCES "ticket" ("id") ON DELETE CASCADE,
        FOREIGN KEY ("message_id") REFERENCES "message" ("id") ON DELETE SET NULL
    )
    """,
    'CREATE INDEX IF NOT EXISTS "event_ticket_id" ON "event" ("ticket_id")',
    """
    CREATE TABLE IF NOT EXISTS "outbox_item" (
        "id" {id},
        "message_id" VARCHAR(998) NOT NULL,
        "ticket_id" INTEGER,
        "notice" VARCHAR(40) NOT NULL,
        "sender" VARCHAR(320) NOT NULL,
        "recipients" TEXT NOT NULL,
        "content" {blob} NOT NULL,
        "automatic" {boolean} NOT NULL,
        "status" VARCHAR(20) NOT NULL,
        "attempts" INTEGER NOT NULL,
        "next_attempt_at" {timestamp} NOT NULL,
        "last_error" TEXT NOT NULL,
        "created_at" {timestamp} NOT NULL,
        "sent_at" {timestamp},
        FOREIGN KEY ("ticket_id") REFERENCES "ticket" ("id") ON DELETE SET NULL
    )
    """,
    'CREATE UNIQUE INDEX IF NOT EXISTS "outbox_item_message_id" ON "outbox_item" ("message_id")',
    'CREATE INDEX IF NOT EXISTS "outbox_item_ticket_id" ON "outbox_item" ("ticket_id")',
    'CREATE INDEX IF NOT EXISTS "outbox_item_status_next_attempt_at"'
    ' ON "outbox_item" ("status", "next_attempt_at")',
    """
    CREATE TABLE IF NOT EXISTS "auto_mail_log" (
        "id" {id},
        "recipient" VARCHAR(320) NOT NULL,
        "ticket_id" {bigint},
        "at" {timestamp} NOT NULL
    )
    """,
    'CREATE INDEX IF NOT EXISTS "auto_mail_log_at" ON "auto_mail_log" ("at")',
    'CREATE INDEX IF NOT EXISTS "auto_mail_log_recipient_at"'
    ' ON "auto_mail_log" ("recipient", "at")',
    'CREATE INDEX IF NOT EXISTS "auto_mail_log_ticket_id_at"'
    ' ON "auto_mail_log" ("ticket_id", "at")',
    """
    CREATE TABLE IF NOT EXISTS "mail_counter" (
        "minute" {bigint} NOT NULL PRIMARY KEY,
        "count" INTEGER NOT NULL
    )
    """,
    """
    CREATE TABLE IF NOT EXISTS "imap_state" (
        "id" {id},
        "name" VARCHAR(200) NOT NULL,
        "uidvalidity" {bigint} NOT NULL,
        "last_uid" {bigint} NOT NULL,
        "fetched" INTEGER NOT NULL,
        "ingested" INTEGER NOT NULL,
        "duplicate" INTEGER NOT NULL,
        "quarantined" INTEGER NOT NULL,
        "failed" INTEGER NOT NULL,
        "last_error" TEXT NOT NULL,
        "last_error_at" {timestamp},
        "last_success_at" {timestamp},
        "updated_at" {timestamp} NOT NULL
    )
    """,
    'CREATE UNIQUE INDEX IF NOT EXISTS "imap_state_name" ON "imap_state" ("name")',
    # Only unfinished receipts are looked up by status (recovery, quarantine list):
    # a partial index keeps the processed majority out of it.
    "CREATE INDEX IF NOT EXISTS receipt_unfinished ON receipt (status) WHERE status <> 'processed'",
)


def apply(db: Any, dialect: str) -> None:
    for statement in STATEMENTS:
        db.execute_sql(statement.format(**_TYPES[dialect]))
    # The old single version number, kept so that mailgate of that time can tell this
    # database from an empty one (0002 raises it).
    db.execute_sql("INSERT INTO schema_version (version, applied_at) VALUES (1, CURRENT_TIMESTAMP)")

"""0003 — time: SLA clocks, due work (timers), customer ratings and agents' working time.

``sla_clock`` holds each ticket's clocks as last computed from its history (what
``tickets show`` and ``tickets list --breached/--due-before`` read); ``timer`` is
the due work ``mailgate jobs run`` finds by its due time — a partial index on the
undone rows, so a run costs what is due, not what is open; ``csat_rating`` and
``work_time`` are what customers and agents record.
"""

from __future__ import annotations

from typing import Any

_TYPES = {
    "sqlite": {"id": "INTEGER NOT NULL PRIMARY KEY", "timestamp": "DATETIME", "boolean": "INTEGER"},
    "postgresql": {
        "id": "SERIAL NOT NULL PRIMARY KEY",
        "timestamp": "TIMESTAMP",
        "boolean": "BOOLEAN",
    },
}

STATEMENTS = (
    """
    CREATE TABLE IF NOT EXISTS "sla_clock" (
        "id" {id},
        "ticket_id" INTEGER NOT NULL,
        "name" VARCHAR(30) NOT NULL,
        "policy" VARCHAR(100) NOT NULL,
        "policy_name" VARCHAR(200) NOT NULL,
        "calendar" VARCHAR(100) NOT NULL,
        "timezone" VARCHAR(100) NOT NULL,
        "started_at" {timestamp} NOT NULL,
        "target_seconds" BIGINT NOT NULL,
        "due_at" {timestamp},
        "warn_at" {timestamp},
        "met_at" {timestamp},
        "paused" {boolean} NOT NULL,
        "remaining_seconds" BIGINT NOT NULL,
        "updated_at" {timestamp} NOT NULL,
        FOREIGN KEY ("ticket_id") REFERENCES "ticket" ("id") ON DELETE CASCADE
    )
    """,
    (
        'CREATE UNIQUE INDEX IF NOT EXISTS "sla_clock_ticket_id_name"'
        ' ON "sla_clock" ("ticket_id", "name")'
    ),
    'CREATE INDEX IF NOT EXISTS "sla_clock_due_at" ON "sla_clock" ("due_at")',
    """
    CREATE TABLE IF NOT EXISTS "timer" (
        "id" {id},
        "ticket_id" INTEGER NOT NULL,
        "kind" VARCHAR(30) NOT NULL,
        "key" VARCHAR(100) NOT NULL,
        "due_at" {timestamp} NOT NULL,
        "done_at" {timestamp},
        "outcome" TEXT NOT NULL,
        FOREIGN KEY ("ticket_id") REFERENCES "ticket" ("id") ON DELETE CASCADE
    )
    """,
    (
        'CREATE UNIQUE INDEX IF NOT EXISTS "timer_ticket_id_kind_key"'
        ' ON "timer" ("ticket_id", "kind", "key")'
    ),
    # Due work: only the undone rows, by due time.
    'CREATE INDEX IF NOT EXISTS "timer_due" ON "timer" ("due_at") WHERE "done_at" IS NULL',
    """
    CREATE TABLE IF NOT EXISTS "csat_rating" (
        "id" {id},
        "ticket_id" INTEGER NOT NULL,
        "rating" VARCHAR(10) NOT NULL,
        "comment" TEXT NOT NULL,
        "sender" VARCHAR(320) NOT NULL,
        "message_id" INTEGER,
        "at" {timestamp} NOT NULL,
        FOREIGN KEY ("ticket_id") REFERENCES "ticket" ("id") ON DELETE CASCADE,
        FOREIGN KEY ("message_id") REFERENCES "message" ("id") ON DELETE SET NULL
    )
    """,
    'CREATE INDEX IF NOT EXISTS "csat_rating_ticket_id" ON "csat_rating" ("ticket_id")',
    """
    CREATE TABLE IF NOT EXISTS "work_time" (
        "id" {id},
        "ticket_id" INTEGER NOT NULL,
        "agent" VARCHAR(100) NOT NULL,
        "minutes" INTEGER NOT NULL,
        "source" VARCHAR(20) NOT NULL,
        "at" {timestamp} NOT NULL,
        FOREIGN KEY ("ticket_id") REFERENCES "ticket" ("id") ON DELETE CASCADE
    )
    """,
    'CREATE INDEX IF NOT EXISTS "work_time_ticket_id" ON "work_time" ("ticket_id")',
)


def apply(db: Any, dialect: str) -> None:
    for statement in STATEMENTS:
        db.execute_sql(statement.format(**_TYPES[dialect]))

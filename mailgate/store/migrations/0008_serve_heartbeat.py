"""0008 — serve's heartbeat: which gateway processes are alive, since when, and their worker.

``serve_heartbeat`` has a row per running ``mailgate serve`` (host and pid), written
every 10 s and removed by a clean stop; ``mailgate check`` and ``mailgate status``
read it to tell a running gateway from a stopped or hung one (issue 18). The indexes
on the receive and creation times keep "mails received and tickets made in the last
hour" (``mailgate status``) a range scan however many there are.
"""

from __future__ import annotations

from typing import Any


def apply(db: Any, dialect: str) -> None:
    key = "SERIAL" if dialect == "postgresql" else "INTEGER"
    timestamp = "TIMESTAMP" if dialect == "postgresql" else "DATETIME"
    db.execute_sql(
        f"""
        CREATE TABLE IF NOT EXISTS "serve_heartbeat" (
            "id" {key} NOT NULL PRIMARY KEY,
            "host" VARCHAR(255) NOT NULL,
            "pid" INTEGER NOT NULL,
            "started_at" {timestamp} NOT NULL,
            "beat_at" {timestamp} NOT NULL,
            "worker" VARCHAR(40) NOT NULL,
            "listener" VARCHAR(400) NOT NULL
        )
        """
    )
    db.execute_sql(
        'CREATE UNIQUE INDEX IF NOT EXISTS "serve_heartbeat_host_pid" ON "serve_heartbeat"'
        ' ("host", "pid")'
    )
    db.execute_sql(
        'CREATE INDEX IF NOT EXISTS "receipt_received_at" ON "receipt" ("received_at")'
    )
    db.execute_sql('CREATE INDEX IF NOT EXISTS "ticket_created_at" ON "ticket" ("created_at")')

"""0003 — what a mail's From said, and the latest delivery report on each mail we sent.

* ``message.from_raw``: the From header as written (decoded, one line). A From without
  a usable address ("Support Team", "<>", "undisclosed") still shows who wrote, while
  the requester came from Reply-To, Sender or the envelope (issue 17).
* ``outbox_item.delivery`` (``delivered``, ``delayed`` or ``failed``; '' while no report
  came), ``delivery_detail`` (the report's action and status per recipient) and
  ``delivery_at``: the latest delivery report (DSN) about that mail.
"""

from __future__ import annotations

from typing import Any


def apply(db: Any, dialect: str) -> None:
    timestamp = "TIMESTAMP" if dialect == "postgresql" else "DATETIME"
    db.execute_sql("ALTER TABLE message ADD COLUMN from_raw TEXT NOT NULL DEFAULT ''")
    db.execute_sql("ALTER TABLE outbox_item ADD COLUMN delivery VARCHAR(20) NOT NULL DEFAULT ''")
    db.execute_sql("ALTER TABLE outbox_item ADD COLUMN delivery_detail TEXT NOT NULL DEFAULT ''")
    db.execute_sql(f"ALTER TABLE outbox_item ADD COLUMN delivery_at {timestamp}")

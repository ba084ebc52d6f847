"""0012 — webhook deliveries ride in the outbox (issue 15).

A webhook delivery is an ``outbox_item`` with notice ``webhook``: its JSON body is
the content, its delivery id the message id; ``target`` is the hook's URL (the
deliveries of one URL leave in order) and ``event`` the event's name. Both are
'' for mail, so the rows from before stay what they were.
"""

from __future__ import annotations

from typing import Any


def apply(db: Any, dialect: str) -> None:
    db.execute_sql("ALTER TABLE outbox_item ADD COLUMN target TEXT NOT NULL DEFAULT ''")
    db.execute_sql("ALTER TABLE outbox_item ADD COLUMN event VARCHAR(60) NOT NULL DEFAULT ''")

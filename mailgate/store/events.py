"""The audit trail: event rows (every change of a ticket, with actor and time).

``mailgate.events.Journal`` collects a transaction's events and writes them here
with one INSERT; ``add`` writes a single event at once (delivery problems).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from typing import Any

from mailgate.store import sla as sla_rows
from mailgate.store import sql
from mailgate.store.db import utcnow

COLUMNS = ("ticket_id", "at", "actor", "kind", "old", "new", "message_id", "detail")


def insert(rows: Iterable[Sequence[Any]]) -> None:
    """Event rows in ``COLUMNS`` order, one INSERT."""
    rows = list(rows)
    sla_rows.noted(rows)  # a new ticket's clocks are computed from these, not read back
    sql.insert_many("event", COLUMNS, [(r[0], sql.ts(r[1]), *r[2:]) for r in rows])


def add(
    ticket_id: int,
    kind: str,
    actor: str,
    *,
    old: str = "",
    new: str = "",
    message_id: int | None = None,
    detail: str = "",
    at: dt.datetime | None = None,
) -> None:
    insert([(ticket_id, at or utcnow(), actor[:400], kind, old, new, message_id, detail)])

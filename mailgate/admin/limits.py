"""The circuit breaker for admins: what it holds back and why, and clearing it.

``show`` lists the overall windows (how full) and every held mail (its notice, ticket,
recipients, why, when it goes out); ``reset`` clears a breaker — of one ticket, of one
recipient, or all of it — and makes what it held due now. Nothing is ever dropped here.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from mailgate.config import Config
from mailgate.errors import UsageError
from mailgate.notices.breaker import rates
from mailgate.store import breaker as counts
from mailgate.store import outbox as outbox_rows
from mailgate.store import tickets as ticket_rows
from mailgate.store import utcnow, write_transaction


def show(config: Config) -> dict[str, Any]:
    now = utcnow()
    windows = []
    for count, seconds in rates(config.outbound.limits)[2]:
        used = counts.overall(counts.minute(now) - max(seconds // 60, 1))
        windows.append({"window": f"{count}/{_span(seconds)}", "used": used, "limit": count})
    held = [
        {
            "id": item_id,
            "notice": notice,
            "ticket": ticket_rows.number_of(ticket_id),
            "recipients": recipients,
            "why": why,
            "due": due.replace(tzinfo=dt.UTC).isoformat(timespec="seconds"),
        }
        for item_id, ticket_id, notice, recipients, why, due in outbox_rows.held(now)
    ]
    return {"overall": windows, "held": held}


def reset(ticket: int | None = None, recipient: str = "") -> tuple[int, int]:
    """Clear a breaker; (log rows forgotten, held mails now due)."""
    ticket_id = None
    if ticket is not None:
        row = ticket_rows.by_number(ticket)
        if row is None:
            raise UsageError(f"no ticket {ticket}")
        ticket_id = row.id
    with write_transaction():
        forgotten = counts.reset(ticket_id=ticket_id, recipient=recipient.lower())
        released = 0 if recipient else outbox_rows.release_held(utcnow(), ticket_id)
    return forgotten, released


def _span(seconds: int) -> str:
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"

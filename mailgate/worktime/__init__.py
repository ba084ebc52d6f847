"""Working time: what agents spent on a ticket — ``#time 25m`` by mail, ``tickets time`` by CLI.

Each entry is a row (agent, minutes, source) and a ``working_time`` event;
``tickets show`` sums them per agent. Imports events and the store.
"""

from __future__ import annotations

import re
from typing import Any

from mailgate.errors import UsageError
from mailgate.events import Event, Journal
from mailgate.store import worktime as rows
from mailgate.store.db import utcnow
from mailgate.store.rows import TicketRow

_SPENT = re.compile(r"^(?:(\d{1,3})h)?(?:(\d{1,4})m(?:in)?)?$")


def minutes(text: str) -> int:
    """``"25m"``, ``"1h30m"``, ``"2h"`` → minutes; ``UsageError`` otherwise."""
    cleaned = "".join(text.lower().split())
    match = _SPENT.match(cleaned)
    total = int(match.group(1) or 0) * 60 + int(match.group(2) or 0) if match and cleaned else 0
    if total <= 0:
        raise UsageError(f"{text!r} is not working time like 25m or 1h30m")
    return total


def record(
    ticket: TicketRow, agent: str, spent: int, journal: Journal, *, actor: str, source: str
) -> None:
    rows.add(ticket.id, agent, spent, source, utcnow())
    journal.add(Event(ticket, "working_time", actor, new=f"{spent} min", detail=f"by {agent}"))


def summary(ticket_id: int) -> dict[str, Any]:
    """``working_time: {total_minutes, by_agent: {KEY: minutes}}``."""
    by_agent = rows.by_agent(ticket_id)
    return {"total_minutes": sum(by_agent.values()), "by_agent": by_agent}

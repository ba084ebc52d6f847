"""An agent's queue: their tickets in new, open or pending, with the earliest running due time.

Read for the ``#queue`` answer (``notices.agentqueue``). Hand-written SQL: one query.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from mailgate.store import sql


@dataclass(frozen=True, slots=True)
class QueuedTicket:
    number: int
    subject: str
    status: str
    priority: str
    due_at: dt.datetime | None


def tickets_of(agent_key: str, limit: int = 200) -> list[QueuedTicket]:
    """The agent's live tickets, the most urgent due time first (then the newest)."""
    found = sql.rows(
        "SELECT t.number, t.subject, t.status, t.priority, MIN(c.due_at)"
        " FROM ticket t JOIN agent a ON a.id = t.assignee_id"
        " LEFT JOIN sla_clock c ON c.ticket_id = t.id AND c.met_at IS NULL AND NOT c.paused"
        " WHERE a.key = ? AND t.status IN ('new', 'open', 'pending')"
        " GROUP BY t.id, t.number, t.subject, t.status, t.priority"
        " ORDER BY MIN(c.due_at) IS NULL, MIN(c.due_at), t.number DESC LIMIT ?",
        agent_key,
        limit,
    )
    return [
        QueuedTicket(int(r[0]), str(r[1]), str(r[2]), str(r[3]), sql.read_ts(r[4])) for r in found
    ]


def claim_digest(agent_key: str, day: int) -> bool:
    """Whether this process sends ``agent_key``'s digest of ``day`` (YYYYMMDD): once, ever.

    A conditional update of the agent's cursor: of two processes only one moves it.
    """
    key = f"digest:{agent_key}"[:100]
    sql.run("INSERT INTO setting (key, value) VALUES (?, 0) ON CONFLICT (key) DO NOTHING", key)
    cursor = sql.run("UPDATE setting SET value = ? WHERE key = ? AND value < ?", day, key, day)
    return bool(cursor.rowcount == 1)

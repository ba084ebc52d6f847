"""What reports read: the events of a period counted, the lives they need, clocks, ratings, time.

For ``mailgate.reports``, which turns these into the figures (in one place, so the
text, CSV, JSON and HTML outputs show the same numbers). What can be counted is
counted here in SQL (``tallies``: the period's events grouped by what the figures
tell apart), since a busy quarter holds half a million events and reading each into
Python cost seconds; only the figures that follow a ticket's life (first response,
resolution, one-touch, backlog, open age) read rows, as plain tuples of the columns
they need. Reads by the indexes on ``event.at`` and ``ticket.created_at`` (migration
0007) and by ticket id; lists of ids go in chunks, so a busy quarter never builds
one enormous statement. Only reads; hand-written SQL (``store.sql``).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from mailgate.store import sql

# The events a report counts: the life of a ticket and the entries of its thread.
LIFE = ("created", "status", "reopened", "merged")
# An agent's answer is an agent_reply (relayed) or agent_reply_direct event; a note a note event
# (the "message" event of an agent's mail says only that it arrived).
ANSWERS = ("agent_reply", "agent_reply_direct")
COUNTED = (*LIFE, *ANSWERS, "note", "message", "assignee", "first_response")
OPEN = ("new", "open", "pending")
_CHUNK = 500
_parse = dt.datetime.fromisoformat


# A ticket's life as the figures read it: (at, kind, old, new), in time order.
Life = tuple[dt.datetime, str, str, str]
# (kind, old, new, crediting actor, the ticket's group value, how many)
Tally = tuple[str, str, str, str, Any, int]
# (a value, how many)
Counted = tuple[str, int]
# Events a tally counts (first responses and merges are read on their own or not at all).
TALLIED = ("created", "status", "reopened", *ANSWERS, "note", "message", "assignee")
# The ticket columns a report groups by (``--by``); day and week come from the event's time.
GROUPS = {
    "team": "team.key",
    "agent": "agent.key",
    "mailbox": "t.mailbox",
    "category": "t.category",
    "priority": "t.priority",
}
_GROUP_JOINS = (
    " JOIN ticket t ON t.id = e.ticket_id LEFT JOIN team ON team.id = t.team_id"
    " LEFT JOIN agent ON agent.id = t.assignee_id"
)
_DONE = ("resolved", "closed")


@dataclass(frozen=True, slots=True)
class ClockFacts:
    ticket_id: int
    name: str
    calendar: str
    due_at: dt.datetime | None
    met_at: dt.datetime | None


def _at(raw: Any) -> dt.datetime:
    # SQLite gives text: parsed here, without the general helper (many a report)
    return _parse(raw) if isinstance(raw, str) else raw


def _chunks(ids: Iterable[int]) -> Iterator[list[int]]:
    batch = sorted(set(ids))
    for i in range(0, len(batch), _CHUNK):
        yield batch[i : i + _CHUNK]


def _group(by: str | None) -> tuple[str, str]:
    """The select column and joins of a ticket grouping (none for day, week or no grouping)."""
    if by not in GROUPS:
        return "", ""
    return f", {GROUPS[str(by)]}", _GROUP_JOINS


def tallies(start: dt.datetime, end: dt.datetime, by: str | None) -> list[Tally]:
    """The counted events with ``start <= at < end``, counted in SQL by what the figures tell
    apart: kind, the change (``old`` of status changes, ``new`` of status changes, messages and
    assignments), the actor when it is an agent, and the ticket's ``by`` column (else None)."""
    column, joins = _group(by)
    grouping = "1, 2, 3, 4, 5" if column else "1, 2, 3, 4"
    return [
        (str(r[0]), str(r[1]), str(r[2]), str(r[3]), r[4] if column else None, int(r[-1]))
        for r in sql.rows(
            "SELECT e.kind, CASE WHEN e.kind = 'status' THEN e.old ELSE '' END,"
            " CASE WHEN e.kind IN ('status', 'message', 'assignee') THEN e.new ELSE '' END,"
            " CASE WHEN substr(e.actor, 1, 6) = 'agent:' THEN e.actor ELSE '' END"
            f"{column}, count(*) FROM event e{joins}"
            f" WHERE e.at >= ? AND e.at < ? AND e.kind IN ({sql.placeholders(len(TALLIED))})"
            f" GROUP BY {grouping}",
            sql.ts(start),
            sql.ts(end),
            *TALLIED,
        )
    ]


def first_responses(
    start: dt.datetime, end: dt.datetime, by: str | None
) -> list[tuple[int, dt.datetime, dt.datetime, Any]]:
    """(ticket id, answered at, created at, the ticket's ``by`` value) of the first answers."""
    column, joins = _group(by)
    joins = joins or " JOIN ticket t ON t.id = e.ticket_id"
    return [
        (int(r[0]), _at(r[1]), _at(r[2]), r[3] if column else None)
        for r in sql.rows(
            f"SELECT e.ticket_id, e.at, t.created_at{column} FROM event e{joins}"
            " WHERE e.at >= ? AND e.at < ? AND e.kind = 'first_response' ORDER BY e.at, e.id",
            sql.ts(start),
            sql.ts(end),
        )
    ]


def resolutions(
    start: dt.datetime, end: dt.datetime, by: str | None
) -> list[tuple[int, dt.datetime, dt.datetime, Any]]:
    """(ticket id, resolved at, created at, the ticket's ``by`` value) of the resolutions: status
    changes into resolved or closed from an open status."""
    column, joins = _group(by)
    joins = joins or " JOIN ticket t ON t.id = e.ticket_id"
    return [
        (int(r[0]), _at(r[1]), _at(r[2]), r[3] if column else None)
        for r in sql.rows(
            f"SELECT e.ticket_id, e.at, t.created_at{column} FROM event e{joins}"
            " WHERE e.at >= ? AND e.at < ? AND e.kind = 'status'"
            " AND e.new IN (?, ?) AND e.old NOT IN (?, ?) ORDER BY e.at, e.id",
            sql.ts(start),
            sql.ts(end),
            *_DONE,
            *_DONE,
        )
    ]


def opened(start: dt.datetime, end: dt.datetime) -> list[tuple[str, str, int]]:
    """(category, requester's domain, tickets) of the tickets created in the period, in the
    order of each pair's first ticket; the domain is the address after its last ``@``."""
    # rtrim(x, every character but "@") leaves x up to its last "@" (all of it goes without one)
    domain = "substr(email, length(rtrim(email, replace(email, '@', ''))) + 1)"
    return [
        (str(r[0] or ""), str(r[1]), int(r[2]))
        for r in sql.rows(
            f"SELECT category, {domain}, count(*), min(n) FROM (SELECT t.category AS category,"
            " contact.email AS email, row_number() OVER (ORDER BY e.at, e.id) AS n FROM event e"
            " JOIN ticket t ON t.id = e.ticket_id JOIN contact ON contact.id = t.requester_id"
            " WHERE e.at >= ? AND e.at < ? AND e.kind = 'created') AS o GROUP BY 1, 2 ORDER BY 4",
            *_ts(start, end),
        )
    ]


def routed(start: dt.datetime, end: dt.datetime) -> list[Counted]:
    """(routing rule, tickets) of the counted events routing rules made, in the order of each
    rule's first event."""
    return [
        (str(r[0]).removeprefix("system:route:"), int(r[1]))
        for r in sql.rows(
            "SELECT actor, count(DISTINCT ticket_id), min(n) FROM (SELECT actor, ticket_id,"
            " row_number() OVER (ORDER BY at, id) AS n FROM event WHERE at >= ? AND at < ?"
            f" AND kind IN ({sql.placeholders(len(COUNTED))})"
            " AND substr(actor, 1, 13) = 'system:route:') AS r GROUP BY actor ORDER BY 3",
            *_ts(start, end),
            *COUNTED,
        )
    ]


def _ts(*instants: dt.datetime) -> list[Any]:
    return [sql.ts(x) for x in instants]


def lives(ticket_ids: Iterable[int], until: dt.datetime) -> dict[int, list[Life]]:
    """Each ticket's life events and answers before ``until``, in time order."""
    found: dict[int, list[Life]] = {}
    kinds = (*LIFE, *ANSWERS)
    for batch in _chunks(ticket_ids):
        for row in sql.rows(
            "SELECT ticket_id, at, kind, old, new FROM event"
            f" WHERE ticket_id IN ({sql.placeholders(len(batch))}) AND at < ?"
            f" AND kind IN ({sql.placeholders(len(kinds))}) ORDER BY ticket_id, at, id",
            *batch,
            sql.ts(until),
            *kinds,
        ):
            life = found.get(row[0])
            if life is None:
                life = found[row[0]] = []
            life.append((_at(row[1]), row[2], row[3], row[4]))
    return found


def live_between(start: dt.datetime, end: dt.datetime) -> list[tuple[int, dt.datetime]]:
    """(id, created at) of the tickets that may have been open at some time in [start, end):
    created before the end, and open now or changed since the start (a ticket closed earlier
    and untouched since was closed all along)."""
    return [
        (int(r[0]), _at(r[1]))
        for r in sql.rows(
            "SELECT id, created_at FROM ticket WHERE created_at < ? AND merged_into_id IS NULL"
            f" AND (status IN ({sql.placeholders(len(OPEN))}) OR updated_at >= ?)",
            sql.ts(end),
            *OPEN,
            sql.ts(start),
        )
    ]


def calendars_of(ticket_ids: Iterable[int]) -> dict[int, list[str]]:
    """The calendars of each ticket's SLA clocks, in the clocks' order."""
    found: dict[int, list[str]] = {}
    for batch in _chunks(ticket_ids):
        for r in sql.rows(
            f"SELECT ticket_id, calendar FROM sla_clock WHERE ticket_id IN"
            f" ({sql.placeholders(len(batch))}) ORDER BY ticket_id, id",
            *batch,
        ):
            found.setdefault(int(r[0]), []).append(str(r[1]))
    return found


def clocks_decided(start: dt.datetime, end: dt.datetime) -> list[ClockFacts]:
    """SLA clocks met in the period, or that ran out in it (by ``end``) without being met."""
    rows = sql.rows(
        "SELECT ticket_id, name, calendar, due_at, met_at FROM sla_clock"
        " WHERE (met_at >= ? AND met_at < ?)"
        " OR (due_at >= ? AND due_at < ? AND (met_at IS NULL OR met_at > due_at))",
        *(sql.ts(x) for x in (start, end, start, end)),
    )
    return [
        ClockFacts(int(r[0]), str(r[1]), str(r[2]), sql.read_ts(r[3]), sql.read_ts(r[4]))
        for r in rows
    ]


def ratings_between(start: dt.datetime, end: dt.datetime) -> list[tuple[int, str]]:
    """(ticket id, good|bad) of the ratings given in the period."""
    return [
        (int(r[0]), str(r[1]))
        for r in sql.rows(
            "SELECT ticket_id, rating FROM csat_rating WHERE at >= ? AND at < ?",
            sql.ts(start),
            sql.ts(end),
        )
    ]


def work_between(start: dt.datetime, end: dt.datetime) -> list[tuple[int, str, int]]:
    """(ticket id, agent, minutes) of the working time recorded in the period."""
    return [
        (int(r[0]), str(r[1]), int(r[2]))
        for r in sql.rows(
            "SELECT ticket_id, agent, minutes FROM work_time WHERE at >= ? AND at < ?",
            sql.ts(start),
            sql.ts(end),
        )
    ]

"""What reports read: the events of a period, the tickets they concern, clocks, ratings, time.

Plain rows for ``mailgate.reports``, which does the counting (in one place, so the
text, CSV, JSON and HTML outputs show the same numbers). Reads by the indexes on
``event.at`` and ``ticket.created_at`` (migration 0007) and by ticket id; lists of
ids go in chunks, so a busy quarter never builds one enormous statement. Only
reads; hand-written SQL (``store.sql``).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Iterator, Sequence
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


@dataclass(frozen=True, slots=True)
class EventRow:
    ticket_id: int
    at: dt.datetime
    actor: str
    kind: str
    old: str
    new: str


@dataclass(frozen=True, slots=True)
class TicketFacts:
    id: int
    number: int
    created_at: dt.datetime
    first_response_at: dt.datetime | None
    status: str
    priority: str
    mailbox: str
    category: str
    team: str | None
    assignee: str | None
    requester: str
    merged: bool


@dataclass(frozen=True, slots=True)
class ClockFacts:
    ticket_id: int
    name: str
    calendar: str
    due_at: dt.datetime | None
    met_at: dt.datetime | None


def _event(row: Sequence[Any]) -> EventRow:
    at = row[1]  # SQLite gives text: parsed here, without the general helper (500,000 a report)
    if isinstance(at, str):
        at = _parse(at)
    return EventRow(row[0], at, row[2], row[3], row[4], row[5])


def _chunks(ids: Iterable[int]) -> Iterator[list[int]]:
    batch = sorted(set(ids))
    for i in range(0, len(batch), _CHUNK):
        yield batch[i : i + _CHUNK]


def events_between(start: dt.datetime, end: dt.datetime) -> list[EventRow]:
    """The counted events with ``start <= at < end``, in time order."""
    kinds = sql.placeholders(len(COUNTED))
    return [
        _event(r)
        for r in sql.rows(
            "SELECT ticket_id, at, actor, kind, old, new FROM event WHERE at >= ? AND at < ?"
            f" AND kind IN ({kinds}) ORDER BY at, id",
            sql.ts(start),
            sql.ts(end),
            *COUNTED,
        )
    ]


def histories(ticket_ids: Iterable[int], until: dt.datetime) -> dict[int, list[EventRow]]:
    """Each ticket's life events and answers before ``until``, in time order."""
    found: dict[int, list[EventRow]] = {}
    kinds = (*LIFE, *ANSWERS)
    for batch in _chunks(ticket_ids):
        for row in sql.rows(
            "SELECT ticket_id, at, actor, kind, old, new FROM event"
            f" WHERE ticket_id IN ({sql.placeholders(len(batch))}) AND at < ?"
            f" AND kind IN ({sql.placeholders(len(kinds))}) ORDER BY ticket_id, at, id",
            *batch,
            sql.ts(until),
            *kinds,
        ):
            event = _event(row)
            found.setdefault(event.ticket_id, []).append(event)
    return found


def tickets(ticket_ids: Iterable[int]) -> dict[int, TicketFacts]:
    found: dict[int, TicketFacts] = {}
    for batch in _chunks(ticket_ids):
        for r in sql.rows(
            "SELECT t.id, t.number, t.created_at, t.first_response_at, t.status, t.priority,"
            " t.mailbox, t.category, team.key, agent.key, contact.email, t.merged_into_id"
            " FROM ticket t JOIN contact ON contact.id = t.requester_id"
            " LEFT JOIN team ON team.id = t.team_id LEFT JOIN agent ON agent.id = t.assignee_id"
            f" WHERE t.id IN ({sql.placeholders(len(batch))})",
            *batch,
        ):
            created = sql.read_ts(r[2])
            assert created is not None
            found[int(r[0])] = TicketFacts(
                id=int(r[0]),
                number=int(r[1]),
                created_at=created,
                first_response_at=sql.read_ts(r[3]),
                status=str(r[4]),
                priority=str(r[5]),
                mailbox=str(r[6]),
                category=str(r[7] or ""),
                team=None if r[8] is None else str(r[8]),
                assignee=None if r[9] is None else str(r[9]),
                requester=str(r[10]),
                merged=r[11] is not None,
            )
    return found


def live_between(start: dt.datetime, end: dt.datetime) -> list[int]:
    """Tickets that may have been open at some time in [start, end): created before the end,
    and open now or changed since the start (a ticket closed earlier and untouched since
    was closed all along)."""
    return [
        int(r[0])
        for r in sql.rows(
            "SELECT id FROM ticket WHERE created_at < ? AND merged_into_id IS NULL"
            f" AND (status IN ({sql.placeholders(len(OPEN))}) OR updated_at >= ?)",
            sql.ts(end),
            *OPEN,
            sql.ts(start),
        )
    ]


def clocks(ticket_ids: Iterable[int]) -> dict[int, list[ClockFacts]]:
    found: dict[int, list[ClockFacts]] = {}
    for batch in _chunks(ticket_ids):
        for r in sql.rows(
            "SELECT ticket_id, name, calendar, due_at, met_at FROM sla_clock"
            f" WHERE ticket_id IN ({sql.placeholders(len(batch))}) ORDER BY ticket_id, id",
            *batch,
        ):
            clock = ClockFacts(
                int(r[0]), str(r[1]), str(r[2]), sql.read_ts(r[3]), sql.read_ts(r[4])
            )
            found.setdefault(clock.ticket_id, []).append(clock)
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

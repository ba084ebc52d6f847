"""Ticket lists: filters, full-text search, sort and paging (and the count).

What ``mailgate.search`` asks for, as plain values (``Filter``). A page is read in
two steps: first the ids of its (at most 50) tickets, in order — the sort, the
filters and, for a search, the matches (``store.textsearch``) — then the columns
of those tickets alone. Sorting only ids keeps the sort small; the joins and
columns cost 50 rows, never the 100,000 a list of all history sorts. Sorts by a
column of few values (priority, status) and by the next due time read one index
range per value (``_segments``) instead of sorting every matching ticket. Only reads.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import peewee as pw

from mailgate.config import Config
from mailgate.mail.subject import format_tag
from mailgate.store import listsql, sql, textsearch
from mailgate.store import models as m
from mailgate.store.db import is_sqlite
from mailgate.store.sla import ticket_filter

PRIORITY_RANK = {"low": 0, "normal": 1, "high": 2, "emergency": 3}
STATUS_RANK = {"new": 0, "open": 1, "pending": 2, "resolved": 3, "closed": 4}
SORTS = (
    "created", "updated", "priority", "due", "rank",
    "number", "subject", "requester", "team", "assignee", "status",
)  # fmt: skip
SEARCHED_MATCHES = 2_000  # a text search ranks the newest this many matching messages


@dataclass(frozen=True, slots=True)
class TextTerm:
    words: tuple[str, ...]
    prefix: bool = False
    cjk: bool = False


@dataclass(frozen=True, slots=True)
class Filter:
    """Every condition is optional; given ones must all hold. Times are naive UTC."""

    statuses: tuple[str, ...] = ()
    priorities: tuple[str, ...] = ()
    teams: tuple[str, ...] = ()  # team keys; "" = no team
    assignees: tuple[str, ...] = ()  # agent keys; "" = nobody
    requester: str = ""  # an address, or a domain (every address at it)
    mailbox: str = ""
    category: str = ""
    tag: str = ""
    created_after: dt.datetime | None = None
    created_before: dt.datetime | None = None
    updated_after: dt.datetime | None = None
    updated_before: dt.datetime | None = None
    breached: bool = False
    due_before: dt.datetime | None = None
    now: dt.datetime | None = None
    terms: tuple[TextTerm, ...] = ()
    number: int | None = None
    message_id: str | None = None
    # Who may see what (mailgate.web.access): None = everything (an admin, the CLI);
    # otherwise only tickets of these team keys or assigned to ``visible_agent``.
    visible_teams: tuple[str, ...] | None = None
    visible_agent: str = ""

    @property
    def searches(self) -> bool:
        return bool(self.terms) or self.number is not None or self.message_id is not None


@dataclass(frozen=True, slots=True)
class Page:
    rows: list[dict[str, Any]]
    total: int  # how many tickets match in all
    complete: bool = True  # false: more messages matched than were searched (total is "at least")
    # How a search was cut (``store.textsearch.hits``): "" not at all, every match best
    # first; "newest": more than ``cap`` messages match, the newest ``cap`` are shown
    # newest first; "window": words without spaces, looked for in the newest ``SCANNED``.
    cut: str = ""


def page(
    config: Config,
    where: Filter,
    sort: str = "-updated",
    limit: int | None = 50,
    offset: int = 0,
    cap: int = SEARCHED_MATCHES,
    count_up_to: int | None = None,
) -> Page:
    """One page of the tickets ``where`` selects, sorted by ``sort`` (``-`` for descending).

    A text search looks at the newest ``cap`` matching messages; when more match,
    ``Page.complete`` is false and ``total`` counts the tickets among those. A list
    without text counts at most ``count_up_to`` tickets (None: all); when more match,
    ``total`` is that many and ``Page.complete`` false.
    """
    descending = sort.startswith("-")
    key = sort.lstrip("-")
    if key == "rank" and not where.searches:
        key, descending = "updated", True
    complete, cut, matches = True, "", 0
    if where.searches:
        ids, matches, cut = _searched_ids(where, cap, key, descending, limit, offset)
        complete = not cut
    elif key in ("priority", "status", "due") and not _few(where):
        ids = _segmented_ids(where, key, descending, limit, offset)
    else:
        written = listsql.where_of(where, _WAITING, is_sqlite())
        found_ids = listsql.ids(written, key, descending, limit, offset) if written else None
        if found_ids is None:
            query = _ids(where, key).order_by(*_order(key, descending))
            found_ids = [int(r[0]) for r in _paged(query, limit, offset).tuples()]
        ids = found_ids
    found = _rows_of(ids)
    if where.searches and found:
        total = matches
    elif limit is not None and len(found) < limit and (found or not offset):
        total = offset + len(found)  # the last page: what it holds is the rest
    else:  # a list without text: an index count, cheaper than counting while sorting
        seen = offset + len(found)  # at least this many match
        if count_up_to is not None and seen > count_up_to:
            total, complete = seen, False  # a page past where counting stops: no count
        else:
            written = listsql.where_of(where, _WAITING, is_sqlite())
            total = listsql.count(written, count_up_to) if written else _count(where, count_up_to)
            if count_up_to is not None and total > count_up_to:
                total, complete = count_up_to, False
    return Page([_row(config, t) for t in found], total, complete, cut)


def _order(key: str, descending: bool) -> list[Any]:
    """ORDER BY of a sort: the key (missing values last), then a tie-break."""
    t = m.Ticket
    if key == "rank":  # best first, whatever the sign asked
        return [pw.SQL("hits.score").asc(), t.updated_at.desc()]
    expression = {
        "created": t.created_at,
        "updated": t.updated_at,
        "priority": pw.Case(t.priority, list(PRIORITY_RANK.items()), -1),
        "due": t.next_due_at,
        "number": t.number,
        "subject": pw.fn.LOWER(t.subject),
        "requester": m.Contact.email,
        "team": m.Team.key,
        "assignee": m.Agent.key,
        "status": pw.Case(t.status, list(STATUS_RANK.items()), -1),
    }[key]
    direction = "DESC" if descending else "ASC"
    if key == "priority":  # within a priority the most recently updated first (index 0014)
        return [pw.Ordering(expression, direction), t.updated_at.desc(), t.id.desc()]
    return [pw.Ordering(expression, direction, nulls="LAST"), pw.Ordering(t.id, direction)]


def _ids(where: Filter, key: str, *columns: Any) -> Any:
    """SELECT id (and ``columns``) of the tickets ``where`` selects, with the joins the
    conditions and the sort ``key`` need and no others."""
    t = m.Ticket
    query = t.select(t.id, *columns)
    if where.requester or key == "requester":
        query = query.join(m.Contact, on=(t.requester == m.Contact.id)).switch(t)
    if key == "assignee":
        query = query.join(m.Agent, pw.JOIN.LEFT_OUTER, on=(t.assignee == m.Agent.id)).switch(t)
    if key == "team":
        query = query.join(m.Team, pw.JOIN.LEFT_OUTER, on=(t.team == m.Team.id)).switch(t)
    for condition in _conditions(where):
        query = query.where(condition)
    return query


def _paged(query: Any, limit: int | None, offset: int) -> Any:
    if limit is not None:
        query = query.limit(limit)
    return query.offset(offset) if offset else query


def _searched_ids(
    where: Filter, cap: int, key: str, descending: bool, limit: int | None, offset: int
) -> tuple[list[int], int, str]:
    """The page's ids among the matches, how many tickets match (in the same pass), and
    how the search was cut."""
    text, params, cut = textsearch.hits(where, cap)
    query = (
        _ids(where, key, pw.fn.COUNT(pw.SQL("*")).over().alias("matches"))
        .join(textsearch.Hits(text, params), on=(m.Ticket.id == pw.SQL("hits.ticket_id")))
        .order_by(*_order(key, descending))
    )
    found = list(_paged(query, limit, offset).tuples())
    return [int(r[0]) for r in found], int(found[0][1]) if found else 0, cut


def _segments(where: Filter, key: str, descending: bool) -> list[tuple[Any, list[Any]]]:
    """A sort by a column of few values as ranges read one after the other, each in an
    index's order: (condition, ORDER BY) per value, best first.

    Sorting 100,000 resolved tickets by priority or due time cost 0.4–1.2 s: every
    matching ticket was read and sorted for 50 of them. Priority: one range of the
    index (priority, updated_at) per priority; status: of the status index, by id;
    due: the tickets with a due time along ``ticket_next_due_at``, then those without
    (the same index, ``IS NULL``), by id — missing values last, either way.
    """
    t = m.Ticket
    direction = "DESC" if descending else "ASC"
    by_id = [pw.Ordering(t.id, direction)]
    if key == "due":
        return [
            (t.next_due_at.is_null(False), [pw.Ordering(t.next_due_at, direction), *by_id]),
            (t.next_due_at.is_null(), by_id),
        ]
    column, ranks = (t.priority, PRIORITY_RANK) if key == "priority" else (t.status, STATUS_RANK)
    wanted = where.priorities if key == "priority" else where.statuses
    values = sorted(ranks, key=ranks.__getitem__, reverse=descending)
    order = [t.updated_at.desc(), t.id.desc()] if key == "priority" else by_id
    # Every ticket has one of these (config.PRIORITIES, config.STATUSES; a test holds it).
    return [(column == v, order) for v in values if not wanted or v in wanted]


def _few(where: Filter) -> bool:
    """Only waiting tickets (new, open, pending): few, found by the status index and
    sorted whole faster than read range by range (a range of the due index in id order
    walked 200,000 resolved tickets for the 1,300 open ones: 150 ms)."""
    return bool(where.statuses) and set(where.statuses) <= _WAITING


def _segmented_ids(
    where: Filter, key: str, descending: bool, limit: int | None, offset: int
) -> list[int]:
    """The page's ids, read range after range until the page is full (``_segments``)."""
    wanted = None if limit is None else offset + limit
    found: list[int] = []
    for condition, order in _segments(where, key, descending):
        query = _ids(where, key).where(condition).order_by(*order)
        if wanted is not None:
            query = query.limit(wanted - len(found))
        found += [int(r[0]) for r in query.tuples()]
        if wanted is not None and len(found) >= wanted:
            break
    return found[offset:wanted]


# The columns a row shows (``_row``), read with SQL written once: peewee built this join
# of four tables with 50 ids anew for every page, and made each value a Python object
# through its fields — about a third of a list's time in the desk (issue 15).
_ROWS = (
    "SELECT t.id, t.number, t.subject, t.status, t.priority, t.mailbox, t.category, t.tags,"
    ' t.created_at, t.updated_at, c.email, a."key", tm."key", t.next_due_at'
    " FROM ticket t JOIN contact c ON c.id = t.requester_id"
    " LEFT JOIN agent a ON a.id = t.assignee_id LEFT JOIN team tm ON tm.id = t.team_id"
    " WHERE t.id IN ({})"
)
_ROW_KEYS = (
    "id", "number", "subject", "status", "priority", "mailbox", "category", "tags",
    "created_at", "updated_at", "requester_email", "assignee_key", "team_key", "next_due",
)  # fmt: skip


def _rows_of(ids: list[int]) -> list[dict[str, Any]]:
    """The columns a row shows, of these tickets, in this order."""
    if not ids:
        return []
    by_id = {}
    for part in sql.chunks(ids):
        for row in sql.rows(_ROWS.format(sql.placeholders(len(part))), *part):
            by_id[int(row[0])] = dict(zip(_ROW_KEYS, row, strict=True))
    return [by_id[i] for i in ids if i in by_id]


def _count(where: Filter, up_to: int | None = None) -> int:
    """How many tickets ``where`` selects, without text: the ticket table alone (the
    requester's contact only when it is a condition), so an index can answer it. With
    ``up_to``, counting stops after ``up_to + 1`` (a visibility scope is a scan)."""
    query = m.Ticket.select(m.Ticket.id)
    if where.requester:
        query = query.join(m.Contact, on=(m.Ticket.requester == m.Contact.id))
    for condition in _conditions(where):
        query = query.where(condition)
    if up_to is not None:
        query = query.limit(up_to + 1)
    return int(query.count())


def _conditions(where: Filter) -> list[Any]:
    t = m.Ticket
    found: list[Any] = []
    if where.statuses:
        found.append(_statuses(where.statuses))
    if where.priorities:
        found.append(t.priority.in_(where.priorities))
    if where.teams:
        found.append(_keyed(t.team, m.Team, where.teams))
    if where.assignees:
        found.append(_keyed(t.assignee, m.Agent, where.assignees))
    if where.requester:
        wanted = where.requester.lower()
        found.append(
            m.Contact.email == wanted
            if "@" in wanted
            else m.Contact.email.endswith(f"@{wanted}") | m.Contact.email.endswith(f".{wanted}")
        )
    if where.mailbox:
        found.append(t.mailbox == where.mailbox)
    if where.category:
        found.append(pw.fn.LOWER(t.category) == where.category.lower())
    if where.tag:
        # The tags column is JSON text: the tag with its quotes, as it is stored. (Through
        # the field, peewee JSON-encoded the whole LIKE pattern: no tag ever matched.)
        stored = json.dumps(where.tag, ensure_ascii=False)
        pattern = "%" + stored.replace("!", "!!").replace("%", "!%").replace("_", "!_") + "%"
        like = (pw.SQL("LIKE"), pw.Value(pattern, converter=False), pw.SQL("ESCAPE '!'"))
        found.append(pw.NodeList((t.tags, *like)))
    for column, after, before in (
        (t.created_at, where.created_after, where.created_before),
        (t.updated_at, where.updated_after, where.updated_before),
    ):
        if after is not None:
            found.append(column >= after)
        if before is not None:
            found.append(column < before)
    if where.breached or where.due_before is not None:
        found.append(
            ticket_filter(breached=where.breached, due_before=where.due_before, now=where.now)
        )
    if where.visible_teams is not None:
        found.append(_visible(where.visible_teams, where.visible_agent))
    return found


def _visible(teams: tuple[str, ...], agent: str) -> Any:
    """Tickets of one of ``teams`` (keys) or assigned to ``agent`` (key): in the query."""
    t = m.Ticket
    condition = t.team.in_(m.Team.select(m.Team.id).where(m.Team.key.in_(list(teams) or [""])))
    if agent:
        condition |= t.assignee.in_(m.Agent.select(m.Agent.id).where(m.Agent.key == agent))
    return condition


# Tickets waiting on someone: few of all, in any helpdesk that resolves its tickets.
_WAITING = frozenset({"new", "open", "pending"})


def _statuses(statuses: tuple[str, ...]) -> Any:
    """``status IN (...)``. SQLite's statistics (ANALYZE) keep only the average number of
    tickets per status — half the table when most are resolved or closed — so it scans
    200,000 tickets for the 1,300 open ones (35 ms; the status index: 0.2 ms).
    ``unlikely()`` tells it that the waiting statuses are rare; PostgreSQL's statistics
    see the skew themselves."""
    condition = m.Ticket.status.in_(statuses)
    if is_sqlite() and set(statuses) <= _WAITING:
        return pw.fn.unlikely(condition)
    return condition


def _keyed(column: Any, model: Any, keys: Sequence[str]) -> Any:
    named = [k for k in keys if k]
    condition = column.in_(model.select(model.id).where(model.key.in_(named or [""])))
    return condition | column.is_null() if "" in keys else condition


def _iso(value: dt.datetime | str | None) -> str | None:
    if isinstance(value, str):  # SQLite gives a computed time back as its text
        value = dt.datetime.fromisoformat(value)
    return None if value is None else value.replace(microsecond=0).isoformat() + "Z"


def _tags(stored: str | list[str] | None) -> list[str]:
    """The tags column (JSON text) as a list."""
    found = json.loads(stored) if isinstance(stored, str) and stored else stored
    return list(found or [])


def _row(config: Config, t: dict[str, Any]) -> dict[str, Any]:
    """The shape ``tickets list --json`` prints (a superset of what it always printed)."""
    return {
        "number": t["number"],
        "tag": format_tag(config.gateway.ticket_prefix, t["number"]),
        "subject": t["subject"],
        "status": t["status"],
        "priority": t["priority"],
        "requester": t["requester_email"],
        "assignee": t["assignee_key"],
        "team": t["team_key"],
        "mailbox": t["mailbox"],
        "category": t["category"],
        "tags": _tags(t["tags"]),
        "created_at": _iso(t["created_at"]),
        "updated_at": _iso(t["updated_at"]),
        # When the next running SLA clock runs out (None: no clock running).
        "due_at": _iso(t["next_due"]),
    }

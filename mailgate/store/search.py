"""Ticket lists: filters, full-text search, sort and paging in one query (and its count).

What ``mailgate.search`` asks for, as plain values (``Filter``); the text terms
are rendered for the index of this backend — FTS5 ``MATCH`` on SQLite,
``tsquery`` against ``message_search`` on PostgreSQL (migration 0007) — and a
ticket matches when one document of its thread does (a message's subject and
text, or an attachment's name). Words in a script without spaces (Chinese,
Japanese) are matched as substrings (``LIKE``), since neither tokenizer splits
them. Only reads.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import peewee as pw

from mailgate.config import Config
from mailgate.mail.subject import format_tag
from mailgate.store import models as m
from mailgate.store.db import db as database
from mailgate.store.db import is_sqlite
from mailgate.store.sla import SlaClock, ticket_filter

# Entries of a thread a person wrote: not our automatic notices, auto-replies or bounces.
SEARCHED_KINDS = ("customer", "agent", "note", "external")
PRIORITY_RANK = {"low": 0, "normal": 1, "high": 2, "emergency": 3}
STATUS_RANK = {"new": 0, "open": 1, "pending": 2, "resolved": 3, "closed": 4}
SORTS = (
    "created", "updated", "priority", "due", "rank",
    "number", "subject", "requester", "team", "assignee", "status",
)  # fmt: skip
# The expression the GIN index of migration 0007 is built on (PostgreSQL).
_NAME = "regexp_replace(a.filename, '[[:punct:]]+', ' ', 'g')"
_EXACT = -1.0e9  # the score of a ticket found by its number or a Message-ID: first
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
    # The next due time of each row in the same query (the queue shows it; no query per row).
    query = _select(where, cap).select_extend(_next_due().alias("next_due"))
    if where.searches:  # the matches are counted in the same pass as the page is ranked
        query = query.select_extend(pw.fn.COUNT(pw.SQL("*")).over().alias("matches"))
    complete = not where.searches or not _over(where, cap)
    descending = sort.startswith("-")
    key = sort.lstrip("-")
    if key == "rank" and not where.searches:
        key, descending = "updated", True
    order = {
        "created": m.Ticket.created_at,
        "updated": m.Ticket.updated_at,
        "priority": pw.Case(m.Ticket.priority, list(PRIORITY_RANK.items()), -1),
        "due": _next_due(),
        "rank": pw.SQL("hits.score"),
        "number": m.Ticket.number,
        "subject": pw.fn.LOWER(m.Ticket.subject),
        "requester": m.Contact.email,
        "team": m.Team.key,
        "assignee": m.Agent.key,
        "status": pw.Case(m.Ticket.status, list(STATUS_RANK.items()), -1),
    }[key]
    if key == "rank":  # best first, whatever the sign asked
        query = query.order_by(order.asc(), m.Ticket.updated_at.desc())
    else:
        # pw.Ordering, not order.asc(): "due" is a subquery, which has no .asc().
        query = query.order_by(
            pw.Ordering(order, "DESC" if descending else "ASC", nulls="LAST"),
            m.Ticket.id.desc() if descending else m.Ticket.id.asc(),
        )
    if limit is not None:
        query = query.limit(limit)
    if offset:
        query = query.offset(offset)
    found = list(query.dicts())
    if where.searches and found:
        total = int(found[0]["matches"])
    elif limit is not None and len(found) < limit and (found or not offset):
        total = offset + len(found)  # the last page: what it holds is the rest
    else:  # a list without text: an index count, cheaper than counting while sorting
        seen = offset + len(found)  # at least this many match
        if count_up_to is not None and seen > count_up_to:
            total, complete = seen, False  # a page past where counting stops: no count
        else:
            total = _count(where, count_up_to)
            if count_up_to is not None and total > count_up_to:
                total, complete = count_up_to, False
    return Page([_row(config, t) for t in found], total, complete)


def _next_due() -> Any:
    """When the ticket's next running SLA clock runs out (none: last)."""
    return SlaClock.select(pw.fn.MIN(SlaClock.due_at)).where(
        (SlaClock.ticket == m.Ticket.id) & SlaClock.met_at.is_null() & ~SlaClock.paused
    )


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


def _columns() -> tuple[Any, ...]:
    """The columns a row shows, read as plain values: no model objects per row."""
    t = m.Ticket
    return (
        *(t.id, t.number, t.subject, t.status, t.priority, t.mailbox, t.category, t.tags),
        *(t.created_at, t.updated_at, m.Contact.email.alias("requester_email")),
        *(m.Agent.key.alias("assignee_key"), m.Team.key.alias("team_key")),
    )


def _select(where: Filter, cap: int) -> Any:
    query = (
        m.Ticket.select(*_columns())
        .join(m.Contact, on=(m.Ticket.requester == m.Contact.id))
        .switch(m.Ticket)
        .join(m.Agent, pw.JOIN.LEFT_OUTER, on=(m.Ticket.assignee == m.Agent.id))
        .switch(m.Ticket)
        .join(m.Team, pw.JOIN.LEFT_OUTER, on=(m.Ticket.team == m.Team.id))
    )
    if where.searches:
        text, params = _hits(where, cap)
        query = query.switch(m.Ticket).join(
            _Hits(text, params), on=(m.Ticket.id == pw.SQL("hits.ticket_id"))
        )
    for condition in _conditions(where):
        query = query.where(condition)
    return query


class _Hits(pw.Source):
    """The matches as a derived table ``hits`` (ticket_id, score) peewee can join."""

    def __init__(self, text: str, params: list[Any]) -> None:
        super().__init__(alias="hits")
        self.text, self.params = text, params

    def __sql__(self, ctx: Any) -> Any:
        return ctx.literal("(").sql(pw.SQL(self.text, self.params)).literal(") AS hits")


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
        found.append(t.tags.contains(f'"{where.tag}"'))
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


# --- the text index --------------------------------------------------------------------------


def _hits(where: Filter, cap: int) -> tuple[str, list[Any]]:
    """SQL of (ticket_id, score) per matching ticket, lower score = better; its parameters.

    Among the newest ``cap`` matching messages (and attachments): ranking a million
    matches of a common word costs seconds, and tells nobody anything.
    """
    parts: list[str] = []
    params: list[Any] = []
    words = [term for term in where.terms if not term.cjk]
    substrings = [" ".join(term.words) for term in where.terms if term.cjk]
    like = "".join(
        " AND (m.subject LIKE ? ESCAPE '!' OR m.text LIKE ? ESCAPE '!')" for _ in substrings
    )
    like_params = [p for s in substrings for p in (_like(s), _like(s))]
    kinds = ", ".join(f"'{k}'" for k in SEARCHED_KINDS)
    if words and is_sqlite():
        expression = " ".join(_fts5(term) for term in words)
        parts.append(
            "SELECT m.ticket_id AS ticket_id, MIN(f.score) AS score FROM (SELECT rowid AS id,"
            " bm25(message_fts) AS score FROM message_fts WHERE message_fts MATCH ?"
            f" ORDER BY rowid DESC LIMIT {cap}) AS f"
            f" JOIN message m ON m.id = f.id WHERE m.kind IN ({kinds}){like} GROUP BY m.ticket_id"
        )
        params += [expression, *like_params]
        if not substrings:
            parts.append(
                "SELECT m.ticket_id, MIN(f.score) FROM (SELECT rowid AS id,"
                " bm25(attachment_fts) AS score FROM attachment_fts"
                f" WHERE attachment_fts MATCH ? ORDER BY rowid DESC LIMIT {cap}) AS f"
                " JOIN attachment a ON a.id = f.id"
                " JOIN message m ON m.id = a.message_id"
                " GROUP BY m.ticket_id"
            )
            params.append(expression)
    elif words:
        expression = " & ".join(_tsquery(term) for term in words)
        parts.append(
            "SELECT m.ticket_id AS ticket_id, MIN(-ts_rank(s.doc, q)) AS score"
            " FROM (SELECT message_id, doc FROM message_search"
            " WHERE doc @@ to_tsquery('simple', ?)"
            f" ORDER BY message_id DESC LIMIT {cap}) AS s JOIN message m ON m.id = s.message_id,"
            " to_tsquery('simple', ?) q"
            f" WHERE m.kind IN ({kinds}){like} GROUP BY m.ticket_id"
        )
        params += [expression, expression, *like_params]
        if not substrings:
            parts.append(
                f"SELECT m.ticket_id, MIN(-ts_rank(to_tsvector('simple'::regconfig, {_NAME}), q))"
                " FROM attachment a JOIN message m ON m.id = a.message_id,"
                " to_tsquery('simple', ?) q"
                f" WHERE to_tsvector('simple'::regconfig, {_NAME}) @@ q GROUP BY m.ticket_id"
            )
            params.append(expression)
    elif substrings:
        parts.append(
            "SELECT ticket_id, 0.0 AS score FROM (SELECT m.ticket_id FROM message m"
            f" WHERE m.kind IN ({kinds}){like} ORDER BY m.id DESC LIMIT {cap}) AS f"
            " GROUP BY ticket_id"
        )
        params += like_params
        names = " AND ".join("a.filename LIKE ? ESCAPE '!'" for _ in substrings)
        parts.append(
            "SELECT m.ticket_id, 0.0 FROM attachment a JOIN message m ON m.id = a.message_id"
            f" WHERE {names} GROUP BY m.ticket_id"
        )
        params += [_like(s) for s in substrings]
    if where.number is not None:
        parts.append(f"SELECT id, {_EXACT} FROM ticket WHERE number = ?")
        params.append(where.number)
    if where.message_id is not None:
        parts.append(f"SELECT ticket_id, {_EXACT} FROM message WHERE message_id = ?")
        params.append(where.message_id)
    union = " UNION ALL ".join(parts)
    text = f"SELECT ticket_id, MIN(score) AS score FROM ({union}) AS found GROUP BY ticket_id"
    return (text if is_sqlite() else text.replace("?", "%s")), params


def _over(where: Filter, cap: int) -> bool:
    """More than ``cap`` messages match the text (a bounded count: cheap however many)."""
    words = [term for term in where.terms if not term.cjk]
    substrings = [" ".join(term.words) for term in where.terms if term.cjk]
    if words and is_sqlite():
        text = f"SELECT rowid FROM message_fts WHERE message_fts MATCH ? LIMIT {cap + 1}"
        params: list[Any] = [" ".join(_fts5(term) for term in words)]
    elif words:
        text = (
            "SELECT message_id FROM message_search WHERE doc @@ to_tsquery('simple', %s)"
            f" LIMIT {cap + 1}"
        )
        params = [" & ".join(_tsquery(term) for term in words)]
    elif substrings:
        like = " AND ".join(
            "(subject LIKE ? ESCAPE '!' OR text LIKE ? ESCAPE '!')" for _ in substrings
        )
        text = f"SELECT id FROM message WHERE {like} LIMIT {cap + 1}"
        params = [p for s in substrings for p in (_like(s), _like(s))]
        text = text if is_sqlite() else text.replace("?", "%s")
    else:
        return False
    found = database.execute_sql(f"SELECT COUNT(*) FROM ({text}) AS x", params).fetchone()
    return int(found[0]) > cap


def _fts5(term: TextTerm) -> str:
    return '"' + " ".join(term.words) + '"' + ("*" if term.prefix else "")


def _tsquery(term: TextTerm) -> str:
    words = [f"'{w}'" for w in term.words]
    if term.prefix:
        words[-1] += ":*"
    return "(" + " <-> ".join(words) + ")"


def _like(text: str) -> str:
    return "%" + text.replace("!", "!!").replace("%", "!%").replace("_", "!_") + "%"


def _iso(value: dt.datetime | str | None) -> str | None:
    if isinstance(value, str):  # SQLite gives a computed time back as its text
        value = dt.datetime.fromisoformat(value)
    return None if value is None else value.replace(microsecond=0).isoformat() + "Z"


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
        "tags": list(t["tags"] or []),
        "created_at": _iso(t["created_at"]),
        "updated_at": _iso(t["updated_at"]),
        # When the next running SLA clock runs out (None: no clock running).
        "due_at": _iso(t["next_due"]),
    }

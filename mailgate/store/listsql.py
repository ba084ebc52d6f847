"""Ticket lists without peewee for the filters the desk sends on every page.

Part of ``store.search`` (its front door). peewee builds a list's query anew for
every page: the ids of the page, then the count, 0.5–1 ms of Python each — as much
as the queries themselves take in SQLite, for a page an agent's browser asks for
again and again (issue 15). The filters of the queue's usual pages — status,
priority, team, assignee, mailbox, the dates and the agent's visibility — and
the sorts that need no join are written here as SQL text; ``where_of`` answers
None for anything else (a requester, a tag, a category, SLA conditions, a sort
by a joined column), and ``store.search`` builds that query with peewee as
before. The text is the same SQL peewee wrote (the same conditions, the same
``unlikely()``, ``NULLS LAST``), so each query keeps its plan. Only reads.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from mailgate.store import sql
from mailgate.store.db import is_sqlite

if TYPE_CHECKING:
    from mailgate.store.search import Filter

# Sorts by a column of the ticket itself: ORDER BY of each (``store.search._order``).
_ORDER = {
    "created": "t.created_at",
    "updated": "t.updated_at",
    "number": "t.number",
    "due": "t.next_due_at",
    "subject": "LOWER(t.subject)",
}


def where_of(where: Filter, waiting: frozenset[str], sqlite: bool) -> tuple[str, list[Any]] | None:
    """WHERE (text, parameters) of ``where``'s conditions; None when one of them is not
    among those written here. ``waiting``: the statuses the status index is told are
    rare on SQLite (``store.search._statuses``)."""
    if (
        where.requester or where.category or where.tag or where.breached
        or where.due_before is not None or where.searches
    ):  # fmt: skip
        return None
    found: list[str] = []
    params: list[Any] = []
    if where.statuses:
        condition = f"t.status IN ({sql.placeholders(len(where.statuses))})"
        if sqlite and set(where.statuses) <= waiting:
            condition = f"unlikely({condition})"
        found.append(condition)
        params += where.statuses
    if where.priorities:
        found.append(f"t.priority IN ({sql.placeholders(len(where.priorities))})")
        params += where.priorities
    for column, table, keys in (
        ("t.team_id", "team", where.teams),
        ("t.assignee_id", "agent", where.assignees),
    ):
        if keys:
            named = [k for k in keys if k] or [""]
            condition = (
                f'{column} IN (SELECT id FROM {table} WHERE "key" IN'
                f" ({sql.placeholders(len(named))}))"
            )
            found.append(f"({condition} OR {column} IS NULL)" if "" in keys else condition)
            params += named
    if where.mailbox:
        found.append("t.mailbox = ?")
        params.append(where.mailbox)
    for column, after, before in (
        ("t.created_at", where.created_after, where.created_before),
        ("t.updated_at", where.updated_after, where.updated_before),
    ):
        if after is not None:
            found.append(f"{column} >= ?")
            params.append(sql.ts(after))
        if before is not None:
            found.append(f"{column} < ?")
            params.append(sql.ts(before))
    if where.visible_teams is not None:
        teams = list(where.visible_teams) or [""]
        condition = (
            f'(t.team_id IN (SELECT id FROM team WHERE "key" IN ({sql.placeholders(len(teams))}))'
        )
        params += teams
        if where.visible_agent:
            condition += ' OR t.assignee_id IN (SELECT id FROM agent WHERE "key" = ?)'
            params.append(where.visible_agent)
        found.append(condition + ")")
    return " AND ".join(found) or "1 = 1", params


def ids(
    where: tuple[str, list[Any]], key: str, descending: bool, limit: int | None, offset: int
) -> list[int] | None:
    """The page's ticket ids sorted by ``key``; None for a sort not written here."""
    column = _ORDER.get(key)
    if column is None:
        return None
    direction = "DESC" if descending else "ASC"
    text = (
        f"SELECT t.id FROM ticket t WHERE {where[0]}"
        f" ORDER BY {column} {direction} NULLS LAST, t.id {direction}"
    )
    params = list(where[1])
    if limit is not None:
        text += " LIMIT ?"
        params.append(limit)
        if offset:
            text += " OFFSET ?"
            params.append(offset)
    elif offset:
        text += " LIMIT -1 OFFSET ?" if is_sqlite() else " OFFSET ?"
        params.append(offset)
    return [int(r[0]) for r in sql.rows(text, *params)]


def count(where: tuple[str, list[Any]], up_to: int | None) -> int:
    """How many tickets match, counting at most ``up_to + 1`` (None: all)."""
    if up_to is None:
        return int(sql.value(f"SELECT COUNT(1) FROM ticket t WHERE {where[0]}", *where[1]))
    return int(
        sql.value(
            f"SELECT COUNT(1) FROM (SELECT 1 FROM ticket t WHERE {where[0]} LIMIT ?) AS x",
            *where[1],
            up_to + 1,
        )
    )

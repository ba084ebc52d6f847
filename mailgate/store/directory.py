"""Agents and teams: the config's directory mirrored into the database (tickets point at rows).

A row is created on first use from the config (several processes may race to
create it: the first insert wins), and ``sync`` brings names and addresses up to
date and marks agents no longer configured inactive,
revoking their API tokens and ending their desk sessions.
"""

from __future__ import annotations

import json
import weakref
from collections.abc import Callable
from typing import Any, TypeVar

from mailgate.config import Config
from mailgate.errors import UsageError
from mailgate.store import sql
from mailgate.store.db import db, utcnow
from mailgate.store.rows import AgentRow, TeamRow

# Teams and agents found by key or id, per database: every mail's notices look them up
# (two to four round trips a mail on PostgreSQL) and only ``sync`` and the first use of
# a configured key write these rows, from the config this process runs with. A row is
# cached once it exists (never its absence); ``sync`` empties the cache.
_Row = TypeVar("_Row", AgentRow, TeamRow)
_cache: weakref.WeakKeyDictionary[Any, dict[tuple[str, Any], Any]] = weakref.WeakKeyDictionary()


def _cached() -> dict[tuple[str, Any], Any]:
    found = _cache.get(db.obj)
    if found is None:
        found = _cache[db.obj] = {}
    return found


def _remember(key: tuple[str, Any], row: Any) -> None:
    """Cache ``row`` once the transaction that read it commits (it may have created it)."""
    cache = _cached()
    db.obj.after_commit(lambda: cache.__setitem__(key, row))


def _lookup(key: tuple[str, Any], load: Callable[[], _Row | None]) -> _Row | None:
    """The cached row of ``key``, else ``load()`` — remembered only if it exists."""
    found: _Row | None = _cached().get(key)
    if found is None:
        found = load()
        if found is not None:
            _remember(key, found)
    return found


_AGENT = "SELECT id, key, name, emails, role FROM agent"


def _agent(row: tuple[Any, ...] | None) -> AgentRow | None:
    if row is None:
        return None
    return AgentRow(
        id=int(row[0]),
        key=str(row[1]),
        name=str(row[2]),
        emails=tuple(json.loads(row[3])),
        role=str(row[4]),
    )


def agent_by_id(agent_id: int | None) -> AgentRow | None:
    if agent_id is None:
        return None
    return _lookup(
        ("agent_id", agent_id), lambda: _agent(sql.one(f"{_AGENT} WHERE id = ?", agent_id))
    )


def agent_by_key(key: str) -> AgentRow | None:
    return _lookup(("agent", key), lambda: _agent(sql.one(f"{_AGENT} WHERE key = ?", key)))


def agent_row(key: str, config: Config) -> AgentRow:
    """The row of a configured agent, created on first use."""
    found = agent_by_key(key)
    if found is not None:
        return found
    agent = config.agent(key)
    if agent is None:
        raise UsageError(f"no agent {key!r} in the config")
    sql.run(
        "INSERT INTO agent (key, name, emails, role, active) VALUES (?, ?, ?, ?, ?)"
        " ON CONFLICT (key) DO NOTHING",
        agent.key,
        agent.name,
        sql.js(list(agent.emails)),
        agent.role,
        True,
    )
    created = agent_by_key(key)
    assert created is not None
    return created


def first_active_agent() -> AgentRow | None:
    return _agent(sql.one(f"{_AGENT} WHERE active = ? ORDER BY id LIMIT 1", True))


_TEAM = "SELECT id, key, name, address FROM team"


def _team(row: tuple[Any, ...] | None) -> TeamRow | None:
    if row is None:
        return None
    return TeamRow(id=int(row[0]), key=str(row[1]), name=str(row[2]), address=str(row[3]))


def team_by_id(team_id: int | None) -> TeamRow | None:
    if team_id is None:
        return None
    return _lookup(("team_id", team_id), lambda: _team(sql.one(f"{_TEAM} WHERE id = ?", team_id)))


def _team_by_key(key: str) -> TeamRow | None:
    return _lookup(("team", key), lambda: _team(sql.one(f"{_TEAM} WHERE key = ?", key)))


def team_row(key: str, config: Config) -> TeamRow | None:
    """The row of a configured team, created on first use; None for no team ('')."""
    if not key:
        return None
    found = _team_by_key(key)
    if found is not None:
        return found
    team = config.team(key)
    if team is None:
        raise UsageError(f"no team {key!r} in the config")
    sql.run(
        "INSERT INTO team (key, name, address) VALUES (?, ?, ?) ON CONFLICT (key) DO NOTHING",
        team.key,
        team.name,
        team.address,
    )
    created = _team_by_key(key)
    assert created is not None
    return created


def sync(config: Config) -> None:
    """Mirror the config's teams and agents into the database (names may change)."""
    _cached().clear()
    for team in config.teams:
        row = team_row(team.key, config)
        if row is not None and (row.name, row.address) != (team.name, team.address):
            sql.run(
                "UPDATE team SET name = ?, address = ? WHERE id = ?",
                team.name,
                team.address,
                row.id,
            )
    for agent in config.agents:
        sql.run(
            "UPDATE agent SET name = ?, emails = ?, role = ?, active = ? WHERE id = ?",
            agent.name,
            sql.js(list(agent.emails)),
            agent.role,
            True,
            agent_row(agent.key, config).id,
        )
    _cached().clear()
    configured = [a.key for a in config.agents] or [""]
    removed = f"NOT IN ({sql.placeholders(len(configured))})"
    sql.run(f"UPDATE agent SET active = ? WHERE key {removed}", False, *configured)
    # An agent removed from the config loses every way in for good: added back later
    # (the same key, perhaps another person), they start with no token and no session.
    now = sql.ts(utcnow())
    sql.run(
        "UPDATE api_token SET revoked_at = ? WHERE revoked_at IS NULL"
        f" AND agent_id IN (SELECT id FROM agent WHERE key {removed})",
        now,
        *configured,
    )
    sql.run(
        f"UPDATE web_session SET ended_at = ? WHERE ended_at IS NULL AND agent_key {removed}",
        now,
        *configured,
    )


def open_tickets_of(keys: list[str]) -> dict[str, int]:
    """Open tickets per agent key (new, open, pending): what ``least_open`` balances."""
    return {
        str(key): int(count)
        for key, count in sql.rows(
            "SELECT a.key, COUNT(t.id) FROM agent a LEFT JOIN ticket t ON t.assignee_id = a.id"
            " AND t.status IN ('new', 'open', 'pending')"
            f" WHERE a.key IN ({sql.placeholders(len(keys))}) GROUP BY a.key",
            *keys,
        )
    }

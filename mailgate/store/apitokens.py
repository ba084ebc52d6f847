"""API tokens (migration 0011): issue, find, list and revoke; frozen rows out.

The table holds the SHA-256 of each token, never the token: a token is 32 random
bytes, so a fast hash is enough (nobody can guess its way through 2^256; a slow
password hash protects low-entropy secrets a person chose) and a lookup stays
one indexed equality. Only the caller ever sees the token, once.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from dataclasses import dataclass
from typing import Any

from mailgate.store import sql
from mailgate.store.db import utcnow, write_transaction

# ``last_used_at`` is written at most this often per token: an API read stays a read.
TOUCH_EVERY = dt.timedelta(minutes=1)


@dataclass(frozen=True, slots=True)
class TokenRow:
    id: int
    agent_key: str
    created_at: dt.datetime
    last_used_at: dt.datetime | None
    revoked_at: dt.datetime | None


def digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


_SELECT = (
    "SELECT t.id, a.key, t.created_at, t.last_used_at, t.revoked_at"
    " FROM api_token t JOIN agent a ON a.id = t.agent_id"
)


def _row(raw: tuple[Any, ...]) -> TokenRow:
    created = sql.read_ts(raw[2])
    assert created is not None
    return TokenRow(int(raw[0]), str(raw[1]), created, sql.read_ts(raw[3]), sql.read_ts(raw[4]))


def add(agent_id: int, token: str) -> TokenRow:
    """Keep the hash of the new ``token`` of the agent with row ``agent_id``."""
    new = sql.insert(
        "INSERT INTO api_token (agent_id, token_hash, created_at) VALUES (?, ?, ?)",
        agent_id,
        digest(token),
        sql.ts(utcnow()),
    )
    found = sql.one(f"{_SELECT} WHERE t.id = ?", new)
    assert found is not None
    return _row(found)


def active(token: str, now: dt.datetime | None = None) -> TokenRow | None:
    """The unrevoked token ``token`` is, noting its use (at most once a ``TOUCH_EVERY``)."""
    found = sql.one(f"{_SELECT} WHERE t.token_hash = ? AND t.revoked_at IS NULL", digest(token))
    if found is None:
        return None
    row = _row(found)
    now = now or utcnow()
    if row.last_used_at is None or now - row.last_used_at >= TOUCH_EVERY:
        with write_transaction():
            sql.run("UPDATE api_token SET last_used_at = ? WHERE id = ?", sql.ts(now), row.id)
    return row


def of_agent(agent_key: str) -> list[TokenRow]:
    """Every token of the agent, revoked ones too, oldest first."""
    return [_row(r) for r in sql.rows(f"{_SELECT} WHERE a.key = ? ORDER BY t.id", agent_key)]


def revoke(agent_key: str, token_id: int | None) -> int:
    """Revoke the agent's token ``token_id`` (None: all of them); how many were revoked."""
    where = "revoked_at IS NULL AND agent_id IN (SELECT id FROM agent WHERE key = ?)"
    params: list[Any] = [sql.ts(utcnow()), agent_key]
    if token_id is not None:
        where += " AND id = ?"
        params.append(token_id)
    cursor = sql.run(f"UPDATE api_token SET revoked_at = ? WHERE {where}", *params)
    return int(cursor.rowcount)

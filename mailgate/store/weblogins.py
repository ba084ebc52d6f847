"""Logins to the web desk: password hashes, sessions, login attempts, one-time links.

Secrets never reach the database as they are: a session id and a login-link token
are kept as their SHA-256 (``digest``), a password as the Argon2 hash the caller
made. Reads return frozen values; the session lookup every page request makes is
one query by primary key. Imports ``store.sql`` and ``store.db`` only (migration 0010).
"""

from __future__ import annotations

import datetime as dt
import hashlib
from dataclasses import dataclass
from typing import Any

from mailgate.store import sql
from mailgate.store.db import utcnow, write_transaction

# Attempts are kept this long: far longer than any rate-limit window looks back.
KEEP_ATTEMPTS = dt.timedelta(days=2)
# Ended or expired sessions and used or expired links are forgotten after this long.
KEEP_ENDED = dt.timedelta(days=7)


def digest(secret: str) -> str:
    """What is stored of a session id or a link token: its SHA-256, in hex."""
    return hashlib.sha256(secret.encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class Password:
    agent_key: str
    hash: str
    set_at: dt.datetime


@dataclass(frozen=True, slots=True)
class Session:
    id_hash: str
    agent_key: str
    csrf: str
    created_at: dt.datetime
    seen_at: dt.datetime
    ended_at: dt.datetime | None


@dataclass(frozen=True, slots=True)
class Link:
    token_hash: str
    agent_key: str
    created_at: dt.datetime
    expires_at: dt.datetime
    used_at: dt.datetime | None


def _ts(raw: Any) -> dt.datetime:
    return sql.read_ts(raw) or utcnow()


# --- passwords ------------------------------------------------------------------------------


def set_password(agent_key: str, password_hash: str) -> None:
    with write_transaction():
        sql.run(
            "INSERT INTO web_password (agent_key, hash, set_at) VALUES (?, ?, ?)"
            " ON CONFLICT (agent_key) DO UPDATE SET hash = excluded.hash, set_at = excluded.set_at",
            agent_key,
            password_hash,
            sql.ts(utcnow()),
        )


def password(agent_key: str) -> Password | None:
    r = sql.one("SELECT agent_key, hash, set_at FROM web_password WHERE agent_key = ?", agent_key)
    return None if r is None else Password(str(r[0]), str(r[1]), _ts(r[2]))


# --- sessions -------------------------------------------------------------------------------


def start_session(id_hash: str, agent_key: str, csrf: str) -> Session:
    now = utcnow()
    with write_transaction():
        sql.run(
            "INSERT INTO web_session (id_hash, agent_key, csrf, created_at, seen_at)"
            " VALUES (?, ?, ?, ?, ?)",
            id_hash,
            agent_key,
            csrf,
            sql.ts(now),
            sql.ts(now),
        )
        sql.run(
            "DELETE FROM web_session WHERE seen_at < ? OR ended_at < ?",
            sql.ts(now - KEEP_ENDED),
            sql.ts(now - KEEP_ENDED),
        )
    return Session(id_hash, agent_key, csrf, now, now, None)


def session(id_hash: str) -> Session | None:
    """The session of this id hash, ended or not (one query by primary key)."""
    r = sql.one(
        "SELECT id_hash, agent_key, csrf, created_at, seen_at, ended_at FROM web_session"
        " WHERE id_hash = ?",
        id_hash,
    )
    if r is None:
        return None
    return Session(str(r[0]), str(r[1]), str(r[2]), _ts(r[3]), _ts(r[4]), sql.read_ts(r[5]))


def touch(id_hash: str, when: dt.datetime) -> None:
    """The session was used at ``when`` (the idle clock starts again)."""
    with write_transaction():
        sql.run(
            "UPDATE web_session SET seen_at = ? WHERE id_hash = ? AND seen_at < ?",
            sql.ts(when),
            id_hash,
            sql.ts(when),
        )


def end_session(id_hash: str) -> None:
    with write_transaction():
        sql.run(
            "UPDATE web_session SET ended_at = ? WHERE id_hash = ? AND ended_at IS NULL",
            sql.ts(utcnow()),
            id_hash,
        )


def end_sessions_of(agent_key: str) -> int:
    """End every open session of an agent; how many there were."""
    with write_transaction():
        count: int = sql.run(
            "UPDATE web_session SET ended_at = ? WHERE agent_key = ? AND ended_at IS NULL",
            sql.ts(utcnow()),
            agent_key,
        ).rowcount
    return count


# --- login attempts -------------------------------------------------------------------------


def record_attempt(account: str, client: str, ok: bool) -> None:
    now = utcnow()
    with write_transaction():
        sql.run(
            "INSERT INTO web_login_attempt (account, client, at, ok) VALUES (?, ?, ?, ?)",
            account[:320],
            client[:100],
            sql.ts(now),
            ok,
        )
        sql.run("DELETE FROM web_login_attempt WHERE at < ?", sql.ts(now - KEEP_ATTEMPTS))


def failures(
    *, account: str | None = None, client: str | None = None, since: dt.datetime
) -> list[dt.datetime]:
    """When the failed logins for ``account`` (or from ``client``) since ``since`` were."""
    column, value = ("account", account) if account is not None else ("client", client)
    found = sql.rows(
        f"SELECT at FROM web_login_attempt WHERE {column} = ? AND at >= ? AND ok = ? ORDER BY at",
        value,
        sql.ts(since),
        False,
    )
    return [_ts(r[0]) for r in found]


# --- one-time login links -------------------------------------------------------------------


def create_link(token_hash: str, agent_key: str, expires_at: dt.datetime) -> None:
    now = utcnow()
    with write_transaction():
        sql.run(
            "INSERT INTO web_login_link (token_hash, agent_key, created_at, expires_at)"
            " VALUES (?, ?, ?, ?)",
            token_hash,
            agent_key,
            sql.ts(now),
            sql.ts(expires_at),
        )
        sql.run("DELETE FROM web_login_link WHERE expires_at < ?", sql.ts(now - KEEP_ENDED))


def links_since(agent_key: str, since: dt.datetime) -> int:
    return int(
        sql.value(
            "SELECT COUNT(*) FROM web_login_link WHERE agent_key = ? AND created_at >= ?",
            agent_key,
            sql.ts(since),
        )
    )


def link(token_hash: str) -> Link | None:
    r = sql.one(
        "SELECT token_hash, agent_key, created_at, expires_at, used_at FROM web_login_link"
        " WHERE token_hash = ?",
        token_hash,
    )
    if r is None:
        return None
    return Link(str(r[0]), str(r[1]), _ts(r[2]), _ts(r[3]), sql.read_ts(r[4]))


def use_link(token_hash: str, when: dt.datetime) -> str | None:
    """Mark the link used; its agent's key, or None when it was used or expired already."""
    with write_transaction():
        r = sql.one(
            "UPDATE web_login_link SET used_at = ? WHERE token_hash = ? AND used_at IS NULL"
            " AND expires_at > ? RETURNING agent_key",
            sql.ts(when),
            token_hash,
            sql.ts(when),
        )
    return None if r is None else str(r[0])

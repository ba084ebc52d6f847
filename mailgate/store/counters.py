"""Small counters: sequential ticket numbers, round-robin positions (the ``setting`` table)."""

from __future__ import annotations

from mailgate.store import sql


def increment(key: str, *, start: int = 0) -> int:
    """Add one to counter ``key`` (created at ``start``) and return the new value.

    Atomic under concurrency: the row is created at most once, and the update
    that returns the value holds the row lock.
    """
    sql.run(
        "INSERT INTO setting (key, value) VALUES (?, ?) ON CONFLICT (key) DO NOTHING", key, start
    )
    return int(sql.value("UPDATE setting SET value = value + 1 WHERE key = ? RETURNING value", key))


def value(key: str) -> int:
    """The counter's value (0 when it was never incremented)."""
    return int(sql.value("SELECT value FROM setting WHERE key = ?", key) or 0)

"""Small counters: sequential ticket numbers, round-robin positions (the ``setting`` table)."""

from __future__ import annotations

from mailgate.store import sql


def increment(key: str, *, first: int = 1) -> int:
    """Add one to counter ``key`` and return the new value; a new counter returns ``first``.

    A counter below ``first`` (the operator raised ``gateway.first_ticket_number``)
    jumps to it; one above it goes on, so a number is never handed out twice.
    Atomic under concurrency: the row is created at most once, and the update
    that returns the value holds the row lock.
    """
    sql.run(
        "INSERT INTO setting (key, value) VALUES (?, ?) ON CONFLICT (key) DO NOTHING",
        key,
        first - 1,
    )
    return int(
        sql.value(
            "UPDATE setting SET value = CASE WHEN value + 1 < ? THEN ? ELSE value + 1 END"
            " WHERE key = ? RETURNING value",
            first,
            first,
            key,
        )
    )


def value(key: str) -> int:
    """The counter's value (0 when it was never incremented)."""
    return int(sql.value("SELECT value FROM setting WHERE key = ?", key) or 0)

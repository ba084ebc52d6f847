"""The circuit breaker's bookkeeping: automatic mail per recipient and ticket, and per minute.

``auto_mail_log`` has a row per recipient of every automatic notice (the
per-recipient and per-ticket windows); ``mail_counter`` a row per minute for
the overall window, so that "all mail in the last hour" costs at most 60 rows.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence

from mailgate.store import sql


def minute(when: dt.datetime) -> int:
    return int(when.replace(tzinfo=dt.UTC).timestamp() // 60)


def per_recipient(recipients: Sequence[str], since: dt.datetime) -> dict[str, int]:
    return {
        str(k): int(v)
        for chunk in sql.chunks(recipients)
        for k, v in sql.rows(
            "SELECT recipient, COUNT(*) FROM auto_mail_log WHERE recipient IN"
            f" ({sql.placeholders(len(chunk))}) AND at > ? GROUP BY recipient",
            *chunk,
            sql.ts(since),
        )
    }


def per_ticket(ticket_id: int, since: dt.datetime, limit: int) -> int:
    """Automatic mail on the ticket since then, counted up to ``limit`` (where a window is full)."""
    return int(
        sql.value(
            "SELECT COUNT(*) FROM (SELECT 1 FROM auto_mail_log WHERE ticket_id = ? AND at > ?"
            " LIMIT ?) AS recent",
            ticket_id,
            sql.ts(since),
            limit,
        )
        or 0
    )


def overall(since_minute: int) -> int:
    return int(
        sql.value("SELECT COALESCE(SUM(count), 0) FROM mail_counter WHERE minute > ?", since_minute)
        or 0
    )


def windows(
    recipients: Sequence[str],
    recipient_since: Sequence[dt.datetime],
    ticket_id: int,
    ticket_windows: Sequence[tuple[dt.datetime, int]],
    overall_since: Sequence[int],
    now: dt.datetime,
) -> tuple[list[dict[str, int]], list[int], list[int], set[str]]:
    """Every window's count in one statement: ``per_recipient`` for each of
    ``recipient_since``, ``per_ticket`` for each (since, limit), ``overall`` for each
    minute — and which of ``recipients`` are undeliverable at ``now`` (their details:
    ``people.undeliverable``). The same as those reads, one round trip instead of one
    per window."""
    variables = len(recipients) * (len(recipient_since) + 1) + 3 * len(ticket_windows)
    if variables + 2 * len(recipient_since) + len(overall_since) + 1 > sql.MAX_VARIABLES:
        return (
            [per_recipient(recipients, since) for since in recipient_since],
            [per_ticket(ticket_id, since, limit) for since, limit in ticket_windows],
            [overall(since) for since in overall_since],
            set(_undeliverable(recipients, now)),
        )
    parts: list[str] = []
    params: list[object] = []
    if recipients:
        parts.append(
            "SELECT -1, email, 0 FROM contact WHERE email IN"
            f" ({sql.placeholders(len(recipients))}) AND undeliverable_until > ?"
        )
        params += [*recipients, sql.ts(now)]
    if recipients:
        marks = sql.placeholders(len(recipients))
        for index, since in enumerate(recipient_since):
            parts.append(
                f"SELECT {index}, recipient, COUNT(*) FROM auto_mail_log"
                f" WHERE recipient IN ({marks}) AND at > ? GROUP BY recipient"
            )
            params += [*recipients, sql.ts(since)]
    base = len(recipient_since)
    for index, (since, limit) in enumerate(ticket_windows):
        parts.append(
            f"SELECT {base + index}, '', (SELECT COUNT(*) FROM (SELECT 1 FROM auto_mail_log"
            " WHERE ticket_id = ? AND at > ? LIMIT ?) AS recent)"
        )
        params += [ticket_id, sql.ts(since), limit]
    base += len(ticket_windows)
    for index, since_minute in enumerate(overall_since):
        parts.append(
            f"SELECT {base + index}, '',"
            " (SELECT COALESCE(SUM(count), 0) FROM mail_counter WHERE minute > ?)"
        )
        params.append(since_minute)
    seen: list[dict[str, int]] = [{} for _ in range(base + len(overall_since))]
    unhealthy: set[str] = set()
    if parts:
        for index, key, found in sql.rows(" UNION ALL ".join(parts), *params):
            if int(index) < 0:
                unhealthy.add(str(key))
            else:
                seen[int(index)][str(key)] = int(found or 0)
    recipient_counts = seen[: len(recipient_since)]
    scalars = [s.get("", 0) for s in seen[len(recipient_since) :]]
    return (
        recipient_counts,
        scalars[: len(ticket_windows)],
        scalars[len(ticket_windows) :],
        unhealthy,
    )


def _undeliverable(emails: Sequence[str], now: dt.datetime) -> list[str]:
    return [
        str(row[0])
        for chunk in sql.chunks(emails)
        for row in sql.rows(
            f"SELECT email FROM contact WHERE email IN ({sql.placeholders(len(chunk))})"
            " AND undeliverable_until > ?",
            *chunk,
            sql.ts(now),
        )
    ]


def count(recipients: Iterable[tuple[str, int]], now: dt.datetime) -> None:
    """Count automatic mail: (recipient key, ticket id) per recipient, and the minute."""
    at = sql.ts(now)
    rows = [(recipient, ticket_id, at) for recipient, ticket_id in recipients]
    if not rows:
        return
    sql.insert_many("auto_mail_log", ("recipient", "ticket_id", "at"), rows)
    sql.later(
        "INSERT INTO mail_counter (minute, count) VALUES (?, ?) ON CONFLICT (minute)"
        " DO UPDATE SET count = mail_counter.count + excluded.count",
        minute(now),
        len(rows),
    )


def prune(cutoff: dt.datetime) -> None:
    """Forget bookkeeping older than ``cutoff`` (the longest window).

    The log has no index by time alone (migration 0016: each mail wrote a page of it):
    its rows are added in time order, so the ones before the first row still counted
    (in id order) are all older than the cutoff, and go by id. That first row is found
    walking from the oldest, across the rows that go anyway. A row counted at a later
    time (held mail, counted when due) keeps the rows after it until it is past the
    cutoff itself — a window later at most; the counts read ``at`` and never see them.
    """
    sql.run(
        "DELETE FROM auto_mail_log WHERE id < COALESCE("
        "(SELECT id FROM auto_mail_log WHERE at >= ? ORDER BY id LIMIT 1),"
        " (SELECT MAX(id) + 1 FROM auto_mail_log))",
        sql.ts(cutoff),
    )
    sql.run("DELETE FROM mail_counter WHERE minute < ?", minute(cutoff))


def reset(*, ticket_id: int | None = None, recipient: str = "") -> int:
    """Forget the breaker's bookkeeping: of one ticket, of one recipient, or all of it
    (the overall window too). How many rows of the log went."""
    if ticket_id is not None:
        return int(sql.run("DELETE FROM auto_mail_log WHERE ticket_id = ?", ticket_id).rowcount)
    if recipient:
        return int(
            sql.run(
                "DELETE FROM auto_mail_log WHERE recipient IN (?, ?)",
                recipient,
                f"staff:{recipient}",
            ).rowcount
        )
    gone = int(sql.run("DELETE FROM auto_mail_log").rowcount)
    sql.run("DELETE FROM mail_counter")
    return gone

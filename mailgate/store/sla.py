"""SLA clocks and due work (timers) in the database: what ``mailgate.sla`` and ``jobs`` keep.

``sla_clock``: each ticket's clocks as last computed from its history (one row per
clock; ``due_at`` indexed for ``tickets list --due-before``). ``timer``: one row per
action that falls due (an SLA warning or breach, a pending reminder, an
auto-resolve or auto-close), unique per ticket, kind and key, so an action done
once stays done; undone rows are found by a partial index on ``due_at`` — a run
of the jobs costs what is due, never a scan of the open tickets.

Hand-written SQL (``store.sql``) for what runs per mail and per due action; the
models describe the tables for the migration check and the list filter.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import peewee as pw

from mailgate.store import sql
from mailgate.store.db import is_sqlite, transaction_cache, utcnow
from mailgate.store.models import BaseModel, Ticket


class SlaClock(BaseModel):
    if TYPE_CHECKING:
        ticket_id: Any

    ticket = pw.ForeignKeyField(Ticket, backref="+", on_delete="CASCADE", index=False)
    name = pw.CharField(max_length=30)
    policy = pw.CharField(max_length=100)
    policy_name = pw.CharField(max_length=200)
    calendar = pw.CharField(max_length=100)
    timezone = pw.CharField(max_length=100)
    started_at = pw.DateTimeField()
    target_seconds = pw.BigIntegerField()
    due_at = pw.DateTimeField(null=True, index=True)
    warn_at = pw.DateTimeField(null=True)
    met_at = pw.DateTimeField(null=True)
    paused = pw.BooleanField()
    remaining_seconds = pw.BigIntegerField()
    updated_at = pw.DateTimeField(default=utcnow)

    class Meta:
        table_name = "sla_clock"
        indexes = ((("ticket", "name"), True),)


class Timer(BaseModel):
    if TYPE_CHECKING:
        ticket_id: Any

    ticket = pw.ForeignKeyField(Ticket, backref="+", on_delete="CASCADE", index=False)
    kind = pw.CharField(max_length=30)
    key = pw.CharField(max_length=100)
    due_at = pw.DateTimeField()
    done_at = pw.DateTimeField(null=True)
    outcome = pw.TextField(default="")

    class Meta:
        table_name = "timer"
        indexes = ((("ticket", "kind", "key"), True),)


@dataclass(frozen=True, slots=True)
class ClockRow:
    """One SLA clock of a ticket as last computed (``due_at``: when it runs or ran out)."""

    ticket_id: int
    name: str  # first_response | next_response | resolution
    policy: str
    policy_name: str
    calendar: str
    timezone: str
    started_at: dt.datetime
    target_seconds: int
    due_at: dt.datetime | None
    warn_at: dt.datetime | None
    met_at: dt.datetime | None
    paused: bool
    remaining_seconds: int  # working seconds left when it stopped (negative: overdue)


@dataclass(frozen=True, slots=True)
class TimerRow:
    id: int
    ticket_id: int
    kind: str  # sla_warning sla_breach pending_reminder pending_close resolved_close
    key: str
    due_at: dt.datetime
    done_at: dt.datetime | None


_CLOCK_COLUMNS = (
    "ticket_id", "name", "policy", "policy_name", "calendar", "timezone", "started_at",
    "target_seconds", "due_at", "warn_at", "met_at", "paused", "remaining_seconds", "updated_at",
)  # fmt: skip
_TIMER = "SELECT id, ticket_id, kind, key, due_at, done_at FROM timer"


def _clock(row: Sequence[Any]) -> ClockRow:
    started = sql.read_ts(row[6])
    assert started is not None
    return ClockRow(
        ticket_id=int(row[0]),
        name=str(row[1]),
        policy=str(row[2]),
        policy_name=str(row[3]),
        calendar=str(row[4]),
        timezone=str(row[5]),
        started_at=started,
        target_seconds=int(row[7]),
        due_at=sql.read_ts(row[8]),
        warn_at=sql.read_ts(row[9]),
        met_at=sql.read_ts(row[10]),
        paused=bool(row[11]),
        remaining_seconds=int(row[12]),
    )


def _timer(row: Sequence[Any]) -> TimerRow:
    due = sql.read_ts(row[4])
    assert due is not None
    return TimerRow(int(row[0]), int(row[1]), str(row[2]), str(row[3]), due, sql.read_ts(row[5]))


# --- clocks -------------------------------------------------------------------------------


def none_yet(ticket_id: int, *, timers: bool = True) -> None:
    """The ticket has no clocks (and, with ``timers``, no timers) as the open transaction
    sees it — it inserted the ticket (nobody else can have written any), or read it locked
    with ``HAS_CLOCKS`` false: the transaction reads none until it writes some (a round
    trip less each)."""
    cache = transaction_cache()
    if cache is not None:
        cache[("sla_clock", ticket_id)] = ()
        if timers:  # a new ticket: its history is what this transaction writes (``noted``)
            cache[("timer", ticket_id)] = ()
            cache[("history", ticket_id)] = []


# Whether a ticket has clocks, as a column of a statement on ``ticket`` (``tickets.lock``).
HAS_CLOCKS = "EXISTS (SELECT 1 FROM sla_clock WHERE sla_clock.ticket_id = ticket.id)"


def clocks_of(ticket_id: int) -> list[ClockRow]:
    """The ticket's clocks; read once per transaction (the reaction and every notice's
    variables ask), until ``replace_clocks`` writes them."""
    cache = transaction_cache()
    key = ("sla_clock", ticket_id)
    if cache is not None and key in cache:
        return list(cache[key])
    order = "CASE name WHEN 'first_response' THEN 0 WHEN 'next_response' THEN 1 ELSE 2 END"
    clocks = [
        _clock(r)
        for r in sql.rows(
            f"SELECT {', '.join(_CLOCK_COLUMNS[:-1])} FROM sla_clock WHERE ticket_id = ?"
            f" ORDER BY {order}",
            ticket_id,
        )
    ]
    if cache is not None:
        cache[key] = tuple(clocks)
    return clocks


def replace_clocks(ticket_id: int, clocks: Iterable[ClockRow]) -> None:
    """The ticket's clocks are these now (computed from its history), and the ticket's
    ``next_due_at`` with them: the earliest due time of a clock neither met nor paused."""
    clocks = list(clocks)
    cache = transaction_cache()
    if cache is not None:
        cache.pop(("sla_clock", ticket_id), None)
    now = sql.ts(utcnow())
    running = [c.due_at for c in clocks if c.due_at and c.met_at is None and not c.paused]
    sql.run(
        "UPDATE ticket SET next_due_at = ? WHERE id = ?",
        sql.ts(min(running)) if running else None,
        ticket_id,
    )
    sql.run("DELETE FROM sla_clock WHERE ticket_id = ?", ticket_id)
    sql.insert_many(
        "sla_clock",
        _CLOCK_COLUMNS,
        [
            (c.ticket_id, c.name, c.policy, c.policy_name, c.calendar, c.timezone,
             sql.ts(c.started_at), c.target_seconds, sql.ts(c.due_at), sql.ts(c.warn_at),
             sql.ts(c.met_at), c.paused, c.remaining_seconds, now)
            for c in clocks
        ],
    )  # fmt: skip


def ticket_filter(*, breached: bool = False, due_before: dt.datetime | None = None,
                  now: dt.datetime | None = None) -> Any:  # fmt: skip
    """A condition on ``Ticket.id`` for ticket lists: ``--breached``, ``--due-before TIME``.

    Breached: a clock ran out before it was met (or by ``now``). Due before: a running
    clock runs out before ``due_before``. Both together: either. For the search branch's
    list queries as well (``query.where(ticket_filter(...))``); indexed by ``due_at``.
    """
    now = now or utcnow()
    conditions = []
    if breached:
        conditions.append(
            (SlaClock.due_at <= now)
            & (SlaClock.met_at.is_null() | (SlaClock.due_at < SlaClock.met_at))
        )
    if due_before is not None:
        conditions.append(
            (SlaClock.due_at < due_before) & SlaClock.met_at.is_null() & ~SlaClock.paused
        )
    if not conditions:
        return Ticket.id.is_null(False)
    where = conditions[0]
    for condition in conditions[1:]:
        where = where | condition
    return Ticket.id.in_(SlaClock.select(SlaClock.ticket).where(where))


# --- timers: the due work -------------------------------------------------------------------


def timers_of(ticket_id: int) -> list[TimerRow]:
    cache = transaction_cache()
    if cache is not None and ("timer", ticket_id) in cache:  # none yet (``none_yet``)
        return list(cache[("timer", ticket_id)])
    return [_timer(r) for r in sql.rows(f"{_TIMER} WHERE ticket_id = ? ORDER BY id", ticket_id)]


def _timers_written(ticket_id: int | None) -> None:
    """Forget what ``none_yet`` said about the timers of ``ticket_id`` (None: of all)."""
    cache = transaction_cache()
    if cache is not None:
        timers = [k for k in cache if isinstance(k, tuple) and k[0] == "timer"]
        for key in [k for k in timers if ticket_id in (None, k[1])]:
            del cache[key]


def sync_timers(ticket_id: int, wanted: Sequence[tuple[str, str, dt.datetime]]) -> None:
    """The undone timers of the ticket are ``wanted`` (kind, key, due) now; done ones stay done."""
    existing = {(t.kind, t.key): t for t in timers_of(ticket_id)}
    _timers_written(ticket_id)
    keep = {(kind, key): due for kind, key, due in wanted}
    for ident, timer in existing.items():
        if timer.done_at is not None:
            continue
        if ident not in keep:
            sql.run("DELETE FROM timer WHERE id = ?", timer.id)
        elif keep[ident] != timer.due_at:
            sql.run("UPDATE timer SET due_at = ? WHERE id = ?", sql.ts(keep[ident]), timer.id)
    new = [(k, key, due) for (k, key), due in keep.items() if (k, key) not in existing]
    for kind, key, due in new:
        sql.run(
            "INSERT INTO timer (ticket_id, kind, key, due_at, outcome) VALUES (?, ?, ?, ?, '')"
            " ON CONFLICT (ticket_id, kind, key) DO NOTHING",
            ticket_id,
            kind,
            key,
            sql.ts(due),
        )


def due(
    at: dt.datetime,
    limit: int,
    skip: Sequence[int] = (),
    after: tuple[dt.datetime, int] | None = None,
) -> list[TimerRow]:
    """Undone timers due at ``at`` or before, earliest first (the partial index ``timer_due``).

    ``skip``: ids passed over in this run; ``after``: (due, id) to page on from.
    """
    where, params = "", list[Any]()
    if skip:
        where += f" AND id NOT IN ({sql.placeholders(len(skip))})"
        params.extend(skip)
    if after is not None:
        where += " AND (due_at > ? OR (due_at = ? AND id > ?))"
        params.extend([sql.ts(after[0]), sql.ts(after[0]), after[1]])
    return [
        _timer(r)
        for r in sql.rows(
            f"{_TIMER} WHERE done_at IS NULL AND due_at <= ?{where} ORDER BY due_at, id LIMIT ?",
            sql.ts(at),
            *params,
            limit,
        )
    ]


def claim(timer_id: int) -> TimerRow | None:
    """Re-read an undone timer inside the transaction that does it (locked on PostgreSQL)."""
    lock = "" if is_sqlite() else " FOR UPDATE"
    row = sql.one(f"{_TIMER} WHERE id = ? AND done_at IS NULL{lock}", timer_id)
    return None if row is None else _timer(row)


def mark_done(timer_id: int, now: dt.datetime, outcome: str) -> None:
    _timers_written(None)
    sql.run(
        "UPDATE timer SET done_at = ?, outcome = ? WHERE id = ?", sql.ts(now), outcome, timer_id
    )


# --- history and refresh ------------------------------------------------------------------

HISTORY_KINDS = (
    "status", "reopened", "merged", "message", "agent_reply", "agent_reply_direct", "resolution",
)  # fmt: skip


def noted(rows: Sequence[Sequence[Any]]) -> None:
    """Event rows (``events.COLUMNS``) this transaction writes: kept for the ``history`` of
    a ticket it made (``none_yet``), whose events are all its own — not read back."""
    cache = transaction_cache()
    if not cache:
        return
    for ticket_id, at, _, kind, old, new, *_ in rows:
        kept = cache.get(("history", ticket_id))
        if kept is not None and kind in HISTORY_KINDS:
            kept.append((str(kind), str(sql.clean(old) or ""), str(sql.clean(new) or ""), at))


def history(ticket_id: int) -> list[tuple[str, str, str, dt.datetime]]:
    """(kind, old, new, at) of the events the clocks are computed from, in order."""
    cache = transaction_cache()
    if cache is not None and ("history", ticket_id) in cache:
        return list(cache[("history", ticket_id)])
    found = []
    for kind, old, new, at in sql.rows(
        "SELECT kind, old, new, at FROM event WHERE ticket_id = ?"
        f" AND kind IN ({sql.placeholders(len(HISTORY_KINDS))}) ORDER BY id",
        ticket_id,
        *HISTORY_KINDS,
    ):
        when = sql.read_ts(at)
        assert when is not None
        found.append((str(kind), str(old or ""), str(new or ""), when))
    return found


def live_ticket_ids(after: int, limit: int) -> list[int]:
    """Tickets whose clocks or timers can still change (not closed, not merged), by id."""
    return [
        int(r[0])
        for r in sql.rows(
            "SELECT id FROM ticket WHERE id > ?"
            " AND status IN ('new', 'open', 'pending', 'resolved')"
            " AND merged_into_id IS NULL ORDER BY id LIMIT ?",
            after,
            limit,
        )
    ]


def fingerprint() -> int | None:
    """The fingerprint of the time settings the stored clocks were computed with."""
    found = sql.value("SELECT value FROM setting WHERE key = 'sla_config'")
    return None if found is None else int(found)


def lock_refresh() -> None:
    """Only one process recomputes after a config change (SQLite: the write lock already)."""
    if not is_sqlite():
        sql.run("SELECT pg_advisory_xact_lock(?)", _REFRESH_LOCK)


_REFRESH_LOCK = 0x736C61  # "sla"


def set_fingerprint(value: int) -> None:
    sql.run(
        "INSERT INTO setting (key, value) VALUES ('sla_config', ?)"
        " ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        value,
    )

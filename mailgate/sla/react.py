"""Keeping clocks and timers in step with a ticket's history: per transaction, and at start.

``react`` is the line in ``reactions.finish``: for every ticket whose events can
move a clock (created, status, reopened, priority, team, a customer message, an
agent's answer, merged), the clocks are computed again from the whole history
and stored, and the ticket's due work (timers) is set to match — done timers stay
done, so a warning, a breach or a reminder happens once per clock.

``refresh`` runs when a process starts its jobs: when the time settings of the
config differ from those the stored clocks were computed with, every live ticket
is computed again, with an ``sla_due_changed`` event where a due time moved.
"""

from __future__ import annotations

import datetime as dt

from mailgate.config import Config
from mailgate.events import Event, Journal
from mailgate.sla import clocks as clock_math
from mailgate.sla.policy import Policy, choose, settings
from mailgate.store import directory, people, write_transaction
from mailgate.store import sla as rows
from mailgate.store import tickets as ticket_rows
from mailgate.store.rows import TicketRow

TRIGGERS = frozenset(
    {
        "created", "status", "reopened", "merged", "priority", "team", "message",
        "agent_reply", "agent_reply_direct", "resolution",
    }
)  # fmt: skip
# Without SLA policies only a change of status can move due work (the lifecycle's timers).
STATUS_TRIGGERS = frozenset({"created", "status", "reopened", "merged"})
ACTOR = "system:sla"


def react(config: Config, journal: Journal) -> None:
    """Recompute the clocks of the tickets this transaction's events concern."""
    triggers = TRIGGERS if settings(config).policies else STATUS_TRIGGERS
    touched: dict[int, None] = {}
    for event in journal.items:
        if event.kind in triggers:
            touched.setdefault(event.ticket.id)
    for ticket_id in touched:
        ticket = journal.ticket(ticket_id) or ticket_rows.by_id(ticket_id)
        recompute(config, ticket, journal)


def recompute(
    config: Config, ticket: TicketRow, journal: Journal, *, announce: bool = False
) -> list[str]:
    """Clocks and timers of one ticket from its history; the clocks whose due time moved."""
    time = settings(config)
    history = clock_math.history_of(ticket.created_at, rows.history(ticket.id))
    policy = _policy(config, ticket) if time.policies else None
    old = {c.name: c for c in rows.clocks_of(ticket.id)}
    new = _clock_rows(ticket, policy, history)
    moved = [c.name for c in new if c.name in old and old[c.name].due_at != c.due_at and announce]
    if [_comparable(c) for c in new] != [_comparable(c) for c in old.values()]:
        rows.replace_clocks(ticket.id, new)
    old_policy = next(iter(old.values())).policy if old else ""
    new_policy = policy.key if policy is not None and new else ""
    if old_policy != new_policy and not announce:
        journal.add(Event(ticket, "sla_policy", ACTOR, old=old_policy, new=new_policy))
    for name in moved:
        before, after = old[name].due_at, next(c for c in new if c.name == name).due_at
        journal.add(
            Event(ticket, "sla_due_changed", ACTOR, old=_iso(before), new=_iso(after), detail=name)
        )
    wanted = [*_sla_timers(new), *_lifecycle_timers(config, history)]
    rows.sync_timers(ticket.id, wanted)
    return moved


def refresh(config: Config) -> int:
    """After a change of the time settings: recompute every live ticket once (first process wins).

    Returns how many tickets had a due time moved.
    """
    wanted = settings(config).fingerprint
    if rows.fingerprint() == wanted:
        return 0
    moved = 0
    with write_transaction():
        rows.lock_refresh()
        if rows.fingerprint() == wanted:
            return 0
        after = 0
        while ids := rows.live_ticket_ids(after, 500):
            for ticket_id in ids:
                journal = Journal()
                ticket = ticket_rows.lock(ticket_id)
                if recompute(config, ticket, journal, announce=True):
                    moved += 1
                journal.flush()
            after = ids[-1]
        rows.set_fingerprint(wanted)
    return moved


def _policy(config: Config, ticket: TicketRow) -> Policy | None:
    team = directory.team_by_id(ticket.team_id)
    requester = people.by_id(ticket.requester_id)
    return choose(
        config,
        ticket.priority,
        ticket.mailbox,
        team.key if team else "",
        requester.email if requester else "",
    )


def _clock_rows(
    ticket: TicketRow, policy: Policy | None, history: clock_math.History
) -> list[rows.ClockRow]:
    if policy is None or ticket.merged_into_id:
        return []
    calendar = policy.calendar
    return [
        rows.ClockRow(
            ticket_id=ticket.id,
            name=c.name,
            policy=policy.key,
            policy_name=policy.name,
            calendar=calendar.key,
            timezone=calendar.timezone,
            started_at=c.started_at,
            target_seconds=c.target_seconds,
            due_at=_whole(c.due_at),
            warn_at=_whole(c.warn_at),
            met_at=c.met_at,
            paused=c.paused,
            remaining_seconds=c.remaining_seconds,
        )
        for c in clock_math.compute(history, calendar, policy.durations, policy.warn_fraction)
    ]


def _comparable(c: rows.ClockRow) -> tuple[object, ...]:
    return (c.name, c.policy, c.calendar, c.timezone, c.started_at, c.target_seconds, c.due_at,
            c.warn_at, c.met_at, c.paused, c.remaining_seconds)  # fmt: skip


def timer_key(clock: rows.ClockRow) -> str:
    """One warning and one breach per clock; each next_response cycle is a clock of its own."""
    if clock.name == "next_response":
        return f"next_response@{clock.started_at.isoformat(timespec='seconds')}"
    return clock.name


def _sla_timers(clocks: list[rows.ClockRow]) -> list[tuple[str, str, dt.datetime]]:
    wanted = []
    for c in clocks:
        running = c.met_at is None and not c.paused
        if c.warn_at is not None and running and (c.due_at is None or c.warn_at < c.due_at):
            wanted.append(("sla_warning", timer_key(c), c.warn_at))
        if c.due_at is not None and (c.met_at is None or c.due_at < c.met_at):
            wanted.append(("sla_breach", timer_key(c), c.due_at))
    return wanted


def _lifecycle_timers(
    config: Config, history: clock_math.History
) -> list[tuple[str, str, dt.datetime]]:
    time = settings(config)
    return clock_math.lifecycle_timers(
        history,
        reminder_after=time.reminder_after,
        close_after=time.close_after,
        resolved_after=time.resolved_after,
    )


def _whole(when: dt.datetime | None) -> dt.datetime | None:
    """Due times to the second: what is stored, compared and shown."""
    if when is None:
        return None
    return when.replace(microsecond=0) + (
        dt.timedelta(seconds=1) if when.microsecond else dt.timedelta()
    )


def _iso(when: dt.datetime | None) -> str:
    return "" if when is None else when.isoformat(timespec="seconds") + "Z"

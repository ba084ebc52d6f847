"""What each kind of due work does to its ticket (inside the transaction that marks it done).

=================  ===========================================================
timer              action
=================  ===========================================================
sla_warning        ``sla_warning`` event → notice to the assignee, else the team
sla_breach         ``sla_breach`` event (the real due time in it) → notice to the
                   team's escalation contact; the policy's breach_team and/or
                   breach_priority applied through the lifecycle
pending_reminder   ``pending_reminder`` event → notice to the customer
pending_close      resolved by the lifecycle, ``auto_resolved`` event → notice
resolved_close     closed by the lifecycle (the ``closed`` notice, if switched on)
=================  ===========================================================

Each returns one line saying what it did, or why nothing was needed (a clock met
meanwhile): the line is stored with the timer and printed by ``jobs run``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

from mailgate import lifecycle, routing, sla
from mailgate.context import Context
from mailgate.events import Event, Journal
from mailgate.store import directory
from mailgate.store import sla as rows
from mailgate.store.rows import TicketRow

ACTOR = "system:jobs"
OPEN = ("new", "open", "pending")

Action = Callable[[Context, TicketRow, rows.TimerRow, Journal, dt.datetime], str]


def _clock(ticket: TicketRow, timer: rows.TimerRow) -> rows.ClockRow | None:
    for clock in rows.clocks_of(ticket.id):
        if sla.timer_key(clock) == timer.key:
            return clock
    return None


def _due(clock: rows.ClockRow, when: dt.datetime | None) -> str:
    return sla.local_iso(when, clock.timezone) or "-"


def warn(ctx: Context, ticket: TicketRow, timer: rows.TimerRow, journal: Journal,
         at: dt.datetime) -> str:  # fmt: skip
    clock = _clock(ticket, timer)
    if clock is None or clock.met_at is not None or clock.paused:
        return "no warning needed: the clock was met or paused meanwhile"
    if clock.due_at is not None and clock.due_at <= at:
        return "no warning: the clock ran out as well (the breach is told instead)"
    journal.add(
        Event(ticket, "sla_warning", "system:sla", new=clock.name,
              detail=f"due {_due(clock, clock.due_at)}", at=timer.due_at)
    )  # fmt: skip
    return f"warning: {clock.name} due {_due(clock, clock.due_at)}"


def breach(ctx: Context, ticket: TicketRow, timer: rows.TimerRow, journal: Journal,
           at: dt.datetime) -> str:  # fmt: skip
    clock = _clock(ticket, timer)
    name = clock.name if clock is not None else timer.key.partition("@")[0]
    due = _due(clock, timer.due_at) if clock is not None else timer.due_at.isoformat() + "Z"
    team = directory.team_by_id(ticket.team_id)
    team_key = team.key if team else ""
    if clock is None or clock.met_at is not None or ticket.status not in OPEN:
        journal.add(
            Event(ticket, "sla_breach_recorded", "system:sla", new=name,
                  detail=f"due {due}; met or resolved since: nobody told", at=timer.due_at)
        )  # fmt: skip
        return f"breach of {name} (due {due}) recorded; met since, nobody told"
    where = f"due {due} (team {team_key or '-'})"
    journal.add(Event(ticket, "sla_breach", "system:sla", new=name, detail=where, at=timer.due_at))
    done = [f"breach of {name} (due {due}) recorded"]
    policy = next((p for p in sla.settings(ctx.config).policies if p.key == clock.policy), None)
    if policy is not None and (policy.breach_team or policy.breach_priority):
        moved = lifecycle.change(
            ticket, journal, ctx.config, actor="system:sla",
            team=policy.breach_team or None, priority=policy.breach_priority or None,
            at=timer.due_at,
        )  # fmt: skip
        if moved and policy.breach_team and policy.breach_team != team_key:
            routing.auto_assign(ctx.config, moved.ticket, policy.breach_team, journal)
            done.append(f"moved to {policy.breach_team}")
        if moved and policy.breach_priority and policy.breach_priority != ticket.priority:
            done.append(f"priority {policy.breach_priority}")
    return "; ".join(done)


def remind(ctx: Context, ticket: TicketRow, timer: rows.TimerRow, journal: Journal,
           at: dt.datetime) -> str:  # fmt: skip
    if ticket.status != "pending":
        return f"no reminder: the ticket is {ticket.status} now"
    journal.add(Event(ticket, "pending_reminder", ACTOR, at=timer.due_at))
    return "reminder to the customer"


def auto_resolve(ctx: Context, ticket: TicketRow, timer: rows.TimerRow, journal: Journal,
                 at: dt.datetime) -> str:  # fmt: skip
    if ticket.status != "pending":
        return f"not resolved: the ticket is {ticket.status} now"
    journal.add(Event(ticket, "auto_resolved", ACTOR, detail="no answer from the customer",
                      at=timer.due_at))  # fmt: skip
    lifecycle.change(ticket, journal, ctx.config, actor=ACTOR, status="resolved", at=timer.due_at)
    return "resolved: no answer from the customer"


def auto_close(ctx: Context, ticket: TicketRow, timer: rows.TimerRow, journal: Journal,
               at: dt.datetime) -> str:  # fmt: skip
    if ticket.status != "resolved":
        return f"not closed: the ticket is {ticket.status} now"
    lifecycle.change(ticket, journal, ctx.config, actor=ACTOR, status="closed", at=timer.due_at)
    return "closed"


ACTIONS: dict[str, Action] = {
    "sla_warning": warn,
    "sla_breach": breach,
    "pending_reminder": remind,
    "pending_close": auto_resolve,
    "resolved_close": auto_close,
}

WOULD = {
    "sla_warning": "would warn the assignee (else the team)",
    "sla_breach": "would record the breach, tell the escalation contact, apply the breach moves",
    "pending_reminder": "would remind the customer",
    "pending_close": "would resolve the ticket (auto_resolved notice)",
    "resolved_close": "would close the ticket",
}

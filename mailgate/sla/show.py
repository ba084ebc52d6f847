"""A ticket's SLA as people read it: ``tickets show``, its JSON, and the list filters.

Due times are given in the calendar's zone (ISO 8601 with its offset);
``left_seconds`` is the working time left in the calendar — negative when the
clock is overdue by that much — and, while paused, what was left when it stopped.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from mailgate.config import Config
from mailgate.config.calendars import zone
from mailgate.sla.policy import settings
from mailgate.store import sla as rows
from mailgate.store.rows import TicketRow


def describe(config: Config, ticket: TicketRow, now: dt.datetime) -> dict[str, Any] | None:
    """``sla: {policy, calendar, clocks: [...]}`` of ``tickets show --json``; None without one."""
    clocks = rows.clocks_of(ticket.id)
    if not clocks:
        return None
    first = clocks[0]
    calendar = settings(config).calendars.get(first.calendar)
    return {
        "policy": first.policy,
        "policy_name": first.policy_name,
        "calendar": first.calendar,
        "timezone": first.timezone,
        "clocks": [_clock(c, calendar, now) for c in clocks],
    }


def _clock(c: rows.ClockRow, calendar: Any, now: dt.datetime) -> dict[str, Any]:
    left: int | None = None
    if c.met_at is None and c.paused:
        left = c.remaining_seconds
    elif c.met_at is None and c.due_at is not None:
        if calendar is not None:
            ahead = calendar.working_seconds(now, c.due_at)
            left = int(ahead if ahead else -calendar.working_seconds(c.due_at, now))
        else:
            left = int((c.due_at - now).total_seconds())
    breached = c.due_at is not None and (
        c.due_at < c.met_at if c.met_at is not None else c.due_at <= now
    )
    return {
        "name": c.name,
        "due": local_iso(c.due_at, c.timezone),
        "left_seconds": left,
        "paused": c.paused,
        "met_at": local_iso(c.met_at, c.timezone),
        "breached_at": local_iso(c.due_at, c.timezone) if breached else None,
        "warn_at": local_iso(c.warn_at, c.timezone),
        "started_at": local_iso(c.started_at, c.timezone),
    }


def local_iso(when: dt.datetime | None, timezone: str) -> str | None:
    if when is None:
        return None
    return when.replace(tzinfo=dt.UTC, microsecond=0).astimezone(zone(timezone)).isoformat()


def text_lines(sla: dict[str, Any] | None) -> list[str]:
    """The lines ``tickets show`` prints for the SLA."""
    if sla is None:
        return []
    lines = [f"sla: {sla['policy_name']} (calendar {sla['calendar']}, {sla['timezone']})"]
    for c in sla["clocks"]:
        if c["met_at"]:
            state = f"met {c['met_at']}" + (" — late" if c["breached_at"] else "")
        elif c["paused"]:
            state = (
                f"paused, {_span(c['left_seconds'])} left"
                if (c["left_seconds"] or 0) >= 0
                else (f"paused, overdue by {_span(-c['left_seconds'])}")
            )
        elif c["breached_at"]:
            state = f"due {c['due']} — BREACHED, overdue by {_span(-(c['left_seconds'] or 0))}"
        else:
            state = f"due {c['due']}, {_span(c['left_seconds'] or 0)} left"
        lines.append(f"  {c['name'].replace('_', ' ')}: {state}")
    return lines


def _span(seconds: int) -> str:
    minutes = int(seconds) // 60
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min" if hours else f"{minutes} min"


def parse_instant(text: str, timezone: str) -> dt.datetime:
    """An ISO 8601 time (``2026-11-23T10:01``, with or without offset; a naive one is in
    ``timezone``) as naive UTC. ValueError with the reason otherwise."""
    try:
        when = dt.datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(f"{text!r} is not an ISO 8601 time like 2026-11-23T10:01") from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=zone(timezone))
    return when.astimezone(dt.UTC).replace(tzinfo=None)

"""The clocks of one ticket, computed from its history — never from "now".

A clock counts working time (in the policy's calendar) while the ticket is
``new`` or ``open``: it is paused while ``pending`` (waiting for the customer)
and stands still while ``resolved``/``closed``. So the same history always gives
the same due times, whenever they are computed.

* ``first_response``: from creation to the first agent reply to the customer
  (a reply, a reply written directly, a resolution with text — not a note, not
  a notice);
* ``next_response``: from the first customer message nobody answered yet (after
  the first response) to the next agent reply;
* ``resolution``: from creation until ``resolved``/``closed``; a reopen resumes it
  where it stood.

Also the lifecycle's own timers, wall-clock from when the ticket entered its
status: the pending reminder, the auto-resolve, the auto-close. Pure.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass

from mailgate.config.calendars import Duration
from mailgate.sla.calendar import WorkCalendar

COUNTING = ("new", "open")
ANSWERS = ("agent_reply", "agent_reply_direct", "resolution")


@dataclass(frozen=True)
class History:
    """What the clocks need of a ticket's events."""

    created_at: dt.datetime
    statuses: tuple[tuple[dt.datetime, str], ...]  # (since, status), the first one "new"
    answers: tuple[dt.datetime, ...]  # agent replies to the customer
    customer_messages: tuple[dt.datetime, ...]

    @property
    def status(self) -> str:
        return self.statuses[-1][1]

    @property
    def status_since(self) -> dt.datetime:
        return self.statuses[-1][0]


def history_of(
    created_at: dt.datetime, rows: Sequence[tuple[str, str, str, dt.datetime]]
) -> History:
    """(kind, old, new, at) event rows, in order → the ticket's history."""
    statuses: list[tuple[dt.datetime, str]] = [(created_at, "new")]
    answers: list[dt.datetime] = []
    messages: list[dt.datetime] = []
    latest = created_at
    for kind, _old, new, at in rows:
        at = latest = max(at, latest)  # a history never runs backwards
        status = ""
        if kind == "status":
            status = new
        elif kind == "reopened":
            status = "open"
        elif kind == "merged" and new.startswith("into"):
            status = "closed"
        elif kind in ANSWERS:
            answers.append(at)
        elif kind == "message" and new == "customer":
            messages.append(at)
        if status and status != statuses[-1][1]:
            statuses.append((at, status))
    return History(created_at, tuple(statuses), tuple(answers), tuple(messages))


@dataclass(frozen=True)
class Clock:
    name: str
    started_at: dt.datetime
    target_seconds: int
    due_at: dt.datetime | None  # when it runs (or ran) out; None while paused with time left
    warn_at: dt.datetime | None
    met_at: dt.datetime | None
    paused: bool
    remaining_seconds: int

    @property
    def running(self) -> bool:
        return self.met_at is None and not self.paused

    def breached(self, now: dt.datetime) -> bool:
        """It ran out before it was met (or, unmet, by ``now``)."""
        if self.due_at is None:
            return False
        if self.met_at is not None:
            return self.due_at < self.met_at
        return self.due_at <= now


def compute(
    history: History,
    calendar: WorkCalendar,
    durations: dict[str, Duration],
    warn_fraction: float | None,
) -> list[Clock]:
    """The policy's clocks (first_response, next_response, resolution) as the history has them."""
    spans: list[tuple[str, dt.datetime, dt.datetime | None]] = []
    answers = history.answers
    if "first_response" in durations:
        spans.append(("first_response", history.created_at, answers[0] if answers else None))
    if "next_response" in durations and answers:
        cycle = _next_response_cycle(history)
        if cycle is not None:
            spans.append(("next_response", *cycle))
    if "resolution" in durations:
        met = history.status_since if history.status in ("resolved", "closed") else None
        spans.append(("resolution", history.created_at, met))
    return [
        _clock(name, history, calendar, durations[name], warn_fraction, start, met)
        for name, start, met in spans
    ]


def _next_response_cycle(history: History) -> tuple[dt.datetime, dt.datetime | None] | None:
    """The latest customer message nobody had answered yet (after the first answer)."""
    first = history.answers[0]
    waiting: dt.datetime | None = None
    cycle: tuple[dt.datetime, dt.datetime | None] | None = None
    timeline = sorted(
        [(t, 1, "answer") for t in history.answers]
        + [(t, 0, "message") for t in history.customer_messages if t > first]
    )
    for at, _, what in timeline:
        if what == "message" and waiting is None:
            waiting = at
            cycle = (at, None)
        elif what == "answer" and waiting is not None:
            cycle = (waiting, at)
            waiting = None
    return cycle


def _clock(
    name: str,
    history: History,
    calendar: WorkCalendar,
    duration: Duration,
    warn_fraction: float | None,
    start: dt.datetime,
    met: dt.datetime | None,
) -> Clock:
    # "2d" is the same working minute two working days on: its working seconds from here.
    target = float(duration.seconds)
    if duration.days:
        target = calendar.working_seconds(start, calendar.add_duration(start, duration))
    intervals = _counting(history, start, met)
    due = _crossing(calendar, intervals, target)
    warn = _crossing(calendar, intervals, target * warn_fraction) if warn_fraction else None
    counted = sum(calendar.working_seconds(a, b) for a, b in intervals if b is not None)
    running = bool(intervals) and intervals[-1][1] is None
    return Clock(
        name=name,
        started_at=start,
        target_seconds=round(target),
        due_at=due,
        warn_at=warn,
        met_at=met,
        paused=met is None and not running,
        remaining_seconds=round(target - counted),
    )


def _counting(
    history: History, start: dt.datetime, end: dt.datetime | None
) -> list[tuple[dt.datetime, dt.datetime | None]]:
    """The stretches in [start, end) while the ticket was new or open (None: still is)."""
    found: list[tuple[dt.datetime, dt.datetime | None]] = []
    statuses = history.statuses
    for i, (since, status) in enumerate(statuses):
        until = statuses[i + 1][0] if i + 1 < len(statuses) else None
        if status not in COUNTING:
            continue
        a = max(since, start)
        b = until if end is None else (end if until is None else min(until, end))
        if b is None or b > a:
            found.append((a, b))
    return found


def _crossing(
    calendar: WorkCalendar,
    intervals: list[tuple[dt.datetime, dt.datetime | None]],
    target: float,
) -> dt.datetime | None:
    """When the counted working time reaches ``target`` (None: it has not, and is not running)."""
    counted = 0.0
    for a, b in intervals:
        reached = calendar.add(a, target - counted)
        if b is None or reached <= b:
            return reached
        counted += calendar.working_seconds(a, b)
    return None


def lifecycle_timers(
    history: History,
    *,
    reminder_after: int | None,
    close_after: int | None,
    resolved_after: int | None,
) -> list[tuple[str, str, dt.datetime]]:
    """(kind, key, due) of the pending reminder and auto-resolve, or the auto-close."""
    since, status = history.status_since, history.status
    key = f"{status}@{since.isoformat(timespec='seconds')}"
    wanted = []
    if status == "pending":
        if reminder_after:
            wanted.append(("pending_reminder", key, since + dt.timedelta(seconds=reminder_after)))
        if close_after:
            wanted.append(("pending_close", key, since + dt.timedelta(seconds=close_after)))
    elif status == "resolved" and resolved_after:
        wanted.append(("resolved_close", key, since + dt.timedelta(seconds=resolved_after)))
    return wanted

"""The figures of a report, counted once from the events of the period.

Counting rules (the issue's, written down where they are applied):

* an event counts in the period it happened in: a ticket resolved twice counts
  twice as resolved and once as reopened;
* resolved = a status change into resolved or closed from an open status;
  closed = a change into closed; reopened = back from resolved/closed to an open
  status (a reply reopening it, or an admin); a merge is none of these, so a
  merged ticket counts as opened, never as resolved;
* notes are not agent messages (they are ``notes``); an agent message is an
  answer sent to the customer (relayed or direct); messages by customers only
  count as ``customer_messages`` (not those of strangers or auto-replies);
* credit goes to the agent in the event's actor (``agent:KEY``); a change made
  from the CLI without ``--as`` (``admin:cli``) is credited to no agent;
* one-touch resolution: resolved for the first time after exactly one answer;
  reopen rate: reopened / resolved in the period;
* first response time: creation → first agent answer; resolution time: the time
  the ticket was new or open (waiting on us) between its creation and that
  resolution — pending (waiting on the customer) and resolved spells do not
  count. Both in working time of the ticket's SLA calendar when it has SLA
  clocks, else wall time. Median, 90th percentile (nearest rank), mean; seconds.

``Groups`` (``--by``) use the ticket's current team, assignee, mailbox, category
or priority, or the local day/week of the event. Imports the store's report
reads, sla (calendars) and config.
"""

from __future__ import annotations

import bisect
import datetime as dt
import functools
import math
import statistics
from collections import Counter, defaultdict
from collections.abc import Iterable
from typing import Any

from mailgate.config import Config
from mailgate.reports.period import Period
from mailgate.search import day_start
from mailgate.sla import WorkCalendar, calendars
from mailgate.store import reports as rows
from mailgate.store.reports import ANSWERS

BY = ("team", "agent", "mailbox", "category", "priority", "week", "day")
VOLUME = (
    "opened",
    "reopened",
    "resolved",
    "closed",
    "customer_messages",
    "agent_messages",
    "notes",
)
DONE = ("resolved", "closed")
OPEN = ("new", "open", "pending")
WORKING = ("new", "open")  # the states in which a ticket waits on us
RESPONSE_BUCKETS = (
    (900, "<15m"),
    (3600, "15m-1h"),
    (4 * 3600, "1-4h"),
    (8 * 3600, "4-8h"),
    (86400, "8-24h"),
    (3 * 86400, "1-3d"),
    (math.inf, ">3d"),
)
AGE_BUCKETS = (
    (86400, "<1d"),
    (3 * 86400, "1-3d"),
    (7 * 86400, "3-7d"),
    (30 * 86400, "7-30d"),
    (math.inf, ">30d"),
)
NONE = "(none)"


def summary(values: list[float]) -> dict[str, Any]:
    """median, p90 (nearest rank) and mean in whole seconds, and how many."""
    if not values:
        return {"median_s": None, "p90_s": None, "mean_s": None, "count": 0}
    ordered = sorted(values)
    p90 = ordered[max(0, math.ceil(0.9 * len(ordered)) - 1)]
    return {
        "median_s": round(statistics.median(ordered)),
        "p90_s": round(p90),
        "mean_s": round(statistics.fmean(ordered)),
        "count": len(ordered),
    }


def share(part: int, whole: int) -> float | None:
    return None if whole == 0 else round(part / whole, 4)


def counted(kind: str, old: str, new: str) -> list[str]:
    """What an event counts as in the volume (opened, reopened, resolved, closed, messages)."""
    found = []
    if kind == "created":
        found.append("opened")
    elif kind == "reopened" or (kind == "status" and old in DONE and new in OPEN):
        found.append("reopened")
    if kind == "status" and new in DONE and old not in DONE:
        found.append("resolved")
    if kind == "status" and new == "closed":
        found.append("closed")
    if kind == "message" and new == "customer":
        found.append("customer_messages")
    if kind in ANSWERS:
        found.append("agent_messages")
    if kind == "note":
        found.append("notes")
    return found


def state_after(kind: str, new: str, state: str) -> str:
    if kind == "created":
        return "new"
    if kind in ("status", "reopened"):
        return new
    if kind == "merged" and new.startswith("into"):
        return "closed"
    return state


class Figures:
    """The period counted in SQL, the lives read where a figure needs them; ``report()`` is
    the dict every output shows."""

    def __init__(self, config: Config, period: Period, by: str | None, now: dt.datetime):
        self.config, self.period, self.by, self.now = config, period, by, now
        self.calendars = calendars(config)
        self.actors: dict[str, str | None] = {}
        self.days = period.days()
        self.day_starts = [day_start(d, period.timezone) for d in self.days]
        self.day_keys = [self.day_key(d) for d in self.days]
        column = by if by in rows.GROUPS else None
        start, end = period.start, period.end
        self.first = rows.first_responses(start, end, column)
        self.resolved = rows.resolutions(start, end, column)
        # Whole lives (before the period too) only where a figure follows one: the resolution
        # times and one-touch rate of the tickets resolved, and the backlog of those open.
        live = rows.live_between(start, min(end, now))
        self.live = [ticket_id for ticket_id, _created in live]
        self.created = {ticket_id: created for ticket_id, created in live}
        self.created.update((r[0], r[2]) for r in self.resolved)
        self.history = rows.lives(self.created, end)
        for ticket_id, life in self.history.items():
            if self.created[ticket_id] >= start and life[0][0] < start:
                # as before: a ticket opened in the period is followed from the period's start
                self.history[ticket_id] = [e for e in life if e[0] >= start]
        self.clocks: dict[int, list[str]] = {}
        if self.calendars:
            self.clocks = rows.calendars_of(
                {r[0] for r in self.first} | {r[0] for r in self.resolved}
            )

    # --- helpers ------------------------------------------------------------------------

    def agent_of(self, actor: str) -> str | None:
        """The agent an actor names (cached: a report sees the same few actors many times)."""
        if actor not in self.actors:
            self.actors[actor] = self._agent_of(actor)
        return self.actors[actor]

    def _agent_of(self, actor: str) -> str | None:
        kind, _, who = actor.partition(":")
        if kind != "agent" or not who:
            return None
        if self.config.agent(who) is not None:
            return who
        agent = self.config.agent_for(who)
        return agent.key if agent else None

    def calendar_of(self, ticket_id: int) -> WorkCalendar | None:
        for name in self.clocks.get(ticket_id, []):
            if name in self.calendars:
                return self.calendars[name]
        return None

    def seconds(self, ticket_id: int, a: dt.datetime, b: dt.datetime) -> float:
        calendar = self.calendar_of(ticket_id)
        if calendar is None:
            return max(0.0, (b - a).total_seconds())
        return calendar.working_seconds(a, b)

    def day_index(self, instant: dt.datetime) -> int:
        """The local day of ``instant`` in the period (by the UTC starts of its days)."""
        return max(0, bisect.bisect_right(self.day_starts, instant) - 1)

    def day_key(self, day: dt.date) -> str:
        """A day's group: itself, or its week's Monday."""
        start = day - dt.timedelta(days=day.weekday()) if self.by == "week" else day
        return start.isoformat()

    def group(self, instant: dt.datetime, value: Any) -> str:
        """The group of an event at ``instant`` of a ticket whose ``--by`` column is ``value``."""
        if self.by in ("day", "week"):
            return self.day_keys[self.day_index(instant)]
        return str(value) if value else NONE

    def day_ranges(self) -> list[tuple[dt.date, dt.datetime, dt.datetime]]:
        """Each day of the period with the instants its events fall in (as ``day_index``)."""
        p, found = self.period, []
        for i, day in enumerate(self.days):
            lo = p.start if i == 0 else max(p.start, self.day_starts[i])
            hi = p.end if i == len(self.days) - 1 else min(p.end, self.day_starts[i + 1])
            if lo < hi:
                found.append((day, lo, hi))
        return found

    def resolution_seconds(self, ticket_id: int, resolved_at: dt.datetime) -> float | None:
        """Time new/open between creation and ``resolved_at`` (pending and done spells left out)."""
        calendar = self.calendar_of(ticket_id)
        state, since, total = "", None, 0.0
        for at, kind, _old, new in self.history.get(ticket_id, []):
            if at > resolved_at:
                break
            if kind not in rows.LIFE:
                continue
            if state in WORKING and since is not None:
                if calendar is None:
                    total += max(0.0, (at - since).total_seconds())
                else:
                    total += calendar.working_seconds(since, at)
            state, since = state_after(kind, new, state), at
        return total if since is not None else None

    def is_one_touch(self, ticket_id: int, resolved_at: dt.datetime) -> bool:
        """Resolved for the first time, after exactly one answer to the customer."""
        answers = 0
        for at, kind, old, new in self.history.get(ticket_id, []):
            if at > resolved_at:
                break
            if kind == "status" and new in DONE and old not in DONE and at < resolved_at:
                return False
            answers += kind in ANSWERS
        return answers == 1

    # --- the report ---------------------------------------------------------------------

    def report(self) -> dict[str, Any]:
        volume: Counter[str] = Counter()
        groups: dict[str, dict[str, Any]] = defaultdict(_group)
        per_day: dict[dt.date, Counter[str]] = {d: Counter() for d in self.days}
        workload: dict[str, Counter[str]] = defaultdict(Counter)
        by, column = self.by, self.by if self.by in rows.GROUPS else None
        for day, lo, hi in self.day_ranges():
            day_key = self.day_key(day) if by in ("day", "week") else ""
            for kind, old, new, actor, value, count in rows.tallies(lo, hi, column):
                names = counted(kind, old, new)
                agent = self.agent_of(actor) if actor else None
                if names:
                    key = day_key if by in ("day", "week") else (str(value) if value else NONE)
                    for name in names:
                        volume[name] += count
                        per_day[day][name] += count
                        if by:
                            groups[key]["volume"][name] += count
                if agent and "resolved" in names:
                    workload[agent]["resolved"] += count
                if kind == "assignee" and new:
                    workload[new]["assigned"] += count
                if agent and (kind in ANSWERS or kind == "note"):
                    workload[agent]["notes" if kind == "note" else "replies"] += count
        first: list[float] = []
        for ticket_id, at, created, value in self.first:
            took = self.seconds(ticket_id, created, at)
            first.append(took)
            if by:
                groups[self.group(at, value)]["first_response"].append(took)
        resolution: list[float] = []
        one_touch = 0
        for ticket_id, at, _created, value in self.resolved:
            spent = self.resolution_seconds(ticket_id, at)
            if spent is not None:
                resolution.append(spent)
                if by:
                    groups[self.group(at, value)]["resolution"].append(spent)
            one_touch += self.is_one_touch(ticket_id, at)
        opened = rows.opened(self.period.start, self.period.end)
        for _ticket, agent_key, minutes in rows.work_between(self.period.start, self.period.end):
            workload[agent_key]["working_minutes"] += minutes
        return {
            "period": self._period(),
            "by": self.by,
            "volume": {name: volume[name] for name in VOLUME},
            "first_response": summary(first),
            "resolution": summary(resolution),
            "rates": {
                "reopen_rate": share(volume["reopened"], volume["resolved"]),
                "one_touch_resolution_rate": share(one_touch, len(self.resolved)),
            },
            "sla": self._sla(),
            "csat": self._csat(),
            "backlog": self._backlog(),
            "open_age": self._open_age(),
            "workload": _workload(workload, [a.key for a in self.config.agents]),
            "common": {
                "categories": _top_counts((c or NONE, n) for c, _d, n in opened),
                "routing_rules": _top_counts(rows.routed(self.period.start, self.period.end)),
                "requester_domains": _top_counts((d, n) for _c, d, n in opened),
            },
            "per_day": [
                {"day": day.isoformat(), **{n: c[n] for n in VOLUME}} for day, c in per_day.items()
            ],
            "response_distribution": _buckets(first, RESPONSE_BUCKETS),
            "groups": [
                {
                    "key": key,
                    "volume": {n: g["volume"][n] for n in VOLUME},
                    "first_response": summary(g["first_response"]),
                    "resolution": summary(g["resolution"]),
                }
                for key, g in sorted(groups.items())
            ],
        }

    def _period(self) -> dict[str, Any]:
        p = self.period
        return {
            "from": p.first_day.isoformat(),
            "to": p.last_day.isoformat(),
            "timezone": p.timezone,
            "start": p.start.isoformat() + "Z",
            "end": p.end.isoformat() + "Z",
        }

    def _sla(self) -> dict[str, Any]:
        met: Counter[str] = Counter()
        breached: Counter[str] = Counter()
        for clock in rows.clocks_decided(self.period.start, min(self.period.end, self.now)):
            ok = clock.met_at is not None and (clock.due_at is None or clock.met_at <= clock.due_at)
            (met if ok else breached)[clock.name] += 1
        names = sorted(set(met) | set(breached))
        total_met, total = sum(met.values()), sum(met.values()) + sum(breached.values())
        return {
            "met": total_met,
            "breached": total - total_met,
            "attainment": share(total_met, total),
            "clocks": {
                n: {
                    "met": met[n],
                    "breached": breached[n],
                    "attainment": share(met[n], met[n] + breached[n]),
                }
                for n in names
            },
        }

    def _csat(self) -> dict[str, Any]:
        ratings = Counter(r for _t, r in rows.ratings_between(self.period.start, self.period.end))
        count = ratings["good"] + ratings["bad"]
        return {
            "good": ratings["good"],
            "bad": ratings["bad"],
            "count": count,
            "share_good": share(ratings["good"], count),
        }

    @functools.cached_property
    def spans(self) -> list[tuple[dt.datetime, dt.datetime | None, int]]:
        return self._open_spans()

    def _open_spans(self) -> list[tuple[dt.datetime, dt.datetime | None, int]]:
        """(from, until or None, ticket id) of every spell a live ticket was open."""
        spans: list[tuple[dt.datetime, dt.datetime | None, int]] = []
        for ticket_id in self.live:
            state, since = "", None
            for at, kind, _old, new in self.history.get(ticket_id, []):
                after = state_after(kind, new, state)
                if after in OPEN and state not in OPEN:
                    since = at
                elif after not in OPEN and state in OPEN and since is not None:
                    spans.append((since, at, ticket_id))
                    since = None
                state = after
            if state in OPEN and since is not None:
                spans.append((since, None, ticket_id))
        return spans

    def _backlog(self) -> list[dict[str, Any]]:
        """Open tickets at the end of each day: spells begun before it minus spells ended."""
        spans = self.spans
        starts = sorted(a for a, _b, _t in spans)
        ends = sorted(b for _a, b, _t in spans if b is not None)
        found = []
        for day in self.period.days():
            instant = min(self.period.day_end(day), self.now)
            count = bisect.bisect_left(starts, instant) - bisect.bisect_left(ends, instant)
            found.append({"day": day.isoformat(), "open": count})
        return found

    def _open_age(self) -> dict[str, Any]:
        instant = min(self.period.end, self.now)
        ages = []
        for a, b, ticket_id in self.spans:
            if a < instant and (b is None or b >= instant):
                ages.append((instant - self.created[ticket_id]).total_seconds())
        stats = summary(ages)
        return {
            **stats,
            "max_s": round(max(ages)) if ages else None,
            "buckets": _buckets(ages, AGE_BUCKETS),
        }


def _group() -> dict[str, Any]:
    return {"volume": Counter(), "first_response": [], "resolution": []}


def _workload(found: dict[str, Counter[str]], agents: list[str]) -> list[dict[str, Any]]:
    keys = [*agents, *sorted(k for k in found if k not in agents)]
    return [
        {
            "agent": k,
            **{
                n: found[k][n]
                for n in ("assigned", "resolved", "replies", "notes", "working_minutes")
            },
        }
        for k in keys
    ]


def _top_counts(counts: Iterable[tuple[str, int]], limit: int = 10) -> list[dict[str, Any]]:
    """The ``limit`` largest counts, ties in the order given (each value's first appearance)."""
    found: Counter[str] = Counter()
    for key, count in counts:
        found[key] += count
    return [{"key": k, "count": n} for k, n in found.most_common(limit)]


def _buckets(values: list[float], limits: tuple[tuple[float, str], ...]) -> list[dict[str, Any]]:
    counts = Counter(next(label for top, label in limits if v < top) for v in values)
    return [{"bucket": label, "count": counts[label]} for _top_, label in limits]

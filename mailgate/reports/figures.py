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
from mailgate.store.reports import ANSWERS, EventRow, TicketFacts

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


def change_of(event: EventRow) -> str | None:
    """What a life event means for the volume: opened, reopened, resolved, closed (or None)."""
    if event.kind == "created":
        return "opened"
    if event.kind == "reopened":
        return "reopened"
    if event.kind == "status" and event.old in DONE and event.new in OPEN:
        return "reopened"
    return None


def state_after(event: EventRow, state: str) -> str:
    if event.kind == "created":
        return "new"
    if event.kind in ("status", "reopened"):
        return event.new
    if event.kind == "merged" and event.new.startswith("into"):
        return "closed"
    return state


class Figures:
    """One pass over the period's events; ``report()`` is the dict every output shows."""

    def __init__(self, config: Config, period: Period, by: str | None, now: dt.datetime):
        self.config, self.period, self.by, self.now = config, period, by, now
        self.calendars = calendars(config)
        # The period's events (one range read by time), and before them the history of the
        # tickets created earlier: resolution times and the backlog need whole lives.
        self.events = rows.events_between(period.start, period.end)
        touched = {e.ticket_id for e in self.events}
        self.live = rows.live_between(period.start, min(period.end, now))
        self.tickets = rows.tickets(touched | set(self.live))
        earlier = [t.id for t in self.tickets.values() if t.created_at < period.start]
        self.history = rows.histories(earlier, period.start)
        for event in self.events:
            self.history.setdefault(event.ticket_id, []).append(event)
        self.clocks = rows.clocks(touched)
        self.actors: dict[str, str | None] = {}
        self.day_keys: dict[dt.date, str] = {}  # a day's group: itself, or its week's Monday
        self.days = period.days()
        self.day_starts = [day_start(d, period.timezone) for d in self.days]

    # --- helpers ------------------------------------------------------------------------

    def agent_of(self, actor: str) -> str | None:
        """The agent an actor names (cached: a report sees the same few actors 100,000 times)."""
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
        for clock in self.clocks.get(ticket_id, []):
            if clock.calendar in self.calendars:
                return self.calendars[clock.calendar]
        return None

    def seconds(self, ticket_id: int, a: dt.datetime, b: dt.datetime) -> float:
        calendar = self.calendar_of(ticket_id)
        if calendar is None:
            return max(0.0, (b - a).total_seconds())
        return calendar.working_seconds(a, b)

    def day_of(self, instant: dt.datetime) -> dt.date:
        """The local day of ``instant`` in the period (by the UTC starts of its days)."""
        return self.days[max(0, bisect.bisect_right(self.day_starts, instant) - 1)]

    def group(self, event: EventRow, day: dt.date) -> str:
        if self.by in ("day", "week"):
            if day not in self.day_keys:
                start = day - dt.timedelta(days=day.weekday()) if self.by == "week" else day
                self.day_keys[day] = start.isoformat()
            return self.day_keys[day]
        facts = self.tickets.get(event.ticket_id)
        if facts is None:
            return NONE
        value = {
            "team": facts.team,
            "agent": facts.assignee,
            "mailbox": facts.mailbox,
            "category": facts.category,
            "priority": facts.priority,
        }[str(self.by)]
        return value or NONE

    def resolution_seconds(self, ticket_id: int, resolved_at: dt.datetime) -> float | None:
        """Time new/open between creation and ``resolved_at`` (pending and done spells left out)."""
        calendar = self.calendar_of(ticket_id)
        state, since, total = "", None, 0.0
        for event in self.history.get(ticket_id, []):
            if event.at > resolved_at:
                break
            if event.kind not in rows.LIFE:
                continue
            if state in WORKING and since is not None:
                if calendar is None:
                    total += max(0.0, (event.at - since).total_seconds())
                else:
                    total += calendar.working_seconds(since, event.at)
            state, since = state_after(event, state), event.at
        return total if since is not None else None

    def is_one_touch(self, resolution: EventRow) -> bool:
        """Resolved for the first time, after exactly one answer to the customer."""
        earlier = [e for e in self.history.get(resolution.ticket_id, []) if e.at <= resolution.at]
        resolved_before = any(
            e.kind == "status" and e.new in DONE and e.old not in DONE and e.at < resolution.at
            for e in earlier
        )
        return not resolved_before and sum(e.kind in ANSWERS for e in earlier) == 1

    # --- the report ---------------------------------------------------------------------

    def report(self) -> dict[str, Any]:
        volume: Counter[str] = Counter()
        groups: dict[str, dict[str, Any]] = defaultdict(_group)
        per_day: dict[dt.date, Counter[str]] = {d: Counter() for d in self.days}
        first: list[float] = []
        resolution: list[float] = []
        workload: dict[str, Counter[str]] = defaultdict(Counter)
        routed: dict[str, set[int]] = defaultdict(set)
        opened: list[TicketFacts] = []
        resolutions = one_touch = 0
        for event in self.events:
            local_day = self.day_of(event.at)
            key = self.group(event, local_day) if self.by else ""
            counted = self._volume(event)
            agent = self.agent_of(event.actor)
            day = per_day.get(local_day)
            for name in counted:
                volume[name] += 1
                if self.by:
                    groups[key]["volume"][name] += 1
                if day is not None:
                    day[name] += 1
            if "opened" in counted and event.ticket_id in self.tickets:
                opened.append(self.tickets[event.ticket_id])
            if "resolved" in counted:
                if agent:
                    workload[agent]["resolved"] += 1
                took = self.resolution_seconds(event.ticket_id, event.at)
                if took is not None:
                    resolution.append(took)
                    if self.by:
                        groups[key]["resolution"].append(took)
                resolutions += 1
                one_touch += self.is_one_touch(event)
            if event.kind == "first_response":
                facts = self.tickets.get(event.ticket_id)
                if facts is not None:
                    took = self.seconds(event.ticket_id, facts.created_at, event.at)
                    first.append(took)
                    if self.by:
                        groups[key]["first_response"].append(took)
            if event.kind == "assignee" and event.new:
                workload[event.new]["assigned"] += 1
            if agent and (event.kind in ANSWERS or event.kind == "note"):
                workload[agent]["notes" if event.kind == "note" else "replies"] += 1
            if event.actor.startswith("system:route:"):
                routed[event.actor.removeprefix("system:route:")].add(event.ticket_id)
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
                "one_touch_resolution_rate": share(one_touch, resolutions),
            },
            "sla": self._sla(),
            "csat": self._csat(),
            "backlog": self._backlog(),
            "open_age": self._open_age(),
            "workload": _workload(workload, [a.key for a in self.config.agents]),
            "common": {
                "categories": _top(t.category or NONE for t in opened),
                "routing_rules": _top_counts({k: len(v) for k, v in routed.items()}),
                "requester_domains": _top(t.requester.rpartition("@")[2] for t in opened),
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

    def _volume(self, event: EventRow) -> list[str]:
        found = []
        if (change := change_of(event)) is not None:
            found.append(change)
        if event.kind == "status" and event.new in DONE and event.old not in DONE:
            found.append("resolved")
        if event.kind == "status" and event.new == "closed":
            found.append("closed")
        if event.kind == "message" and event.new == "customer":
            found.append("customer_messages")
        if event.kind in ANSWERS:
            found.append("agent_messages")
        if event.kind == "note":
            found.append("notes")
        return found

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
            for event in self.history.get(ticket_id, []):
                after = state_after(event, state)
                if after in OPEN and state not in OPEN:
                    since = event.at
                elif after not in OPEN and state in OPEN and since is not None:
                    spans.append((since, event.at, ticket_id))
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
            if a < instant and (b is None or b >= instant) and ticket_id in self.tickets:
                ages.append((instant - self.tickets[ticket_id].created_at).total_seconds())
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


def _top(values: Iterable[str], limit: int = 10) -> list[dict[str, Any]]:
    return [{"key": k, "count": n} for k, n in Counter(values).most_common(limit)]


def _top_counts(counts: dict[str, int], limit: int = 10) -> list[dict[str, Any]]:
    return [{"key": k, "count": n} for k, n in Counter(counts).most_common(limit)]


def _buckets(values: list[float], limits: tuple[tuple[float, str], ...]) -> list[dict[str, Any]]:
    counts = Counter(next(label for top, label in limits if v < top) for v in values)
    return [{"bucket": label, "count": counts[label]} for _top_, label in limits]

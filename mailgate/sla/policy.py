"""SLA policies: which one applies to a ticket (first match wins, like routing), and what it says.

A policy gives a calendar, durations per clock (working time), the warning share
and what breach does. Conditions — priorities, mailboxes, teams, sender domains —
must all match where given; a policy without conditions covers every ticket.
Pure over the config (checked by the loader).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from mailgate.config import Config
from mailgate.config.calendars import Duration, parse_duration, parse_percent, parse_wall_duration
from mailgate.sla.calendar import WorkCalendar, calendars

CLOCK_NAMES = ("first_response", "next_response", "resolution")


@dataclass(frozen=True)
class Policy:
    key: str
    name: str
    calendar: WorkCalendar
    durations: dict[str, Duration]
    warn_fraction: float | None
    breach_team: str
    breach_priority: str
    priorities: tuple[str, ...]
    mailboxes: tuple[str, ...]
    teams: tuple[str, ...]
    sender_domains: tuple[str, ...]

    def covers(self, priority: str, mailbox: str, team: str, sender: str) -> bool:
        domain = sender.rpartition("@")[2].lower()
        return (
            (not self.priorities or priority in self.priorities)
            and (not self.mailboxes or mailbox in self.mailboxes)
            and (not self.teams or team in self.teams)
            and (not self.sender_domains or any(_in_domain(domain, d) for d in self.sender_domains))
        )


@dataclass(frozen=True)
class Settings:
    """Everything time-related of one config, built once per config."""

    policies: tuple[Policy, ...]
    calendars: dict[str, WorkCalendar]
    reminder_after: int | None
    close_after: int | None
    resolved_after: int | None
    fingerprint: int


def _in_domain(domain: str, wanted: str) -> bool:
    wanted = wanted.lower().lstrip("@")
    return domain == wanted or domain.endswith("." + wanted)


_built: dict[int, tuple[Config, Settings]] = {}


def settings(config: Config) -> Settings:
    """The time settings of ``config`` (cached per config object)."""
    cached = _built.get(id(config))
    if cached is not None and cached[0] is config:
        return cached[1]
    known = calendars(config)
    policies = tuple(
        Policy(
            key=p.key,
            name=p.name or p.key,
            calendar=known[p.calendar],
            durations={n: parse_duration(getattr(p, n)) for n in CLOCK_NAMES if getattr(p, n)},
            warn_fraction=parse_percent(p.warn_at),
            breach_team=p.breach_team,
            breach_priority=p.breach_priority,
            priorities=tuple(p.priorities),
            mailboxes=p.mailboxes,
            teams=p.teams,
            sender_domains=p.sender_domains,
        )
        for p in config.slas
    )
    lifecycle = config.lifecycle
    described = repr(
        (config.slas, config.calendars, config.gateway.timezone, lifecycle.pending_reminder_after,
         lifecycle.pending_close_after, lifecycle.resolved_close_after)
    )  # fmt: skip
    built = Settings(
        policies=policies,
        calendars=known,
        reminder_after=parse_wall_duration(lifecycle.pending_reminder_after),
        close_after=parse_wall_duration(lifecycle.pending_close_after),
        resolved_after=parse_wall_duration(lifecycle.resolved_close_after),
        fingerprint=int(hashlib.sha256(described.encode()).hexdigest()[:15], 16),
    )
    if len(_built) > 16:
        _built.clear()
    _built[id(config)] = (config, built)
    return built


def choose(config: Config, priority: str, mailbox: str, team: str, sender: str) -> Policy | None:
    for policy in settings(config).policies:
        if policy.covers(priority, mailbox, team, sender):
            return policy
    return None

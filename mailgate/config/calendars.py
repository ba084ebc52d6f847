"""Time in the config: durations, working-hour ranges, calendars and SLA policies checked.

``[[calendar]]`` tables give weekly ranges (``mon = ["08:00-12:30", "13:30-18:00"]``,
one string for one range, a day left out is closed) in an IANA zone, and
holidays; ``"24x7"`` is built in (in ``gateway.timezone``). ``[[sla]]`` durations
(``"15m"``, ``"4h"``, ``"2d"``, ``"1h30m"``) count working time in the policy's
calendar; ``[lifecycle]`` durations (``"3d"``) are wall-clock time. Every problem
is one line naming the key and the file (``check_time``).

Imports only the standard library and the sections.
"""

from __future__ import annotations

import datetime as dt
import re
import typing
import zoneinfo
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from mailgate.config.sections import Calendar, Config

BUILTIN_CALENDAR = "24x7"
DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_SLA_DURATION = re.compile(r"^(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?$")
_WALL_DURATION = re.compile(r"^(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?$")
_RANGE = re.compile(r"^(\d{1,2}):(\d{2})\s*-\s*(\d{1,2}):(\d{2})$")
_PERCENT = re.compile(r"^(\d{1,2})\s*%$")
_DOMAIN = re.compile(r"^@?[a-z0-9-]+(\.[a-z0-9-]+)+$")


@dataclass(frozen=True)
class Duration:
    """An SLA duration: whole working days (same working minute n days later), then seconds."""

    days: int
    seconds: int
    text: str

    @property
    def nominal_seconds(self) -> int:
        """For a 24-hour calendar: what the duration means in seconds."""
        return self.days * 86400 + self.seconds


def parse_duration(text: str) -> Duration:
    """``"1d4h"``, ``"4h"``, ``"1h30m"``, ``"15m"`` → Duration; ValueError otherwise."""
    cleaned = "".join(text.lower().split())
    match = _SLA_DURATION.match(cleaned)
    if not cleaned or match is None:
        raise ValueError(f"{text!r} is not a duration like '15m', '4h', '1h30m' or '2d'")
    days, hours, minutes = (int(g or 0) for g in match.groups())
    if not (days or hours or minutes):
        raise ValueError(f"{text!r} is zero")
    return Duration(days, hours * 3600 + minutes * 60, cleaned)


def parse_wall_duration(text: str) -> int | None:
    """A wall-clock duration in seconds (``"3d"``, ``"36h"``, ``"90m"``); None for ``""``."""
    cleaned = "".join(text.lower().split())
    if not cleaned:
        return None
    match = _WALL_DURATION.match(cleaned)
    if match is None:
        raise ValueError(f"{text!r} is not a duration like '3d', '36h' or '90m' ('' for never)")
    days, hours, minutes, seconds = (int(g or 0) for g in match.groups())
    total = days * 86400 + hours * 3600 + minutes * 60 + seconds
    if total <= 0:
        raise ValueError(f"{text!r} is zero ('' for never)")
    return total


def parse_percent(text: str) -> float | None:
    """``"80%"`` → 0.8; ``""`` → None (no warning)."""
    if not text.strip():
        return None
    match = _PERCENT.match(text.strip())
    if match is None or not 0 < int(match.group(1)) < 100:
        raise ValueError(f"{text!r} is not a percentage between 1% and 99% ('' for no warning)")
    return int(match.group(1)) / 100


def parse_range(text: str) -> tuple[int, int]:
    """``"08:00-12:30"`` → (480, 750) minutes after midnight; ``24:00`` may end a range."""
    match = _RANGE.match(text.strip())
    if match is None:
        raise ValueError(f"{text!r} is not a range like '08:00-12:30'")
    h1, m1, h2, m2 = (int(g) for g in match.groups())
    if h1 > 23 or m1 > 59 or h2 > 24 or m2 > 59 or (h2 == 24 and m2):
        raise ValueError(f"{text!r}: no such time of day")
    start, end = h1 * 60 + m1, h2 * 60 + m2
    if end <= start:
        raise ValueError(
            f"{text!r} ends before it starts (a range cannot cross midnight: split it in two days)"
        )
    return start, end


def day_ranges(calendar: Calendar, day: str) -> tuple[tuple[int, int], ...]:
    """A checked day's ranges, sorted, touching ones joined."""
    joined: list[tuple[int, int]] = []
    for start, end in sorted(parse_range(r) for r in getattr(calendar, day)):
        if joined and start <= joined[-1][1]:
            joined[-1] = (joined[-1][0], max(end, joined[-1][1]))
        else:
            joined.append((start, end))
    return tuple(joined)


def zone(name: str) -> zoneinfo.ZoneInfo:
    try:
        return zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise ValueError(
            f"unknown time zone {name!r} (an IANA name like 'Europe/Berlin')"
        ) from None


def normalise_calendars(data: dict[str, Any]) -> None:
    """One string is one range; TOML dates are holidays as well as ISO strings."""
    tables = data.get("calendars")
    if not isinstance(tables, list):
        return
    for table in tables:
        if not isinstance(table, dict):
            continue
        for day in DAYS:
            if isinstance(table.get(day), str):
                table[day] = [table[day]]
        holidays = table.get("holidays")
        if isinstance(holidays, list):
            table["holidays"] = [h.isoformat() if isinstance(h, dt.date) else h for h in holidays]


def check_time(config: Config, fail: Callable[[str, str], typing.NoReturn]) -> None:
    """Calendars, SLA policies and the lifecycle's durations: one line naming key and file."""
    try:
        zone(config.gateway.timezone)
    except ValueError as exc:
        fail("gateway.timezone", str(exc))
    for key in ("pending_reminder_after", "pending_close_after", "resolved_close_after"):
        try:
            parse_wall_duration(getattr(config.lifecycle, key))
        except ValueError as exc:
            fail(f"lifecycle.{key}", str(exc))
    keys = {BUILTIN_CALENDAR}
    for i, calendar in enumerate(config.calendars):
        where = f"calendar[{i}]"
        if not calendar.key:
            fail(f"{where}.key", "must not be empty")
        if calendar.key in keys:
            why = "is built in" if calendar.key == BUILTIN_CALENDAR else "is used twice"
            fail(f"{where}.key", f"{calendar.key!r} {why}")
        keys.add(calendar.key)
        _check_calendar(calendar, where, fail)
    _check_policies(config, keys, fail)


def _check_calendar(
    calendar: Calendar, where: str, fail: Callable[[str, str], typing.NoReturn]
) -> None:
    if calendar.timezone:
        try:
            zone(calendar.timezone)
        except ValueError as exc:
            fail(f"{where}.timezone", str(exc))
    hours = 0
    for day in DAYS:
        seen: list[tuple[int, int, str]] = []
        for j, text in enumerate(getattr(calendar, day)):
            try:
                start, end = parse_range(text)
            except ValueError as exc:
                fail(f"{where}.{day}[{j}]", str(exc))
            for other_start, other_end, other in seen:
                if start < other_end and other_start < end:
                    fail(f"{where}.{day}[{j}]", f"{text!r} overlaps {other!r}")
            seen.append((start, end, text))
            hours += end - start
    if hours == 0:
        fail(where, "no working hours on any day")
    for j, text in enumerate(calendar.holidays):
        try:
            dt.date.fromisoformat(text)
        except ValueError:
            fail(f"{where}.holidays[{j}]", f"{text!r} is not a date like 2026-12-25")


def _check_policies(
    config: Config, calendars: set[str], fail: Callable[[str, str], typing.NoReturn]
) -> None:
    seen: set[str] = set()
    teams = {t.key for t in config.teams}
    boxes = {b.name for b in config.mailboxes}
    for i, policy in enumerate(config.slas):
        where = f"sla[{i}]"
        if not policy.key or policy.key in seen:
            fail(f"{where}.key", "must be given and unique")
        seen.add(policy.key)
        if policy.calendar not in calendars:
            fail(f"{where}.calendar", f"no [[calendar]] with key {policy.calendar!r}")
        clocks = [
            k for k in ("first_response", "next_response", "resolution") if getattr(policy, k)
        ]
        if not clocks:
            fail(where, "give at least one of first_response, next_response, resolution")
        for key in clocks:
            try:
                parse_duration(getattr(policy, key))
            except ValueError as exc:
                fail(f"{where}.{key}", str(exc))
        try:
            parse_percent(policy.warn_at)
        except ValueError as exc:
            fail(f"{where}.warn_at", str(exc))
        if policy.breach_team and policy.breach_team not in teams:
            fail(f"{where}.breach_team", f"no [[team]] with key {policy.breach_team!r}")
        for j, team in enumerate(policy.teams):
            if team not in teams:
                fail(f"{where}.teams[{j}]", f"no [[team]] with key {team!r}")
        for j, box in enumerate(policy.mailboxes):
            if box not in boxes:
                fail(f"{where}.mailboxes[{j}]", f"no [[mailbox]] named {box!r}")
        for j, domain in enumerate(policy.sender_domains):
            if not _DOMAIN.match(domain.lower()):
                fail(f"{where}.sender_domains[{j}]", f"{domain!r} is not a domain")

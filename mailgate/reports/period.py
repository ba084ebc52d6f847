"""The period a report covers: ``--from``/``--to`` days in ``gateway.timezone``, ``--to`` inclusive.

Without dates: the last 30 days up to now. Pure apart from the time zone data.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from mailgate.errors import UsageError
from mailgate.search import day_start, parse_day
from mailgate.search.dates import zone

DEFAULT_DAYS = 30


@dataclass(frozen=True, slots=True)
class Period:
    start: dt.datetime  # naive UTC, included
    end: dt.datetime  # naive UTC, excluded
    timezone: str
    first_day: dt.date  # local
    last_day: dt.date  # local, included

    def local(self, instant: dt.datetime) -> dt.datetime:
        return instant.replace(tzinfo=dt.UTC).astimezone(zone(self.timezone))

    def days(self) -> list[dt.date]:
        count = (self.last_day - self.first_day).days + 1
        return [self.first_day + dt.timedelta(days=i) for i in range(count)]

    def day_end(self, day: dt.date) -> dt.datetime:
        return min(day_start(day + dt.timedelta(days=1), self.timezone), self.end)


def period(first: str, last: str, timezone: str, now: dt.datetime) -> Period:
    """The period ``--from first --to last`` (either may be empty), as UTC instants."""
    try:
        to_day = parse_day(last) if last else None
        from_day = parse_day(first) if first else None
    except ValueError as exc:
        raise UsageError(f"--{'to' if last and _bad(last) else 'from'}: {exc}") from None
    if from_day is None and to_day is None:
        start = now - dt.timedelta(days=DEFAULT_DAYS)
        local = zone(timezone)
        return Period(start, now, timezone, _day(start, local), _day(now, local))
    if from_day is None:
        assert to_day is not None
        from_day = to_day - dt.timedelta(days=DEFAULT_DAYS - 1)
    if to_day is None:
        to_day = _day(now, zone(timezone))
    if to_day < from_day:
        raise UsageError(f"--to {to_day} is before --from {from_day}")
    start = day_start(from_day, timezone)
    end = day_start(to_day + dt.timedelta(days=1), timezone)
    return Period(start, end, timezone, from_day, to_day)


def _day(instant: dt.datetime, local: dt.tzinfo) -> dt.date:
    return instant.replace(tzinfo=dt.UTC).astimezone(local).date()


def _bad(text: str) -> bool:
    try:
        parse_day(text)
    except ValueError:
        return True
    return False

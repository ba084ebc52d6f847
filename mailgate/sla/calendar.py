"""Working time in a calendar: weekly ranges in an IANA zone, holidays, and the arithmetic.

Instants are naive UTC (the house's convention); the ranges are local wall-clock
times, turned into UTC per day with ``zoneinfo``, so a DST change is just a day
whose ranges are an hour shorter or longer in real time.

* ``add(start, seconds)``: the instant when that much working time has passed. A
  due time that falls on the end of a range is that instant (12:30, not 13:30).
* ``add_days(start, n)``: the same working minute n working days later ("2d"):
  the same wall-clock offset into the working day (so 10:00 stays 10:00 across a
  DST change); on a shorter day, that day's end.
* ``working_seconds(a, b)``: working time between two instants.

Pure: the standard library and the config's checked values.
"""

from __future__ import annotations

import datetime as dt
import zoneinfo
from dataclasses import dataclass, field

from mailgate.config import Config
from mailgate.config.calendars import BUILTIN_CALENDAR, DAYS, Duration, day_ranges, zone

_UTC = dt.UTC
_MAX_DAYS = 3660  # ten years: a calendar without working time far ahead is a config error
_FULL_DAY = ((0, 1440),)

Interval = tuple[dt.datetime, dt.datetime]


@dataclass(frozen=True)
class WorkCalendar:
    key: str
    timezone: str
    week: tuple[tuple[tuple[int, int], ...], ...]  # per weekday (Monday first): minute ranges
    holidays: frozenset[dt.date] = frozenset()
    _cache: dict[dt.date, tuple[Interval, ...]] = field(
        default_factory=dict, repr=False, compare=False, hash=False
    )

    @property
    def zone(self) -> zoneinfo.ZoneInfo:
        return zone(self.timezone)

    @property
    def always(self) -> bool:
        """Every minute is working time (24x7 without holidays): plain clock arithmetic."""
        return not self.holidays and all(day == _FULL_DAY for day in self.week)

    def local(self, instant: dt.datetime) -> dt.datetime:
        return instant.replace(tzinfo=_UTC).astimezone(self.zone)

    def ranges(self, day: dt.date) -> tuple[tuple[int, int], ...]:
        if day in self.holidays:
            return ()
        return self.week[day.weekday()]

    def intervals(self, day: dt.date) -> tuple[Interval, ...]:
        """The working ranges of a local date as naive UTC intervals."""
        found = self._cache.get(day)
        if found is None:
            found = tuple(
                (self._utc(day, start), self._utc(day, end)) for start, end in self.ranges(day)
            )
            if len(self._cache) > 4096:
                self._cache.clear()
            self._cache[day] = found
        return found

    def _utc(self, day: dt.date, minute: int) -> dt.datetime:
        if minute >= 1440:
            day, minute = day + dt.timedelta(days=1), minute - 1440
        local = dt.datetime.combine(day, dt.time(minute // 60, minute % 60), tzinfo=self.zone)
        return local.astimezone(_UTC).replace(tzinfo=None)

    # --- arithmetic ---------------------------------------------------------------------

    def add(self, start: dt.datetime, seconds: float) -> dt.datetime:
        """The instant when ``seconds`` of working time have passed after ``start``."""
        if seconds <= 0:
            return start
        if self.always:
            return start + dt.timedelta(seconds=seconds)
        remaining = float(seconds)
        day = self.local(start).date()
        current = start
        for _ in range(_MAX_DAYS):
            for begin, end in self.intervals(day):
                if end <= current:
                    continue
                begin = max(begin, current)
                available = (end - begin).total_seconds()
                if remaining <= available:
                    return begin + dt.timedelta(seconds=remaining)
                remaining -= available
                current = end
            day += dt.timedelta(days=1)
        raise ValueError(f"calendar {self.key!r}: no working time within {_MAX_DAYS} days")

    def working_seconds(self, a: dt.datetime, b: dt.datetime) -> float:
        """Working time between ``a`` and ``b`` (0 when b is not after a)."""
        if b <= a:
            return 0.0
        if self.always:
            return (b - a).total_seconds()
        total = 0.0
        day = self.local(a).date()
        last = self.local(b).date()
        while day <= last:
            for begin, end in self.intervals(day):
                overlap = (min(end, b) - max(begin, a)).total_seconds()
                if overlap > 0:
                    total += overlap
            day += dt.timedelta(days=1)
        return total

    def add_days(self, start: dt.datetime, days: int) -> dt.datetime:
        """The same working minute ``days`` working days later."""
        if days <= 0:
            return start
        day, offset = self._position(start)
        for _ in range(days):
            day = self._next_working_day(day)
        return self._at_offset(day, offset)

    def add_duration(self, start: dt.datetime, duration: Duration) -> dt.datetime:
        """Days first (same working minute), then hours and minutes of working time."""
        return self.add(self.add_days(start, duration.days), duration.seconds)

    def _position(self, instant: dt.datetime) -> tuple[dt.date, float]:
        """(working day, wall-clock seconds of working time into it) of an instant.

        Outside working hours an instant counts as the next working minute.
        """
        local = self.local(instant)
        day = local.date()
        wall = local.hour * 3600 + local.minute * 60 + local.second + local.microsecond / 1e6
        offset = 0.0
        for start, end in self.ranges(day):
            if wall < start * 60:
                return day, offset
            if wall <= end * 60:
                return day, offset + wall - start * 60
            offset += (end - start) * 60
        return self._next_working_day(day), 0.0

    def _next_working_day(self, day: dt.date) -> dt.date:
        for _ in range(_MAX_DAYS):
            day += dt.timedelta(days=1)
            if self.ranges(day):
                return day
        raise ValueError(f"calendar {self.key!r}: no working day within {_MAX_DAYS} days")

    def _at_offset(self, day: dt.date, offset: float) -> dt.datetime:
        ranges = self.ranges(day)
        for start, end in ranges:
            length = (end - start) * 60
            if offset <= length:
                return self._wall(day, start * 60 + offset)
            offset -= length
        return self._utc(day, ranges[-1][1])  # a shorter day: its end

    def _wall(self, day: dt.date, seconds: float) -> dt.datetime:
        whole = int(seconds)
        if whole >= 86400:
            return self._utc(day, 1440)
        local = dt.datetime.combine(
            day,
            dt.time(whole // 3600, whole % 3600 // 60, whole % 60, int((seconds - whole) * 1e6)),
            tzinfo=self.zone,
        )
        return local.astimezone(_UTC).replace(tzinfo=None)


def builtin(config: Config) -> WorkCalendar:
    """``24x7`` in ``gateway.timezone``."""
    return WorkCalendar(BUILTIN_CALENDAR, config.gateway.timezone, (_FULL_DAY,) * 7)


def calendars(config: Config) -> dict[str, WorkCalendar]:
    """Every calendar of the config (checked by the loader), the built-in one included."""
    found = {BUILTIN_CALENDAR: builtin(config)}
    for c in config.calendars:
        found[c.key] = WorkCalendar(
            c.key,
            c.timezone or config.gateway.timezone,
            tuple(day_ranges(c, day) for day in DAYS),
            frozenset(dt.date.fromisoformat(h) for h in c.holidays),
        )
    return found

"""Dates and times as admins type them, read in ``gateway.timezone``, as naive UTC.

``2026-03-01`` is the start of that day where the gateway is; ``2026-03-01T14:30``
that minute there; a time with an offset (``…+02:00``, ``…Z``) means what it says.
Errors are ``ValueError`` naming the accepted formats. Pure (standard library).
"""

from __future__ import annotations

import datetime as dt
import zoneinfo

FORMATS = "YYYY-MM-DD or YYYY-MM-DDTHH:MM (ISO 8601, optionally with an offset)"


def zone(name: str) -> dt.tzinfo:
    try:
        return zoneinfo.ZoneInfo(name or "UTC")
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown time zone {name!r}") from None


def parse_day(text: str) -> dt.date:
    try:
        return dt.date.fromisoformat(text.strip())
    except ValueError:
        raise ValueError(f"{text!r} is not a date; use YYYY-MM-DD") from None


def day_start(day: dt.date, timezone: str) -> dt.datetime:
    """When ``day`` begins in ``timezone``, as naive UTC."""
    local = dt.datetime.combine(day, dt.time(), tzinfo=zone(timezone))
    return local.astimezone(dt.UTC).replace(tzinfo=None)


def instant(text: str, timezone: str) -> dt.datetime:
    """A date (its start) or a time, read in ``timezone`` unless it has an offset."""
    raw = text.strip()
    if len(raw) == 10:
        return day_start(parse_day(raw), timezone)
    try:
        when = dt.datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(f"{text!r} is not a date or time; use {FORMATS}") from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=zone(timezone))
    return when.astimezone(dt.UTC).replace(tzinfo=None)

"""Small helpers the queue and ticket pages share: times as people read them, links.

Times are stored and listed as UTC (``2026-03-01T09:30:00Z``); pages show them in
``gateway.timezone`` to the minute.
"""

from __future__ import annotations

import datetime as dt
import zoneinfo
from collections.abc import Mapping
from urllib.parse import urlencode

from mailgate.config import Config


def parse_utc(text: str | None) -> dt.datetime | None:
    """``…Z`` (as the lists print it) as an aware UTC time; None for none or nonsense."""
    if not text:
        return None
    try:
        when = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return when if when.tzinfo else when.replace(tzinfo=dt.UTC)


def local(config: Config, text: str | None) -> str:
    """A listed UTC time in the gateway's time zone, ``YYYY-MM-DD HH:MM``; '' for none."""
    when = parse_utc(text)
    if when is None:
        return text or ""
    try:
        zone: dt.tzinfo = zoneinfo.ZoneInfo(config.gateway.timezone or "UTC")
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        zone = dt.UTC
    return when.astimezone(zone).strftime("%Y-%m-%d %H:%M")


def is_past(text: str | None, now: dt.datetime | None = None) -> bool:
    when = parse_utc(text)
    return when is not None and when <= (now or dt.datetime.now(dt.UTC))


def query(values: Mapping[str, str], **changes: str | int | None) -> str:
    """``?a=1&b=2`` of ``values`` with ``changes`` applied (None or '' removes a key)."""
    merged = {k: v for k, v in values.items() if v}
    for key, value in changes.items():
        if value is None or value == "":
            merged.pop(key, None)
        else:
            merged[key] = str(value)
    return "?" + urlencode(merged) if merged else "?"

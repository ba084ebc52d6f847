"""Measure the work: volume, response and resolution times, SLA, CSAT, backlog, workload.

The front door is ``build(config, period, by) -> dict``: the figures counted once
(``reports.figures``, its docstring has the counting rules), which ``text``,
``csv_text``, ``html`` and ``--json`` all show — so the page and the JSON can
never disagree. ``period(from, to, timezone, now)`` reads the dates an admin
typed. For the CLI (``mailgate report``) and the web desk. Imports the store's
report reads, sla, search (dates), config and errors; never the edge.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from mailgate.config import Config
from mailgate.errors import UsageError
from mailgate.reports.figures import BY, VOLUME, Figures
from mailgate.reports.page import body, html
from mailgate.reports.period import Period, period
from mailgate.reports.render import csv_text, text
from mailgate.store import utcnow

__all__ = ["BY", "VOLUME", "Period", "body", "build", "csv_text", "html", "period", "text"]


def build(
    config: Config, within: Period, by: str | None = None, now: dt.datetime | None = None
) -> dict[str, Any]:
    """The report of ``within``, grouped ``by`` one of ``BY`` (or not grouped)."""
    if by is not None and by not in BY:
        raise UsageError(f"--by: unknown grouping {by!r}; one of {', '.join(BY)}")
    return Figures(config, within, by, now or utcnow()).report()

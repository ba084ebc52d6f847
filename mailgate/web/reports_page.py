"""Reports (``/reports``): the charts and tables of ``mailgate report`` for a date range.

The figures come from ``mailgate.reports.build`` — the very dict ``mailgate report
--json`` prints — and are drawn by ``reports.body`` (inline SVG without any ``style``
attribute, so the desk's ``style-src 'self'`` policy holds); ``/reports.csv`` is
``mailgate report --csv`` for the same range. Every logged-in agent sees them: the
report counts the whole desk (it has no team filter). A bad date is the page again
with one line saying what is wrong (400), never a 500.
"""

from __future__ import annotations

import datetime as dt
from typing import Any
from urllib.parse import urlencode

from markupsafe import Markup
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from mailgate import reports
from mailgate.errors import UsageError
from mailgate.search.dates import zone
from mailgate.store import utcnow
from mailgate.web.render import ctx_of, page
from mailgate.web.session import require_agent

# A page drawing one bar per day stays readable (and cheap) up to about two years.
MAX_DAYS = 732
# Quick ranges: (label, days back from today, today included).
PRESETS = (("last 7 days", 7), ("last 30 days", 30), ("last 90 days", 90), ("last year", 365))


def _asked(request: Request) -> tuple[str, str, str]:
    q = request.query_params
    return q.get("from", "").strip(), q.get("to", "").strip(), q.get("by", "").strip()


def _report(request: Request) -> tuple[dict[str, Any], reports.Period]:
    """The report the query asks for; ``UsageError`` (one line) when it asks wrongly."""
    first, last, by = _asked(request)
    config = ctx_of(request).config
    now = utcnow()
    within = reports.period(first, last, config.gateway.timezone, now)
    if (within.last_day - within.first_day).days + 1 > MAX_DAYS:
        raise UsageError(f"the range is longer than {MAX_DAYS} days; pick a shorter one")
    if by and by not in reports.BY:
        raise UsageError(f"by: unknown grouping {by!r}; one of {', '.join(reports.BY)}")
    return reports.build(config, within, by or None, now), within


def _presets(timezone: str) -> list[tuple[str, str]]:
    today = utcnow().replace(tzinfo=dt.UTC).astimezone(zone(timezone)).date()
    return [
        (label, urlencode({"from": (today - dt.timedelta(days=days - 1)).isoformat(),
                           "to": today.isoformat()}))
        for label, days in PRESETS
    ]  # fmt: skip


def reports_page(request: Request) -> Response:
    require_agent(request)
    first, last, by = _asked(request)
    config = ctx_of(request).config
    values: dict[str, Any] = {
        "first": first,
        "last": last,
        "by": by,
        "groupings": reports.BY,
        "presets": _presets(config.gateway.timezone),
        "report": None,
        "error": "",
    }
    try:
        report, _within = _report(request)
    except UsageError as exc:
        return page(request, "reports.html", status_code=400, **{**values, "error": str(exc)})
    period = report["period"]
    # The download counts exactly what the page counts: the same query, not the days shown.
    csv_query = urlencode({k: v for k, v in (("from", first), ("to", last), ("by", by)) if v})
    return page(
        request,
        "reports.html",
        **{
            **values,
            "first": first or period["from"],
            "last": last or period["to"],
            "report": report,
            # Escaped piece by piece by reports.page: every text in it went through html.escape.
            "drawn": Markup(reports.body(report)),  # noqa: S704
            "csv_query": csv_query,
        },
    )


def reports_csv(request: Request) -> Response:
    require_agent(request)
    try:
        report, within = _report(request)
    except UsageError as exc:
        return Response(f"{exc}\n", status_code=400, media_type="text/plain; charset=utf-8")
    name = f"mailgate-report-{within.first_day}-{within.last_day}.csv"
    return Response(
        reports.csv_text(report),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )


routes: list[BaseRoute] = [
    Route("/reports", reports_page, methods=["GET"], name="reports"),
    Route("/reports.csv", reports_csv, methods=["GET"], name="reports_csv"),
]

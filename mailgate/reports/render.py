"""A report as text for a terminal, and as CSV (one row for all, one per ``--by`` group).

Both print the dict ``figures`` made — the same numbers as ``--json`` and the page.
"""

from __future__ import annotations

import csv
import io
from typing import Any

from mailgate.reports.figures import VOLUME

TIMES = ("median_s", "p90_s", "mean_s", "count")


def duration(seconds: float | None) -> str:
    """``3h 05m``, ``2d 4h``, ``45m``, ``-`` for nothing."""
    if seconds is None:
        return "-"
    minutes = round(seconds / 60)
    days, rest = divmod(minutes, 1440)
    hours, mins = divmod(rest, 60)
    if days:
        return f"{days}d {hours}h"
    return f"{hours}h {mins:02d}m" if hours else f"{mins}m"


def percent(value: float | None) -> str:
    return "-" if value is None else f"{value * 100:.1f}%"


def _times(label: str, t: dict[str, Any]) -> str:
    return (
        f"{label:<16} median {duration(t['median_s'])}, p90 {duration(t['p90_s'])},"
        f" mean {duration(t['mean_s'])} ({t['count']})"
    )


def text(report: dict[str, Any]) -> str:
    p, v = report["period"], report["volume"]
    lines = [
        f"Report {p['from']} to {p['to']} ({p['timezone']})",
        "",
        "volume           " + ", ".join(f"{k.replace('_', ' ')} {v[k]}" for k in VOLUME),
        _times("first response", report["first_response"]),
        _times("resolution", report["resolution"]),
        f"reopen rate      {percent(report['rates']['reopen_rate'])}, one-touch resolution"
        f" {percent(report['rates']['one_touch_resolution_rate'])}",
        f"SLA attainment   {percent(report['sla']['attainment'])} (met {report['sla']['met']},"
        f" breached {report['sla']['breached']})",
        f"CSAT             {percent(report['csat']['share_good'])} good"
        f" ({report['csat']['count']} ratings)",
        f"open now         {report['open_age']['count']}, age median"
        f" {duration(report['open_age']['median_s'])},"
        f" oldest {duration(report['open_age']['max_s'])}",
        "",
        "workload         assigned resolved replies notes minutes",
    ]
    for w in report["workload"]:
        lines.append(
            f"  {w['agent']:<14} {w['assigned']:>8} {w['resolved']:>8} {w['replies']:>7}"
            f" {w['notes']:>5} {w['working_minutes']:>7}"
        )
    for name, title in (
        ("categories", "categories"),
        ("routing_rules", "routing rules"),
        ("requester_domains", "requester domains"),
    ):
        top = report["common"][name]
        if top:
            lines.append(f"{title:<16} " + ", ".join(f"{t['key']} {t['count']}" for t in top))
    if report["groups"]:
        lines += ["", f"by {report['by']}"]
        for g in report["groups"]:
            gv = g["volume"]
            lines.append(
                f"  {g['key']:<14} opened {gv['opened']}, resolved {gv['resolved']},"
                f" first response median {duration(g['first_response']['median_s'])},"
                f" resolution median {duration(g['resolution']['median_s'])}"
            )
    return "\n".join(lines) + "\n"


def csv_text(report: dict[str, Any]) -> str:
    """One row for the whole period (group ``all``), then one per group."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    header = ["group", *VOLUME]
    header += [f"first_response_{k}" for k in TIMES] + [f"resolution_{k}" for k in TIMES]
    writer.writerow(header)
    for key, row in [("all", report), *((g["key"], g) for g in report["groups"])]:
        writer.writerow(
            [key, *(row["volume"][k] for k in VOLUME)]
            + [_blank(row["first_response"][k]) for k in TIMES]
            + [_blank(row["resolution"][k]) for k in TIMES]
        )
    return out.getvalue()


def _blank(value: Any) -> Any:
    return "" if value is None else value

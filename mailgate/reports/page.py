"""A report as one self-contained HTML page, its charts drawn as inline ``<svg>``.

Nothing is fetched from anywhere: no scripts, no ``src``/``href`` or CSS
``url()`` pointing at a server — the page opens the same from a mail attachment
or an air-gapped desk. Every text is escaped. The numbers are those of the
report dict (the ``--json`` output).
"""

from __future__ import annotations

from html import escape
from typing import Any

from mailgate.reports.figures import VOLUME
from mailgate.reports.render import duration, percent

WIDTH, HEIGHT, PAD = 640, 200, 30
COLOURS = ("#3b6ea5", "#d9822b", "#5a9e4b", "#a34a7b")

STYLE = """
body { font: 14px/1.4 system-ui, sans-serif; margin: 2em auto; max-width: 760px; color: #222 }
h1 { font-size: 1.4em } h2 { font-size: 1.1em; margin-top: 2em }
table { border-collapse: collapse } td, th { padding: 2px 10px; text-align: right }
th:first-child, td:first-child { text-align: left } tr:nth-child(even) { background: #f4f4f4 }
svg text { font: 11px sans-serif; fill: #333 }
"""


def bars(series: list[tuple[str, list[float]]], labels: list[str], title: str) -> str:
    """Grouped vertical bars: one colour per series, one group per label."""
    top = max([v for _name, values in series for v in values] + [1])
    n, k = max(len(labels), 1), max(len(series), 1)
    slot = (WIDTH - 2 * PAD) / n
    width = max(slot / (k + 1), 1)
    parts = [_frame(title, top)]
    for s, (name, values) in enumerate(series):
        for i, value in enumerate(values):
            h = (HEIGHT - 2 * PAD) * value / top
            x = PAD + i * slot + s * width
            parts.append(
                f'<rect x="{x:.1f}" y="{HEIGHT - PAD - h:.1f}" width="{width:.1f}"'
                f' height="{h:.1f}" fill="{COLOURS[s % len(COLOURS)]}">'
                f"<title>{escape(labels[i])} {escape(name)}: {value:g}</title></rect>"
            )
    parts += _labels(labels, slot)
    parts += _legend([name for name, _v in series])
    return _svg(title, parts)


def line(values: list[float], labels: list[str], title: str) -> str:
    top = max([*values, 1])
    n = max(len(values) - 1, 1)
    points = " ".join(
        f"{PAD + i * (WIDTH - 2 * PAD) / n:.1f},{HEIGHT - PAD - (HEIGHT - 2 * PAD) * v / top:.1f}"
        for i, v in enumerate(values)
    )
    parts = [
        _frame(title, top),
        f'<polyline points="{points}" fill="none" stroke="{COLOURS[0]}" stroke-width="2"/>',
    ]
    parts += _labels(labels, (WIDTH - 2 * PAD) / max(len(labels), 1))
    return _svg(title, parts)


def _frame(title: str, top: float) -> str:
    return (
        f'<line x1="{PAD}" y1="{HEIGHT - PAD}" x2="{WIDTH - PAD}" y2="{HEIGHT - PAD}"'
        ' stroke="#999"/>'
        f'<text x="2" y="{PAD - 8}">{top:g}</text><text x="2" y="{HEIGHT - PAD}">0</text>'
    )


def _labels(labels: list[str], slot: float) -> list[str]:
    step = max(1, len(labels) // 12)  # at most a dozen labels under the axis
    return [
        f'<text x="{PAD + i * slot:.1f}" y="{HEIGHT - PAD + 14}">{escape(label)}</text>'
        for i, label in enumerate(labels)
        if i % step == 0
    ]


def _legend(names: list[str]) -> list[str]:
    return [
        f'<rect x="{WIDTH - PAD - 120}" y="{8 + 14 * i}" width="10" height="10"'
        f' fill="{COLOURS[i % len(COLOURS)]}"/>'
        f'<text x="{WIDTH - PAD - 105}" y="{17 + 14 * i}">{escape(name)}</text>'
        for i, name in enumerate(names)
    ]


def _svg(title: str, parts: list[str]) -> str:
    return (
        f'<svg width="{WIDTH}" height="{HEIGHT}"'
        f' viewBox="0 0 {WIDTH} {HEIGHT}" role="img" aria-label="{escape(title)}">'
        + "".join(parts)
        + "</svg>"
    )


def _table(header: list[str], rows: list[list[Any]]) -> str:
    head = "".join(f"<th>{escape(h)}</th>" for h in header)
    body = "".join(
        "<tr>" + "".join(f"<td>{escape(str(c))}</td>" for c in row) + "</tr>" for row in rows
    )
    return f"<table><tr>{head}</tr>{body}</table>"


def html(report: dict[str, Any], title: str = "mailgate report") -> str:
    """One self-contained page (its own ``<style>``): for a file or a mail attachment."""
    p = report["period"]
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>{escape(title)}</title><style>{STYLE}</style></head><body>"
        f"<h1>{escape(title)}: {escape(p['from'])} to {escape(p['to'])}</h1>\n"
        f"<p>Days in {escape(p['timezone'])}.</p>\n" + body(report) + "</body></html>\n"
    )


def body(report: dict[str, Any]) -> str:
    """The headings, tables and charts of ``html`` without the page around them.

    No ``style`` attribute or element anywhere (colours are SVG presentation attributes),
    so the web desk embeds it under its ``style-src 'self'`` Content-Security-Policy and
    styles it from its own stylesheet.
    """
    v = report["volume"]
    days = [d["day"] for d in report["per_day"]]
    short = [d[5:] for d in days]
    summary_rows = [[k.replace("_", " "), v[k]] for k in VOLUME] + [
        ["first response median", duration(report["first_response"]["median_s"])],
        ["first response p90", duration(report["first_response"]["p90_s"])],
        ["resolution median", duration(report["resolution"]["median_s"])],
        ["resolution p90", duration(report["resolution"]["p90_s"])],
        ["reopen rate", percent(report["rates"]["reopen_rate"])],
        ["one-touch resolution", percent(report["rates"]["one_touch_resolution_rate"])],
        ["SLA attainment", percent(report["sla"]["attainment"])],
        ["CSAT good", f"{percent(report['csat']['share_good'])} of {report['csat']['count']}"],
        ["open tickets", report["open_age"]["count"]],
    ]
    workload = report["workload"]
    sections = [
        _table(["figure", "value"], summary_rows),
        "<h2>Volume per day</h2>",
        bars(
            [
                ("opened", [d["opened"] for d in report["per_day"]]),
                ("resolved", [d["resolved"] for d in report["per_day"]]),
            ],
            short,
            "volume per day",
        ),
        "<h2>First response times</h2>",
        bars(
            [("tickets", [b["count"] for b in report["response_distribution"]])],
            [b["bucket"] for b in report["response_distribution"]],
            "first response times",
        ),
        "<h2>Backlog (open tickets at the end of each day)</h2>",
        line([b["open"] for b in report["backlog"]], short, "backlog"),
        "<h2>Workload per agent</h2>",
        bars(
            [
                ("resolved", [w["resolved"] for w in workload]),
                ("replies", [w["replies"] for w in workload]),
            ],
            [w["agent"] for w in workload],
            "workload per agent",
        ),
        _table(
            ["agent", "assigned", "resolved", "replies", "notes", "minutes"],
            [
                [
                    w["agent"],
                    w["assigned"],
                    w["resolved"],
                    w["replies"],
                    w["notes"],
                    w["working_minutes"],
                ]
                for w in workload
            ],
        ),
    ]
    if report["groups"]:
        sections += [
            f"<h2>By {escape(str(report['by']))}</h2>",
            _table(
                ["group", "opened", "resolved", "first response median", "resolution median"],
                [
                    [
                        g["key"],
                        g["volume"]["opened"],
                        g["volume"]["resolved"],
                        duration(g["first_response"]["median_s"]),
                        duration(g["resolution"]["median_s"]),
                    ]
                    for g in report["groups"]
                ],
            ),
        ]
    return "\n".join(sections)

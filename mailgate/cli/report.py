"""``mailgate report``: the figures of a period as text, JSON, CSV or a page with charts.

Thin over ``mailgate.reports``: one ``build``, then the output asked for.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from mailgate.cli.common import EX_OK, Subparsers, command, context, print_json
from mailgate.errors import UsageError

ORDER = 45


def register(sub: Subparsers) -> None:
    from mailgate.reports import BY

    p = command(
        sub,
        "report",
        _report,
        "volume, response and resolution times, SLA, CSAT, backlog and workload",
    )
    p.add_argument(
        "--from",
        dest="first",
        default="",
        metavar="DATE",
        help="first day (YYYY-MM-DD, in gateway.timezone); default: 30 days ago",
    )
    p.add_argument(
        "--to", dest="last", default="", metavar="DATE", help="last day, included; default: today"
    )
    p.add_argument("--by", choices=BY, help="one group per team, agent, …, week or day")
    out = p.add_mutually_exclusive_group()
    out.add_argument("--json", action="store_true")
    out.add_argument("--csv", action="store_true", help="one row for all, then one per group")
    out.add_argument("--html", metavar="FILE", help="write one self-contained page with charts")


def _report(args: argparse.Namespace) -> int:
    from mailgate import reports
    from mailgate.store import utcnow

    ctx = context(args)
    now = utcnow()
    within = reports.period(args.first, args.last, ctx.config.gateway.timezone, now)
    report = reports.build(ctx.config, within, args.by, now)
    if args.json:
        print_json(report)
    elif args.csv:
        print(reports.csv_text(report), end="")
    elif args.html:
        try:
            Path(args.html).write_text(reports.html(report, ctx.config.gateway.name))
        except OSError as exc:
            raise UsageError(f"cannot write {args.html}: {exc.strerror}") from None
        print(f"report written to {args.html}")
    else:
        print(reports.text(report), end="")
    return EX_OK

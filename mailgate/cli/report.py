"""``mailgate report``: the figures of a period as text, JSON, CSV or a page with charts.

Thin over ``mailgate.reports``: one ``build``, then the output asked for.
"""

from __future__ import annotations

import argparse
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from mailgate.cli.common import EX_OK, Subparsers, command, context, print_json
from mailgate.errors import UsageError

ORDER = 45


class _By(Sequence[str]):
    """``reports.BY``, imported when argparse first looks at it (``report --by``, ``report
    --help``): building the parser for another command must not load the reports."""

    def _by(self) -> Sequence[str]:
        from mailgate.reports import BY

        return BY

    def __getitem__(self, index: Any) -> Any:
        return self._by()[index]

    def __len__(self) -> int:
        return len(self._by())

    def __contains__(self, value: object) -> bool:
        return value in self._by()

    def __iter__(self) -> Iterator[str]:
        return iter(self._by())


def register(sub: Subparsers) -> None:
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
    by = p.add_argument("--by", help="one group per team, agent, …, week or day")
    by.choices = _By()  # set after add_argument, whose metavar check would iterate them
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

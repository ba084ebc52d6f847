"""``mailgate tickets list``: the filters, the text search, sort and pages, and three outputs.

Thin over ``mailgate.search.find``. No silent cap: when more tickets match than
are shown, the table's last line (or one line on stderr for ``--json``/``--csv``)
says ``showing N of M``.
"""

from __future__ import annotations

import argparse
import csv
import re
import sys
from typing import TYPE_CHECKING, Any

from mailgate.cli.common import EX_OK, print_json, table

COLUMNS = [
    ("tag", "TICKET"),
    ("status", "STATUS"),
    ("priority", "PRIORITY"),
    ("team", "TEAM"),
    ("assignee", "ASSIGNEE"),
    ("requester", "REQUESTER"),
    ("updated_at", "UPDATED"),
    ("subject", "SUBJECT"),
]
CSV_FIELDS = (
    "number",
    "tag",
    "status",
    "priority",
    "team",
    "assignee",
    "requester",
    "mailbox",
    "category",
    "tags",
    "created_at",
    "updated_at",
    "subject",
)

if TYPE_CHECKING:
    from mailgate.context import Context


def list_arguments(p: argparse.ArgumentParser) -> None:
    f = p.add_argument_group("filters (combined: every one given must hold)")
    f.add_argument("--status", default="", help="a status or a comma list (open,pending)")
    f.add_argument("--priority", default="", help="a priority or a comma list")
    f.add_argument("--team", default="", help="a team key, a comma list, or 'none'")
    f.add_argument("--assignee", default="", help="an agent key, 'me' (with --as) or 'none'")
    f.add_argument("--as", dest="acting_as", default="", metavar="AGENT", help="who 'me' is")
    f.add_argument("--requester", default="", help="an address, or a domain (example.com)")
    f.add_argument("--mailbox", default="")
    f.add_argument("--category", default="")
    f.add_argument("--tag", default="")
    for name in ("created-after", "created-before", "updated-after", "updated-before"):
        f.add_argument(
            f"--{name}",
            default="",
            metavar="DATE",
            help="YYYY-MM-DD or an ISO 8601 time, in gateway.timezone",
        )
    f.add_argument("--breached", action="store_true", help="only tickets with a breached SLA clock")
    f.add_argument(
        "--due-before",
        default="",
        metavar="TIME",
        help="only tickets with a running SLA clock due before TIME (ISO 8601; without an"
        " offset in gateway.timezone)",
    )
    f.add_argument(
        "--text",
        default="",
        metavar="WORDS",
        help='full-text search: words (all must match), "a phrase", prefix* — or a ticket'
        " number or a Message-ID",
    )
    o = p.add_argument_group("order and pages")
    o.add_argument(
        "--sort",
        default="",
        metavar="FIELD",
        help="created, updated, priority, due, rank, number, subject, requester, team,"
        " assignee or status; -FIELD descending (default: rank with --text, else -updated)",
    )
    o.add_argument("--limit", type=int, default=50, help="tickets per page (default 50)")
    o.add_argument("--offset", type=int, default=0, help="skip this many first")
    o.add_argument("--all", action="store_true", help="every matching ticket, no page")
    # `--sort -updated` as the issue writes it: argparse takes a word after '-' for an
    # option unless it "looks like a negative number"; the sort fields are made to.
    p._negative_number_matcher = re.compile(
        r"^-(\d+\.?\d*|\.\d+|created|updated|priority|due|rank|number|subject|requester|team"
        r"|assignee|status)$"
    )
    out = p.add_mutually_exclusive_group()
    out.add_argument("--json", action="store_true", help="a JSON list of tickets")
    out.add_argument("--csv", action="store_true", help="CSV with a header line")


def list_tickets(ctx: Context, args: argparse.Namespace) -> int:
    from mailgate import search

    options = search.Options(
        status=args.status,
        priority=args.priority,
        team=args.team,
        assignee=args.assignee,
        acting_as=args.acting_as,
        requester=args.requester,
        mailbox=args.mailbox,
        category=args.category,
        tag=args.tag,
        created_after=args.created_after,
        created_before=args.created_before,
        updated_after=args.updated_after,
        updated_before=args.updated_before,
        breached=args.breached,
        due_before=args.due_before,
        text=args.text,
        sort=args.sort,
        limit=None if args.all else args.limit,
        offset=args.offset,
    )
    found = search.find(ctx.config, options)
    shown = len(found.rows)
    more = found.total > shown or not found.complete
    note = f"showing {shown} of {found.total}" + ("+" if not found.complete else "")
    if args.offset and shown:
        note += f" (from {args.offset + 1})"
    if found.cut == "window":
        note += (
            f"; words without spaces were looked for in the newest {search.SCANNED:,}"
            " messages only: add words or filters to narrow it"
        )
    elif not found.complete:
        note += (
            f"; more than {options.searched:,} messages match, the newest of them are"
            " shown, newest first: add words or filters to narrow it"
        )
    if args.json:
        print_json(found.rows)
    elif args.csv:
        _csv(found.rows)
    else:
        table(found.rows, COLUMNS)
        if more:
            print(note)
        return EX_OK
    if more:
        print(note, file=sys.stderr)
    return EX_OK


def _csv(rows: list[dict[str, Any]]) -> None:
    writer = csv.writer(sys.stdout, lineterminator="\n")
    writer.writerow(CSV_FIELDS)
    for row in rows:
        writer.writerow(
            [
                " ".join(row[k]) if k == "tags" else ("" if row[k] is None else row[k])
                for k in CSV_FIELDS
            ]
        )

"""``mailgate recipients …``: addresses marked undeliverable by a permanent bounce — list, clear."""

from __future__ import annotations

import argparse

from mailgate.cli.common import EX_OK, Subparsers, command, context, group, print_json, table

ORDER = 85


def register(sub: Subparsers) -> None:
    r = group(sub, "recipients", "recipient health: addresses marked undeliverable")
    p = command(r, "list", _list, "addresses a permanent bounce marked, and why")
    p.add_argument(
        "--undeliverable", action="store_true", help="only those still held back from mail"
    )
    p.add_argument("--json", action="store_true")
    p = command(r, "clear", _clear, "let automatic mail go to ADDRESS again")
    p.add_argument("address")


def _list(args: argparse.Namespace) -> int:
    from mailgate.admin import recipients

    context(args)
    rows = recipients.listing(undeliverable_only=args.undeliverable)
    if args.json:
        print_json(rows)
    else:
        table(
            rows,
            [
                ("address", "ADDRESS"),
                ("undeliverable_until", "UNDELIVERABLE UNTIL"),
                ("ticket", "TICKET"),
                ("status", "STATUS"),
                ("diagnostic", "DIAGNOSTIC"),
            ],
        )
    return EX_OK


def _clear(args: argparse.Namespace) -> int:
    from mailgate.admin import recipients

    context(args)
    recipients.clear(args.address)
    print(f"{args.address.strip().lower()} may get automatic mail again")
    return EX_OK

"""``mailgate suspended …``: spam and blocked senders' mail — list, show, release, delete, purge."""

from __future__ import annotations

import argparse
import sys

from mailgate.cli.common import (
    EX_OK,
    Subparsers,
    command,
    context,
    print_json,
    print_processed,
    table,
)

ORDER = 81


def register(sub: Subparsers) -> None:
    s = sub.add_parser("suspended", help="spam and blocked senders: never answered").add_subparsers(
        metavar="ACTION"
    )
    p = command(s, "list", _list, "list suspended mails, newest first")
    p.add_argument("--json", action="store_true")
    p = command(s, "show", _show, "show one suspended mail")
    p.add_argument("id", type=int)
    p.add_argument("--raw", action="store_true", help="print the raw mail as received")
    p = command(s, "release", _release, "process it as if it had just arrived (a ticket)")
    p.add_argument("id", type=int)
    p.add_argument("--json", action="store_true")
    p = command(s, "delete", _delete, "delete a suspended mail")
    p.add_argument("id", type=int)
    p = command(s, "purge", _purge, "delete suspended mails older than a duration")
    p.add_argument("--older-than", required=True, metavar="DURATION", help="e.g. 30d")


def _list(args: argparse.Namespace) -> int:
    from mailgate.admin import suspended

    context(args)
    rows = suspended.listing()
    if args.json:
        print_json(rows)
    else:
        columns = [("id", "ID"), ("received_at", "RECEIVED"), ("sender", "SENDER"),
                   ("subject", "SUBJECT"), ("reason", "REASON")]  # fmt: skip
        table(rows, columns)
    return EX_OK


def _show(args: argparse.Namespace) -> int:
    from mailgate.admin import suspended

    ctx = context(args)
    facts, raw = suspended.show(ctx, args.id)
    if args.raw:
        sys.stdout.buffer.write(raw)
        return EX_OK
    for key, value in facts.items():
        print(f"{key}: {value}")
    return EX_OK


def _release(args: argparse.Namespace) -> int:
    from mailgate.admin import suspended

    ctx = context(args)
    return print_processed(suspended.release(ctx, args.id), args.json)


def _delete(args: argparse.Namespace) -> int:
    from mailgate.admin import suspended

    ctx = context(args)
    suspended.delete(ctx, args.id)
    print(f"deleted suspended mail {args.id}")
    return EX_OK


def _purge(args: argparse.Namespace) -> int:
    from mailgate.admin import suspended

    ctx = context(args)
    count = suspended.purge(ctx, args.older_than)
    print(f"purged {count} suspended mail{'s' if count != 1 else ''}")
    return EX_OK

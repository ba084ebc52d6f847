"""``mailgate quarantine …``: mails that could not be processed — list, show, retry, delete."""

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

ORDER = 80


def register(sub: Subparsers) -> None:
    q = sub.add_parser("quarantine", help="mails that could not be processed").add_subparsers(
        metavar="ACTION"
    )
    p = command(q, "list", _quarantine_list, "list quarantined mails")
    p.add_argument("--json", action="store_true")
    p = command(q, "show", _quarantine_show, "show one quarantined mail")
    p.add_argument("id", type=int)
    p.add_argument("--raw", action="store_true", help="print the raw mail as received")
    p = command(q, "retry", _quarantine_retry, "process a quarantined mail again")
    p.add_argument("id", type=int)
    p.add_argument("--json", action="store_true")
    p = command(
        q, "delete", _quarantine_delete, "stop waiting for a quarantined mail (the raw mail stays)"
    )
    p.add_argument("id", type=int)


def _quarantine_list(args: argparse.Namespace) -> int:
    from mailgate.admin import quarantine

    context(args)
    rows = quarantine.listing()
    if args.json:
        print_json(rows)
    else:
        table(
            rows,
            [
                ("id", "ID"),
                ("received_at", "RECEIVED"),
                ("source", "SOURCE"),
                ("sender", "SENDER"),
                ("reason", "REASON"),
            ],
        )
    return EX_OK


def _quarantine_show(args: argparse.Namespace) -> int:
    from mailgate.admin import quarantine

    ctx = context(args)
    if args.raw:
        sys.stdout.buffer.write(quarantine.raw(ctx, args.id))
        return EX_OK
    receipt, raw_path = quarantine.show(ctx, args.id)
    for key, value in receipt.items():
        print(f"{key}: {value}")
    print(f"raw: {raw_path}")
    return EX_OK


def _quarantine_retry(args: argparse.Namespace) -> int:
    from mailgate.admin import quarantine

    ctx = context(args)
    return print_processed(quarantine.retry(ctx, args.id), args.json)


def _quarantine_delete(args: argparse.Namespace) -> int:
    from mailgate.admin import quarantine

    context(args)
    quarantine.delete(args.id)
    print(f"deleted {args.id} from the quarantine (its raw mail stays in the blob store)")
    return EX_OK

"""``mailgate attachments …``: the files of a ticket — list them, get their exact bytes."""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path
from typing import Any

from mailgate.cli.common import EX_OK, Subparsers, command, context, group, print_json, table
from mailgate.errors import UsageError

ORDER = 42


def register(sub: Subparsers) -> None:
    a = group(sub, "attachments", "the files of a ticket: list them, get their bytes")
    p = command(a, "list", _list, "every attachment of a ticket, under the message it came with")
    p.add_argument("ticket")
    p.add_argument("--json", action="store_true")
    p = command(a, "get", _get, "the exact bytes of one attachment (to stdout, or -o FILE)")
    p.add_argument("id")
    p.add_argument("-o", "--output", metavar="FILE", help="write to FILE instead of stdout")


def _list(args: argparse.Namespace) -> int:
    from mailgate import attachments

    ctx = context(args)
    rows = attachments.listing(ctx, args.ticket)
    if args.json:
        print_json(rows)
        return EX_OK
    shown: list[dict[str, Any]] = []
    for row in rows:
        row["size_text"] = attachments.size_text(row["size"])
        row["flags"] = ", ".join(
            f for f, on in (("inline", row["inline"]), ("not kept", not row["kept"])) if on
        )
        shown.append(row)
        # A forwarded mail's own files, beneath it (get the .eml to open them).
        shown.extend(
            {
                "filename": f"  └ {inner['filename']}",
                "content_type": inner["content_type"],
                "size_text": attachments.size_text(inner["size"]),
            }
            for inner in row.get("contains", ())
        )
    table(
        shown,
        [
            ("id", "ID"),
            ("message", "MESSAGE"),
            ("filename", "FILE"),
            ("content_type", "TYPE"),
            ("size_text", "SIZE"),
            ("flags", ""),
        ],
    )
    return EX_OK


def _get(args: argparse.Namespace) -> int:
    from mailgate import attachments

    ctx = context(args)
    found = attachments.fetch(ctx, args.id)
    with found.open() as source:
        if args.output is None:
            shutil.copyfileobj(source, sys.stdout.buffer, 1 << 20)
            sys.stdout.buffer.flush()
            return EX_OK
        try:
            with Path(args.output).open("wb") as target:
                shutil.copyfileobj(source, target, 1 << 20)
        except OSError as exc:
            raise UsageError(f"cannot write {args.output}: {exc.strerror}") from None
    print(f"{found.row.filename}: {found.row.size} bytes written to {args.output}", file=sys.stderr)
    return EX_OK

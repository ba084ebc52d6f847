"""``mailgate outbox …``: mail waiting to leave — list, send what is due, send again."""

from __future__ import annotations

import argparse
import sys

from mailgate import logs
from mailgate.cli.common import (
    EX_FAIL,
    EX_OK,
    Subparsers,
    command,
    context,
    group,
    print_json,
    table,
)

ORDER = 60


def register(sub: Subparsers) -> None:
    o = group(sub, "outbox", "mail and webhook deliveries waiting to leave")
    p = command(o, "list", _outbox_list, "list outbox items, newest first")
    p.add_argument(
        "--status", choices=("queued", "claimed", "sending", "sent", "failed", "uncertain")
    )
    p.add_argument("--json", action="store_true")
    # Default: the admin's LIMIT, filled in by the command (the parser imports no admin module).
    p.add_argument("--limit", type=_positive, help="show at most N, the newest")
    command(o, "flush", _outbox_flush, "send everything that is due now, then exit")
    p = command(o, "retry", _outbox_retry, "queue a failed or uncertain mail again")
    p.add_argument("id", type=int)


def _positive(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number of 1 or more")
    return int(text)


def _outbox_list(args: argparse.Namespace) -> int:
    from mailgate.admin import outbox

    context(args)
    limit = args.limit or outbox.LIMIT
    rows = outbox.listing(args.status, limit)
    if args.json:
        print_json(rows)
    else:
        # A webhook delivery: its event beside the kind; TO is the hook's URL.
        table(
            [
                {**r, "notice": f"{r['notice']} {r['event']}" if r["event"] else r["notice"]}
                for r in rows
            ],
            [
                ("id", "ID"),
                ("status", "STATUS"),
                ("notice", "NOTICE"),
                ("ticket", "TICKET"),
                ("recipients", "TO"),
                ("attempts", "TRIES"),
                ("next_attempt_at", "NEXT"),
                ("delivery", "DELIVERY"),
                ("last_error", "LAST ERROR"),
            ],
        )
    if len(rows) == limit and (total := outbox.count(args.status)) > len(rows):
        # Never a silent cut: say what the listing leaves out (on stderr, so --json stays JSON).
        print(
            f"mailgate: showing the newest {len(rows):,} of {total:,} items"
            " (--limit N shows more, --status S narrows)",
            file=sys.stderr,
        )
    return EX_OK


def _outbox_flush(args: argparse.Namespace) -> int:
    from mailgate.admin import outbox

    ctx = context(args)
    report = outbox.flush(ctx.config)
    print(f"sent {report.sent}, deferred {report.retried}, failed {report.failed}")
    for error in dict.fromkeys(report.errors):
        print(f"  {logs.redact(error)}")
    return EX_OK if report.failed == 0 else EX_FAIL


def _outbox_retry(args: argparse.Namespace) -> int:
    from mailgate.admin import outbox

    context(args)
    item = outbox.retry(args.id)
    print(f"outbox item {item.id} queued again")
    return EX_OK

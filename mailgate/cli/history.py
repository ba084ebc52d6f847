"""``mailgate import PATH``: an existing mailbox's history, ingested once, announced to nobody."""

from __future__ import annotations

import argparse
import datetime as dt
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

from mailgate.cli.common import EX_OK, Subparsers, command, context
from mailgate.errors import UsageError

if TYPE_CHECKING:
    from mailgate.admin.history import Summary

ORDER = 45
PLAIN_EVERY_SECONDS = 10.0


def register(sub: Subparsers) -> None:
    p = command(
        sub, "import", _import, "import an mbox, a Maildir or a folder of .eml files (no notices)"
    )
    p.add_argument("path", metavar="PATH")
    p.add_argument("--mailbox", metavar="NAME", help="the mailbox the mails arrived at")
    p.add_argument("--since", metavar="DATE", help="only mails from DATE on (YYYY-MM-DD)")
    p.add_argument("--status", default="open", choices=("open", "closed"),
                   help="the imported tickets' status (default: open)")  # fmt: skip


class _Progress:
    """A bar on a terminal (done/total, rate, time left); otherwise a plain line now and then."""

    def __init__(self) -> None:
        self.started = time.monotonic()
        self.last = 0.0
        self.tty = sys.stderr.isatty()

    def __call__(self, summary: Summary) -> None:
        now = time.monotonic()
        finished = summary.done == summary.total
        if not finished and now - self.last < (0.2 if self.tty else PLAIN_EVERY_SECONDS):
            return
        self.last = now
        elapsed = max(now - self.started, 1e-6)
        rate = summary.done / elapsed
        left = (summary.total - summary.done) / rate if rate else 0.0
        figures = f"{summary.done}/{summary.total} mails, {rate:.0f}/s, {left:.0f}s left"
        if self.tty:
            filled = int(30 * summary.done / max(summary.total, 1))
            bar = "#" * filled + "-" * (30 - filled)
            sys.stderr.write(f"\r[{bar}] {figures}" + ("\n" if finished else ""))
        else:
            sys.stderr.write(f"import: {figures}\n")
        sys.stderr.flush()


def _import(args: argparse.Namespace) -> int:
    from mailgate.admin import history

    ctx = context(args)
    since = None
    if args.since:
        try:
            since = dt.datetime.fromisoformat(args.since).replace(tzinfo=None)
        except ValueError:
            raise UsageError(f"--since {args.since!r}: give a date like 2026-01-31") from None
    summary = history.import_history(
        ctx,
        Path(args.path),
        mailbox_name=args.mailbox,
        since=since,
        status=args.status,
        progress=_Progress(),
    )
    print(f"imported {summary.done} mails: {summary.line()}")
    return EX_OK

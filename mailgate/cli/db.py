"""``mailgate db upgrade``: apply the pending migrations (safe to run twice, or at once)."""

from __future__ import annotations

import argparse

from mailgate.cli.common import EX_OK, Subparsers, command, context, group

ORDER = 20


def register(sub: Subparsers) -> None:
    db = group(sub, "db", "database schema")
    p = command(db, "upgrade", _upgrade, "create or migrate the schema (safe to run twice)")
    p.add_argument(
        "--wait",
        type=_seconds,
        default=None,
        metavar="SECONDS",
        help="how long to wait for another process's upgrade (PostgreSQL; default 300)",
    )


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0 < value <= 86400:
        raise argparse.ArgumentTypeError(f"not a number of seconds from 1 to 86400: {text!r}")
    return value


def _upgrade(args: argparse.Namespace) -> int:
    from mailgate.admin import database

    ctx = context(args, schema_required=False, create_secret=True)
    done = database.upgrade(ctx.config, **({} if args.wait is None else {"wait": args.wait}))
    if not done.applied:
        print(f"database schema is up to date (version {done.version})")
    else:
        print(
            f"database schema upgraded from version {done.version_before} to {done.version}"
            f" (applied {', '.join(done.applied)})"
        )
    return EX_OK

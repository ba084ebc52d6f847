"""``mailgate db upgrade``: apply the pending migrations (safe to run twice, or at once)."""

from __future__ import annotations

import argparse

from mailgate.cli.common import EX_OK, Subparsers, command, context, group

ORDER = 20


def register(sub: Subparsers) -> None:
    db = group(sub, "db", "database schema")
    command(db, "upgrade", _upgrade, "create or migrate the schema (safe to run twice)")


def _upgrade(args: argparse.Namespace) -> int:
    from mailgate.admin import database

    ctx = context(args, schema_required=False, create_secret=True)
    done = database.upgrade(ctx.config)
    if not done.applied:
        print(f"database schema is up to date (version {done.version})")
    else:
        print(
            f"database schema upgraded from version {done.version_before} to {done.version}"
            f" (applied {', '.join(done.applied)})"
        )
    return EX_OK

"""``mailgate serve`` and ``mailgate check``: run the gateway, or see whether it could run."""

from __future__ import annotations

import argparse
import functools
import sys

from mailgate.cli.common import (
    EX_CONFIG,
    EX_FAIL,
    EX_OK,
    Subparsers,
    command,
    context,
    load_config,
)

ORDER = 10


def register(sub: Subparsers) -> None:
    p = command(
        sub, "serve", _serve, "run the gateway: SMTP/LMTP listener, IMAP pollers, outbox, jobs"
    )
    p.add_argument("--no-smtp", action="store_true", help="do not start the SMTP/LMTP listener")
    p.add_argument("--no-imap", action="store_true", help="do not start the IMAP pollers")
    command(sub, "check", _check, "check config, database, IMAP logins, relay and templates")


def _serve(args: argparse.Namespace) -> int:
    """Refuse to start (exit 78, one line per failing check) rather than fail at the first mail."""
    from mailgate import app
    from mailgate.admin import database
    from mailgate.admin.check import reload_config, serve_checks

    config = load_config(args)
    failed = [c for c in serve_checks(config) if not c.ok]
    if args.no_smtp:
        failed = [c for c in failed if c.name != "listener"]
    for check in failed:
        print(f"mailgate: cannot start: {check.name}: {check.detail}", file=sys.stderr)
    if failed:
        return EX_CONFIG
    ctx = context(args, create_secret=True)
    database.sync_directory(ctx.config)
    reload = functools.partial(reload_config, ctx.config.path)
    return app.serve(ctx, smtp=not args.no_smtp, imap=not args.no_imap, reload=reload)


def _check(args: argparse.Namespace) -> int:
    from mailgate.admin.check import checks

    results = checks(load_config(args))
    for result in results:
        print(result)
    failed = sum(1 for r in results if not r.ok)
    print(f"{len(results) - failed} passed, {failed} failed")
    return EX_FAIL if failed else EX_OK

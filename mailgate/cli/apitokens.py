"""``mailgate agents token KEY`` (a new API token, alone on one line; ``--revoke``) and
``mailgate agents tokens KEY`` (the agent's tokens: when made, last used, revoked).

Added to the ``agents`` group of ``cli/directory.py`` by ``add_commands``; the
token is printed once and kept only as a hash.
"""

from __future__ import annotations

import argparse

from mailgate.cli.common import EX_OK, Subparsers, command, context, print_json, table
from mailgate.errors import UsageError


def add_commands(agents: Subparsers) -> None:
    p = command(
        agents,
        "token",
        _token,
        "make a JSON API token for an agent (printed once, alone on one line; kept hashed)",
    )
    p.add_argument("key", metavar="KEY", help="the agent's key")
    p.add_argument(
        "--revoke",
        metavar="ID|all",
        help="revoke the token with this id (see `agents tokens KEY`), or all of them",
    )
    p = command(agents, "tokens", _tokens, "list an agent's API tokens (never the tokens)")
    p.add_argument("key", metavar="KEY", help="the agent's key")
    p.add_argument("--json", action="store_true")


def _token(args: argparse.Namespace) -> int:
    from mailgate.admin import apitokens

    ctx = context(args)
    if args.revoke is None:
        print(apitokens.issue(ctx.config, args.key))
        return EX_OK
    if args.revoke == "all":
        wanted = None
    elif args.revoke.isdigit():
        wanted = int(args.revoke)
    else:
        raise UsageError(f"--revoke: give a token id or 'all', not {args.revoke!r}")
    count = apitokens.revoke(ctx.config, args.key, wanted)
    print(f"revoked {count} token{'s' if count != 1 else ''} of {args.key}")
    return EX_OK


def _tokens(args: argparse.Namespace) -> int:
    from mailgate.admin import apitokens

    ctx = context(args)
    rows = apitokens.listing(ctx.config, args.key)
    if args.json:
        print_json(rows)
    else:
        table(
            rows,
            [
                ("id", "ID"),
                ("created_at", "CREATED"),
                ("last_used_at", "LAST USED"),
                ("revoked_at", "REVOKED"),
            ],
        )
    return EX_OK

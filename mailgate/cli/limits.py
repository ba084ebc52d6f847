"""``mailgate limits …``: the circuit breaker — what it holds back and why, and clearing it."""

from __future__ import annotations

import argparse

from mailgate.cli.common import EX_OK, Subparsers, command, context, group, print_json, table

ORDER = 65


def register(sub: Subparsers) -> None:
    g = group(sub, "limits", "the circuit breaker: what it holds back, and clearing it")
    p = command(g, "show", _show, "the overall windows and every held mail, with why")
    p.add_argument("--json", action="store_true")
    p = command(g, "reset", _reset, "clear a breaker (all of it, a ticket's, a recipient's)")
    p.add_argument("--ticket", type=int, help="only this ticket's window")
    p.add_argument("--recipient", default="", help="only this address's windows")


def _show(args: argparse.Namespace) -> int:
    from mailgate.admin import limits

    ctx = context(args)
    found = limits.show(ctx.config)
    if args.json:
        print_json(found)
        return EX_OK
    for window in found["overall"]:
        print(f"overall {window['window']}: {window['used']} used of {window['limit']}")
    if not found["held"]:
        print("nothing is held")
        return EX_OK
    table(
        found["held"],
        [
            ("id", "ID"),
            ("notice", "NOTICE"),
            ("ticket", "TICKET"),
            ("recipients", "TO"),
            ("due", "GOES OUT"),
            ("why", "WHY"),
        ],
    )
    return EX_OK


def _reset(args: argparse.Namespace) -> int:
    from mailgate.admin import limits

    context(args)
    forgotten, released = limits.reset(args.ticket, args.recipient)
    print(f"breaker cleared: {forgotten} counted mails forgotten, {released} held mails due now")
    return EX_OK

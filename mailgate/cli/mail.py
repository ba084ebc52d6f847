"""``mailgate ingest`` (the MTA pipe entry) and ``mailgate explain`` (the dry run)."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from mailgate.cli.common import EX_OK, Subparsers, command, context, print_json, read_input
from mailgate.envelope import Envelope
from mailgate.errors import ConfigError
from mailgate.logs import redact

if TYPE_CHECKING:
    from mailgate.config import Config

ORDER = 30


def register(sub: Subparsers) -> None:
    p = command(sub, "ingest", _ingest, "record one mail from FILE or stdin (the MTA pipe entry)")
    p.add_argument("file", nargs="?", default="-", help="raw RFC 5322 mail; '-' for stdin")
    p.add_argument("--mailbox", metavar="NAME", help="the mailbox it arrived at")
    p.add_argument(
        "--recipient",
        metavar="ADDRESS",
        action="append",
        default=[],
        help="envelope recipient, repeatable (Postfix: --recipient=${recipient}); the mailbox "
        "is the one with this address, as the listener finds it",
    )
    p.add_argument("--sender", metavar="ADDRESS", help="envelope sender (--sender=${sender})")
    p.add_argument("--json", action="store_true", help="print the outcome as JSON")
    # An MTA must never bounce a mail because of our failure: every error exits 75.
    p.set_defaults(tempfail_on_error=True)

    p = command(sub, "explain", _explain, "dry run: what ingest would do with a mail, and why")
    p.add_argument("file", nargs="?", default="-")
    p.add_argument("--mailbox", metavar="NAME")
    p.add_argument("--json", action="store_true")


def _ingest(args: argparse.Namespace) -> int:
    from mailgate.intake import ingest

    raw = read_input(args.file)
    ctx = context(args)
    outcome = ingest(
        ctx,
        raw,
        source="pipe" if args.file == "-" else "cli",
        mailbox=args.mailbox,
        envelope=_pipe_envelope(ctx.config, args),
    )
    if args.json:
        print_json(outcome.as_json())
    else:
        where = f" {outcome.tag}" if outcome.tag else ""
        why = (
            f" ({outcome.reason})"
            if outcome.reason
            and outcome.action in ("ignored", "quarantined", "duplicate", "suspended")
            else ""
        )
        print(f"{outcome.action}{where}{why}")
    return EX_OK


def _pipe_envelope(config: Config, args: argparse.Namespace) -> Envelope | None:
    """The envelope an MTA passed on the command line; a recipient must be one of ours."""
    if not args.recipient and args.sender is None:
        return None
    if args.recipient and args.mailbox is None and config.mailbox_for(args.recipient) is None:
        # Exit 75 (the MTA keeps the mail) rather than a ticket in the wrong mailbox.
        raise ConfigError(
            f"no [[mailbox]] has the address {redact(', '.join(args.recipient))}; "
            f"nothing was recorded (in {config.path})"
        )
    return Envelope(mail_from=args.sender or None, rcpt_tos=tuple(args.recipient))


def _explain(args: argparse.Namespace) -> int:
    from mailgate.intake import explain

    raw = read_input(args.file)
    ctx = context(args)
    result = explain(ctx, raw, mailbox=args.mailbox)
    if args.json:
        print_json(result)
        return EX_OK
    print(f"would be: {result['action']}")
    for key in ("from", "subject", "message_id", "class", "mailbox"):
        if key in result:
            print(f"{key}: {result[key]}")
    print("trace:")
    for line in result["trace"]:
        print(f"  - {line}")
    return EX_OK

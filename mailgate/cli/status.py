"""``mailgate status``: is the gateway healthy? One line per problem, exit 1 when any (a probe)."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from mailgate.cli.common import EX_FAIL, EX_OK, Subparsers, command, context, print_json

ORDER = 11


def register(sub: Subparsers) -> None:
    p = command(
        sub,
        "status",
        _status,
        "how the running gateway is doing: serve, worker, intake, outbox, quarantine, IMAP",
    )
    p.add_argument("--json", action="store_true")


def _status(args: argparse.Namespace) -> int:
    from mailgate.admin.status import status

    ctx = context(args)
    result = status(ctx.config)
    if args.json:
        print_json({**result.data, "problems": result.problems, "ok": not result.problems})
    else:
        _print(result.data)
    for problem in result.problems:
        print(f"mailgate: {problem}", file=sys.stderr)
    return EX_FAIL if result.problems else EX_OK


def _print(data: dict[str, Any]) -> None:
    serve = data["serve"]
    alive = [p for p in serve["processes"] if p["alive"]]
    if alive:
        for p in alive:
            print(
                f"serve      running since {p['since']} (pid {p['pid']} on {p['host']},"
                f" listener {p['listener']}), worker {p['worker']}"
            )
    else:
        print("serve      not running")
    print(
        f"intake     {data['received_last_hour']} mail(s) received, {data['tickets_last_hour']}"
        f" ticket(s) made in the last hour; last mail {data['last_received_at'] or 'never'}"
    )
    box = data["outbox"]
    oldest = box["oldest_waiting_at"]
    oldest = f", oldest waiting since {oldest}" if oldest else ""
    print(
        f"outbox     {box['queued']} queued, {box['failed']} failed,"
        f" {box['uncertain']} uncertain{oldest}"
    )
    hooks = data["webhooks"]
    if any(hooks[state] for state in ("queued", "failed", "uncertain")):
        print(
            f"webhooks   {hooks['queued']} queued, {hooks['failed']} failed,"
            f" {hooks['uncertain']} uncertain"
        )
    print(f"quarantine {data['quarantined']} mail(s)")
    print(f"suspended  {data['suspended']} mail(s) (spam and blocked senders: suspended list)")
    breaker = data["breaker"]
    if breaker["limit"] is not None:
        state = "OPEN" if breaker["open"] else "closed"
        print(
            f"breaker    {state}: {breaker['sent']} of {breaker['limit']} automatic mails"
            f" within {breaker['window']}"
        )
    for account in data["imap"]:
        print(
            f"imap       {account['name']}: last success {account['last_success_at'] or 'never'}"
            + (f", last error {account['last_error_at']}" if account["last_error_at"] else "")
        )

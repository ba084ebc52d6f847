"""``mailgate tickets …``: list, show and change tickets — the agent verbs without mail.

Thin over ``mailgate.admin.tickets``: the same verbs, events and notices as by mail.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mailgate.cli.common import (
    EX_OK,
    Subparsers,
    command,
    context,
    group,
    print_json,
    tag,
    ticket_number,
)
from mailgate.cli.listing import list_arguments, list_tickets
from mailgate.errors import UsageError

if TYPE_CHECKING:
    from mailgate.context import Context

ORDER = 40


def register(sub: Subparsers) -> None:
    t = group(sub, "tickets", "list, show and change tickets")
    p = command(t, "list", _tickets_list, "find tickets: filters, full-text search, sort, pages")
    list_arguments(p)
    p = command(t, "create", _tickets_create, "open a ticket for a customer and mail them")
    p.add_argument("--requester", required=True, metavar="ADDRESS", help="the customer")
    p.add_argument("--subject", required=True)
    p.add_argument(
        "--as", dest="agent", metavar="AGENT", help="who writes (and gets it); default: unassigned"
    )
    p.add_argument("--mailbox", default="", metavar="M")
    p.add_argument("--priority", default="", choices=("low", "normal", "high", "emergency"))
    p.add_argument("--team", default="", metavar="T")
    p.add_argument("--json", action="store_true")
    _text_arguments(p)
    p = command(t, "show", _tickets_show, "one ticket with its thread and audit trail")
    p.add_argument("number")
    p.add_argument("--json", action="store_true")
    p = command(t, "assign", _tickets_assign, "assign a ticket to an agent ('none' to unassign)")
    p.add_argument("number")
    p.add_argument("agent")
    p = command(t, "status", _tickets_status, "set a ticket's status")
    p.add_argument("number")
    p.add_argument("status", choices=("new", "open", "pending", "resolved", "closed"))
    p = command(t, "priority", _tickets_priority, "set a ticket's priority")
    p.add_argument("number")
    p.add_argument("priority", choices=("low", "normal", "high", "emergency"))
    p = command(t, "team", _tickets_team, "move a ticket to a team (auto-assignment applies)")
    p.add_argument("number")
    p.add_argument("team")
    p = command(t, "reply", _tickets_reply, "answer the customer as an agent (sent as agent_reply)")
    p.add_argument("number")
    p.add_argument("--as", dest="agent", required=True, metavar="AGENT", help="the agent answering")
    p.add_argument(
        "--attach",
        action="append",
        default=[],
        metavar="FILE",
        help="attach FILE to the reply (repeatable)",
    )
    _text_arguments(p)
    p = command(t, "note", _tickets_note, "add an internal note (never sent to the customer)")
    p.add_argument("number")
    p.add_argument("--as", dest="agent", metavar="AGENT", help="the agent writing it")
    _text_arguments(p)
    p = command(t, "time", _tickets_time, "record working time of an agent (25m, 1h30m)")
    p.add_argument("number")
    p.add_argument("spent", metavar="TIME")
    p.add_argument("--as", dest="agent", required=True, metavar="AGENT", help="who worked")
    p = command(t, "merge", _tickets_merge, "merge ticket A into ticket B")
    p.add_argument("source", metavar="A")
    p.add_argument("target", metavar="B")


def _tickets_list(args: argparse.Namespace) -> int:
    return list_tickets(context(args), args)


def _tickets_show(args: argparse.Namespace) -> int:
    from mailgate.admin import tickets

    ctx = context(args)
    detail = tickets.detail(ctx.config, args.number)
    if args.json:
        print_json(detail)
        return EX_OK
    print(f"{detail['tag']} {detail['subject']}")
    print(
        f"status {detail['status']} · priority {detail['priority']} · team {detail['team'] or '-'}"
        f" · assignee {detail['assignee'] or '-'}"
    )
    print(
        f"requester {detail['requester']}"
        + (
            f" · collaborators {', '.join(detail['collaborators'])}"
            if detail["collaborators"]
            else ""
        )
    )
    if detail["category"] or detail["urgency"] or detail["impact"]:
        print(
            f"category {detail['category'] or '-'} · urgency {detail['urgency'] or '-'}"
            f" · impact {detail['impact'] or '-'}"
        )
    for link in detail["links"]:
        print(f"link: {link['kind'].replace('_', ' ')} #{link['ticket']}")
    _time_lines(detail)
    for msg in detail["messages"]:
        arrow = "→" if msg["direction"] == "out" else "←"
        sender = msg["from"] or "-"
        print(f"\n{arrow} {msg['created_at']} {msg['kind']} from {sender}: {msg['subject']}")
        for line in msg["trace"]:
            print(f"   · {line}")
        for a in msg["attachments"]:
            kept = "" if a.get("kept", True) else ", not kept"
            print(
                f"   📎 {a['filename']} ({a['content_type']}, {a['size']} bytes{kept})"
                f" · mailgate attachments get {a['id']}"
            )
        text = msg["text"].strip()
        if text:
            print("   " + "\n   ".join(text.splitlines()[:40]))
    print("\nevents:")
    for e in detail["events"]:
        change = f"{e['old']} → {e['new']}" if e["old"] else e["new"]
        print(f"  {e['at']} {e['actor']} {e['kind']} {change} {e['detail']}".rstrip())
    return EX_OK


def _time_lines(detail: dict[str, Any]) -> None:
    from mailgate import sla

    for line in sla.text_lines(detail.get("sla")):
        print(line)
    rating = detail.get("csat")
    if rating:
        comment = f": {rating['comment']}" if rating["comment"] else ""
        print(f"rating: {rating['rating']} ({rating['at']}){comment}")
    spent = detail.get("working_time") or {}
    if spent.get("total_minutes"):
        per = ", ".join(f"{k} {v} min" for k, v in spent["by_agent"].items())
        print(f"working time: {spent['total_minutes']} min ({per})")


def _done(ctx: Context, number: int, changed: bool, what: str) -> int:
    print(f"{tag(ctx, number)} {what}" if changed else f"{tag(ctx, number)} unchanged")
    return EX_OK


def _tickets_assign(args: argparse.Namespace) -> int:
    from mailgate.admin import tickets

    ctx = context(args)
    agent = None if args.agent in ("none", "-") else args.agent
    number = ticket_number(args.number)
    changed = tickets.assign(ctx, number, agent, "admin:cli")
    return _done(ctx, number, changed, f"assigned to {agent}" if agent else "unassigned")


def _tickets_status(args: argparse.Namespace) -> int:
    from mailgate.admin import tickets

    ctx = context(args)
    number = ticket_number(args.number)
    changed = tickets.set_status(ctx, number, args.status, "admin:cli")
    return _done(ctx, number, changed, f"is now {args.status}")


def _tickets_priority(args: argparse.Namespace) -> int:
    from mailgate.admin import tickets

    ctx = context(args)
    number = ticket_number(args.number)
    changed = tickets.set_priority(ctx, number, args.priority, "admin:cli")
    return _done(ctx, number, changed, f"has priority {args.priority}")


def _tickets_team(args: argparse.Namespace) -> int:
    from mailgate.admin import tickets

    ctx = context(args)
    number = ticket_number(args.number)
    tickets.set_team(ctx, number, args.team, "admin:cli")
    return _done(ctx, number, True, f"is now with team {args.team}")


def _text_arguments(p: argparse.ArgumentParser) -> None:
    group = p.add_mutually_exclusive_group(required=True)
    group.add_argument("--text", help="the text")
    group.add_argument("--file", help="read the text from a file ('-' for stdin)")


def _text(args: argparse.Namespace) -> str:
    if args.text is not None:
        return str(args.text)
    if args.file == "-":
        return sys.stdin.read()
    try:
        return Path(args.file).read_text()
    except OSError as exc:
        raise UsageError(f"cannot read {args.file}: {exc.strerror}") from None


def _tickets_reply(args: argparse.Namespace) -> int:
    from mailgate.admin import tickets

    ctx = context(args)
    number = ticket_number(args.number)
    tickets.reply(ctx, number, args.agent, _text(args), args.attach)
    return _done(ctx, number, True, "reply queued for the customer")


def _tickets_note(args: argparse.Namespace) -> int:
    from mailgate.admin import tickets

    ctx = context(args)
    number = ticket_number(args.number)
    tickets.note(ctx, number, args.agent, _text(args))
    return _done(ctx, number, True, "note added")


def _tickets_merge(args: argparse.Namespace) -> int:
    from mailgate.admin import tickets

    ctx = context(args)
    source, target = ticket_number(args.source), ticket_number(args.target)
    tickets.merge(ctx, source, target, "admin:cli")
    return _done(ctx, source, True, f"merged into #{target}")


def _tickets_time(args: argparse.Namespace) -> int:
    from mailgate.admin import tickets

    ctx = context(args)
    number = ticket_number(args.number)
    minutes = tickets.time_spent(ctx, number, args.agent, args.spent)
    return _done(ctx, number, True, f"{minutes} min of working time recorded for {args.agent}")


def _tickets_create(args: argparse.Namespace) -> int:
    from mailgate.admin import tickets

    ctx = context(args)
    number = tickets.create(
        ctx,
        requester=args.requester,
        subject=args.subject,
        text=_text(args),
        agent_key=args.agent,
        mailbox=args.mailbox,
        priority=args.priority,
        team=args.team,
    )
    if args.json:
        print_json({"number": number, "tag": tag(ctx, number)})
    else:
        print(f"{tag(ctx, number)} created for {args.requester}; the message is queued")
    return EX_OK

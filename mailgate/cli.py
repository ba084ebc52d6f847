"""The admin commands: ``mailgate <command>``. The only module that calls ``sys.exit``.

Every error a user can cause is one line on stderr and an exit status, never a
traceback: 0 done, 1 a command that could not be carried out, 2 wrong usage,
75 (EX_TEMPFAIL) nothing was recorded and the sender should retry, 78
(EX_CONFIG) the config file is wrong. ``mailgate ingest`` answers 75 for every
failure that leaves a mail unrecorded, so an MTA piping into it keeps the mail.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import peewee as pw

from mailgate import __version__, logs, queries
from mailgate import models as m
from mailgate.config import Config, find_config_path, load
from mailgate.context import Context, open_context
from mailgate.errors import ConfigError, MailgateError, TemporaryFailure, UsageError

if TYPE_CHECKING:
    from mailgate.ingest import Envelope

EX_OK, EX_FAIL, EX_USAGE, EX_TEMPFAIL, EX_CONFIG = 0, 1, 2, 75, 78
log = logging.getLogger("mailgate.cli")

Command = Callable[[argparse.Namespace], int]


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help(sys.stderr)
        return EX_USAGE
    logs.setup(args.log_format, logging.DEBUG if args.verbose else logging.INFO)
    tempfail_on_error = bool(getattr(args, "tempfail_on_error", False))
    try:
        return int(args.func(args))
    except ConfigError as exc:
        _error(f"config error: {exc}")
        return EX_TEMPFAIL if tempfail_on_error else EX_CONFIG
    except TemporaryFailure as exc:
        _error(f"temporary failure, nothing was changed: {exc}")
        return EX_TEMPFAIL
    except (pw.OperationalError, pw.InterfaceError) as exc:
        _error(f"temporary failure, database unavailable: {exc}")
        return EX_TEMPFAIL
    except UsageError as exc:
        _error(str(exc))
        return EX_FAIL
    except MailgateError as exc:
        _error(str(exc))
        return EX_FAIL
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return EX_OK
    except Exception as exc:
        if not tempfail_on_error:
            raise
        # The pipe entry must never make an MTA bounce a mail because of our bug.
        log.exception("ingest failed")
        _error(f"internal error, the mail was not recorded: {type(exc).__name__}: {exc}")
        return EX_TEMPFAIL


def _error(text: str) -> None:
    print(f"mailgate: {text}", file=sys.stderr)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="mailgate", description="Email-driven ticketing gateway.")
    parser.add_argument(
        "--config",
        metavar="PATH",
        help="config file (default: $MAILGATE_CONFIG, then config/mailgate.toml)",
    )
    parser.add_argument("--log-format", choices=("text", "json"), default="text")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    parser.add_argument("--version", action="version", version=f"mailgate {__version__}")
    sub = parser.add_subparsers(metavar="COMMAND")

    def command(
        name: str, func: Command, help_text: str, parent: Any = sub
    ) -> argparse.ArgumentParser:
        p: argparse.ArgumentParser = parent.add_parser(name, help=help_text, description=help_text)
        p.set_defaults(func=func)
        return p

    p = command("serve", _serve, "run the gateway: SMTP/LMTP listener, IMAP pollers, outbox, jobs")
    p.add_argument("--no-smtp", action="store_true", help="do not start the SMTP/LMTP listener")
    p.add_argument("--no-imap", action="store_true", help="do not start the IMAP pollers")
    command("check", _check, "check config, database, IMAP logins, relay and templates")

    db = sub.add_parser("db", help="database schema").add_subparsers(metavar="ACTION")
    command("upgrade", _db_upgrade, "create or migrate the schema (safe to run twice)", db)

    p = command("ingest", _ingest, "record one mail from FILE or stdin (the MTA pipe entry)")
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
    p.set_defaults(tempfail_on_error=True)

    p = command("explain", _explain, "dry run: what ingest would do with a mail, and why")
    p.add_argument("file", nargs="?", default="-")
    p.add_argument("--mailbox", metavar="NAME")
    p.add_argument("--json", action="store_true")

    t = sub.add_parser("tickets", help="list, show and change tickets").add_subparsers(
        metavar="ACTION"
    )
    p = command("list", _tickets_list, "list tickets, most recently updated first", t)
    p.add_argument("--status", choices=("new", "open", "pending", "resolved", "closed"))
    p.add_argument("--json", action="store_true")
    p = command("show", _tickets_show, "one ticket with its thread and audit trail", t)
    p.add_argument("number")
    p.add_argument("--json", action="store_true")
    p = command("assign", _tickets_assign, "assign a ticket to an agent ('none' to unassign)", t)
    p.add_argument("number")
    p.add_argument("agent")
    p = command("status", _tickets_status, "set a ticket's status", t)
    p.add_argument("number")
    p.add_argument("status", choices=("new", "open", "pending", "resolved", "closed"))
    p = command("priority", _tickets_priority, "set a ticket's priority", t)
    p.add_argument("number")
    p.add_argument("priority", choices=("low", "normal", "high", "emergency"))
    p = command("team", _tickets_team, "move a ticket to a team (auto-assignment applies)", t)
    p.add_argument("number")
    p.add_argument("team")
    p = command("reply", _tickets_reply, "answer the customer as an agent (sent as agent_reply)", t)
    p.add_argument("number")
    p.add_argument("--as", dest="agent", required=True, metavar="AGENT", help="the agent answering")
    _text_arguments(p)
    p = command("note", _tickets_note, "add an internal note (never sent to the customer)", t)
    p.add_argument("number")
    p.add_argument("--as", dest="agent", metavar="AGENT", help="the agent writing it")
    _text_arguments(p)
    p = command("merge", _tickets_merge, "merge ticket A into ticket B", t)
    p.add_argument("source", metavar="A")
    p.add_argument("target", metavar="B")

    a = sub.add_parser("agents", help="agents from the config").add_subparsers(metavar="ACTION")
    p = command("list", _agents_list, "list agents, their teams and open tickets", a)
    p.add_argument("--json", action="store_true")
    tm = sub.add_parser("teams", help="teams from the config").add_subparsers(metavar="ACTION")
    p = command("list", _teams_list, "list teams, members and queues", tm)
    p.add_argument("--json", action="store_true")

    o = sub.add_parser("outbox", help="mail waiting to leave").add_subparsers(metavar="ACTION")
    p = command("list", _outbox_list, "list outbox items, newest first", o)
    p.add_argument(
        "--status", choices=("queued", "claimed", "sending", "sent", "failed", "uncertain")
    )
    p.add_argument("--json", action="store_true")
    command("flush", _outbox_flush, "send everything that is due now, then exit", o)
    p = command("retry", _outbox_retry, "queue a failed or uncertain mail again", o)
    p.add_argument("id", type=int)

    tp = sub.add_parser("templates", help="notice templates").add_subparsers(metavar="ACTION")
    command("check", _templates_check, "render every template against a sample ticket", tp)
    p = command("preview", _templates_preview, "print a notice exactly as it would be sent", tp)
    p.add_argument("name", help="acknowledgement, assignment, customer_reply, agent_reply, …")
    p.add_argument("--ticket", metavar="NUMBER", help="render for this ticket (default: a sample)")

    q = sub.add_parser("quarantine", help="mails that could not be processed").add_subparsers(
        metavar="ACTION"
    )
    p = command("list", _quarantine_list, "list quarantined mails", q)
    p.add_argument("--json", action="store_true")
    p = command("show", _quarantine_show, "show one quarantined mail", q)
    p.add_argument("id", type=int)
    p.add_argument("--raw", action="store_true", help="print the raw mail as received")
    p = command("retry", _quarantine_retry, "process a quarantined mail again", q)
    p.add_argument("id", type=int)
    p.add_argument("--json", action="store_true")
    return parser


# --- plumbing -----------------------------------------------------------------------------


def load_config(args: argparse.Namespace) -> Config:
    return load(find_config_path(args.config))


def _context(args: argparse.Namespace, *, schema_required: bool = True) -> Context:
    ctx = open_context(load_config(args))
    if schema_required:
        m.require_schema()
    return ctx


def _print_json(data: Any) -> None:
    print(json.dumps(data, ensure_ascii=False, indent=2))


def _read_input(name: str) -> bytes:
    if name == "-":
        return sys.stdin.buffer.read()
    try:
        return Path(name).read_bytes()
    except OSError as exc:
        raise UsageError(f"cannot read {name}: {exc.strerror}") from None


def _table(rows: list[dict[str, Any]], columns: list[tuple[str, str]]) -> None:
    """A plain aligned table; long cells are cut so one ticket stays one line."""
    if not rows:
        print("(none)")
        return
    cells = [[_cell(r.get(key)) for key, _ in columns] for r in rows]
    widths = [min(max(len(h), *(len(c[i]) for c in cells)), 60) for i, (_, h) in enumerate(columns)]
    print("  ".join(h.ljust(w) for (_, h), w in zip(columns, widths, strict=True)).rstrip())
    for row in cells:
        print("  ".join(c[:w].ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    return " ".join(str(value).split())


# --- commands -----------------------------------------------------------------------------


def _db_upgrade(args: argparse.Namespace) -> int:
    ctx = _context(args, schema_required=False)
    before, after = m.upgrade()
    from mailgate import tickets

    with m.write_transaction():
        tickets.sync_directory(ctx.config)
    if before == after:
        print(f"database schema is up to date (version {after})")
    else:
        print(f"database schema upgraded from version {before} to {after}")
    return EX_OK


def _ingest(args: argparse.Namespace) -> int:
    from mailgate.ingest import ingest

    raw = _read_input(args.file)
    ctx = _context(args)
    outcome = ingest(
        ctx,
        raw,
        source="pipe" if args.file == "-" else "cli",
        mailbox=args.mailbox,
        envelope=_pipe_envelope(ctx.config, args),
    )
    if args.json:
        _print_json(outcome.as_json())
    else:
        where = f" {outcome.tag}" if outcome.tag else ""
        why = (
            f" ({outcome.reason})"
            if outcome.reason and outcome.action in ("ignored", "quarantined", "duplicate")
            else ""
        )
        print(f"{outcome.action}{where}{why}")
    return EX_OK


def _pipe_envelope(config: Config, args: argparse.Namespace) -> Envelope | None:
    """The envelope an MTA passed on the command line; a recipient must be one of ours."""
    from mailgate.ingest import Envelope

    if not args.recipient and args.sender is None:
        return None
    if args.recipient and args.mailbox is None and config.mailbox_for(args.recipient) is None:
        # Exit 75 (the MTA keeps the mail) rather than a ticket in the wrong mailbox.
        raise ConfigError(
            f"no [[mailbox]] has the address {logs.redact(', '.join(args.recipient))}; "
            f"nothing was recorded (in {config.path})"
        )
    return Envelope(mail_from=args.sender or None, rcpt_tos=tuple(args.recipient))


def _explain(args: argparse.Namespace) -> int:
    from mailgate.ingest import explain

    raw = _read_input(args.file)
    ctx = _context(args)
    result = explain(ctx, raw, mailbox=args.mailbox)
    if args.json:
        _print_json(result)
        return EX_OK
    print(f"would be: {result['action']}")
    for key in ("from", "subject", "message_id", "class", "mailbox"):
        if key in result:
            print(f"{key}: {result[key]}")
    print("trace:")
    for line in result["trace"]:
        print(f"  - {line}")
    return EX_OK


def _tickets_list(args: argparse.Namespace) -> int:
    ctx = _context(args)
    rows = queries.ticket_list(ctx.config, args.status)
    if args.json:
        _print_json(rows)
    else:
        _table(
            rows,
            [
                ("tag", "TICKET"),
                ("status", "STATUS"),
                ("priority", "PRIORITY"),
                ("team", "TEAM"),
                ("assignee", "ASSIGNEE"),
                ("requester", "REQUESTER"),
                ("subject", "SUBJECT"),
            ],
        )
    return EX_OK


def _tickets_show(args: argparse.Namespace) -> int:
    ctx = _context(args)
    detail = queries.ticket_detail(ctx.config, queries.ticket(args.number))
    if args.json:
        _print_json(detail)
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
    for link in detail["links"]:
        print(f"link: {link['kind'].replace('_', ' ')} #{link['ticket']}")
    for msg in detail["messages"]:
        arrow = "→" if msg["direction"] == "out" else "←"
        sender = msg["from"] or "-"
        print(f"\n{arrow} {msg['created_at']} {msg['kind']} from {sender}: {msg['subject']}")
        for line in msg["trace"]:
            print(f"   · {line}")
        for a in msg["attachments"]:
            print(f"   📎 {a['filename']} ({a['content_type']}, {a['size']} bytes)")
        text = msg["text"].strip()
        if text:
            print("   " + "\n   ".join(text.splitlines()[:40]))
    print("\nevents:")
    for e in detail["events"]:
        change = f"{e['old']} → {e['new']}" if e["old"] else e["new"]
        print(f"  {e['at']} {e['actor']} {e['kind']} {change} {e['detail']}".rstrip())
    return EX_OK


def _number(text: str) -> int:
    try:
        return int(str(text).strip().lstrip("#"))
    except ValueError:
        raise UsageError(f"not a ticket number: {text!r}") from None


def _done(ctx: Context, number: int, changed: bool, what: str) -> int:
    from mailgate import tickets

    tag = tickets.tag(ctx.config, number)
    print(f"{tag} {what}" if changed else f"{tag} unchanged")
    return EX_OK


def _tickets_assign(args: argparse.Namespace) -> int:
    from mailgate import actions

    ctx = _context(args)
    agent = None if args.agent in ("none", "-") else args.agent
    number = _number(args.number)
    changed = actions.assign(ctx, number, agent, "admin:cli")
    return _done(ctx, number, changed, f"assigned to {agent}" if agent else "unassigned")


def _tickets_status(args: argparse.Namespace) -> int:
    from mailgate import actions

    ctx = _context(args)
    number = _number(args.number)
    changed = actions.set_status(ctx, number, args.status, "admin:cli")
    return _done(ctx, number, changed, f"is now {args.status}")


def _tickets_priority(args: argparse.Namespace) -> int:
    from mailgate import actions

    ctx = _context(args)
    number = _number(args.number)
    changed = actions.set_priority(ctx, number, args.priority, "admin:cli")
    return _done(ctx, number, changed, f"has priority {args.priority}")


def _tickets_team(args: argparse.Namespace) -> int:
    from mailgate import actions

    ctx = _context(args)
    number = _number(args.number)
    actions.set_team(ctx, number, args.team, "admin:cli")
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
    from mailgate import actions

    ctx = _context(args)
    number = _number(args.number)
    actions.reply(ctx, number, args.agent, _text(args))
    return _done(ctx, number, True, "reply queued for the customer")


def _tickets_note(args: argparse.Namespace) -> int:
    from mailgate import actions

    ctx = _context(args)
    number = _number(args.number)
    actions.note(ctx, number, args.agent, _text(args))
    return _done(ctx, number, True, "note added")


def _tickets_merge(args: argparse.Namespace) -> int:
    from mailgate import actions

    ctx = _context(args)
    source, target = _number(args.source), _number(args.target)
    actions.merge(ctx, source, target, "admin:cli")
    return _done(ctx, source, True, f"merged into #{target}")


def _agents_list(args: argparse.Namespace) -> int:
    ctx = _context(args)
    rows = queries.agents(ctx.config)
    if args.json:
        _print_json(rows)
    else:
        _table(
            rows,
            [
                ("key", "AGENT"),
                ("name", "NAME"),
                ("role", "ROLE"),
                ("emails", "ADDRESSES"),
                ("teams", "TEAMS"),
                ("open_tickets", "OPEN"),
            ],
        )
    return EX_OK


def _teams_list(args: argparse.Namespace) -> int:
    ctx = _context(args)
    rows = queries.teams(ctx.config)
    if args.json:
        _print_json(rows)
    else:
        _table(
            rows,
            [
                ("key", "TEAM"),
                ("name", "NAME"),
                ("address", "ADDRESS"),
                ("members", "MEMBERS"),
                ("assignment", "ASSIGNMENT"),
                ("escalation", "ESCALATION"),
                ("queue", "UNASSIGNED"),
                ("open_tickets", "OPEN"),
            ],
        )
    return EX_OK


def _quarantine_list(args: argparse.Namespace) -> int:
    _context(args)
    rows = queries.receipts("quarantined")
    if args.json:
        _print_json(rows)
    else:
        _table(
            rows,
            [
                ("id", "ID"),
                ("received_at", "RECEIVED"),
                ("source", "SOURCE"),
                ("sender", "SENDER"),
                ("reason", "REASON"),
            ],
        )
    return EX_OK


def _quarantine_show(args: argparse.Namespace) -> int:
    ctx = _context(args)
    r = m.Receipt.get_or_none(m.Receipt.id == args.id)
    if r is None:
        raise UsageError(f"no received mail with id {args.id}")
    if args.raw:
        try:
            sys.stdout.buffer.write(ctx.blobs.get(r.sha256))
        except OSError as exc:
            raise UsageError(
                f"the raw mail {r.sha256} is missing from the blob store: {exc.strerror}"
            ) from None
        return EX_OK
    for key, value in queries.receipt_json(r).items():
        print(f"{key}: {value}")
    print(f"raw: {ctx.blobs.path(r.sha256)}")
    return EX_OK


def _quarantine_retry(args: argparse.Namespace) -> int:
    from mailgate.ingest import retry

    ctx = _context(args)
    outcome = retry(ctx, args.id)
    if args.json:
        _print_json(outcome.as_json())
    else:
        why = outcome.reason if outcome.action == "quarantined" else ""
        print(f"{outcome.action} {outcome.tag or ''} {why}".strip())
    return EX_OK if outcome.action != "quarantined" else EX_FAIL


def _outbox_list(args: argparse.Namespace) -> int:
    _context(args)
    rows = queries.outbox(args.status)
    if args.json:
        _print_json(rows)
    else:
        _table(
            rows,
            [
                ("id", "ID"),
                ("status", "STATUS"),
                ("notice", "NOTICE"),
                ("ticket", "TICKET"),
                ("recipients", "TO"),
                ("attempts", "TRIES"),
                ("next_attempt_at", "NEXT"),
                ("last_error", "LAST ERROR"),
            ],
        )
    return EX_OK


def _outbox_flush(args: argparse.Namespace) -> int:
    from mailgate import outbox

    ctx = _context(args)
    report = outbox.deliver(ctx.config)
    print(f"sent {report.sent}, deferred {report.retried}, failed {report.failed}")
    for error in dict.fromkeys(report.errors):
        print(f"  {logs.redact(error)}")
    return EX_OK if report.failed == 0 else EX_FAIL


def _outbox_retry(args: argparse.Namespace) -> int:
    from mailgate import outbox

    _context(args)
    item = outbox.retry(args.id)
    print(f"outbox item {item.id} queued again")
    return EX_OK


def _templates_check(args: argparse.Namespace) -> int:
    from mailgate import notify

    config = load_config(args)
    problems = notify.check_templates(config)
    for problem in problems:
        print(problem)
    errors = sum(1 for p in problems if p.severity == "error")
    warnings = len(problems) - errors
    print(f"templates: {errors} error(s), {warnings} warning(s)")
    return EX_FAIL if errors else EX_OK


def _templates_preview(args: argparse.Namespace) -> int:
    from mailgate import notify

    if args.ticket is None:
        config = load_config(args)
        from mailgate.blobs import BlobStore

        ctx = Context(config, BlobStore(config.storage.blob_dir), b"preview-key-not-secret")
        content = notify.preview(ctx, args.name, None)
    else:
        ctx = _context(args)
        content = notify.preview(ctx, args.name, queries.ticket(args.ticket).number)
    sys.stdout.write(content.decode("utf-8", "replace").replace("\r\n", "\n"))
    return EX_OK


def _serve(args: argparse.Namespace) -> int:
    from mailgate import app

    ctx = _context(args)
    with m.write_transaction():
        from mailgate import tickets

        tickets.sync_directory(ctx.config)
    return app.serve(ctx, smtp=not args.no_smtp, imap=not args.no_imap)


def _check(args: argparse.Namespace) -> int:
    from mailgate import app

    results = app.checks(load_config(args))
    for result in results:
        print(result)
    failed = sum(1 for r in results if not r.ok)
    print(f"{len(results) - failed} passed, {failed} failed")
    return EX_FAIL if failed else EX_OK

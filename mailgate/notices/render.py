"""Rendering notices: the templates, the variables they get, and the sample used to check them.

Templates are looked up per file: the mailbox's directory, the site directory,
then the shipped ``mailgate/templates/`` (package data). They render in Jinja's
sandbox with undefined variables as errors; HTML is autoescaped, and the subject
is made one line, so no customer text can add a header. The variables are plain
values, documented in ``mailgate/templates/README.md``.

Imports config, errors, the rules' values and ``mailgate.mail``; jinja2.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import functools
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jinja2
import jinja2.exceptions
import jinja2.sandbox

from mailgate.config import NOTICE_KINDS, Config, Mailbox
from mailgate.context import Context
from mailgate.errors import TemplateError
from mailgate.mail import compose, tokens
from mailgate.mail.subject import format_tag
from mailgate.notices.desk import actor_name
from mailgate.notices.rules import Intent, people_of
from mailgate.notices.timevars import sample_time_variables, time_variables
from mailgate.store import messages
from mailgate.store.rows import AgentRow, MessageRow

SHIPPED_TEMPLATES = Path(__file__).resolve().parents[1] / "templates"
CUSTOMER_FACING = (
    "acknowledgement", "agent_reply", "resolution", "closed", "pending_reminder", "auto_resolved",
    "csat_thanks", "attachment_refused",
)  # fmt: skip
STAFF_KINDS = (
    "assignment", "customer_reply", "reopened", "command_error", "escalation", "sla_warning",
    "sla_breach", "reply_held", "note", "agent_activity", "reassigned", "queue",
)  # fmt: skip
# Every template set: the configurable notices, and the answer to commands not understood.
TEMPLATE_KINDS = (*NOTICE_KINDS, "command_error", "reply_held")
TEMPLATE_FILES = ("subject.txt", "body.txt", "body.html")


def tag(config: Config, number: int) -> str:
    return format_tag(config.gateway.ticket_prefix, number)


def environment(search_path: tuple[str, ...]) -> jinja2.sandbox.SandboxedEnvironment:
    """The templates of ``search_path`` as they were read at start or at the last reload.

    Never re-read from disk on a render: a template half-saved by an editor must not
    reach a customer. ``serve`` switches to the files on disk on SIGHUP, and only when
    they pass the check (``next_templates``, ``switch_templates``).
    """
    return _environment(search_path, getattr(_trial, "generation", _generation[0]))


# Which reading of the template files renders now; a thread inside ``next_templates``
# sees the next one (read afresh from disk) while every other thread keeps the current.
_generation = [0]
_trial = threading.local()


@contextlib.contextmanager
def next_templates() -> Iterator[None]:
    """In this thread only: the template files as they are on disk now (to check a reload)."""
    _trial.generation = _generation[0] + 1
    try:
        yield
    finally:
        del _trial.generation


def switch_templates() -> None:
    """Every thread renders from the reading ``next_templates`` checked (or a fresh one)."""
    _generation[0] += 1


@functools.lru_cache(maxsize=64)
def _environment(
    search_path: tuple[str, ...], generation: int
) -> jinja2.sandbox.SandboxedEnvironment:
    return jinja2.sandbox.SandboxedEnvironment(
        loader=_Snapshot(search_path),
        undefined=jinja2.StrictUndefined,
        autoescape=jinja2.select_autoescape(enabled_extensions=("html",), default=False),
        keep_trailing_newline=False,
        trim_blocks=True,
        lstrip_blocks=True,
        auto_reload=False,
    )


def template(search_path: tuple[str, ...], name: str) -> jinja2.Template | None:
    """``name`` in ``environment(search_path)``; None when no directory has it.

    Looked up once per reading of the files (a notice renders two or three templates;
    Jinja's own lookup builds a cache key and a weak reference each time).
    """
    return _template(search_path, getattr(_trial, "generation", _generation[0]), name)


@functools.lru_cache(maxsize=512)
def _template(search_path: tuple[str, ...], generation: int, name: str) -> jinja2.Template | None:
    try:
        found = _environment(search_path, generation).get_template(name)
    except jinja2.TemplateNotFound:
        return None  # the files were read once: it will not appear in this reading
    # Every render copies the globals into its context; from Jinja's ChainMap (the
    # template's over the environment's) that is a Python loop over both, a third of
    # the render of a notice's body. The same values as a dict: nothing changes an
    # environment's globals once it is made.
    found.globals = dict(found.globals)
    return found


def _required(search_path: tuple[str, ...], name: str) -> jinja2.Template:
    found = template(search_path, name)
    if found is None:
        raise jinja2.TemplateNotFound(name)
    return found


class _Snapshot(jinja2.BaseLoader):
    """Every template file of the search path, read once (the first directory wins).

    Errors keep naming the real file and line: the source is given with its path.
    """

    def __init__(self, search_path: tuple[str, ...]) -> None:
        self.files: dict[str, tuple[str, str]] = {}
        for directory in search_path:
            root = Path(directory)
            if not root.is_dir():
                continue
            for path in sorted(root.rglob("*")):
                name = path.relative_to(root).as_posix()
                if name in self.files or path.suffix not in (".txt", ".html"):
                    continue
                try:
                    self.files[name] = (path.read_text(encoding="utf-8"), str(path))
                except (OSError, UnicodeDecodeError):
                    continue  # unreadable: "not found", which the check reports

    def get_source(
        self, environment: jinja2.Environment, template: str
    ) -> tuple[str, str, Callable[[], bool]]:
        try:
            source, filename = self.files[template]
        except KeyError:
            raise jinja2.TemplateNotFound(template) from None
        return source, filename, lambda: True


def search_path(config: Config, mailbox: Mailbox | None) -> tuple[str, ...]:
    """Mailbox directory first, then the site directory, then the shipped templates."""
    paths = []
    if mailbox is not None and mailbox.templates:
        paths.append(mailbox.templates)
    if config.templates.dir:
        paths.append(config.templates.dir)
    paths.append(str(SHIPPED_TEMPLATES))
    return tuple(paths)


@dataclass(frozen=True)
class Rendered:
    subject: str
    text: str
    html: str


def render(
    config: Config, mailbox: Mailbox | None, kind: str, variables: dict[str, Any]
) -> Rendered:
    subject = render_subject(config, mailbox, kind, variables)
    text, html = render_bodies(config, mailbox, kind, variables)
    return Rendered(subject, text, html)


def render_subject(
    config: Config, mailbox: Mailbox | None, kind: str, variables: dict[str, Any]
) -> str:
    """The subject, one line (``notices.queue`` renders it in the change's transaction: the
    thread entry and the outbox show it before the mail is composed)."""
    where = search_path(config, mailbox)
    with _template_errors(config, mailbox):
        subject = _required(where, f"{kind}/subject.txt").render(variables)
    return compose.one_line(subject)


def render_bodies(
    config: Config,
    mailbox: Mailbox | None,
    kind: str,
    variables: dict[str, Any],
    *,
    html: bool = True,
) -> tuple[str, str]:
    """The plain-text body and the HTML body ('' when the kind has none or it renders to
    nothing, or for ``html=False``): what a queued notice's snapshot becomes when it is
    sent."""
    where = search_path(config, mailbox)
    with _template_errors(config, mailbox):
        text = _required(where, f"{kind}/body.txt").render(variables)
        if not html:
            return text.strip("\n") + "\n", ""
        html_template = template(where, f"{kind}/body.html")
        # A body.html that renders to nothing (assignment and reopened for a plain mail)
        # leaves the notice plain text.
        markup = "" if html_template is None else html_template.render(variables)
    return text.strip("\n") + "\n", markup if markup.strip() else ""


@contextlib.contextmanager
def _template_errors(config: Config, mailbox: Mailbox | None) -> Iterator[None]:
    """Any failure of a template as a ``TemplateError`` naming the file and line."""
    try:
        yield
    except jinja2.TemplateSyntaxError as exc:
        raise TemplateError(f"{exc.filename or exc.name}:{exc.lineno}: {exc.message}") from exc
    except jinja2.TemplateNotFound as exc:
        where = ", ".join(search_path(config, mailbox))
        raise TemplateError(f"template {exc.name} not found in {where}") from exc
    except (jinja2.UndefinedError, jinja2.exceptions.SecurityError, TypeError, ValueError) as exc:
        where = template_line(exc)
        raise TemplateError(f"{where}{type(exc).__name__}: {exc}") from exc


def template_line(exc: BaseException) -> str:
    """file:line of the template frame in a rendering traceback (Jinja rewrites them)."""
    tb = exc.__traceback__
    where = ""
    while tb is not None:
        filename = tb.tb_frame.f_code.co_filename
        if filename.endswith((".txt", ".html")):
            where = f"{filename}:{tb.tb_lineno}: "
        tb = tb.tb_next
    return where


def variables_for(
    ctx: Context, intent: Intent, box: Mailbox, reply_address: str, *, html: bool = True
) -> dict[str, Any]:
    """The template variables (documented in mailgate/templates/README.md): plain values only.

    ``html=False``: ``message.html`` is left '' (a queued notice reads it when its HTML
    is rendered, at send time: ``notices.snapshot``)."""
    config = ctx.config
    ticket = intent.ticket
    people = intent.people or people_of(ticket)
    requester, team, assignee = people.requester, people.team, people.assignee
    url = (
        config.gateway.ticket_url.replace("{number}", str(ticket.number))
        if config.gateway.ticket_url
        else ""
    )
    message = intent.message
    variables = {
        "gateway": {"name": config.gateway.name, "domain": config.gateway.domain},
        "mailbox": {"name": box.name, "address": box.address},
        "ticket": {
            "number": ticket.number,
            "tag": tag(config, ticket.number),
            "subject": ticket.subject,
            "status": ticket.status,
            "priority": ticket.priority,
            "category": ticket.category,
            "urgency": ticket.urgency,
            "impact": ticket.impact,
            "team": team.name if team else "",
            "assignee": assignee.name if assignee else "",
            "created_at": ticket.created_at,
            "url": url,
            "follow_up_of": tag(config, people.follow_up_of) if people.follow_up_of else "",
        },
        "requester": {"name": requester.name, "email": requester.email},
        "agent": _agent_vars(intent.agent),
        "recipient": _agent_vars(intent.for_agent),
        "team": {"name": team.name, "address": team.address} if team else None,
        "message": (
            {
                "from": _sender_label(message),
                "from_name": message.from_name or "",
                "from_email": message.from_addr,
                "kind": message.kind,
                "verified": bool(message.verified),
                "unverified_agent": not message.verified
                and config.agent_for(message.from_addr or "") is not None,
                "subject": message.subject,
                "text": message.text,
                # The sanitised HTML (quoted history cut from replies); '' for plain mail.
                "html": messages.html_of(message.id) if html and intent.kind in HTML_KINDS else "",
                "date": message.created_at,
            }
            if message is not None
            else None
        ),
        "previous_status": intent.previous_status,
        "note": _note_vars(intent.note),
        "by": actor_name(intent.detail) if intent.kind == "reassigned" else "",
        "queue": [],  # only the #queue answer lists tickets (notices/agentqueue.py)
        "problems": (
            intent.detail.splitlines()
            if intent.kind in ("command_error", "reply_held", "attachment_refused")
            else []
        ),
        "received": _received(message) if intent.kind == "command_error" else [],
        "cc_not_added": (
            intent.detail.splitlines() if intent.kind in ("customer_reply", "reopened") else []
        ),
        "reply_address": reply_address,
        "ticket_url": url,
        "reopen_window_days": config.lifecycle.reopen_window_days,
    }
    variables.update(time_variables(ctx, intent, box))
    return variables


# The notices that show the message's own HTML (the others quote its text, if anything).
HTML_KINDS = frozenset({"agent_reply", "customer_reply", "assignment", "reopened"})
RECEIVED_LINES = 12


def _received(message: MessageRow | None) -> list[str]:
    """The first lines of the mail as it was received (a command_error quotes them)."""
    if message is None:
        return []
    lines = [line.rstrip() for line in (message.full_text or message.text).strip().splitlines()]
    return lines[:RECEIVED_LINES] + (["…"] if len(lines) > RECEIVED_LINES else [])


def _note_vars(note: MessageRow | None) -> dict[str, str] | None:
    """The note written with a change (``#assign jane`` + ``#note``), for the agents' notices."""
    if note is None:
        return None
    return {"text": note.text, "from": note.from_name or note.from_addr}


def _agent_vars(agent: AgentRow | None) -> dict[str, str] | None:
    if agent is None:
        return None
    return {"name": agent.name, "email": agent.emails[0], "key": agent.key}


def _sender_label(message: MessageRow) -> str:
    name = message.from_name or ""
    return f"{name} <{message.from_addr}>" if name else message.from_addr


def sample_variables(config: Config, box: Mailbox, kind: str) -> dict[str, Any]:
    """Variables of a made-up ticket, shaped exactly like ``variables_for``'s."""
    team = config.team(box.team) if box.team else None
    agent = config.agents[0] if config.agents else None
    sample_tag = tag(config, 482913)
    url = (
        config.gateway.ticket_url.replace("{number}", "482913") if config.gateway.ticket_url else ""
    )
    agent_vars = {"name": agent.name, "email": agent.emails[0], "key": agent.key} if agent else None
    variables = {
        "gateway": {"name": config.gateway.name, "domain": config.gateway.domain},
        "mailbox": {"name": box.name, "address": box.address},
        "ticket": {
            "number": 482913,
            "tag": sample_tag,
            "subject": "The mobile online banking is down <b>&",
            "status": "open",
            "priority": "normal",
            "category": config.tickets.categories[0] if config.tickets.categories else "",
            "urgency": "medium",
            "impact": "medium",
            "team": team.name if team else "",
            "assignee": agent.name if agent else "",
            "created_at": dt.datetime(2026, 11, 22, 8, 0),
            "url": url,
            "follow_up_of": "",
        },
        "requester": {"name": "Carla Customer", "email": "carla@customer.example"},
        "agent": agent_vars,
        "recipient": agent_vars if kind in STAFF_KINDS else None,
        "team": {"name": team.name, "address": team.address} if team else None,
        "message": {
            "from": "Carla Customer <carla@customer.example>",
            "from_name": "Carla Customer",
            "from_email": "carla@customer.example",
            "kind": "customer",
            "verified": False,
            "unverified_agent": False,
            "subject": "The mobile online banking is down",
            "text": "Hello,\n\nthe mobile online banking is down.\n<script>x</script>",
            "html": "<p>Hello,</p><p>the mobile online banking is <b>down</b>.</p>",
            "date": dt.datetime(2026, 11, 22, 8, 0),
        },
        "previous_status": "resolved",
        "note": {"text": "Jane, please take over: it is the payment gateway.", "from": "Alice"},
        "by": "Alice Smith" if kind == "reassigned" else "",
        "queue": [
            {
                "tag": sample_tag,
                "number": 482913,
                "subject": "The mobile banking is down",
                "status": "open",
                "priority": "high",
                "due": "2026-11-23 11:00 UTC",
            }
        ],
        "problems": ["'#asign me': unknown command (known: #assign, #team, …)"],
        "received": ["#asign me", "", "Dear Carla, the service is back."],
        "cc_not_added": ["mallory@attacker.example"]
        if kind in ("customer_reply", "reopened")
        else [],
        "reply_address": tokens.reply_address(box.address, 482913),
        "ticket_url": url,
        "reopen_window_days": config.lifecycle.reopen_window_days,
    }
    variables.update(sample_time_variables(config, box, kind))
    return variables

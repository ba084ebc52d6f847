"""Templates for admins: render every one against a sample ticket, and preview a notice.

``mailgate templates check`` and ``mailgate check`` report what would break a
notice (file and line) before a customer meets it; ``templates preview`` prints
a notice exactly as it would be sent. Imports notices, the store's reads, config
and ``mailgate.mail``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import jinja2
import jinja2.sandbox

from mailgate import answers
from mailgate.config import Config, Mailbox
from mailgate.context import Context
from mailgate.errors import TemplateError, UsageError
from mailgate.mail import compose
from mailgate.mail.parse import Address
from mailgate.notices import (
    CUSTOMER_FACING,
    SHIPPED_TEMPLATES,
    STAFF_KINDS,
    TEMPLATE_FILES,
    TEMPLATE_KINDS,
    Intent,
    compose_now,
    environment,
    people_of,
    render,
    sample_variables,
    search_path,
    template_line,
)
from mailgate.notices.queue import AUTO_SUBMITTED
from mailgate.notices.render import tag
from mailgate.store import messages
from mailgate.store import tickets as ticket_rows
from mailgate.store.directory import first_active_agent


@dataclass(frozen=True)
class TemplateProblem:
    severity: str  # error | warning
    where: str  # file[:line]
    message: str

    def __str__(self) -> str:
        return f"{self.severity}: {self.where}: {self.message}"


def check_templates(config: Config) -> list[TemplateProblem]:
    """Render every template (shipped and every override) against a sample ticket."""
    problems: list[TemplateProblem] = []
    sources: list[tuple[str, Mailbox]] = [(str(SHIPPED_TEMPLATES), config.mailboxes[0])]
    if config.templates.dir:
        sources.append((config.templates.dir, config.mailboxes[0]))
    sources.extend((box.templates, box) for box in config.mailboxes if box.templates)
    for directory, box in sources:
        if not Path(directory).is_dir():
            problems.append(
                TemplateProblem("error", directory, "template directory does not exist")
            )
            continue
        chain = search_path(config, box)
        env = environment(chain[chain.index(directory) :] if directory in chain else (directory,))
        for kind in TEMPLATE_KINDS:
            for name in TEMPLATE_FILES:
                path = Path(directory) / kind / name
                if not path.is_file():
                    continue
                problems.extend(_check_one(env, config, box, kind, name, path))
    for box in config.mailboxes:
        for kind in CUSTOMER_FACING:
            try:
                rendered = render(config, box, kind, sample_variables(config, box, kind))
            except TemplateError:
                continue  # reported above with its file and line
            if tag(config, 482913) not in rendered.subject:
                problems.append(
                    TemplateProblem(
                        "warning",
                        f"{kind}/subject.txt (mailbox {box.name})",
                        "the subject lacks {{ ticket.tag }}: replies would not thread by subject",
                    )
                )
    try:
        failing = answers.check(config)
        problems.extend(TemplateProblem("error", where, why) for where, why in failing)
    except UsageError as exc:  # answers.dir is no directory
        problems.append(TemplateProblem("error", config.answers.dir, str(exc)))
    return problems


def _check_one(
    env: jinja2.sandbox.SandboxedEnvironment,
    config: Config,
    box: Mailbox,
    kind: str,
    name: str,
    path: Path,
) -> list[TemplateProblem]:
    try:
        env.get_template(f"{kind}/{name}").render(sample_variables(config, box, kind))
    except jinja2.TemplateSyntaxError as exc:
        return [TemplateProblem("error", f"{path}:{exc.lineno}", exc.message or "syntax error")]
    except Exception as exc:  # noqa: BLE001 - any rendering failure is the admin's to see
        where = template_line(exc).rstrip(": ") or str(path)
        return [TemplateProblem("error", where, f"{type(exc).__name__}: {exc}")]
    return []


def preview(ctx: Context, kind: str, number: int | None) -> bytes:
    """The complete message ``kind`` would send for ticket ``number`` (a sample without one)."""
    if kind not in TEMPLATE_KINDS:
        raise UsageError(f"no notice {kind!r}; one of {', '.join(TEMPLATE_KINDS)}")
    config = ctx.config
    if number is None:
        box = config.mailboxes[0]
        variables = sample_variables(config, box, kind)
        rendered = render(config, box, kind, variables)
        outgoing = compose.Outgoing(
            sender=Address(box.address, config.gateway.name),
            to=(Address("carla@customer.example", "Carla Customer"),),
            reply_to=variables["reply_address"],
            subject=rendered.subject,
            text=rendered.text,
            html=rendered.html,
            message_id=f"<preview.482913@{config.gateway.domain}>",
            auto_submitted=AUTO_SUBMITTED.get(kind, "auto-generated"),
            loop_token=ctx.loop_token,
            notice=kind,
        )
        return compose.build(outgoing)
    ticket = ticket_rows.by_number(number)
    if ticket is None:
        raise UsageError(f"no ticket #{number}")
    people = people_of(ticket)
    staff = kind in STAFF_KINDS
    recipient = people.assignee
    if staff and recipient is None:
        recipient = first_active_agent()
    intent = Intent(
        kind,
        ticket,
        [] if staff else [people.requester],
        cc=[] if staff else people.collaborators,
        agent=people.assignee,
        for_agent=recipient if staff else None,
        message=messages.latest_customer(ticket.id),
        previous_status="resolved",
        people=people,
    )
    content = compose_now(ctx, intent, None)
    if content is None:
        raise UsageError(f"nobody would receive {kind} for #{number}")
    return content

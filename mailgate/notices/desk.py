"""Agents know what happens on their tickets: the staff notices of another agent's work.

=================  ==========================================  ==============================
event              notice                                      to
=================  ==========================================  ==============================
note               note (its text)                             assignee, else the team —
                                                               never its author, never a
                                                               customer
note + assignment  the note inside the assignment notice       the new assignee / the queue
agent_reply,       agent_activity (a copy of the answer)       the assignee, when another
resolution text                                                agent answered the customer
assignee (old set) reassigned (who took it, who has it now)    the previous assignee, unless
                                                               they gave it away themselves
=================  ==========================================  ==============================

``intents`` wraps ``rules.intents``: the notices the table there calls for, then
these. Whoever already gets an assignment notice in the same transaction reads
the note in it and gets no second mail. A web form's own address
(``mailbox.form_senders``) is taken off every notice. Only reads; imports what ``rules`` does.
"""

from __future__ import annotations

from mailgate.config import Mailbox
from mailgate.context import Context
from mailgate.events import Event
from mailgate.mail.classify import Verdict
from mailgate.mail.parse import ParsedMail
from mailgate.notices import rules
from mailgate.notices.rules import Intent, mailbox_of, people_of
from mailgate.store import directory
from mailgate.store.rows import TicketRow

# An agent's words to the customer: the events whose message the assignee gets a copy of.
ANSWERS = ("agent_reply", "agent_reply_direct", "resolution")


def intents(
    ctx: Context,
    ticket: TicketRow,
    events: list[Event],
    mail: ParsedMail | None,
    verdict: Verdict | None,
) -> list[Intent]:
    """``rules.intents`` and the desk's notices, for one transaction's events on ``ticket``."""
    found = rules.intents(ctx, ticket, events, mail, verdict)
    on = mailbox_of(ctx.config, ticket).notices
    note = next((e for e in reversed(events) if e.kind == "note" and e.message), None)
    if note is not None:
        # The note written with #assign or #team is part of the assignment notice.
        found = [i.but(note=note.message) if i.kind == "assignment" else i for i in found]
    told = {i.for_agent.key for i in found if i.for_agent is not None and i.kind == "assignment"}
    added: list[Intent] = []
    if note is not None and on.note:
        added.extend(
            i
            for i in rules._staff_intents(ctx, "note", ticket, note.message, "")
            if i.for_agent is None or (i.for_agent.key not in told and not _by(note, i))
        )
    assignee = directory.agent_by_id(ticket.assignee_id)
    answer = next((e for e in reversed(events) if e.kind in ANSWERS and e.message), None)
    if (
        answer is not None
        and on.agent_activity
        and assignee is not None
        and assignee.key not in told
        and answer.actor.startswith("agent:")
        and answer.actor != f"agent:{assignee.key}"
    ):
        added.append(
            Intent(
                "agent_activity",
                ticket,
                [],
                agent=rules._agent_of(answer.actor),
                for_agent=assignee,
                message=answer.message,
                detail=answer.kind,
            )
        )
    if on.reassigned:
        added.extend(_reassigned(ticket, events, note))
    box = mailbox_of(ctx.config, ticket)
    if added:
        who = found[0].people if found and found[0].people else people_of(ticket)
        found = found + [i.but(people=who) for i in added]
    return [i for i in (_without_form_senders(i, box) for i in found) if i is not None]


def _without_form_senders(intent: Intent, box: Mailbox) -> Intent | None:
    """A web form's own address never gets mail (it got no acknowledgement either)."""
    to = [a for a in intent.to if not box.is_form_sender(a.email)]
    cc = [a for a in intent.cc if not box.is_form_sender(a.email)]
    if (to, cc) == (list(intent.to), list(intent.cc)):
        return intent
    if not to and not cc and intent.for_agent is None:
        return None
    return intent.but(to=to, cc=cc)


def _reassigned(ticket: TicketRow, events: list[Event], note: Event | None) -> list[Intent]:
    """Whoever had the ticket hears who took it from them (not when they gave it away)."""
    found: list[Intent] = []
    now = directory.agent_by_id(ticket.assignee_id)
    for change in events:
        if change.kind != "assignee" or not change.old or change.actor == f"agent:{change.old}":
            continue
        previous = directory.agent_by_key(change.old)
        if previous is None or (now is not None and now.key == previous.key):
            continue
        if any(i.for_agent and i.for_agent.key == previous.key for i in found):
            continue
        found.append(
            Intent(
                "reassigned",
                ticket,
                [],
                agent=now,
                for_agent=previous,
                detail=change.actor,
                note=note.message if note is not None else None,
            )
        )
    return found


def _by(event: Event, intent: Intent) -> bool:
    return intent.for_agent is not None and event.actor == f"agent:{intent.for_agent.key}"


def actor_name(actor: str) -> str:
    """Who did it, as an agent's notice names them: the agent's name, else what acted."""
    if actor.startswith("agent:"):
        agent = directory.agent_by_key(actor.split(":", 1)[1])
        return agent.name if agent else actor.split(":", 1)[1]
    if actor.startswith("admin:"):
        return "an administrator"
    if actor.startswith("system:route"):
        return "a routing rule"
    return "mailgate"

"""Routing rules and auto-assignment: where a new ticket goes, and to whom.

The ``[[route]]`` tables of the config are read top to bottom; the first rule
whose every condition matches sets team, priority, category, tags and
assignee; without a match the mailbox's team and priority apply. A team with
``assignment = "round_robin"`` or ``"least_open"`` then picks an agent for a
ticket that has none — when it is created or moved to the team — through the
lifecycle. Imports config, lifecycle, the store and ``mail``.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from mailgate import lifecycle
from mailgate.config import Config, Mailbox, Route, base_address
from mailgate.events import Journal
from mailgate.mail.parse import ParsedMail
from mailgate.store import counters, directory
from mailgate.store.rows import TicketRow

_BODY_LIMIT = 20_000


@dataclass(frozen=True)
class Routed:
    team: str
    priority: str
    category: str = ""
    tags: tuple[str, ...] = ()
    assignee: str = ""
    rule: str = ""
    urgency: str = ""
    impact: str = ""

    def describe(self) -> str:
        source = f"route {self.rule!r}" if self.rule else "mailbox defaults"
        parts = [f"team {self.team or '-'}", f"priority {self.priority}"]
        if self.assignee:
            parts.append(f"assignee {self.assignee}")
        if self.category:
            parts.append(f"category {self.category}")
        return f"{source}: {', '.join(parts)}"


def route(config: Config, mailbox: Mailbox, mail: ParsedMail, recipients: Sequence[str]) -> Routed:
    for rule in config.routes:
        if _matches(rule, mailbox, mail, recipients):
            return Routed(
                team=rule.team or mailbox.team,
                priority=rule.priority or mailbox.priority,
                category=rule.category,
                tags=rule.tags,
                assignee=rule.assignee,
                rule=rule.name,
                urgency=rule.urgency,
                impact=rule.impact,
            )
    return Routed(team=mailbox.team, priority=mailbox.priority)


def _matches(rule: Route, mailbox: Mailbox, mail: ParsedMail, recipients: Sequence[str]) -> bool:
    if rule.mailbox and rule.mailbox != mailbox.name:
        return False
    if rule.to:
        wanted = {base_address(a) for a in rule.to}
        if not any(base_address(r) in wanted for r in recipients):
            return False
    if rule.sender:
        sender = mail.sender.email.lower() if mail.sender else ""
        if not any(_sender_matches(sender, pattern.lower()) for pattern in rule.sender):
            return False
    if rule.subject and not _any_word(rule.subject, mail.subject):
        return False
    if rule.body and not _any_word(rule.body, mail.text[:_BODY_LIMIT]):
        return False
    return not rule.header or any(_header_matches(mail, h) for h in rule.header)


def _sender_matches(sender: str, pattern: str) -> bool:
    if "@" in pattern.lstrip("@"):
        return sender == pattern
    domain = sender.rpartition("@")[2]
    pattern = pattern.lstrip("@")
    return domain == pattern or domain.endswith("." + pattern)


def _any_word(words: Sequence[str], text: str) -> bool:
    for word in words:
        if re.search(r"(?<!\w)" + re.escape(word) + r"(?!\w)", text, re.IGNORECASE):
            return True
    return False


def _header_matches(mail: ParsedMail, spec: str) -> bool:
    name, _, wanted = spec.partition(":")
    wanted = wanted.strip().lower()
    return any(wanted in value.lower() for value in mail.headers.get(name.strip().lower(), ()))


def pick_agent(config: Config, team_key: str) -> str:
    """The agent a team's auto-assignment gives the next ticket, or '' (a queue team)."""
    team = config.team(team_key)
    if team is None or team.assignment == "none" or not team.members:
        return ""
    if team.assignment == "round_robin":
        turn = counters.increment(f"round_robin:{team.key}")
        return team.members[(turn - 1) % len(team.members)]
    counts = directory.open_tickets_of(list(team.members))
    return min(team.members, key=lambda key: (counts.get(key, 0), team.members.index(key)))


def auto_assign(config: Config, ticket: TicketRow, team: str, journal: Journal) -> TicketRow:
    """An unassigned ticket in ``team`` gets whoever the team's rule picks (if it has one)."""
    if ticket.assignee_id is None:
        pick = pick_agent(config, team)
        if pick:
            return lifecycle.change(
                ticket, journal, config, actor="system:auto-assign", assignee=pick
            ).ticket
    return ticket

"""Who an agent is: nobody becomes an agent by writing a From header.

Mail from an agent's address counts as the agent's only when it is authentic:

(a) it was sent to a reply address signed for that agent and ticket (the
    Reply-To of every notice an agent gets: ``support+482913-<hmac>@…``);
(b) a trusted receiving server's Authentication-Results, above the first
    Received header (added by our MTA, not the sender), show DKIM aligned with
    the agent's domain or DMARC passing for it — SPF alone never counts (only
    for mail that came through an MTA of ours, whose job it is to remove forged
    ones; see ``mail/authresults.py``);
(c) it was submitted through our listener with SMTP AUTH over TLS as that agent.

Anything else from an agent's address is stored as an unverified external
message: nothing relayed, no command run, the assignee told. Only reads.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from mailgate.config import Agent, Config
from mailgate.context import Context
from mailgate.mail import authresults, tokens
from mailgate.mail.parse import ParsedMail
from mailgate.store.rows import TicketRow


@dataclass(frozen=True)
class Identity:
    agent: Agent
    verified: bool
    how: str  # why it is (or is not) authentic, for the decision trace

    @property
    def actor(self) -> str:
        return f"agent:{self.agent.key}"


def identify(
    ctx: Context,
    mail: ParsedMail,
    ticket: TicketRow | None,
    recipients: Sequence[str],
    authenticated_as: str = "",
    *,
    via_mta: bool = True,
) -> Identity | None:
    """Who the agent is, and whether the mail proves it; None when From is no agent."""
    config = ctx.config
    sender = mail.sender.email if mail.sender else ""
    agent = config.agent_for(sender)
    if agent is None:
        return None
    if authenticated_as:
        if authenticated_as == agent.key:
            return Identity(agent, True, f"submitted with SMTP AUTH as {agent.key}")
        return Identity(agent, False, f"SMTP AUTH as {authenticated_as}, not as {agent.key}")
    if ticket is not None:
        for address in recipients:
            detail = _reply_detail(address, config)
            if detail is None or not detail.token:
                continue
            if detail.number == ticket.number and tokens.verify(
                ctx.secret, agent.key, ticket.number, detail.token
            ):
                return Identity(agent, True, "signed reply address of a notice to this agent")
    trusted = config.security.trusted_authserv_ids
    if trusted and via_mta:
        ours = authresults.added_by_our_mta(
            mail.header_names, mail.headers.get("authentication-results", ())
        )
        results = authresults.passes(ours, trusted)
        vouched = authresults.vouches_for(results, sender)
        if vouched is not None:
            return Identity(agent, True, str(vouched))
    checked = (
        "no trusted DKIM/DMARC pass above our Received header"
        if via_mta
        else "Authentication-Results not trusted on direct SMTP"
    )
    return Identity(agent, False, f"no signed reply address, {checked}, no SMTP AUTH")


def _reply_detail(address: str, config: Config) -> tokens.ReplyAddress | None:
    local, at, domain = address.lower().rpartition("@")
    if not at or config.mailbox_for([f"{local.split('+', 1)[0]}@{domain}"]) is None:
        return None
    return tokens.parse_detail(local)


def note_address(recipients: Sequence[str], config: Config, number: int) -> bool:
    """Was the mail sent to the ticket's notes address (``support+note-482913@…``)?"""
    for address in recipients:
        detail = _reply_detail(address, config)
        if detail is not None and detail.note and detail.number == number:
            return True
    return False

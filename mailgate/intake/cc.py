"""Who may bring new people onto a ticket: nobody receives a ticket's answers by writing a header.

A forged customer From with a Cc would otherwise make the attacker a collaborator,
who then receives every agent answer. New collaborators come only from:

* the first mail of a new ticket (its Cc is the conversation the customer started);
* an agent's ``#cc`` (agents/verbs);
* a reply that is authentic for the requester — it was sent to the reply address
  signed for this ticket's requester (``tokens.sign_requester``, in every notice to
  the requester), or a trusted receiving server's Authentication-Results (above the
  first Received header) show DKIM or DMARC passing for the requester's domain.

Any other new Cc is recorded on the message (its Cc header is stored as written, the
trace says "Cc not added") and the assignee is told in the customer-reply notice.
Only reads. Imports config, context, ``mailgate.mail`` and rows.
"""

from __future__ import annotations

from collections.abc import Sequence

from mailgate.config import Config
from mailgate.context import Context
from mailgate.mail import authresults, tokens
from mailgate.mail.parse import ParsedMail
from mailgate.store.rows import TicketRow


def authentic_for_requester(
    ctx: Context,
    mail: ParsedMail,
    ticket: TicketRow,
    requester: str,
    recipients: Sequence[str],
    *,
    via_mta: bool = True,
) -> str:
    """How the reply proves it is the requester's ('' when it does not)."""
    config = ctx.config
    for address in recipients:
        number, token = _signed_detail(address, config)
        if number == ticket.number and tokens.verify_requester(
            ctx.secret, ticket.requester_id, ticket.number, token
        ):
            return "sent to the reply address signed for the requester"
    sender = mail.sender.email.lower() if mail.sender else ""
    trusted = config.security.trusted_authserv_ids
    if trusted and via_mta and sender and sender == requester.lower():
        ours = authresults.added_by_our_mta(
            mail.header_names, mail.headers.get("authentication-results", ())
        )
        vouched = authresults.vouches_for(authresults.passes(ours, trusted), requester)
        if vouched is not None:
            return str(vouched)
    return ""


def _signed_detail(address: str, config: Config) -> tuple[int | None, str]:
    local, at, domain = address.lower().rpartition("@")
    if not at or config.mailbox_for([f"{local.split('+', 1)[0]}@{domain}"]) is None:
        return None, ""
    detail = tokens.parse_detail(local)
    if detail is None or detail.note or not detail.token:
        return None, ""
    return detail.number, detail.token

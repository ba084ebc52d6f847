"""``mailgate explain``: what ingest would do with a mail, and why — writing nothing.

It parses into a hash sink (no blob written) and runs the very ``plan`` that
ingest runs, so the answer cannot drift from what ingest does. The tool for
"why did this go to the wrong ticket?".
"""

from __future__ import annotations

import hashlib
from typing import Any

from mailgate import agents
from mailgate.context import Context
from mailgate.envelope import Envelope
from mailgate.intake.plan import Plan, parse_limits, plan
from mailgate.intake.receipts import peek
from mailgate.mail import quotes
from mailgate.mail.parse import HashSink, Unparseable, parse
from mailgate.store import receipts as receipt_rows
from mailgate.store.rows import ReceiptRow


def explain(
    ctx: Context, raw: bytes, *, mailbox: str | None = None, envelope: Envelope | None = None
) -> dict[str, Any]:
    """What ``ingest`` would do with ``raw``, as one JSON-able object; writes nothing."""
    envelope = envelope or Envelope()
    sha256 = hashlib.sha256(raw).hexdigest()
    message_id, _sender = peek(raw, sha256)
    existing = receipt_rows.by_message_id(message_id)
    try:
        mail = parse(raw, HashSink(), sha256=sha256, limits=parse_limits(ctx.config))
    except Unparseable as exc:
        return {
            "action": "quarantined",
            "reason": str(exc),
            "message_id": message_id,
            "trace": [f"cannot be parsed: {exc}"],
        }
    p = plan(ctx, mail, envelope, mailbox or "")
    trace = list(p.trace)
    if p.request is not None:
        trace.extend(agents.describe(p.request))
    if existing is not None and existing.status != "received":
        trace.insert(0, f"already received {existing.received_at:%Y-%m-%d %H:%M} → duplicate")
    report = mail.report
    visible = (
        quotes.visible_text(mail.text, known=p.known)
        if p.decision in ("append", "reopen", "follow_up")
        else mail.text
    )
    return {
        "action": _would(p, existing),
        "from": p.sender.email if p.sender else None,
        "from_name": p.sender.name if p.sender else "",
        "from_raw": mail.from_raw,
        "to": [a.email for a in mail.to],
        "cc": [a.email for a in mail.cc],
        "subject": mail.subject,
        "message_id": mail.message_id,
        "class": p.verdict.kind,
        "answerable": p.verdict.answerable,
        "mailbox": p.mailbox.name,
        "failed_recipients": [
            {
                "address": r.address,
                "status": r.status,
                "action": r.action,
                "diagnostic": r.diagnostic,
                "permanent": r.permanent,
            }
            for r in (report.recipients if report else ())
            if r.action not in ("delivered", "relayed", "expanded")
        ],
        "text": visible,
        # What the person wrote, as it is stored for a reply — for every mail, so the
        # quote stripping can be checked on any mail (a new ticket keeps the whole body).
        "reply_text": quotes.reply_text(mail.text, known=p.known),
        "full_text": mail.text,
        "attachments": [
            {
                "filename": a.filename,
                "content_type": a.content_type,
                "size": a.size,
                "sha256": a.sha256,
                "inline": a.inline,
            }
            for a in mail.attachments
        ],
        "thread": {
            "ticket": p.found.ticket.number if p.found and p.found.ticket else None,
            "how": p.found.how if p.found else None,
            "decision": p.decision,
            "sender_role": p.role,
        },
        "reason": p.reason,
        "defects": list(mail.defects),
        "trace": trace,
    }


def _would(p: Plan, existing: ReceiptRow | None) -> str:
    if existing is not None and existing.status != "received":
        return "duplicate"
    return {
        "create": "created",
        "follow_up": "created",
        "append": "appended",
        "reopen": "reopened",
        "bounce": "bounce",
        "list_alert": "list_alert",
        "quarantine": "quarantined",
        "rate": "rated",
        "rating_rejected": "appended",
        "suspend": "suspended",
        "queue": "queue",
    }.get(p.decision, "ignored")

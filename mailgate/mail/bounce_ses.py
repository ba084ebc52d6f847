"""Delivery reports, Amazon SES: bounce, complaint and delivery notifications as JSON.

Pure; imports only the standard library and ``mailgate.mail``.
"""

from __future__ import annotations

import json
from typing import Any

from mailgate.mail.bounce_dsn import (
    _DIAGNOSTIC_LIMIT,
    _MAX_RECIPIENTS,
    _TEXT_LIMIT,
    FailedRecipient,
    Report,
    _after_type,
    _bad_address,
    _first_id,
    _normalise_action,
    _normalise_address,
    _one_line,
    _reply_code_in,
    _status_in,
)


def _ses_notification(text: str) -> Report | None:
    """An Amazon SES bounce/complaint/delivery notification sent as mail via SNS (JSON body)."""
    start = text.find("{")
    if start < 0 or start > 200 or "notificationType" not in text[:_TEXT_LIMIT]:
        return None
    decoder = json.JSONDecoder(strict=False)  # SNS wraps long lines inside JSON strings
    try:
        data, _end = decoder.raw_decode(text[start:_TEXT_LIMIT])
    except ValueError:
        return None
    if isinstance(data, dict) and isinstance(data.get("Message"), str):
        try:  # the SNS envelope of "email-json" subscriptions
            data = json.loads(data["Message"][:_TEXT_LIMIT], strict=False)
        except ValueError:
            return None
    if not isinstance(data, dict):
        return None
    kind_name = str(data.get("notificationType") or data.get("eventType") or "")
    mail = _dict(data.get("mail"))
    original_id = _ses_message_id(mail)
    if kind_name == "Bounce":
        bounce = _dict(data.get("bounce"))
        permanent_type = str(bounce.get("bounceType", "")) == "Permanent"
        recipients = []
        for item in _list(bounce.get("bouncedRecipients"))[:_MAX_RECIPIENTS]:
            entry = _dict(item)
            address = _normalise_address(str(entry.get("emailAddress", "")))
            if not address:
                continue
            diagnostic = _one_line(_after_type(str(entry.get("diagnosticCode", ""))))
            status = _status_in(str(entry.get("status", ""))) or _status_in(diagnostic)
            code = _reply_code_in(diagnostic)
            if not status:
                status = f"{code[0]}.0.0" if code else ("5.0.0" if permanent_type else "4.0.0")
            permanent = status.startswith("5")
            recipients.append(
                FailedRecipient(
                    address,
                    status,
                    _normalise_action(str(entry.get("action", "failed"))),
                    diagnostic[:_DIAGNOSTIC_LIMIT],
                    permanent,
                    code,
                    "",
                    permanent and _bad_address(status, diagnostic),
                )
            )
        reporting = _after_type(str(bounce.get("reportingMTA", "")))
        return Report(
            "bounce", tuple(recipients), original_id, reporting, "", "Amazon SES notification"
        )
    if kind_name == "Complaint":
        complaint = _dict(data.get("complaint"))
        feedback_type = str(complaint.get("complaintFeedbackType", "") or "abuse").lower()
        recipients = []
        for item in _list(complaint.get("complainedRecipients"))[:_MAX_RECIPIENTS]:
            address = _normalise_address(str(_dict(item).get("emailAddress", "")))
            if address:
                recipients.append(
                    FailedRecipient(address=address, diagnostic=f"feedback: {feedback_type}")
                )
        return Report(
            "feedback", tuple(recipients), original_id, "", feedback_type, "Amazon SES notification"
        )
    if kind_name == "Delivery":
        delivery = _dict(data.get("delivery"))
        response = _one_line(str(delivery.get("smtpResponse", "")))
        recipients = [
            FailedRecipient(
                address=_normalise_address(str(a)),
                status=_status_in(response) or "2.0.0",
                action="delivered",
                diagnostic=response[:_DIAGNOSTIC_LIMIT],
                reply_code=_reply_code_in(response),
            )
            for a in _list(delivery.get("recipients"))[:_MAX_RECIPIENTS]
            if _normalise_address(str(a))
        ]
        return Report(
            "delivered",
            tuple(recipients),
            original_id,
            str(delivery.get("reportingMTA", "")),
            "",
            "Amazon SES notification",
        )
    return None


def _ses_message_id(mail: dict[str, Any]) -> str:
    common = _dict(mail.get("commonHeaders"))
    found = _first_id(str(common.get("messageId", "") or ""))
    if found:
        return found
    for header in _list(mail.get("headers"))[:200]:
        entry = _dict(header)
        if str(entry.get("name", "")).lower() == "message-id":
            return _first_id(str(entry.get("value", "")))
    return ""


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []

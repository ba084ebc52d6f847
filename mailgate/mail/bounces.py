"""Delivery reports: who failed, why, and which of our mails it was.

Pure; imports only the standard library and ``mailgate.mail``.

A bounce comes in one of three shapes, read in this order:

1. RFC 3464 ``multipart/report; report-type=delivery-status`` (Postfix, Sendmail,
   Exchange, Gmail today, most others): the ``message/delivery-status`` part
   has one block per recipient (Final-Recipient, Action, Status,
   Diagnostic-Code). RFC 5965 ARF ``report-type=feedback-report`` is the abuse
   complaint variant. Amazon SES notifications (JSON in the body) say the same
   in another syntax.
2. DSN fields written into the body text (Amazon WorkMail, some gateways) or a
   ``multipart/report`` whose MIME structure broke.
3. Free text from MTAs that never learnt RFC 3464 (Exim, qmail, old Gmail and
   Yahoo, Lotus Domino, Exchange 2003, Japanese carriers, ...): the failed
   addresses are the ones the report text puts in a recipient position, and
   their SMTP reply codes are the ones that follow them.

The Message-ID of *our* bounced message comes from the returned original
(``message/rfc822``, ``text/rfc822-headers``) or a ``Message-ID:`` line quoted
in the body.

Everything is bounded (``_TEXT_LIMIT`` of text, ``_MAX_PARTS`` MIME parts,
``_MAX_LINE`` per line, ``_MAX_RECIPIENTS``) and every regular expression runs
on bounded lines with bounded repetitions, so a hostile mail costs linear time.
``read_report`` never raises: when unsure it returns None.

The engine is this module (the walk and the order of the readings) with one
module per reading: ``bounce_headers`` (the cheap header test), ``bounce_dsn``
(RFC 3464 fields, permanence, the values),
``bounce_ses``, ``bounce_text`` (free text), ``bounce_parts`` (reading report
parts); every vendor phrase, subject and sender pattern is data in
``bounce_patterns``.
"""

from __future__ import annotations

import dataclasses
import email.message
import email.parser
import email.policy

from mailgate.mail.bounce_dsn import (
    _FIELD_IN_TEXT,
    _FIELD_START,
    _MAX_DEPTH,
    _MAX_PARTS,
    _MAX_RECIPIENTS,
    _PROSE_LIMIT,
    _TEXT_LIMIT,
    FailedRecipient,
    Report,
    ReportKind,
    _addresses_in,
    _after_type,
    _dsn_recipient,
    _dsn_records,
    _fields,
    _first_address,
    _first_id,
    _header,
    _headers,
    _kind,
    _lines,
    _normalise_address,
)
from mailgate.mail.bounce_forwarded import forwarded_mail
from mailgate.mail.bounce_headers import (
    _starts_like_report,
    is_bounce_subject,
    is_daemon_sender,
    looks_like_bounce,
)
from mailgate.mail.bounce_parts import (
    _attached_headers,
    _field_text,
    _html_to_text,
    _leaf_text,
    _parse_headers,
)
from mailgate.mail.bounce_patterns import (
    _DELAY_SUBJECT,
    _DELAY_TEXT,
    _FAILURE_TEXT,
    _GAVE_UP_TEXT,
    _MACHINE_LOCAL,
    _PERMANENT_TEXT,
    _VACATION_TEXT,
)
from mailgate.mail.bounce_ses import (
    _ses_notification,
)
from mailgate.mail.bounce_text import (
    _Cues,
    _quoted_header,
    _quoted_message_id,
    _split_original,
    _text_recipient,
    _text_recipients,
)


def read_report(message: email.message.Message) -> Report | None:
    """The delivery/abuse report carried by ``message``, or None when it is not one (or unsure)."""
    try:
        return _Reader(message).read()
    except Exception:  # noqa: BLE001 - hostile input must never break ingest; unsure is None
        return None


def read_forwarded_report(message: email.message.Message, raw: bytes = b"") -> Report | None:
    """The delivery report a person's ``message`` forwards (inline or attached), marked
    ``forwarded``: read by the same rules as any report, or None.

    ``raw``: the mail's bytes, for when ``message`` is a skeleton whose attached mails
    keep only their headers (``mime.extract_large_parts``); they are parsed again
    only when the attached headers look like a report."""
    try:
        inner = forwarded_mail(message)
        report = _Reader(inner).read() if inner is not None else None
        attached_only = inner is not None and not (report and report.recipients)
        if attached_only and raw and inner is not None and _report_headers(inner):
            whole = email.message_from_bytes(raw[: _TEXT_LIMIT * 5])
            inner = forwarded_mail(whole)
            report = _Reader(inner).read() if inner is not None else None
    except Exception:  # noqa: BLE001 - hostile input must never break ingest; unsure is None
        return None
    if report is None or report.kind not in ("bounce", "delay") or not report.recipients:
        return None
    return dataclasses.replace(report, forwarded=True, source=f"forwarded: {report.source}")


def _report_headers(message: email.message.Message) -> bool:
    headers: dict[str, tuple[str, ...]] = {}
    for name, value in list(message.items())[:100]:
        headers[name.lower()] = (*headers.get(name.lower(), ()), str(value))
    return looks_like_bounce(headers)


__all__ = [
    "FailedRecipient",
    "Report",
    "ReportKind",
    "is_bounce_subject",
    "is_daemon_sender",
    "looks_like_bounce",
    "read_forwarded_report",
    "read_report",
]

_DSN_TYPES = frozenset({"message/delivery-status", "message/global-delivery-status"})


_FEEDBACK_TYPES = frozenset({"message/feedback-report"})


_ORIGINAL_TYPES = frozenset({"message/rfc822", "message/global"})


_HEADER_TYPES = frozenset(
    {
        "text/rfc822-headers",
        "message/rfc822-headers",
        "text/global-headers",
        "message/global-headers",
    }
)


class _Reader:
    """One pass over the MIME tree, then the first reading that yields a report."""

    def __init__(self, message: email.message.Message) -> None:
        self.message = message
        self.subject = _header(message, "Subject")
        self.sender = _header(message, "From")
        self.report_type = ""
        self.dsn_texts: list[str] = []
        self.feedback_texts: list[str] = []
        self.original: email.message.Message | None = None
        self.plain: list[str] = []
        self.html: list[str] = []
        self.text_size = 0
        self._walk()

    # -- the walk

    def _walk(self) -> None:
        stack: list[tuple[email.message.Message, int, int]] = [(self.message, 0, 0)]
        seen = 0
        while stack and seen < _MAX_PARTS:
            part, depth, index = stack.pop()
            seen += 1
            ctype = part.get_content_type()
            if ctype == "multipart/report" and not self.report_type:
                self.report_type = str(part.get_param("report-type", "") or "").lower()
            if ctype in _DSN_TYPES:
                self.dsn_texts.append(_field_text(part))
            elif ctype in _FEEDBACK_TYPES:
                self.feedback_texts.append(_field_text(part))
            elif ctype in _ORIGINAL_TYPES:
                if self.original is None:
                    self.original = _attached_headers(part)
            elif ctype in _HEADER_TYPES:
                if self.original is None:
                    self.original = _parse_headers(_leaf_text(part))
            elif part.is_multipart():
                children = part.get_payload()
                if isinstance(children, list) and depth < _MAX_DEPTH:
                    for i, child in reversed(list(enumerate(children[:_MAX_PARTS]))):
                        if isinstance(child, email.message.Message):
                            stack.append((child, depth + 1, i))
            elif part.get_content_maintype() == "multipart":
                raw = part.get_payload()
                if isinstance(raw, str):
                    # A multipart whose boundary never matched: its raw text is all we have.
                    self._add_text(raw, html=False)
            elif part.get_content_maintype() == "text":
                if part.get_content_disposition() == "attachment" and part is not self.message:
                    continue
                text = _leaf_text(part)
                if (
                    ctype == "text/plain"
                    and self.report_type == "delivery-status"
                    and index == 1
                    and _FIELD_START.match(text.lstrip())
                ):
                    # Some MTAs label the delivery-status part text/plain.
                    self.dsn_texts.append(text)
                else:
                    self._add_text(text, html=ctype == "text/html")

    def _add_text(self, text: str, *, html: bool) -> None:
        room = _TEXT_LIMIT - self.text_size
        if room <= 0 or not text:
            return
        text = text[:room]
        self.text_size += len(text)
        (self.html if html else self.plain).append(text)

    def body_text(self) -> str:
        if self.plain:
            return "\n".join(self.plain)
        return _html_to_text("\n".join(self.html))

    # -- the readings, most reliable first

    def read(self) -> Report | None:
        original_id = self._original_message_id()
        if self.feedback_texts or self.report_type == "feedback-report":
            return self._feedback(original_id)
        complainer = _header(self.original, "X-HmXmrOriginalRecipient") if self.original else ""
        if complainer:
            # Microsoft's JMRP complaint: the original with the complainer in a header.
            address = _normalise_address(complainer)
            recipients = (FailedRecipient(address=address, diagnostic="feedback: abuse"),)
            return Report("feedback", recipients, original_id, "", "abuse", "Microsoft JMRP")
        text = self.body_text()
        dsn = self._from_dsn(self.dsn_texts, original_id, text, "")
        if dsn is not None and dsn.recipients:
            return dsn
        report = _ses_notification(text)
        if report is not None:
            return report
        context = self._context()
        if not context:
            return dsn
        report_text, original_text = _split_original(text)
        if not original_id:
            original_id = _quoted_message_id(original_text) or _quoted_message_id(report_text)
        if _FIELD_IN_TEXT.search(text):
            # DSN fields pasted into the body, or a multipart/report whose boundaries broke.
            report = self._from_dsn([text], original_id, text, "DSN fields in text")
            if report is not None and report.recipients:
                return report
        report = self._from_text(report_text, original_text, original_id, context)
        if report is None or (dsn is not None and not report.recipients):
            return dsn
        return report

    def _context(self) -> str:
        """Why this mail may be a free-text report ('' when nothing says so)."""
        headers = self.message
        if _header(headers, "X-Failed-Recipients"):
            return "X-Failed-Recipients"
        if self.report_type == "delivery-status":
            return "multipart/report; report-type=delivery-status"
        if is_daemon_sender(self.sender):
            return f"From {_first_address(self.sender) or self.sender.strip()}"
        return_paths = _headers(headers, "Return-Path")
        null_sender = bool(return_paths) and return_paths[0].replace(" ", "") in (
            "<>",
            "",
            "<MAILER-DAEMON>",
        )
        if null_sender and is_bounce_subject(self.subject):
            return "Return-Path <> and a delivery-report subject"
        sender_local = _first_address(self.sender).rpartition("@")[0]
        if null_sender and self.original is not None and _MACHINE_LOCAL.search(sender_local):
            # A machine (no-reply@, system@) returning a mail of ours under the null
            # sender: a report whatever its subject ("Mail", "Notice").
            return f"Return-Path <> from {_first_address(self.sender)} returning a message"
        # A subject alone is not enough: people write "my order could not be delivered".
        # It must open with the report phrase and come from a machine.
        if not _starts_like_report(self.subject):
            return ""
        if _header(headers, "Auto-Submitted").lower().startswith("auto-"):
            return "Auto-Submitted and a delivery-report subject"
        local = _first_address(self.sender).rpartition("@")[0]
        if local and _MACHINE_LOCAL.search(local):
            return f"From {_first_address(self.sender)} and a delivery-report subject"
        return ""

    def _original_message_id(self) -> str:
        if self.original is not None:
            found = _first_id(_header(self.original, "Message-ID"))
            if found:
                return found
        return ""

    def _fallback_id(self) -> str:
        # Gmail and Exchange thread their reports to the original with In-Reply-To.
        return _first_id(_header(self.message, "In-Reply-To"))

    # -- ARF

    def _feedback(self, original_id: str) -> Report:
        fields: dict[str, list[str]] = {}
        for text in self.feedback_texts:
            for name, value in _fields(text):
                fields.setdefault(name, []).append(value)
        feedback_type = (fields.get("feedback-type", [""])[0].split() or [""])[0].lower()
        addresses = [_normalise_address(v) for v in fields.get("original-rcpt-to", [])]
        if not addresses and self.original is not None:
            # Providers that redact Original-Rcpt-To still return the original's To.
            addresses = [_normalise_address(a) for a in _addresses_in(_header(self.original, "To"))]
        diagnostic = f"feedback: {feedback_type or 'unspecified'}"
        recipients = tuple(
            FailedRecipient(address=a, diagnostic=diagnostic)
            for a in dict.fromkeys(a for a in addresses if a)
        )[:_MAX_RECIPIENTS]
        reporting = _after_type(fields.get("reporting-mta", [""])[0])
        return Report(
            "feedback",
            recipients,
            original_id or self._fallback_id(),
            reporting,
            feedback_type,
            "multipart/report; report-type=feedback-report",
        )

    # -- RFC 3464 fields

    def _from_dsn(
        self, texts: list[str], original_id: str, body: str, source: str
    ) -> Report | None:
        per_message: dict[str, str] = {}
        records: list[dict[str, str]] = []
        for text in texts:
            message_fields, blocks = _dsn_records(text)
            for key, value in message_fields.items():
                per_message.setdefault(key, value)
            records.extend(blocks)
        if not texts:
            return None
        recipients: list[FailedRecipient] = []
        lines = _lines(body)
        lowered = [line.lower() for line in lines]
        seen: set[str] = set()
        for record in records[:_MAX_RECIPIENTS]:
            recipient = _dsn_recipient(record, lines, lowered)
            if recipient is not None and recipient.address.lower() not in seen:
                seen.add(recipient.address.lower())
                recipients.append(recipient)
        if not original_id:
            original_id = _first_id(
                per_message.get("x-original-message-id", "")
                or per_message.get("original-message-id", "")
            )
        if not original_id:
            _report_text, original_text = _split_original(body)
            original_id = (
                _quoted_message_id(original_text)
                or _quoted_message_id(_report_text)
                or self._fallback_id()
            )
        source = source or (
            f"multipart/report; report-type={self.report_type}"
            if self.report_type
            else "message/delivery-status"
        )
        reporting = _after_type(per_message.get("reporting-mta", ""))
        if not recipients:
            if not texts or not source.startswith("multipart/report"):
                return None
            # A delivery-status part we could not read: still a report, without recipients.
            kind: ReportKind = "delay" if self._delay_cues(body) else "bounce"
            return Report(kind, (), original_id, reporting, "", source)
        kind = _kind(recipients, self._delay_cues(body))
        if kind == "delivered" and self._vacation_cues(body):
            kind = "auto_reply"
        return Report(kind, tuple(recipients), original_id, reporting, "", source)

    def _delay_cues(self, body: str) -> bool:
        return bool(_DELAY_SUBJECT.search(self.subject[:300])) or bool(
            _DELAY_TEXT.search(body[:20_000])
        )

    def _vacation_cues(self, body: str) -> bool:
        auto = _header(self.message, "Auto-Submitted").lower()
        return auto.startswith("auto-replied") or bool(_VACATION_TEXT.search(body[:20_000]))

    # -- free text

    def _from_text(
        self, report_text: str, original_text: str, original_id: str, context: str
    ) -> Report | None:
        failed_header = _header(self.message, "X-Failed-Recipients")
        reporter, own = self._own_addresses()
        excluded = reporter | own
        lines = _lines(report_text)
        lowered = [line.lower() for line in lines]
        found = _text_recipients(lines, reporter, own)
        if failed_header:
            listed = [_normalise_address(a) for a in _addresses_in(failed_header)]
            if listed:
                found = {a: found.get(a, -1) for a in listed}
        prose = report_text[:_PROSE_LIMIT]
        failure = (
            bool(_FAILURE_TEXT.search(prose))
            or is_bounce_subject(self.subject)
            or context.endswith("returning a message")
        )
        delay = self._delay_cues(prose)
        strong = context.startswith(("X-Failed", "multipart/report", "From ", "Return-Path"))
        if not found and failure and (strong or delay):
            # No recipient in the text: the returned original's To is where it was going.
            to_value = _header(self.original, "To") if self.original is not None else ""
            if not to_value:
                to_value = _quoted_header(original_text, "to")
            addresses = [_normalise_address(a) for a in _addresses_in(to_value)]
            found = {a: -1 for a in addresses[:10] if a and a not in excluded}
        if not found and not (strong and failure):
            return None
        if found and not (failure or delay or strong):
            return None
        cues = _Cues(
            failure=failure,
            permanent=bool(_PERMANENT_TEXT.search(prose)),
            gave_up=bool(_GAVE_UP_TEXT.search(prose)),
            delay=delay,
        )
        chosen = list(found.items())[:_MAX_RECIPIENTS]
        everyone = frozenset(a.lower() for a, _n in chosen)
        recipients = tuple(
            _text_recipient(address, line_no, lines, lowered, everyone - {address.lower()}, cues)
            for address, line_no in chosen
        )
        if not original_id:
            original_id = self._fallback_id()
        if delay and not any(r.action == "failed" for r in recipients):
            kind: ReportKind = "delay"
        else:
            kind = "bounce"
        return Report(kind, recipients, original_id, "", "", f"report text ({context})")

    def _own_addresses(self) -> tuple[set[str], set[str]]:
        """(the reporter's addresses, the bounced mail's sender addresses).

        The sender is whom the report was sent to (possibly a VERP address) and who
        sent the returned original. The text names it ("MAIL FROM:<x>", "Sender address
        rejected"), but it is a failed recipient only when the text names nobody else
        (a mail to oneself, or test data).
        """
        reporter: set[str] = set()
        own: set[str] = set()
        for name in ("From", "Sender", "Reply-To"):
            for value in _headers(self.message, name):
                reporter.update(_normalise_address(a) for a in _addresses_in(value))
        for name in ("To", "Cc", "Delivered-To", "X-Original-To", "Return-Path", "Envelope-To"):
            for value in _headers(self.message, name):
                own.update(_normalise_address(a) for a in _addresses_in(value))
        if self.original is not None:
            for name in ("From", "Sender", "Return-Path"):
                for value in _headers(self.original, name):
                    own.update(_normalise_address(a) for a in _addresses_in(value))
        return reporter, own - reporter

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
"""

from __future__ import annotations

import base64
import binascii
import email.message
import email.parser
import email.policy
import html as html_lib
import json
import quopri
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from mailgate.mail.charsets import decode_bytes, decode_header

ReportKind = Literal["bounce", "delay", "delivered", "feedback", "auto_reply"]

# Only the first 200 KB of report text are read: real reports are a few KB, the rest
# of a huge "bounce" is the returned original or an attack.
_TEXT_LIMIT = 200_000
_MAX_PARTS = 200
_MAX_DEPTH = 20
_MAX_LINE = 1000
_MAX_RECIPIENTS = 100
_DIAGNOSTIC_LIMIT = 500
# A recipient's explanation follows it within a few lines (Exim, qmail, Domino).
_WINDOW = 12
# Lines of report prose analysed; a report's own text is a few dozen lines, so this only
# bounds the per-recipient scans (recipients x lines) of hostile input.
_MAX_LINES = 5000
# Whole-text phrase searches only look at the start of the report prose.
_PROSE_LIMIT = 30_000
# Lines mentioning one address that are searched for its SMTP answer.
_MAX_MENTIONS = 20
# Address matches looked at in a report text.
_MAX_MATCHES = 2000


@dataclass(frozen=True)
class FailedRecipient:
    """One recipient a report speaks about (failed, delayed, or, rarely, delivered)."""

    address: str  # as in the report, domain lowercased
    status: str = ""  # RFC 3463 status "5.1.1"; derived from the reply code or text when absent
    action: str = ""  # failed | delayed | delivered | relayed | expanded | ""
    diagnostic: str = ""  # the remote server's answer, one line, at most 500 characters
    permanent: bool = False  # a 5.x.x failure: retrying the same mail will not help
    reply_code: str = ""  # SMTP reply code "550" when known
    remote_mta: str = ""  # the host that refused, when the report names it
    # The address itself is bad (no such user or domain, moved, accepts no mail), as
    # opposed to a policy, content or capacity failure that says nothing about it.
    bad_address: bool = False


@dataclass(frozen=True)
class Report:
    """What a delivery report or abuse report says about one of our mails."""

    kind: ReportKind
    recipients: tuple[FailedRecipient, ...] = ()
    original_message_id: str = ""  # "<id@host>" of our message that the report is about
    reporting_mta: str = ""
    feedback_type: str = ""  # ARF Feedback-Type ("abuse", "fraud", ...) for kind "feedback"
    source: str = ""  # what the report was read from, for decision traces

    @property
    def permanent(self) -> bool:
        """True when at least one recipient failed permanently."""
        return any(r.permanent for r in self.recipients)


# --- the cheap header test ---------------------------------------------------------------

# Local parts (and display names) that only delivery systems use as a sender.
_DAEMON_LOCAL = re.compile(
    r"^(?:mailer[-_.]?daemon|mail[-_.]?daemon|postmaster|post[-_.]master|poostmaster"
    r"|mdaemon|mail[-_.]?delivery(?:[-_.]?(?:system|subsystem))?|mail[-_.]?administrator"
    r"|mail[-_.]?system|bounces?|smtp[-_.]?gateway|mail[-_.]?gateway)$",
    re.IGNORECASE,
)
_DAEMON_NAME = re.compile(
    r"mailer[-_ ]?daemon|mail delivery (?:sub)?system|postmaster|mail deliver system"
    r"|ndr administrator|mail administrator|internet mail delivery",
    re.IGNORECASE,
)

# Subjects delivery systems give their reports (English and the common localisations).
# Searched, not anchored: "[Postmaster] Email Delivery Failure", "FAILURE NOTICE : x".
_BOUNCE_SUBJECT = re.compile(
    r"undeliver|undelivered|non[- ]?deliver|returned mail|returning message|failure notice"
    r"|delivery (?:status notification|notification|failure|failed|has failed|problem"
    r"|report|status)"
    r"|mail delivery (?:failed|failure|system|subsystem|delayed)|delivery failed"
    r"|message (?:delivery has failed|not delivered|could not be delivered|delayed"
    r"|you sent blocked)"
    r"|could not (?:be delivered|send message)|cannot send message|delayed mail"
    r"|delivery (?:delayed|delay)|warning: message .{0,80} delayed|mail system error"
    r"|mail failure|postmaster notify|notice: mail delivery|sorry, your message"
    r"|there was an error sending your mail|\bdsn\b|rejected:|not delivered"
    r"|complaint about message from|email feedback report|abuse report"
    r"|unzustellbar|nicht zustellbar|zustellung fehlgeschlagen|non remis|impossible de remettre"
    r"|no se puede entregar|no entregado|non recapitabil|onbestelbaar|não entregue"
    r"|olevererbar|ikke levert|kan ikke leveres|nedoručiteln|niedostarczaln"
    r"|не доставлено|недоставлен|не может быть доставлено"
    r"|配信不能|配信エラー|送信エラー|メールエラー"
    r"|退信|无法投递|未送达|전달 실패|반송",
    re.IGNORECASE,
)
_DELAY_SUBJECT = re.compile(
    r"\(delay\)|delayed|still being retried|warning: could not send|delivery delay"
    r"|verzögert|retard|retrasad|ritardat|vertraagd",
    re.IGNORECASE,
)


# Every alternative of _BOUNCE_SUBJECT contains one of these: a plain substring test
# rules out nearly every subject for a fraction of the regular expression's cost.
_SUBJECT_HINTS = (
    "deliver", "return", "fail", "delay", "blocked", "could not", "cannot", "error",
    "postmaster", "sorry", "dsn", "rejected", "complaint", "feedback", "abuse", "zustell",
    "remis", "remettre", "entreg", "recapit", "bestelbaar", "levererbar", "levert", "leveres",
    "doručit", "dostarcz", "доставл", "配信", "送信", "エラー", "退信", "投递", "送达", "전달",
    "반송",
)  # fmt: skip
# The same for _DAEMON_LOCAL and _DAEMON_NAME.
_DAEMON_HINTS = ("daemon", "master", "deliver", "bounce", "administrator", "system", "gateway")


def _contains_any(text: str, needles: tuple[str, ...]) -> bool:
    # A plain loop: any() with a generator costs twice as much on this hot path.
    for needle in needles:  # noqa: SIM110
        if needle in text:
            return True
    return False


def is_bounce_subject(subject: str) -> bool:
    """Whether a subject reads like a delivery report's (daemon-written subjects only)."""
    subject = subject[:300].lower()
    if not _contains_any(subject, _SUBJECT_HINTS):
        return False
    return _BOUNCE_SUBJECT.search(subject) is not None


def is_daemon_sender(value: str) -> bool:
    """Whether a From value (address with optional display name) is a delivery system."""
    if not value or not _contains_any(value[:300].lower(), _DAEMON_HINTS):
        return False
    address = _first_address(value)
    local = address.rpartition("@")[0] if "@" in address else address
    if local and _DAEMON_LOCAL.match(local.strip('"')):
        return True
    return _DAEMON_NAME.search(value[:300]) is not None


def looks_like_bounce(headers: Mapping[str, tuple[str, ...]]) -> bool:
    """Cheap header test: might this mail be a delivery or abuse report?

    False positives cost one ``read_report`` call, which decides for real;
    a false negative loses the report, so this errs on the side of yes.
    """
    if "x-failed-recipients" in headers or "x-amz-sns-message-id" in headers:
        return True
    content_type = _first(headers, "content-type").lower()
    if "multipart/report" in content_type:
        return True
    if is_daemon_sender(_first(headers, "from")):
        return True
    subject = _first(headers, "subject")
    if "return-path" in headers and _first(headers, "return-path").replace(" ", "") in ("<>", ""):
        # A null envelope sender: reports and auto-replies. Only when the subject agrees.
        if is_bounce_subject(subject):
            return True
    return _starts_like_report(subject)


def _starts_like_report(subject: str) -> bool:
    """A subject that opens with a report phrase ("Undeliverable: x", "[Postmaster] Email
    Delivery Failure"), unlike a person's "Re: ..." or "my order could not be delivered"."""
    subject = subject[:300].lower()
    if not _contains_any(subject, _SUBJECT_HINTS):
        return False
    subject = _LEADING_TAGS.sub("", subject)
    return bool(subject) and _BOUNCE_SUBJECT.match(subject) is not None


_LEADING_TAGS = re.compile(r"^[\W_]{0,10}(?:\[[^\]]{0,40}\][\W_]{0,10})*")
# Local parts of machine senders that are not delivery daemons (KDDI's no-reply@, a
# gateway's system@): together with a report subject they make a free-text report.
_MACHINE_LOCAL = re.compile(
    r"(?:^|[._-])(?:no[._-]?reply|do[._-]?not[._-]?reply|daemon|mailer|bounces?|admin"
    r"|system|notify|notification|mail[._-]?delivery|smtp|mta)(?:$|[._-])",
    re.IGNORECASE,
)


def _first(headers: Mapping[str, tuple[str, ...]], name: str) -> str:
    values = headers.get(name)
    return values[0] if values else ""


# --- reading a report ---------------------------------------------------------------------


def read_report(message: email.message.Message) -> Report | None:
    """The delivery/abuse report carried by ``message``, or None when it is not one (or unsure)."""
    try:
        return _Reader(message).read()
    except Exception:  # noqa: BLE001 - hostile input must never break ingest; unsure is None
        return None


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
_HEADER_PARSER = email.parser.HeaderParser(policy=email.policy.compat32)


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
        failure = bool(_FAILURE_TEXT.search(prose)) or is_bounce_subject(self.subject)
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


# --- DSN field parsing ---------------------------------------------------------------------

_FIELD = re.compile(r"^([A-Za-z][A-Za-z0-9-]{0,60})[ \t]*:[ \t]?(.*)$")
_FIELD_START = re.compile(
    r"(?:reporting-mta|final-recipient|original-recipient|received-from-mta|arrival-date"
    r"|original-envelope-id|action|status)\s*:",
    re.IGNORECASE,
)
_FIELD_IN_TEXT = re.compile(r"(?im)^[ \t]*(?:final|original)-recipient[ \t]*:")
_RECIPIENT_KEYS = ("final-recipient", "original-recipient", "x-actual-recipient")
_PER_MESSAGE = frozenset(
    {
        "reporting-mta",
        "received-from-mta",
        "arrival-date",
        "original-envelope-id",
        "x-postfix-queue-id",
        "x-postfix-sender",
        "dsn-gateway",
        "x-original-message-id",
        "original-message-id",
    }
)


def _field_text(part: email.message.Message) -> str:
    """The text of a delivery-status or feedback-report part, whatever compat32 made of it.

    compat32 parses each blank-line separated block into a header-only sub-message;
    a block with a malformed line keeps the rest as that sub-message's payload; a
    base64 or quoted-printable part ends up as garbage "headers" that must be decoded.
    """
    payload = part.get_payload()
    if isinstance(payload, list):
        blocks = []
        for block in payload[:_MAX_PARTS]:
            if not isinstance(block, email.message.Message):
                continue
            lines = [f"{k}: {v}" for k, v in block.raw_items()]
            rest = block.get_payload()
            if isinstance(rest, str) and rest:
                lines.append(rest)
            blocks.append("\n".join(lines))
        text = "\n\n".join(blocks)
    else:
        text = str(payload or "")
    text = text[:_TEXT_LIMIT]
    encoding = str(part.get("Content-Transfer-Encoding", "") or "").strip().lower()
    if encoding in ("base64", "quoted-printable"):
        raw = text.encode("ascii", "ignore")
        try:
            data = base64.b64decode(raw) if encoding == "base64" else quopri.decodestring(raw)
        except (ValueError, binascii.Error):
            return text
        text = decode_bytes(data, part.get_content_charset())[0]
    if "=?" not in text:
        return text
    # Encoded words in fields (SMTPUTF8 addresses): decoded line by line, keeping the lines.
    return "\n".join(decode_header(line) if "=?" in line else line for line in text.split("\n"))


def _fields(text: str) -> list[tuple[str, str]]:
    """(lowercased name, value) pairs of an RFC 822-style field block, folded lines joined."""
    result: list[tuple[str, str]] = []
    for line in text[:_TEXT_LIMIT].splitlines():
        line = line[:_MAX_LINE]
        if line[:1] in (" ", "\t") and result:
            name, value = result[-1]
            result[-1] = (name, f"{value} {line.strip()}")
            continue
        match = _FIELD.match(line)
        if match:
            result.append((match.group(1).lower(), match.group(2).strip()))
        elif not line.strip():
            result.append(("", ""))  # block boundary
    return result


def _dsn_records(text: str) -> tuple[dict[str, str], list[dict[str, str]]]:
    """Per-message fields and per-recipient records of a delivery-status text.

    A record starts at a Final-/Original-Recipient field: blank lines between
    recipients are often missing (Exchange, Amazon), and some MTAs put every
    field in one block.
    """
    per_message: dict[str, str] = {}
    records: list[dict[str, str]] = []
    current: dict[str, str] | None = None
    for name, value in _fields(text):
        if not name:
            if current:
                records.append(current)
            current = None
            continue
        if name in _PER_MESSAGE and current is None:
            per_message.setdefault(name, value)
            continue
        if name in _RECIPIENT_KEYS:
            if current is not None and name in current:
                records.append(current)
                current = None
            if current is None:
                current = {}
        if current is None:
            if name not in ("action", "status", "diagnostic-code", "remote-mta"):
                continue
            current = {}
        current.setdefault(name, value)
        if len(records) > _MAX_RECIPIENTS:
            break
    if current:
        records.append(current)
    return per_message, [r for r in records if any(k in r for k in _RECIPIENT_KEYS)]


def _dsn_recipient(
    record: dict[str, str], lines: list[str], lowered: list[str]
) -> FailedRecipient | None:
    # Final-Recipient may be a source route or a local name ("@relay:user@server"):
    # the first field holding a usable address wins.
    candidates = [_after_type(record[k]) for k in _RECIPIENT_KEYS if record.get(k)]
    address = next((a for a in map(_normalise_address, candidates) if "@" in a), "")
    if not address:
        address = next((a for a in map(_normalise_address, candidates) if a), "")
    if not address:
        return None
    action = _normalise_action(record.get("action", ""))
    diagnostic = _one_line(_after_type(record.get("diagnostic-code", "")))
    status = _status_in(record.get("status", ""))
    detailed = _status_in(diagnostic)
    if detailed and (not status or (status.endswith(".0.0") and detailed[0] == status[0])):
        # "Status: 5.0.0" with "550 5.1.1 user unknown": the remote server knew better.
        status = detailed
    reply_code = _reply_code_in(diagnostic)
    if not diagnostic or not reply_code:
        # Some reports leave the SMTP answer to the human-readable part.
        window = _text_window_for(address, lines, lowered)
        if not diagnostic:
            diagnostic = window
        if not reply_code:
            reply_code = _reply_code_in(window)
        if not status:
            status = _status_in(window)
    if not status and reply_code:
        status = f"{reply_code[0]}.0.0"
    if not status and action == "failed":
        status = _status_from_text(diagnostic, "5")
    if status.endswith(".0.0"):
        refined = _status_from_text(diagnostic, status[0])
        if refined:
            status = refined
    final = action not in ("delayed", "delivered", "relayed", "expanded")
    permanent = final and status.startswith("5")
    return FailedRecipient(
        address=address,
        status=status,
        action=action,
        diagnostic=diagnostic[:_DIAGNOSTIC_LIMIT],
        permanent=permanent,
        reply_code=reply_code,
        remote_mta=_after_type(record.get("remote-mta", ""))[:255],
        bad_address=permanent and _bad_address(status, diagnostic),
    )


def _normalise_action(value: str) -> str:
    word = (value.split() or [""])[0].strip(";,.()").lower()
    return {
        "failure": "failed",
        "fail": "failed",
        "delay": "delayed",
        "deliver": "delivered",
        "relay": "relayed",
        "expand": "expanded",
    }.get(word, word)


def _kind(recipients: list[FailedRecipient], delay_cues: bool) -> ReportKind:
    actions = {r.action for r in recipients}
    if actions and actions <= {"delivered", "relayed", "expanded"}:
        return "delivered"
    if any(r.action == "failed" or (not r.action and r.status.startswith("5")) for r in recipients):
        return "bounce"
    if "delayed" in actions:
        return "delay"
    # No Action field: a 4.x.x status is a delay only when the report says so.
    if any(r.status.startswith("4") for r in recipients) and delay_cues:
        return "delay"
    return "bounce"


def _after_type(value: str) -> str:
    """Drop a type prefix: 'rfc822; a@b' -> 'a@b', 'dns; mx.example.org' -> 'mx.example.org'."""
    value = value.strip()
    head, sep, tail = value.partition(";")
    if sep and "@" not in head and " " not in head.strip() and len(head) <= 20:
        return tail.strip()
    return value


# --- Amazon SES notifications -----------------------------------------------------------------


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


# --- free-text reports ------------------------------------------------------------------------

# Where the returned original starts in a text report; everything after it is our own
# mail (its To/From/Message-ID), not the report.
_ORIGINAL_MARKER = re.compile(
    r"^[\s\->*=#_]*(?:"
    r"this is a copy of the message|the body of the message"
    r"|below this line is a copy of the message|below is a copy of the original message"
    r"|original message follows|original message(?: headers)?\s*[:\-]|original message\s*$"
    r"|-*\s*original message\s*-*\s*$|the header of the original message"
    r"|included is a copy of the message header|unsent message follows"
    r"|returned message|message headers follow|copy of (?:the )?(?:original )?message"
    r"|the original message (?:headers?|was(?! received))"
    r"|header of (?:the )?original message|original mail"
    r"|message original|ursprüngliche nachricht|mensaje original|messaggio originale"
    r"|オリジナルメッセージ|元のメッセージ|原始邮件|исходное сообщение"
    r")",
    re.IGNORECASE,
)
# A returned original pasted without a marker starts with its own header block.
_HEADER_BLOCK_START = re.compile(
    r"^(?:Received: (?:from|by)\b|Return-Path:\s*<|DKIM-Signature:|ARC-Seal:|X-Received:)",
    re.IGNORECASE,
)


def _split_original(text: str) -> tuple[str, str]:
    """(report part, returned original) of a text report."""
    position = 0
    for line in text.splitlines(keepends=True):
        head = line[:200]
        if _ORIGINAL_MARKER.match(head) or _HEADER_BLOCK_START.match(head):
            return text[:position], text[position:]
        position += len(line)
    return text, ""


_MESSAGE_ID_LINE = re.compile(
    r"^[ \t>]*Message-ID[ \t]*:[ \t]*(?:\r?\n[ \t]+)?(<[^<>\s]{1,900}>)",
    re.IGNORECASE | re.MULTILINE,
)


def _quoted_message_id(text: str) -> str:
    match = _MESSAGE_ID_LINE.search(text[:_TEXT_LIMIT])
    return match.group(1) if match else ""


def _quoted_header(text: str, name: str) -> str:
    pattern = re.compile(rf"^[ \t>]*{re.escape(name)}[ \t]*:[ \t]*(.{{1,900}})$", re.I | re.M)
    match = pattern.search(text[:_TEXT_LIMIT])
    return match.group(1) if match else ""


def _lines(text: str) -> list[str]:
    return [line[:_MAX_LINE] for line in text[:_TEXT_LIMIT].splitlines()[:_MAX_LINES]]


_ADDRESS = re.compile(
    r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~.-]{1,64}@[A-Za-z0-9-]{1,63}(?:\.[A-Za-z0-9-]{1,63}){1,8}",
    re.ASCII,
)
# Lines that carry a sender or a header of the returned original, never a failed recipient.
_NOT_RECIPIENT_LINE = re.compile(
    r"^[\s>]*(?:from|sender|reply-to|return-path|errors-to|message-id|references"
    r"|in-reply-to|received|x-[a-z-]+|dkim-signature|arc-[a-z-]+|authentication-results"
    r"|delivered-to|envelope-to|list-[a-z-]+|original sender|originator)\s*:",
    re.IGNORECASE,
)
_HEADERISH_LINE = re.compile(r"^[\s>]*(?:to|cc|bcc|subject|date|sent)\s*:", re.IGNORECASE)
# "MAIL FROM:<x>", "from x", "envelope-from <x>", "Original Sender: <x>" right before the address.
_SENDER_BEFORE = re.compile(
    r"(?:from|sender|reply-to|return-path|errors-to|originator)\W{0,12}$", re.IGNORECASE
)
# Help-desk and contact addresses in the report's prose.
_CONTACT = re.compile(
    r"contact|assistance|question|\bhelp\b|support|visit|please report|webmaster|abuse desk"
    r"|send (?:an? )?(?:e-?mail|mail|message) to|for more information|forward this",
    re.IGNORECASE,
)
_RECIPIENT_CUE = re.compile(
    r"recipient|rcpt|deliver|address|mailbox|\buser|account|destinat|unknown|invalid"
    r"|reject|fail|error|bounce|not found|exist|refused|denied|could not|unable|said"
    r"|returned|problem|not listed|quota|full|expired|timed? ?out"
    r"|zugestellt|empfänger|destinataire|destinatario|adresse|indirizzo|ontvanger"
    r"|получател|адрес|доставлен|宛先|送信先|配信|あて先|收件人|收件|수신",
    re.IGNORECASE,
)
_CODE = re.compile(r"(?<![\w.#/=-])(?<!\d:)([245][0-5][0-9])(?=[\s\-:,;)\]]|$)")
# In a failure text only a failure reply is the answer ("250 ok" lines are transcript).
_FAILURE_CODE = re.compile(r"(?<![\w.#/=-])(?<!\d:)([45][0-5][0-9])(?=[\s\-:,;)\]]|$)")
_STATUS = re.compile(r"(?<![\w.])([245])\.(\d{1,3})\.(\d{1,3})(?![\d]|\.\d)")
_FAILURE_STATUS = re.compile(r"(?<![\w.])([45])\.(\d{1,3})\.(\d{1,3})(?![\d]|\.\d)")
_LETTERS = re.compile(r"[^\W\d_]+")


def _text_recipients(lines: list[str], reporter: set[str], own: set[str]) -> dict[str, int]:
    """Failed addresses in a report text, in order, with the line each first appears on.

    An address is a recipient when its line is about delivery (a code, a recipient
    word) or holds little else; addresses after "from"/"sender", in contact prose
    or in header-like lines count only when nothing better is found.
    """
    strong: dict[str, int] = {}
    own_strong: dict[str, int] = {}
    weak: dict[str, int] = {}
    own = own | _senders_named(lines)
    budget = _MAX_MATCHES
    for number, line in enumerate(lines):
        if "@" not in line or _NOT_RECIPIENT_LINE.match(line):
            continue
        matches = list(_ADDRESS.finditer(line))
        if not matches:
            continue
        budget -= len(matches)
        if budget < 0:
            break
        headerish = bool(_HEADERISH_LINE.match(line))
        contact = bool(_CONTACT.search(line))
        rest = _ADDRESS.sub(" ", line).replace("mailto:", " ")
        address_only = sum(len(w) for w in _LETTERS.findall(rest)) <= 20
        cue = bool(_RECIPIENT_CUE.search(rest)) or bool(_CODE.search(rest))
        for match in matches:
            address = _normalise_address(match.group(0))
            if not address or address in reporter or address in strong:
                continue
            if _SENDER_BEFORE.search(line[max(0, match.start() - 40) : match.start()]):
                continue
            if contact and not cue:
                continue
            if headerish or not (address_only or cue):
                weak.setdefault(address, number)
            elif contact and _CONTACT.search(line[max(0, match.start() - 60) : match.start()]):
                continue
            elif address in own:
                own_strong.setdefault(address, number)
            else:
                strong[address] = number
                weak.pop(address, None)
            if len(strong) >= _MAX_RECIPIENTS:
                return strong
    return strong or own_strong or {a: n for a, n in weak.items() if a not in own}


def _senders_named(lines: list[str]) -> set[str]:
    """Addresses the text names as the envelope sender ("MAIL FROM:<x>", "from x")."""
    senders: set[str] = set()
    for line in lines[:_MAX_LINES]:
        if "@" not in line:
            continue
        for match in _ADDRESS.finditer(line):
            before = line[max(0, match.start() - 40) : match.start()]
            if _SENDER_BEFORE.search(before) or "sender address" in line.lower():
                senders.add(_normalise_address(match.group(0)))
        if len(senders) > _MAX_RECIPIENTS:
            break
    return senders


def _text_recipient(
    address: str,
    line_no: int,
    lines: list[str],
    lowered: list[str],
    others: frozenset[str],
    cues: _Cues,
) -> FailedRecipient:
    block = _block(lines, line_no, address, others) if line_no >= 0 else []
    diagnostic, code, status = _diagnose(block, address, others)
    if not code and not status:
        # The address's own later lines (Sendmail transcripts), else, for a single
        # recipient, the report's first SMTP answer anywhere (MailMarshal puts it first).
        needle = address.lower()
        mentioning = [lines[i] for i, line in enumerate(lowered) if needle in line]
        mentioning = mentioning[:_MAX_MENTIONS]
        found = _diagnose(mentioning, address)
        if not found[0] and not others:
            found = _diagnose(lines, address)
        if found[0]:
            diagnostic, code, status = found
    if not diagnostic and block:
        diagnostic = _explanation(block)
    # Words for a status: the SMTP answer itself when there is one, else the whole block.
    words = diagnostic if (code or status) else (" ".join(block) if block else diagnostic)
    if not status and code:
        status = f"{code[0]}.0.0"
    if not status or status.endswith(".0.0"):
        status_class = status[:1] or (
            "5" if cues.permanent or not (cues.gave_up or cues.delay) else "4"
        )
        refined = _status_from_text(words, status_class)
        if not refined and not others:
            # One recipient: the report's explanation may precede the address (EZweb).
            refined = _status_from_text("\n".join(lines[:200]), status_class)
        if refined:
            status = refined
    if not status:
        if cues.gave_up:
            status = "4.4.7"
        elif cues.delay and not cues.permanent:
            status = "4.0.0"
        elif cues.failure or cues.permanent:
            # A final failure notice that gives no reason: RFC 3464 "failed" is permanent.
            status = "5.0.0"
    delayed = cues.delay and not cues.permanent and not cues.gave_up and status[:1] != "5"
    action = "delayed" if delayed else "failed"
    permanent = action == "failed" and status.startswith("5")
    return FailedRecipient(
        address=address,
        status=status,
        action=action,
        diagnostic=_one_line(diagnostic)[:_DIAGNOSTIC_LIMIT],
        permanent=permanent,
        reply_code=code,
        bad_address=permanent and _bad_address(status, diagnostic or words),
    )


@dataclass(frozen=True)
class _Cues:
    """What the report text says as a whole."""

    failure: bool  # failure words ("could not be delivered")
    permanent: bool  # "This is a permanent error"
    gave_up: bool  # retried until it expired: final, but not the address's fault
    delay: bool  # a warning: still being retried


def _block(lines: list[str], line_no: int, address: str, others: frozenset[str]) -> list[str]:
    """The lines about one recipient: from its line until another recipient's, at most _WINDOW."""
    needle = address.lower()
    block = [lines[line_no]]
    for line in lines[line_no + 1 : line_no + _WINDOW]:
        lowered = line.lower()
        if "@" in line and needle not in lowered and any(o in lowered for o in others):
            break
        block.append(line)
    return block


def _diagnose(
    lines: list[str], address: str, others: frozenset[str] = frozenset()
) -> tuple[str, str, str]:
    """(diagnostic line, reply code, status) from the first line that carries a failure answer.

    Stops where the block of another recipient (one of ``others``) starts.
    """
    needle = address.lower()
    for index, line in enumerate(lines):
        if index and others and "@" in line:
            lowered = line.lower()
            if needle not in lowered and any(other in lowered for other in others):
                break
        if index and _NOT_RECIPIENT_LINE.match(line):
            continue
        rest = _ADDRESS.sub(" ", line)
        status_match = _FAILURE_STATUS.search(rest)
        status = ".".join(status_match.groups()) if status_match else ""
        codes = _FAILURE_CODE.findall(rest)
        if not codes and not status:
            continue
        # "220-mx 421 4.2.1 ...": the reply code is the one that agrees with the status.
        code = next((c for c in codes if not status or c[0] == status[0]), "")
        # Multi-line answers ("550-5.7.26 ...") continue on the next lines.
        text = line.strip()
        for follow in lines[index + 1 : index + 4]:
            stripped = follow.strip()
            if not stripped or not code or not stripped.startswith(code):
                break
            text += " " + stripped[4:].strip()
        return text, code, status
    return "", "", ""


def _explanation(block: list[str]) -> str:
    """The words explaining a failure without an SMTP code: the rest of the address line or
    the next non-empty line (Exim "Unrouteable address", Domino "because: ...")."""
    rest = _ADDRESS.sub(" ", block[0]).strip(" \t<>:()[]\"'-")
    if len(_LETTERS.findall(rest)) >= 2:
        return rest
    for line in block[1:6]:
        stripped = line.strip()
        if not stripped or stripped.lower().startswith(("because", "for the following reason")):
            continue
        return stripped
    return ""


def _reply_code_in(text: str) -> str:
    match = _CODE.search(_ADDRESS.sub(" ", text[: _MAX_LINE * 2]))
    return match.group(1) if match else ""


def _status_in(text: str) -> str:
    match = _STATUS.search(text[: _MAX_LINE * 2])
    return ".".join(match.groups()) if match else ""


def _text_window_for(address: str, lines: list[str], lowered: list[str]) -> str:
    """The SMTP answer a report's human-readable part gives for ``address``, if any."""
    needle = address.lower()
    tried = 0
    for number, line in enumerate(lowered):
        if needle in line:
            diagnostic, _code, _status = _diagnose(lines[number : number + _WINDOW], address)
            tried += 1
            if diagnostic or tried >= _MAX_MENTIONS:
                return diagnostic
    return ""


# Detail statuses for reports that give only words (RFC 3463 subjects: 1 address,
# 2 mailbox, 3 system, 4 routing, 7 policy). Checked in order; the first match wins.
_STATUS_WORDS: tuple[tuple[re.Pattern[str], str], ...] = tuple(
    (re.compile(pattern, re.IGNORECASE), detail)
    for pattern, detail in (
        (
            r"mailbox (?:is )?full|over ?quota|quota exceeded|exceed(?:ed|s) (?:the )?(?:storage"
            r"|quota|mailbox)|insufficient (?:system )?storage|mailbox size limit"
            r"|メールボックスが一杯"
            r"|number of messages in recipient's mailbox exceeded|mailfolder is full"
            r"|mailbox exceeds",
            "2.2",
        ),
        (
            r"user unknown|unknown user|no such (?:user|mailbox|recipient|address|account)"
            r"|(?:user|recipient|mailbox|address|account)(?: name)? (?:is )?(?:not found|unknown"
            r"|does not exist|doesn't exist|not recogni[sz]ed|invalid|unavailable)"
            r"|unknown (?:recipient|mailbox|local[- ]part)|invalid (?:recipient|mailbox|address)"
            r"|does not exist|doesn't exist|not listed in|address not found|couldn't be found"
            r"|no mailbox|not a valid (?:mailbox|user|recipient)|doesn't have an? .{1,60} account"
            r"|bad destination mailbox|recipnotfound|invalid (?:final delivery )?userid"
            r"|宛先不明|存在しません",
            "1.1",
        ),
        (
            r"host (?:or domain name )?not found|domain (?:not found|does not exist)|unrouteable"
            r"|unroutable|host unknown|unknown host|no such domain|nxdomain|name service error"
            r"|no (?:valid )?mx|all relevant mx records point to non-existent hosts",
            "1.2",
        ),
        (r"does not accept mail|accepts no mail|null mx", "1.10"),
        (r"has moved|no longer (?:valid|active|at|with)", "1.6"),
        (
            r"(?:account|mailbox|user) (?:has been |is )?(?:disabled|suspended|deactivated"
            r"|inactive|locked|expired)",
            "2.1",
        ),
        (
            r"too (?:big|large)|size (?:limit )?exceeded|exceeds? (?:the )?(?:maximum )?"
            r"(?:message )?size|message size",
            "3.4",
        ),
        (
            r"relay(?:ing)? (?:access )?(?:denied|not permitted)|not permitted to relay"
            r"|relaying denied",
            "7.1",
        ),
        (
            r"retry timeout|too long|been in the queue|expired|timed? ?out|could not be delivered"
            r" within|giving up",
            "4.7",
        ),
        (
            r"spam|blocked|blacklist|blocklist|reputation|policy|rejected|refused|denied"
            r"|not (?:permitted|allowed|authori[sz]ed)|filter",
            "7.1",
        ),
    )
)


def _status_from_text(text: str, status_class: str) -> str:
    """A status derived from the words of a diagnostic ('' when they say nothing known)."""
    if not text:
        return ""
    text = text[:4000]
    for pattern, detail in _STATUS_WORDS:
        if pattern.search(text):
            if detail == "4.7":
                # Expiry words next to a 5xx answer describe the retries, not the failure.
                if status_class == "5":
                    continue
                return "4.4.7"
            return f"{status_class}.{detail}"
    return ""


# Statuses (and words) that say the address itself is bad: RFC 3463 X.1.1 bad mailbox,
# X.1.2 bad domain, X.1.3 bad syntax, X.1.6 moved, X.1.10 null MX, Exchange's X.1.NNN
# variants of "recipient not found", X.4.4 unable to route.
_BAD_ADDRESS_STATUS = re.compile(r"^5\.(?:1\.(?:[1-6]|10|\d{3})|4\.4)$")
_SENDER_STATUS = re.compile(r"^5\.1\.[78]$")  # the problem is our sender address
_BAD_ADDRESS_WORDS = re.compile(
    r"user unknown|unknown user|no such (?:user|mailbox|recipient|domain)|(?:does|may) not exist"
    r"|doesn't exist|not found|recipnotfound|unknown recipient|invalid recipient|unrouteable"
    r"|not listed in|no mailbox|does not accept mail|no smtp service|null mx"
    r"|recipient address rejected: (?:user unknown|access denied)|domain is not reachable"
    r"|doesn't have an? .{1,60} account|invalid (?:final delivery )?userid",
    re.IGNORECASE,
)


def _bad_address(status: str, diagnostic: str) -> bool:
    if not status.startswith("5") or _SENDER_STATUS.match(status):
        return False
    if _BAD_ADDRESS_STATUS.match(status):
        return True
    return bool(_BAD_ADDRESS_WORDS.search(diagnostic[:2000]))


# Words of a failure report in several languages (only trusted together with a daemon
# sender, a null envelope sender or a report subject).
_FAILURE_TEXT = re.compile(
    r"could not be delivered|couldn't be delivered|was not delivered|wasn't delivered"
    r"|not be delivered|undeliverable|delivery (?:has )?failed|failed permanently"
    r"|permanent (?:fatal )?error|permanent failure|fatal error|unable to deliver"
    r"|wasn't able to deliver|were unable to deliver|delivery to the following"
    r"|did not reach|following address(?:es)? failed|addresses had|address failed"
    r"|error (?:has )?occurred|error delivering|trouble delivering|rejected|returned"
    r"|delivery problems|not deliver|no valid recipients|failed to deliver|bounce"
    r"|konnte nicht zugestellt|nicht zugestellt|n'a pas pu être (?:remis|distribué)"
    r"|no (?:se )?pudo (?:ser )?entregar|no ha podido ser entregado|non è stato possibile"
    r"|non recapitabil|kon niet worden (?:bezorgd|afgeleverd)|não (?:pôde|foi possível)"
    r"|не может быть доставлено|не доставлено|не удалось доставить"
    r"|送信できませんでした|配信できませんでした|届きませんでした|宛先不明|无法投递|未能送达",
    re.IGNORECASE,
)
_PERMANENT_TEXT = re.compile(
    r"permanent(?:ly)?(?: fatal)? (?:error|failure|failed)|failed permanently"
    r"|this is a permanent|fatal errors?|no further (?:delivery )?attempts will be made"
    r"|will not be retried|i've given up|permanent delivery errors|delivery to the following"
    r" recipient failed permanently",
    re.IGNORECASE,
)
# Retried until the queue lifetime ran out: a final failure, not a statement about the address.
_GAVE_UP_TEXT = re.compile(
    r"retry timeout exceeded|too long in (?:the )?queue|been in the queue too long"
    r"|message expired|delivery time expired|could not be delivered within"
    r"|cannot send message for|could not deliver for|delivery attempts (?:have )?expired"
    r"|expired after|retry time exceeded|giving up|gave up|not going to try again"
    r"|envelope expired|unable to deliver in \d+ minutes|failing for a long time"
    r"|failed \d+ attempts",
    re.IGNORECASE,
)
_DELAY_TEXT = re.compile(
    r"this is a warning|warning only|has not (?:yet )?been delivered|not yet been delivered"
    r"|will (?:continue|keep) (?:trying|to try)|delivery attempts will continue"
    r"|will be retried|still (?:trying|being retried)|has been delayed|have been delayed"
    r"|delivery (?:is )?delayed|no action is required|you will (?:be notified|not be notified)"
    r"|will retry|message is delayed|temporarily deferred",
    re.IGNORECASE,
)
_VACATION_TEXT = re.compile(
    r"out of (?:the )?office|on vacation|on holiday|on leave|away from (?:the|my) "
    r"|auto-?reply|autoresponder|automatic reply|abwesen|absent|en vacances",
    re.IGNORECASE,
)


# --- small helpers ------------------------------------------------------------------------------

_ANGLE_ID = re.compile(r"<([^<>\s]{1,900})>")


def _first_id(value: str) -> str:
    match = _ANGLE_ID.search(value[:4000])
    if match:
        return f"<{match.group(1)}>"
    bare = value.strip()
    if bare and "@" in bare and " " not in bare and len(bare) < 900:
        return f"<{bare.strip('<>')}>"
    return ""


# Internationalised (SMTPUTF8) addresses, for fields that are known to hold one address.
_ANY_ADDRESS = re.compile(r"[^\s<>()\[\],;:\"'@]{1,64}@[^\s<>()\[\],;:\"'@]{1,255}")


def _first_address(value: str) -> str:
    match = _ADDRESS.search(value[:2000])
    return match.group(0) if match else ""


def _addresses_in(value: str) -> list[str]:
    return [m.group(0) for m in _ADDRESS.finditer(value[:20_000])]


def _normalise_address(value: str) -> str:
    """'<Bob@Example.ORG>' -> 'Bob@example.org'; '' when there is no address."""
    value = value.strip().strip("<>\"' \t").strip()
    value = value[:1000]
    # An internationalised local part ("müller@") must not lose its non-ASCII head.
    match = (None if value.isascii() else _ANY_ADDRESS.search(value)) or _ADDRESS.search(value)
    if not match:
        return value.lower()[:320] if value and "@" not in value and " " not in value else ""
    local, _, domain = match.group(0).rpartition("@")
    local = local.lstrip(".'\"`")
    domain = domain.strip(".-").lower()
    if not local or "." not in domain or not any(c.isalpha() for c in domain.rsplit(".", 1)[-1]):
        return ""
    return f"{local}@{domain}"


def _headers(message: email.message.Message, name: str) -> list[str]:
    """Decoded values of a header. compat32 hands out Header objects for raw 8-bit values,
    whose str() is replacement characters: read the raw value and decode it ourselves."""
    name = name.lower()
    return [decode_header(str(value)) for key, value in message.raw_items() if key.lower() == name][
        :50
    ]


def _header(message: email.message.Message | None, name: str) -> str:
    if message is None:
        return ""
    values = _headers(message, name)
    return values[0].strip() if values else ""


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _leaf_text(part: email.message.Message) -> str:
    payload = part.get_payload(decode=True)
    if isinstance(payload, bytes):
        return decode_bytes(payload[:_TEXT_LIMIT], part.get_content_charset())[0]
    raw = part.get_payload()
    return raw[:_TEXT_LIMIT] if isinstance(raw, str) else ""


def _attached_headers(part: email.message.Message) -> email.message.Message | None:
    """The header block of a returned original (message/rfc822)."""
    payload = part.get_payload()
    if isinstance(payload, list) and payload and isinstance(payload[0], email.message.Message):
        inner = payload[0]
        encoding = str(part.get("Content-Transfer-Encoding", "") or "").lower().strip()
        if len(inner.keys()) > 0 and encoding not in ("base64", "quoted-printable"):
            return inner
        # Encoded message/rfc822 (against RFC 2046, but seen): decode, then read its headers.
        raw = inner.as_string()[:_TEXT_LIMIT] if not inner.keys() else ""
        if not raw and isinstance(inner.get_payload(), str):
            raw = str(inner.get_payload())[:_TEXT_LIMIT]
        return _parse_headers(_decode_transfer(raw, encoding))
    if isinstance(payload, str):
        return _parse_headers(payload[:_TEXT_LIMIT])
    return None


def _decode_transfer(raw: str, encoding: str) -> str:
    data = raw.encode("ascii", "ignore")
    try:
        if encoding == "base64":
            data = base64.b64decode(data)
        elif encoding == "quoted-printable":
            data = quopri.decodestring(data)
    except (ValueError, binascii.Error):
        return raw
    return decode_bytes(data, None)[0]


def _parse_headers(text: str) -> email.message.Message | None:
    if not text.strip():
        return None
    message = _HEADER_PARSER.parsestr(text[:64_000].lstrip("\r\n"))
    return message if len(message.keys()) else None


def _html_to_text(markup: str) -> str:
    """Crude, linear HTML to text: tags dropped, block ends as line breaks, entities decoded."""
    if not markup:
        return ""
    pieces = markup[:_TEXT_LIMIT].split("<")
    out = [pieces[0]]
    for piece in pieces[1:]:
        end = piece.find(">")
        if end < 0:
            out.append(" " + piece)
            continue
        tag = piece[:end].lstrip("/").split(None, 1)[0].lower() if piece[:end].strip("/") else ""
        out.append(
            "\n"
            if tag in ("br", "p", "div", "tr", "li", "table", "h1", "h2", "h3", "pre", "blockquote")
            else " "
        )
        out.append(piece[end + 1 :])
    return html_lib.unescape("".join(out))

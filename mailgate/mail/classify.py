"""What an inbound mail is: a person's mail, an auto-reply, a bounce, bulk mail or our own loop.

Pure; imports only the standard library and ``mailgate.mail``.

The decision is an ordered table of small named rules, read top to bottom,
first match wins (the model is GNU Mailman 3's rule chains): each rule is a
predicate that returns the reason it matched, which goes into the decision
trace. The table is ``RULES``; the order is the policy:

1. loop       -- our own loop header, or From is one of our addresses;
2. bounce     -- a delivery/abuse report (``ParsedMail.report``), or the headers
                 of one (null Return-Path or daemon sender with a report subject);
3. auto_reply -- RFC 3834 markers, vendor auto-reply headers, read receipts,
                 out-of-office subjects in many languages;
4. list_alert -- a mailing list held, rejected or looped our mail (``mail.listalerts``);
5. bulk       -- list and bulk mail (Precedence, List-Id, one-click unsubscribe);
6. person     -- everything else.

``answerable`` says whether an automatic answer (an acknowledgement) may be
sent. RFC 3834 section 2 forbids answering auto-replies, reports, list mail,
our own mail and no-reply/daemon senders, so it is False for every kind but
"person", and for a person's mail that comes from (or only lets us reply to)
such an address, has a null envelope sender, or asks for no auto-replies
(Microsoft's ``X-Auto-Response-Suppress``).

Cost: a person's mail is a handful of dict lookups and one anchored regular
expression on the subject; no body is ever scanned here (the only body
reading, for reports, happened in ``bounces.read_report`` during parse).
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from mailgate.mail.parse import ParsedMail

# "list_alert": a mailing list held, rejected or looped one of our mails ("awaits
# moderator approval", "mail loop detected"): never a ticket, never a reopen, never
# an undeliverable address; recorded on the ticket of ``mail.report.original_message_id``.
Kind = Literal["person", "auto_reply", "bounce", "bulk", "loop", "list_alert"]

LOOP_HEADER = "X-Mailgate-Loop"
_LOOP_KEY = LOOP_HEADER.lower()


@dataclass(frozen=True)
class Verdict:
    kind: Kind
    reason: str  # short human text for the decision trace
    answerable: bool  # may we send an automatic answer (RFC 3834)?


def classify(mail: ParsedMail, *, own_addresses: frozenset[str], loop_token: str) -> Verdict:
    """The verdict of the first rule of ``RULES`` that matches, else a person's mail."""
    facts = _Facts(mail, own_addresses, loop_token)
    for rule in RULES:
        reason = rule.check(facts)
        if reason:
            return Verdict(rule.kind, reason, False)
    return _person(facts)


# --- addresses ----------------------------------------------------------------------------------

# Local parts that never read their mail (RFC 3834 section 2 and common practice): no-reply
# variants, delivery daemons, list infrastructure (owner-x, x-request, x-bounces, VERP
# "bounce-123"). A token only counts between separators, so "bouncer@" or "replyto@" do not.
_NOREPLY_LOCAL = re.compile(
    r"^(?:.*[._+=-])?(?:"
    r"no[._-]?reply|no[._-]?replies|do[._-]?not[._-]?reply|dont[._-]?reply|do[._-]?not[._-]?respond"
    r"|no[._-]?respon[sd]e?|mailer[._-]?daemon|mail[._-]?daemon|m?daemon|postmaster"
    r"|bounces?|listserv|majordomo|mailman|auto[._-]?reply|auto[._-]?responder"
    r"|auto[._-]?confirm|mail[._-]?delivery"
    r")(?:[._+=\d-].*)?$"
    r"|^owner-.+|^.+-(?:owner|request)$",
    re.IGNORECASE,
)


# Every alternative of _NOREPLY_LOCAL contains one of these; most addresses contain none,
# and a substring test is far cheaper than the expression (this runs on every mail).
_NOREPLY_HINTS = (
    "reply", "respon", "daemon", "master", "bounce", "listserv", "majordomo", "mailman",
    "auto", "delivery", "owner", "request",
)  # fmt: skip


def is_noreply_address(address: str) -> bool:
    """Whether ``address`` belongs to a no-reply sender, a delivery daemon or list machinery."""
    local = address.strip().strip("<>")
    at = local.rfind("@")
    local = (local[:at] if at >= 0 else local).strip('"').lower()
    for hint in _NOREPLY_HINTS:
        if hint in local:
            return _NOREPLY_LOCAL.match(local) is not None
    return False


@functools.lru_cache(maxsize=64)
def _normalised(addresses: frozenset[str]) -> frozenset[str]:
    return frozenset(filter(None, (_base_address(a) for a in addresses)))


def _base_address(address: str) -> str:
    """'Support+123@Example.ORG' -> 'support@example.org': our plus-addresses are ours too."""
    local, at, domain = address.strip().strip("<>").lower().rpartition("@")
    if not at:
        return ""
    return f"{local.split('+', 1)[0]}@{domain}"


# --- the facts the rules look at ----------------------------------------------------------------


class _Facts:
    """The mail plus the few values several rules need, computed once."""

    __slots__ = ("headers", "mail", "own", "sender", "token")

    def __init__(self, mail: ParsedMail, own: frozenset[str], token: str) -> None:
        self.mail = mail
        self.headers = mail.headers
        self.sender = mail.sender.email.lower() if mail.sender is not None else ""
        self.own = own
        self.token = token

    def first(self, name: str) -> str:
        values = self.headers.get(name)
        return values[0].strip() if values else ""


# --- the rules ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Rule:
    name: str
    kind: Kind
    check: Callable[[_Facts], str]  # the reason when the rule matches, else ''


def _loop_header(facts: _Facts) -> str:
    values = facts.headers.get(_LOOP_KEY)
    if values and facts.token and any(v.strip() == facts.token for v in values):
        return f"{LOOP_HEADER} carries our loop token"
    return ""


def _from_own_address(facts: _Facts) -> str:
    if facts.sender and facts.own and _base_address(facts.sender) in _normalised(facts.own):
        return f"From is our own address {facts.sender}"
    return ""


_REPORT_KINDS = frozenset({"bounce", "delay", "delivered", "feedback"})


def _delivery_report(facts: _Facts) -> str:
    report = facts.mail.report
    if report is None or report.kind not in _REPORT_KINDS or report.forwarded:
        return ""  # a report a person forwarded is that person's mail
    if report.kind in ("delivered", "delay") and _vacation_markers(facts):
        # Some vacation responders answer with a multipart/report (sisimai "vacation"):
        # a person's away notice, not a delivery failure.
        return ""
    if report.kind == "bounce" and not report.recipients and _vacation_markers(facts):
        return ""
    return f"{report.kind} report: {report.source or facts.mail.content_type}"


def _null_sender_report(facts: _Facts) -> str:
    from mailgate.mail import bounces  # its tables: built on first use

    return_path = facts.first("return-path")
    if "return-path" not in facts.headers or return_path.replace(" ", "") not in ("<>", ""):
        return ""
    if _daemon_sender(facts):
        return f"Return-Path <> from {facts.sender or 'a delivery system'}"
    subject = facts.mail.subject
    if bounces.is_bounce_subject(subject) and not _REPLY_PREFIX.match(subject):
        return f"Return-Path <> with a delivery-report subject: {subject[:80]}"
    return ""


def _daemon_report(facts: _Facts) -> str:
    from mailgate.mail import bounces  # its tables: built on first use

    if _daemon_sender(facts) and bounces.is_bounce_subject(facts.mail.subject):
        sender = facts.sender or "a delivery system"
        return f"From {sender} with subject {facts.mail.subject[:80]!r}"
    return ""


def _report_headers(facts: _Facts) -> str:
    # Exim lists the failed addresses in X-Failed-Recipients; Exchange marks its NDRs.
    if "x-failed-recipients" in facts.headers:
        return f"X-Failed-Recipients: {facts.first('x-failed-recipients')[:80]}"
    if "x-ms-exchange-message-is-ndr" in facts.headers:
        return "X-MS-Exchange-Message-Is-Ndr"
    return ""


def _list_alert(facts: _Facts) -> str:
    report = facts.mail.report
    if report is not None and report.kind == "list_alert":
        return report.source
    return ""


def _report_auto_reply(facts: _Facts) -> str:
    report = facts.mail.report
    if report is not None and report.kind == "auto_reply":
        return f"auto-reply sent as a report: {report.source or facts.mail.content_type}"
    return ""


def _auto_submitted(facts: _Facts) -> str:
    value = facts.first("auto-submitted")
    if value and value.split(";", 1)[0].split("(", 1)[0].strip().lower() != "no":
        return f"Auto-Submitted: {value[:60]}"
    return ""


# Vendor headers that only automatic answers carry. X-Auto-Response-Suppress is NOT one:
# Outlook and Exchange put it on ordinary mail (meeting requests, mail sent by apps,
# transport rules); it is honoured for ``answerable`` instead.
_AUTO_REPLY_HEADERS: tuple[tuple[str, Callable[[str], bool]], ...] = (
    ("x-autoreply", lambda v: v.lower() not in ("no", "false", "0")),
    ("x-autorespond", lambda v: True),
    ("x-autoresponder", lambda v: True),
    ("x-auto-reply", lambda v: v.lower() not in ("no", "false", "0")),
    ("x-autogenerated", lambda v: v.lower().startswith("reply")),
    ("x-apple-action", lambda v: v.lower() == "vacation"),
    ("x-vacation", lambda v: True),
    ("x-post-messageclass", lambda v: "autoresponder" in v.lower()),
)


def _auto_reply_header(facts: _Facts) -> str:
    headers = facts.headers
    for name, sign in _AUTO_REPLY_HEADERS:
        if name in headers:
            value = facts.first(name)
            if sign(value):
                return f"{name}: {value[:60]}"
    return ""


def _precedence_auto_reply(facts: _Facts) -> str:
    value = facts.first("precedence").lower()
    return f"Precedence: {value}" if value in ("auto_reply", "auto-reply") else ""


def _read_receipt(facts: _Facts) -> str:
    ctype = facts.first("content-type").lower()
    if "multipart/report" in ctype and "disposition-notification" in ctype:
        return "read receipt: multipart/report; report-type=disposition-notification"
    return ""


# Reply/forward prefixes that may precede an auto-reply subject ("Re: Automatic reply: x").
_PREFIXES = (
    r"(?:(?:re|aw|sv|vs|antw|antwort|rif|r|odp|ynt|res|rv|enc|fw|fwd|wg|tr|ref|atb|vá"
    r"|回复|回覆|答复|返信|회신|ответ|отв)\s*(?:\[\d{1,4}\])?\s*[:：]\s*)*"
)
# Out-of-office subjects. Strong phrases match at the start (after prefixes) when followed
# by a delimiter or the end; weak words ("Absence", "Ausente") only when followed by ':'.
# Lotus Notes' "AUTO:" only in capitals: "Auto: Schaden vom 3. März" is a German car.
_STRONG_PHRASES = (
    r"out[ -]of[ -](?:the[ -])?office(?:[ -]auto[ -]?reply)?|automatic[ -]reply"
    r"|auto(?:matic)?[ -]?(?:reply|response|answer)|automated[ -](?:reply|response)"
    r"|vacation[ -](?:reply|response|notice|message)|away[ -]message"
    r"|abwesenheitsnotiz|automatische[ -]antwort|autoantwort|abwesenheits(?:meldung|nachricht)"
    r"|r[ée]ponse[ -]automatique|message[ -]d'absence|absent[ -]du[ -]bureau"
    r"|respuesta[ -]autom[áa]tica|fuera[ -]de[ -](?:la[ -])?oficina"
    r"|risposta[ -]automatica|fuori[ -](?:sede|ufficio)"
    r"|automatisch[ -]antwoord|afwezigheidsbericht"
    r"|resposta[ -]autom[áa]tica|fora[ -]do[ -]escrit[óo]rio"
    r"|autosvar|automatiskt[ -]svar|automatisk[ -]svar|automaattinen[ -]vastaus"
    r"|automatick[áa][ -]odpov[ěe]ď|odpowied[źz][ -]automatyczna|automatyczna[ -]odpowied[źz]"
    r"|automatikus[ -]v[áa]lasz|otomatik[ -](?:yan[ıi]t|cevap)|αυτόματη[ -]απάντηση"
    r"|автоответ|автоматический[ -]ответ"
)
_WEAK_WORDS = (
    r"ooo|(?-i:AUTO)|away|absence|absent|on[ -]vacation|on[ -]leave|abwesend|abwesenheit"
    r"|ausente|ausencia|assente|afwezig|frånvaro|frånvarande|fravær|poissa|nieobecno[śs][ćc]"
    r"|mimo[ -]kancel[áa][řr]|nepřítomnost|отсутствую|нет на месте"
)
# CJK phrases carry no word boundaries; they are unambiguous, so any continuation is fine.
_CJK_PHRASES = (
    r"自動応答|自動返信|自动回复|自動回覆|自動回復|自动答复|不在通知"
    r"|자동[ ]?회신|자동[ ]?응답|부재중"
)
_AUTO_REPLY_SUBJECT = re.compile(
    r"^\s*" + _PREFIXES + r"(?:"
    r"(?:" + _STRONG_PHRASES + r")(?=\s*(?:[:：\-–—(\[]|until\b|till\b|bis\b|jusqu|$))"
    r"|(?:" + _WEAK_WORDS + r")\s*[:：]"
    r"|(?:" + _CJK_PHRASES + r")"
    r")",
    re.IGNORECASE,
)
_REPLY_PREFIX = re.compile(r"^\s*(?:re|fwd?|aw|wg|tr|sv|vs|antw|rif|r|rv|enc)\s*:", re.IGNORECASE)


def _auto_reply_subject(facts: _Facts) -> str:
    subject = facts.mail.subject
    if subject and _AUTO_REPLY_SUBJECT.match(subject[:200]):
        return f"out-of-office subject: {subject[:80]}"
    return ""


def _precedence_bulk(facts: _Facts) -> str:
    value = facts.first("precedence").lower()
    return f"Precedence: {value}" if value in ("bulk", "junk", "list") else ""


def _list_id(facts: _Facts) -> str:
    value = facts.first("list-id")
    return f"List-Id: {value[:120]}" if "list-id" in facts.headers else ""


def _list_machinery(facts: _Facts) -> str:
    # RFC 8058 one-click unsubscribe is only used by bulk senders; Mailing-List is ezmlm's
    # and Yahoo/Google Groups' older List-Id. List-Unsubscribe alone does NOT make bulk:
    # some CRM and ticket tools add it to one-to-one mail, and losing a customer's mail
    # to "ignored" is worse than one ticket too many; it only makes the mail unanswerable.
    if "list-unsubscribe-post" in facts.headers:
        return "List-Unsubscribe-Post (one-click unsubscribe: bulk sender)"
    if "mailing-list" in facts.headers:
        return f"Mailing-List: {facts.first('mailing-list')[:80]}"
    return ""


RULES: tuple[Rule, ...] = (
    Rule("loop-header", "loop", _loop_header),
    Rule("own-address", "loop", _from_own_address),
    Rule("delivery-report", "bounce", _delivery_report),
    Rule("null-sender-report", "bounce", _null_sender_report),
    Rule("daemon-report", "bounce", _daemon_report),
    Rule("report-headers", "bounce", _report_headers),
    Rule("report-auto-reply", "auto_reply", _report_auto_reply),
    Rule("auto-submitted", "auto_reply", _auto_submitted),
    Rule("auto-reply-header", "auto_reply", _auto_reply_header),
    Rule("precedence-auto-reply", "auto_reply", _precedence_auto_reply),
    Rule("read-receipt", "auto_reply", _read_receipt),
    Rule("auto-reply-subject", "auto_reply", _auto_reply_subject),
    Rule("list-alert", "list_alert", _list_alert),
    Rule("precedence-bulk", "bulk", _precedence_bulk),
    Rule("list-id", "bulk", _list_id),
    Rule("list-machinery", "bulk", _list_machinery),
)


# --- helpers ------------------------------------------------------------------------------------


def _daemon_sender(facts: _Facts) -> bool:
    from mailgate.mail import bounces  # its tables: built on first use

    if facts.sender and bounces.is_daemon_sender(facts.sender):
        return True
    mail = facts.mail
    if mail.sender is not None and mail.sender.name:
        return bounces.is_daemon_sender(mail.sender.name)
    return not facts.sender and bounces.is_daemon_sender(facts.first("from"))


def _vacation_markers(facts: _Facts) -> bool:
    if _daemon_sender(facts):
        return False
    auto = facts.first("auto-submitted").lower()
    return (
        auto.startswith("auto-replied")
        or bool(_auto_reply_header(facts))
        or bool(_auto_reply_subject(facts))
    )


# X-Auto-Response-Suppress values that ask us not to auto-answer (Microsoft MS-OXCMAIL).
_SUPPRESS = re.compile(r"\b(?:all|autoreply)\b", re.IGNORECASE)


_PERSON_REASON = "no automated-mail markers"
_PERSON = Verdict("person", _PERSON_REASON, True)  # built once: the most common verdict


def _person(facts: _Facts) -> Verdict:
    why_not = _unanswerable(facts)
    if why_not:
        return Verdict("person", f"{_PERSON_REASON}; no automatic answer: {why_not}", False)
    return _PERSON


def _unanswerable(facts: _Facts) -> str:
    """Why a person's mail must not get an automatic answer ('' when it may)."""
    if not facts.sender:
        return "no From address"
    if is_noreply_address(facts.sender):
        return f"From {facts.sender} is a no-reply/daemon address"
    reply_to = facts.mail.reply_to
    if reply_to and all(is_noreply_address(a.email) for a in reply_to):
        return f"Reply-To {reply_to[0].email} is a no-reply address"
    if "return-path" in facts.headers:
        return_path = facts.first("return-path").replace(" ", "")
        if return_path in ("<>", ""):
            return "null Return-Path <>"
        if is_noreply_address(return_path.strip("<>")):
            return f"Return-Path {return_path[:80]} is list/daemon machinery"
    suppress = facts.first("x-auto-response-suppress")
    if suppress and _SUPPRESS.search(suppress):
        return f"X-Auto-Response-Suppress: {suppress[:40]}"
    if "list-unsubscribe" in facts.headers:
        return "List-Unsubscribe (list-like mail)"
    return ""

"""Delivery reports, the data: the words, subjects and senders of report-writing systems.

Pure data (compiled regular expressions and tables) for ``mail.bounces`` and its
readers; imports only the standard library. Adding a vendor's phrasing or a
language is an edit here, never in the engine. Every expression is applied to
bounded lines with bounded repetitions, so a hostile mail costs linear time.
"""

from __future__ import annotations

import re

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


_LEADING_TAGS = re.compile(r"^[\W_]{0,10}(?:\[[^\]]{0,40}\][\W_]{0,10})*")


# Local parts of machine senders that are not delivery daemons (KDDI's no-reply@, a
# gateway's system@): together with a report subject they make a free-text report.
_MACHINE_LOCAL = re.compile(
    r"(?:^|[._-])(?:no[._-]?reply|do[._-]?not[._-]?reply|daemon|mailer|bounces?|admin"
    r"|system|notify|notification|mail[._-]?delivery|smtp|mta)(?:$|[._-])",
    re.IGNORECASE,
)


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

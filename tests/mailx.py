"""Replies as s-nail and BSD mailx write them, made from any notice.

``tests/data/mailx/`` holds replies the real clients wrote (s-nail 14.9.24 and Debian's
bsd-mailx 8.1.2, see its README); ``test_reply_text.py`` checks that these builders give
the same bytes for that notice, so the end-to-end tests can answer notices of their own
ticket exactly as those clients would.
"""

from __future__ import annotations

import email
import email.message
import email.utils

# Debian's /etc/mail.rc: the headers BSD mailx's ~m leaves out.
DEBIAN_MAILRC_IGNORE = (
    "received",
    "message-id",
    "resent-message-id",
    "status",
    "mail-from",
    "return-path",
    "via",
    "delivered-to",
)


def _decoded_body(notice: email.message.Message) -> str:
    payload = notice.get_payload(decode=True)
    assert isinstance(payload, bytes)
    return payload.decode(notice.get_content_charset() or "utf-8").replace("\r\n", "\n")


def s_nail_body(notice_raw: bytes, answer: str, *, indent: str = "\t", heading: bool = True) -> str:
    """s-nail's ``reply`` with ``set quote``: ``quote-inject-head`` ("%f wrote:\\n\\n",
    or nothing), every line of the decoded notice prefixed by ``indentprefix`` (blank ones
    too), then what the agent typed."""
    notice = email.message_from_bytes(notice_raw)
    head = f"{notice['From']} wrote:\n\n" if heading else ""
    lines = _decoded_body(notice).removesuffix("\n").split("\n")
    quoted = "\n".join(indent + line for line in lines)
    return f"{head}{quoted}\n{answer}\n"


def bsd_mailx_tilde_m_body(
    notice_raw: bytes, answer: str, *, ignore: tuple[str, ...] = DEBIAN_MAILRC_IGNORE
) -> str:
    """BSD mailx's ``r`` then ``~m``: the message as it sits in the mbox — postmark, the
    header lines not ignored, the body *undecoded* (quoted-printable soft breaks and
    all) — each non-empty line after a TAB, then what the agent typed."""
    text = notice_raw.decode("ascii").replace("\r\n", "\n")
    head, _, body = text.partition("\n\n")
    notice = email.message_from_bytes(notice_raw)
    sender = email.utils.parseaddr(str(notice["From"]))[1]
    postmark = f"From {sender} Thu Dec  3 07:20:05 2026"
    kept: list[str] = []
    skipping = False
    for line in head.split("\n"):
        if line[:1] in (" ", "\t"):
            if not skipping:
                kept.append(line)
            continue
        skipping = line.split(":", 1)[0].strip().lower() in ignore
        if not skipping:
            kept.append(line)
    lines = [postmark, *kept, "", *body.split("\n")]
    return "\n".join("\t" + line if line else "" for line in lines) + "\n" + answer + "\n"


def reply(
    notice_raw: bytes, body: str, *, sender: str = "Alice Smith <alice@example.org>"
) -> bytes:
    """The agent's reply as it reaches us: to the notice's Reply-To, threaded, plain UTF-8."""
    notice = email.message_from_bytes(notice_raw)
    reply_to = email.utils.parseaddr(str(notice["Reply-To"]))[1]
    subject = " ".join(str(notice["Subject"]).split())
    references = " ".join(str(x) for x in (notice["References"], notice["Message-ID"]) if x)
    head = (
        f"Date: {email.utils.formatdate()}\n"
        f"From: {sender}\n"
        f"To: {reply_to}\n"
        f"Subject: Re: {subject}\n"
        f"Message-ID: {email.utils.make_msgid(domain='example.org')}\n"
        f"In-Reply-To: {notice['Message-ID']}\n"
        f"References: {references}\n"
        "User-Agent: s-nail v14.9.24\n"
        "MIME-Version: 1.0\n"
        "Content-Type: text/plain; charset=utf-8\n"
        "Content-Transfer-Encoding: 8bit\n"
    )
    return (head + "\n" + body).replace("\n", "\r\n").encode()

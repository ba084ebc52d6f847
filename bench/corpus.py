"""A deterministic corpus for the benchmarks: mail as real clients and servers write it.

New requests and replies (replies quote the mail they answer and reference it),
every 10th with an attachment, from five client styles (Gmail, Outlook, Apple
Mail, Thunderbird, iPhone), each with the header block a real delivery carries:
a Received chain, DKIM and ARC signatures, Authentication-Results, client
headers. The same seed always gives the same bytes, so runs compare.

``minimal=True`` gives bare mails (five headers, text only): a lower bound
that shows fixed per-mail costs.
"""

from __future__ import annotations

import base64
import email.utils
import hashlib
import random
from email.message import EmailMessage
from email.policy import SMTP

FIRST = ["Carla", "Jörg", "Ana", "Li", "Sven", "Aisha", "Tom", "Noor", "Ivan", "Mia"]
LAST = ["Customer", "Müller", "García", "Wang", "Larsen", "Khan", "Smith", "Jansen", "Petrov"]
TOPICS = [
    "Online banking down",
    "Card blocked",
    "Transfer stuck",
    "App crashes at login",
    "Statement missing",
    "Wrong fee charged",
    "Cannot reset password",
    "Überweisung hängt",
]
SENTENCE = (
    "the entire mobile online banking system is down and I cannot pay my bills, "
    "please help as soon as possible because this is urgent. "
)
CLIENTS = ("gmail", "outlook", "apple", "thunderbird", "iphone")


def _b64(rng: random.Random, size: int) -> str:
    return base64.b64encode(rng.randbytes(size)).decode()


def _delivery_headers(rng: random.Random, msg: EmailMessage, client: str, when: int) -> None:
    """What the receiving side adds: Return-Path, Received chain, authentication results."""
    hops = rng.randint(3, 6)
    for hop in range(hops):
        host = f"mx{hop}.relay{rng.randint(1, 40)}.example"
        msg["Received"] = (
            f"from {host} ({host} [198.51.100.{rng.randint(1, 254)}]) by mx.example.org "
            f"(Postfix) with ESMTPS id {rng.randbytes(6).hex().upper()} for "
            f"<support@example.org>; {email.utils.formatdate(when - hop * 3)}"
        )
    msg["Authentication-Results"] = (
        "mx.example.org; dkim=pass (2048-bit key) header.d=customer.example "
        f"header.i=@customer.example header.b={_b64(rng, 6)}; spf=pass "
        "smtp.mailfrom=customer.example; dmarc=pass (p=none dis=none) header.from=customer.example"
    )
    msg["DKIM-Signature"] = (
        "v=1; a=rsa-sha256; c=relaxed/relaxed; d=customer.example; s=20230601; "
        f"t={when}; x=1796000000; h=to:subject:message-id:date:from:mime-version:from:to:cc:"
        f"subject:date:message-id:reply-to; bh={_b64(rng, 32)}; b={_b64(rng, 256)}"
    )
    if client in ("gmail", "outlook"):
        msg["ARC-Seal"] = (
            f"i=1; a=rsa-sha256; t={when}; cv=none; d=google.example; s=arc-20240605; b={_b64(rng, 256)}"
        )
        msg["ARC-Message-Signature"] = (
            f"i=1; a=rsa-sha256; c=relaxed/relaxed; d=google.example; s=arc-20240605; "
            f"h=to:subject:message-id:date:from:mime-version:dkim-signature; bh={_b64(rng, 32)}; "
            f"b={_b64(rng, 256)}"
        )
    if client == "gmail":
        msg["X-Google-Smtp-Source"] = _b64(rng, 60)
        msg["X-Received"] = f"by 2002:a05:6000:1:b0:37:1 with SMTP id {rng.randbytes(8).hex()}"
    elif client == "outlook":
        msg["X-MS-Has-Attach"] = ""
        msg["X-MS-TNEF-Correlator"] = ""
        msg["X-MS-Exchange-Organization-SCL"] = "1"
        msg["X-Microsoft-Antispam"] = "BCL:0;ARA:13230040|1800799024|366016|376014"
        msg["Content-Language"] = "de-DE"
    elif client == "apple":
        msg["X-Mailer"] = "Apple Mail (2.3774.100.2.1.4)"
    elif client == "thunderbird":
        msg["User-Agent"] = "Mozilla Thunderbird 128.5.0"
    else:
        msg["X-Mailer"] = "iPhone Mail (22B91)"


def corpus(
    count: int, seed: int = 7, attachment_every: int = 10, minimal: bool = False
) -> list[bytes]:
    rng = random.Random(seed)
    mails: list[bytes] = []
    threads: list[tuple[str, str, str, str]] = []  # (message id, sender, subject, body)
    for i in range(count):
        reply = threads and rng.random() < 0.4
        client = rng.choice(CLIENTS)
        when = 1795000000 + i * 60
        msg = EmailMessage(policy=SMTP)
        if reply:
            parent_id, sender, subject, parent_body = rng.choice(threads)
            msg["Subject"] = ("AW: " if client == "outlook" else "Re: ") + subject
            msg["In-Reply-To"] = parent_id
            msg["References"] = parent_id
            quoted = "\n".join("> " + line for line in parent_body.splitlines())
            body = (
                "Still not working, see below.\n\n"
                + SENTENCE * rng.randint(1, 3)
                + "\n\nOn Mon, 23 Nov 2026 at 10:00, Support <support@example.org> wrote:\n"
                + quoted
            )
        else:
            first, last = rng.choice(FIRST), rng.choice(LAST)
            sender = f"{first} {last} <{first.lower()}.{i}@customer{i % 97}.example>"
            subject = f"{rng.choice(TOPICS)} ({i})"
            msg["Subject"] = subject
            body = "Hello,\n\n" + SENTENCE * rng.randint(1, 6) + f"\n\nRegards,\n{first}\n"
        message_id = f"<bench-{seed}-{i}.{hashlib.md5(str(i).encode(), usedforsecurity=False).hexdigest()[:12]}@customer.example>"
        if not minimal:
            _delivery_headers(rng, msg, client, when)
        msg["From"] = sender
        msg["To"] = "Example Bank Support <support@example.org>"
        msg["Date"] = email.utils.formatdate(when)
        msg["Message-ID"] = message_id
        if not minimal and client == "outlook":
            msg["Thread-Topic"] = subject
            msg["Thread-Index"] = _b64(rng, 22)
        msg.set_content(body)
        if not minimal and rng.random() < 0.7:
            paragraphs = "".join(f"<p>{line}</p>" if line else "<br>" for line in body.splitlines())
            msg.add_alternative(
                f'<html><head><meta charset="utf-8"><style>p{{margin:0}}</style></head>'
                f'<body><div dir="ltr">{paragraphs}</div></body></html>',
                subtype="html",
            )
        if attachment_every and i % attachment_every == 0:
            size = rng.choice((20_000, 80_000, 200_000))
            msg.add_attachment(
                rng.randbytes(size),
                maintype="application",
                subtype="pdf",
                filename=f"statement-{i}.pdf",
            )
        mails.append(msg.as_bytes())
        if not reply:
            threads.append((message_id, sender, subject, body))
    return mails


def big_mail(size: int = 25 * 1024 * 1024, seed: int = 11) -> bytes:
    rng = random.Random(seed)
    msg = EmailMessage(policy=SMTP)
    msg["From"] = "Carla Customer <carla@customer.example>"
    msg["To"] = "support@example.org"
    msg["Subject"] = "Full disk image attached"
    msg["Message-ID"] = "<big-1@customer.example>"
    msg.set_content("The image of the failing machine is attached.\n")
    msg.add_attachment(
        rng.randbytes(size), maintype="application", subtype="octet-stream", filename="disk.img"
    )
    return msg.as_bytes()

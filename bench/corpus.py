"""A deterministic corpus for the benchmarks: new requests and replies, some with attachments.

The same seed always gives the same bytes, so runs are comparable. Replies
reference earlier mails of the corpus (In-Reply-To/References, quoted text),
as real threads do.
"""

from __future__ import annotations

import email.utils
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


def corpus(count: int, seed: int = 7, attachment_every: int = 10) -> list[bytes]:
    rng = random.Random(seed)
    mails: list[bytes] = []
    threads: list[tuple[str, str, str]] = []  # (message id, sender, subject)
    for i in range(count):
        reply = threads and rng.random() < 0.4
        msg = EmailMessage(policy=SMTP)
        if reply:
            parent_id, sender, subject = rng.choice(threads)
            msg["Subject"] = "Re: " + subject
            msg["In-Reply-To"] = parent_id
            msg["References"] = parent_id
            body = (
                "Still not working, see below.\n\n"
                + SENTENCE * rng.randint(1, 4)
                + "\n\nOn Mon, 23 Nov 2026 at 10:00, Support wrote:\n"
                + "\n".join("> " + SENTENCE for _ in range(rng.randint(2, 8)))
            )
        else:
            first, last = rng.choice(FIRST), rng.choice(LAST)
            sender = f"{first} {last} <{first.lower()}.{i}@customer{i % 97}.example>"
            subject = f"{rng.choice(TOPICS)} ({i})"
            msg["Subject"] = subject
            body = "Hello,\n\n" + SENTENCE * rng.randint(1, 6) + f"\n\nRegards,\n{first}\n"
        message_id = f"<bench-{seed}-{i}@customer.example>"
        msg["From"] = sender
        msg["To"] = "support@example.org"
        msg["Date"] = email.utils.formatdate(1795000000 + i * 60)
        msg["Message-ID"] = message_id
        msg.set_content(body)
        if rng.random() < 0.3:
            msg.add_alternative(
                "<html><body><p>" + body.replace("\n", "<br>") + "</p></body></html>",
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
            threads.append((message_id, sender, subject))
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

"""Issue 17 through real transports: who wrote a mail whose From has no address, what
became of a notice a delivery report speaks of, and the files inside a winmail.dat.

Mail arrives through the pipe (``mailgate ingest`` as Postfix runs it) or the SMTP
listener; what a user sees is read with the CLI (``tickets show --json``,
``outbox list --json``).
"""

from __future__ import annotations

import email.message
import hashlib
import json
import smtplib
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from mailgate.context import Context
from mailgate.store import models as m
from tests.conftest import open_gateway
from tests.relay import free_port
from tests.support import compose, config_data, load_config, write_config
from tests.test_parse_hostile import winmail


def mailgate(config: Path, *args: str, stdin: bytes | None = None) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "mailgate", "--config", str(config), *args],
        input=stdin,
        capture_output=True,
        timeout=60,
        cwd=config.parent,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.decode()


def as_json(config: Path, *args: str) -> Any:
    return json.loads(mailgate(config, *args, "--json"))


def raw_mail(head: str, body: str = "Hello,\r\nthe online banking is down.\r\n") -> bytes:
    return (head.strip().replace("\n", "\r\n") + "\r\n\r\n" + body).encode()


@pytest.fixture
def upgraded(config_path: Path) -> Path:
    mailgate(config_path, "db", "upgrade")
    return config_path


# --- a From without a usable address ------------------------------------------------------------


def test_from_without_an_address_takes_the_requester_from_reply_to_and_keeps_the_name(
    upgraded: Path,
) -> None:
    raw = raw_mail(
        """
From: Support Team
Reply-To: Jane Doe <jane@vendor.example>
To: support@example.org
Subject: Our service desk cannot log in
Message-ID: <no-address-1@vendor.example>
"""
    )
    out = mailgate(
        upgraded,
        "ingest",
        "--sender=bounces@mailer.vendor.example",
        "--recipient=support@example.org",
        "-",
        stdin=raw,
    )
    assert out.startswith("created [EB#"), out
    number = out.split("#", 1)[1].split("]", 1)[0]
    ticket = as_json(upgraded, "tickets", "show", number)
    assert (ticket["requester"], ticket["requester_name"]) == ("jane@vendor.example", "Jane Doe")
    (first,) = ticket["messages"][:1]
    assert first["from_raw"] == "Support Team"
    assert any("requester from Reply-To jane@vendor.example" in line for line in first["trace"])
    acknowledgement = [
        i for i in as_json(upgraded, "outbox", "list") if i["notice"] == "acknowledgement"
    ]
    # Mail without a From address gets no automatic answer (the classifier's RFC 3834
    # caution: such senders are mostly machinery); the team still hears of the ticket.
    assert acknowledgement == []
    assert ticket["status"] == "new" and ticket["team"] == "level1"


@pytest.mark.parametrize(
    ("head", "requester", "name", "how"),
    [
        (
            "From: <>\nSender: Helpdesk Robot <robot@vendor.example>",
            "robot@vendor.example",
            "Helpdesk Robot",
            "requester from Sender robot@vendor.example",
        ),
        (
            "From: undisclosed",
            "mailer@vendor.example",
            "undisclosed",
            "requester from the envelope sender mailer@vendor.example",
        ),
        (
            # Nobody becomes an agent (or makes us write to ourselves) by a header.
            "From: Support Team\nReply-To: alice@example.org\nSender: support@example.org",
            "mailer@vendor.example",
            "Support Team",
            "requester from the envelope sender mailer@vendor.example",
        ),
    ],
)
def test_from_without_an_address_falls_back_to_sender_then_the_envelope(
    tmp_path: Path,
    database_url: str,
    serve_in_thread: Any,
    head: str,
    requester: str,
    name: str,
    how: str,
) -> None:
    ctx = listening(tmp_path, database_url, serve_in_thread)
    raw = raw_mail(
        head + "\nTo: support@example.org\nSubject: Login broken\nMessage-ID: <x1@v.example>"
    )
    with smtplib.SMTP(ctx.config.listener.host, ctx.config.listener.port, timeout=10) as client:
        client.sendmail("mailer@vendor.example", ["support@example.org"], raw)
    ticket = as_json(ctx.config.path, "tickets", "list")[0]
    detail = as_json(ctx.config.path, "tickets", "show", str(ticket["number"]))
    assert (detail["requester"], detail["requester_name"]) == (requester, name)
    assert detail["messages"][0]["from_raw"] == head.split("\n")[0].removeprefix("From: ")
    assert any(how in line for line in detail["messages"][0]["trace"])
    assert detail["assignee"] is None and detail["messages"][0]["kind"] == "customer"


def listening(tmp_path: Path, database_url: str, serve_in_thread: Any) -> Context:
    data = config_data(tmp_path, database_url, {"listener": {"port": free_port()}})
    ctx = open_gateway(load_config(write_config(tmp_path / "mailgate.toml", data)))
    serve_in_thread(ctx, imap=False)
    return ctx


def test_explain_names_where_the_requester_came_from(upgraded: Path, tmp_path: Path) -> None:
    path = tmp_path / "mail.eml"
    path.write_bytes(
        raw_mail(
            "From: Support Team\nReply-To: jane@vendor.example\nTo: support@example.org\nSubject: x"
        )
    )
    result = as_json(upgraded, "explain", str(path))
    assert (result["from"], result["from_name"], result["from_raw"]) == (
        "jane@vendor.example",
        "Support Team",
        "Support Team",
    )
    assert any("requester from Reply-To" in line for line in result["trace"])


# --- delivery reports ----------------------------------------------------------------------------


def dsn(about: str, action: str, status: str, recipient: str = "carla@customer.example") -> bytes:
    return raw_mail(
        f"""
From: Mail Delivery System <MAILER-DAEMON@mx.customer.example>
To: support@example.org
Subject: Delivery Status Notification ({action})
Message-ID: <dsn-{action}-{status}@mx.customer.example>
MIME-Version: 1.0
Content-Type: multipart/report; report-type=delivery-status; boundary=B
""",
        f"""--B\r
Content-Type: text/plain\r
\r
Your message was {action}.\r
\r
--B\r
Content-Type: message/delivery-status\r
\r
Reporting-MTA: dns; mx.customer.example\r
\r
Final-Recipient: rfc822; {recipient}\r
Action: {action}\r
Status: {status}\r
\r
--B\r
Content-Type: text/rfc822-headers\r
\r
From: support@example.org\r
To: {recipient}\r
Message-ID: {about}\r
\r
--B--\r
""",
    )


def test_a_delivered_dsn_is_a_delivery_report_on_the_ticket_and_the_outbox_item(
    tmp_path: Path, database_url: str, serve_in_thread: Any
) -> None:
    ctx = listening(tmp_path, database_url, serve_in_thread)
    host, port = ctx.config.listener.host, ctx.config.listener.port
    with smtplib.SMTP(host, port, timeout=10) as client:
        client.sendmail("carla@customer.example", ["support@example.org"], compose())
    (ack,) = m.OutboxItem.select().where(m.OutboxItem.notice == "acknowledgement")
    with smtplib.SMTP(host, port, timeout=10) as client:
        client.sendmail("", ["support@example.org"], dsn(ack.message_id, "delayed", "4.4.1"))
    listed = {i["id"]: i for i in as_json(ctx.config.path, "outbox", "list")}
    assert listed[ack.id]["delivery"] == "delayed"
    with smtplib.SMTP(host, port, timeout=10) as client:
        client.sendmail("", ["support@example.org"], dsn(ack.message_id, "relayed", "2.0.0"))
    listed = {i["id"]: i for i in as_json(ctx.config.path, "outbox", "list")}
    assert listed[ack.id]["delivery"] == "delivered"  # the latest report counts
    assert listed[ack.id]["delivery_detail"] == "carla@customer.example: relayed 2.0.0"
    others = [i for i in listed.values() if i["id"] != ack.id]
    assert others and all(i["delivery"] is None for i in others)
    number = str(as_json(ctx.config.path, "tickets", "list")[0]["number"])
    detail = as_json(ctx.config.path, "tickets", "show", number)
    events = [(e["kind"], e["new"], e["detail"]) for e in detail["events"]]
    assert ("delivery_report", "carla@customer.example", "relayed 2.0.0") in events
    assert ("delivery_delayed", "carla@customer.example", "4.4.1") in events
    assert detail["status"] == "new"  # a report is no reply: nothing reopened or answered


# --- TNEF ------------------------------------------------------------------------------------------


def test_a_winmail_dat_through_the_listener_gives_its_files_as_the_tickets_attachments(
    tmp_path: Path, database_url: str, serve_in_thread: Any
) -> None:
    ctx = listening(tmp_path, database_url, serve_in_thread)
    report, photo = b"%PDF-1.4 quarterly report", b"\xff\xd8\xff\xe0 photo of the damage"
    blob = winmail(
        [
            ("QUARTA~1.PDF", "Quartalsbericht Q3 2026.pdf", report),
            ("FOTO~1.JPG", "Foto vom Schaden.jpg", photo),
        ]
    )
    message = email.message.EmailMessage()
    message["From"] = "Jörg Müller <joerg@customer.example>"
    message["To"] = "support@example.org"
    message["Subject"] = "Bericht und Foto"
    message.set_content("Anbei der Bericht und das Foto.")
    message.add_attachment(blob, maintype="application", subtype="ms-tnef", filename="winmail.dat")
    with smtplib.SMTP(ctx.config.listener.host, ctx.config.listener.port, timeout=10) as client:
        client.sendmail("joerg@customer.example", ["support@example.org"], message.as_bytes())
    number = str(as_json(ctx.config.path, "tickets", "list")[0]["number"])
    (first,) = as_json(ctx.config.path, "tickets", "show", number)["messages"][:1]
    files = {a["filename"]: a for a in first["attachments"]}
    assert sorted(files) == ["Foto vom Schaden.jpg", "Quartalsbericht Q3 2026.pdf", "winmail.dat"]
    assert files["Quartalsbericht Q3 2026.pdf"]["sha256"] == hashlib.sha256(report).hexdigest()
    assert files["Quartalsbericht Q3 2026.pdf"]["content_type"] == "application/pdf"
    assert files["winmail.dat"]["sha256"] == hashlib.sha256(blob).hexdigest()  # kept as well
    for a in files.values():
        assert ctx.blobs.exists(a["sha256"])

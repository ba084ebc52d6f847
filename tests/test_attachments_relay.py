"""Files both ways through a real relay: what the customer and the agents receive
(issue 11). The gateway's outbound transport is the aiosmtpd relay of tests/relay.py."""

from __future__ import annotations

import email
import hashlib
import random
import struct
import subprocess
import sys
import zlib
from email import policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest

from mailgate import outbox
from mailgate.cli import main
from mailgate.context import Context
from mailgate.intake import ingest
from mailgate.outbox import streaming
from mailgate.outbox.streaming import BUFFER
from mailgate.store import models as m
from tests import queued
from tests.relay import Relay
from tests.support import compose, reply_to

CARLA = "carla@customer.example"


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def png(width: int, height: int, noise: int = 0) -> bytes:
    """A real PNG; ``noise`` random bytes in a private chunk make it as large as wanted."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    rows = b"".join(b"\x00" + b"\xff\x00\x00" * width for _ in range(height))
    extra = chunk(b"teXt", random.Random(noise).randbytes(noise)) if noise else b""
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + extra
        + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b"")
    )  # fmt: skip


PDF = b"%PDF-1.4\n" + random.Random(1).randbytes(40_000) + b"\n%%EOF\n"
SHOT = png(40, 30, noise=6_000)


def notice_for(address: str, kind: str) -> bytes:
    for item in m.OutboxItem.select().order_by(m.OutboxItem.id.desc()):
        if address in item.recipients and item.notice == kind:
            return queued.mail(item)
    raise AssertionError(f"no {kind} for {address}")


def received(relay: Relay, address: str, kind: str) -> list[EmailMessage]:
    return [
        r.message
        for r in relay.received
        if address in r.rcpt_tos and r.message["X-Mailgate-Notice"] == kind
    ]


def files_of(message: EmailMessage) -> dict[str, tuple[str, bytes, str]]:
    """filename → (content type, decoded bytes, Content-ID) of every file part."""
    found = {}
    for part in message.walk():
        name = part.get_filename()
        if name:
            payload = part.get_payload(decode=True)
            if part.get_content_type() == "message/rfc822":
                payload = part.get_payload()[0].as_bytes()
            found[name] = (part.get_content_type(), payload, str(part.get("Content-ID", "")))
    return found


def new_ticket(ctx: Context, **kwargs: Any) -> int:
    outcome = ingest(ctx, compose(**kwargs), source="smtp")
    assert outcome.action == "created" and outcome.ticket is not None
    return outcome.ticket


def thunderbird_reply(notice: bytes, files: list[tuple[str, str, bytes]]) -> bytes:
    """An agent's HTML answer as Thunderbird writes it: text + HTML, an inline image the
    HTML shows (multipart/related), a PDF, the notice quoted in a blockquote type=cite."""
    parsed = email.message_from_bytes(notice, policy=policy.default)
    msg = EmailMessage()
    msg["From"] = "Alice Smith <alice@example.org>"
    msg["To"] = str(parsed["Reply-To"])
    msg["Subject"] = "Re: " + " ".join(str(parsed["Subject"]).split())
    msg["Message-ID"] = "<tb-answer@example.org>"
    msg["In-Reply-To"] = parsed["Message-ID"]
    msg["References"] = parsed["Message-ID"]
    msg.set_content(
        "Hello Carla,\n\nthe statement is attached. This is important.\n\n"
        "On 23.11.26 10:00, Helpdesk wrote:\n> Ticket waits in the queue.\n"
    )
    msg.add_alternative(
        "<html><body><p>Hello Carla,</p><p>the statement is attached. <b>This is important.</b>"
        '</p><p><img src="cid:shot@tb.example" alt="screen"></p>'
        '<div class="moz-cite-prefix">On 23.11.26 10:00, Helpdesk wrote:</div>'
        '<blockquote type="cite"><p>Ticket waits in the queue. QUOTED-HISTORY</p></blockquote>'
        "</body></html>",
        subtype="html",
    )
    html_part = msg.get_payload()[1]
    html_part.add_related(SHOT, maintype="image", subtype="png", cid="<shot@tb.example>")
    for name, ctype, data in files:
        maintype, subtype = ctype.split("/")
        msg.add_attachment(data, maintype=maintype, subtype=subtype, filename=name)
    return msg.as_bytes(policy=policy.SMTP)


def test_an_agents_html_reply_with_a_pdf_and_an_inline_png_reaches_the_customer_whole(
    smtp_ctx: Context, relay: Relay
) -> None:
    new_ticket(smtp_ctx)
    notice = notice_for("alice@example.org", "assignment")
    name = "Kontoauszug März – Überweisung.pdf"
    outcome = ingest(smtp_ctx, thunderbird_reply(notice, [(name, "application/pdf", PDF)]), source="smtp")
    assert outcome.action == "appended"
    outbox.deliver(smtp_ctx.config)
    (answer,) = received(relay, CARLA, "agent_reply")
    files = files_of(answer)
    pdf_type, pdf_bytes, _ = files[name]  # the RFC 2231 name, decoded again, is the same name
    assert (pdf_type, sha(pdf_bytes)) == ("application/pdf", sha(PDF))
    (shot,) = [
        part for part in answer.walk() if part.get_content_type() == "image/png"
    ]
    assert sha(shot.get_payload(decode=True)) == sha(SHOT)
    assert shot.get_content_disposition() == "inline"
    # Inline stays inline: beside the HTML in multipart/related, which shows it by its new cid.
    related = next(p for p in answer.walk() if p.get_content_type() == "multipart/related")
    assert shot in list(related.iter_parts())
    html = answer.get_body(("html",)).get_content()
    cid = str(shot["Content-ID"]).strip("<>")
    assert f'src="cid:{cid}"' in html and "shot@tb.example" not in html
    # Sent as HTML (bold kept, sanitised, quoted history cut) with a text alternative.
    assert answer.get_body(("related",)) is not None
    alternative = next(p for p in answer.walk() if p.get_content_type() == "multipart/alternative")
    assert [p.get_content_type() for p in alternative.iter_parts()] == ["text/plain", "text/html"]
    assert "<b>This is important.</b>" in html
    assert "QUOTED-HISTORY" not in html and "<script" not in html
    text = answer.get_body(("plain",)).get_content()
    assert "This is important." in text and "Ticket waits in the queue" not in text


@pytest.mark.parametrize(
    "quote",
    [
        '<div class="gmail_quote"><div class="gmail_attr">On Mon wrote:</div>'
        "<blockquote>QUOTED-HISTORY</blockquote></div>",
        '<div id="appendonsend"></div><hr style="display:inline-block;width:98%">'
        '<div id="divRplyFwdMsg"><b>From:</b> Helpdesk<br><b>Sent:</b> Monday</div>'
        "<div>QUOTED-HISTORY</div>",
        '<div style="border:none;border-top:solid #E1E1E1 1.0pt;padding:3.0pt 0cm 0cm 0cm">'
        "<p><b>From:</b> Helpdesk</p></div><p>QUOTED-HISTORY</p>",
    ],
    ids=["gmail", "outlook-web", "outlook-desktop"],
)
def test_quoted_history_is_cut_from_gmail_and_outlook_html_replies(
    smtp_ctx: Context, relay: Relay, quote: str
) -> None:
    new_ticket(smtp_ctx)
    notice = notice_for("alice@example.org", "assignment")
    reply = reply_to(
        notice,
        sender="Alice Smith <alice@example.org>",
        body="We fixed it.",
        html=f"<div dir='ltr'>We <i>fixed</i> it.</div>{quote}",
    )
    ingest(smtp_ctx, reply, source="smtp")
    outbox.deliver(smtp_ctx.config)
    (answer,) = received(relay, CARLA, "agent_reply")
    html = answer.get_body(("html",)).get_content()
    assert "<i>fixed</i>" in html and "QUOTED-HISTORY" not in html


def test_tickets_reply_attach_relays_the_files_to_the_customer(
    smtp_ctx: Context, relay: Relay, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    number = new_ticket(smtp_ctx)
    report = tmp_path / "Prüfbericht 2026.pdf"
    report.write_bytes(PDF)
    shot = tmp_path / "screen.png"
    shot.write_bytes(SHOT)
    config = str(smtp_ctx.config.path)
    code = main(
        ["--config", config, "tickets", "reply", str(number), "--as", "alice",
         "--text", "Here is the report.", "--attach", str(report), "--attach", str(shot)]
    )  # fmt: skip
    assert code == 0, capsys.readouterr().err
    outbox.deliver(smtp_ctx.config)
    (answer,) = received(relay, CARLA, "agent_reply")
    files = files_of(answer)
    assert files["Prüfbericht 2026.pdf"][:2] == ("application/pdf", PDF)
    assert files["screen.png"][:2] == ("image/png", SHOT)
    assert "Here is the report." in answer.get_body(("plain",)).get_content()
    # Both stay on the ticket and can be fetched again.
    capsys.readouterr()
    assert main(["--config", config, "attachments", "list", str(number)]) == 0
    listing = capsys.readouterr().out
    assert "Prüfbericht 2026.pdf" in listing and "screen.png" in listing


@pytest.mark.config({"outbound": {"max_message_size": 30_000}})
def test_a_cli_reply_too_large_to_send_exits_1_and_queues_nothing(
    smtp_ctx: Context, relay: Relay, tmp_path: Path
) -> None:
    number = new_ticket(smtp_ctx)
    big = tmp_path / "scan.pdf"
    big.write_bytes(PDF)
    before = m.OutboxItem.select().count(), m.Message.select().count()
    done = subprocess.run(
        [sys.executable, "-m", "mailgate", "--config", str(smtp_ctx.config.path), "tickets",
         "reply", str(number), "--as", "alice", "--text", "Scan attached.", "--attach", str(big)],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    err = done.stderr
    assert done.returncode == 1
    assert err.count("\n") == 1 and "scan.pdf" in err and "outbound.max_message_size" in err
    assert (m.OutboxItem.select().count(), m.Message.select().count()) == before


def test_a_note_with_a_file_never_reaches_the_customer(smtp_ctx: Context, relay: Relay) -> None:
    number = new_ticket(smtp_ctx)
    notice = notice_for("alice@example.org", "assignment")
    note = reply_to(
        notice,
        sender="alice@example.org",
        body="#note\nInternal: the customer's contract.",
        attachments=[("contract.pdf", "application/pdf", PDF)],
    )
    ingest(smtp_ctx, note, source="smtp")
    outbox.deliver(smtp_ctx.config)
    assert [x["kind"] for x in m.Message.select().dicts()].count("note") == 1
    for r in relay.received:
        if CARLA in r.rcpt_tos:
            assert "contract.pdf" not in files_of(r.message)
    assert number


@pytest.mark.config({"notices": {"attach_max_bytes": 50_000}})
def test_a_customers_files_reach_the_assignee_and_beyond_the_limit_are_named(
    smtp_ctx: Context, relay: Relay
) -> None:
    archive = random.Random(2).randbytes(70_000)
    number = new_ticket(
        smtp_ctx,
        attachments=[("statement.pdf", "application/pdf", PDF), ("logs.zip", "application/zip", archive)],
    )
    outbox.deliver(smtp_ctx.config)
    (assignment,) = received(relay, "alice@example.org", "assignment")
    files = files_of(assignment)
    assert files["statement.pdf"][1] == PDF
    assert "logs.zip" not in files
    text = assignment.get_body(("plain",)).get_content()
    zip_id = m.Attachment.get(m.Attachment.filename == "logs.zip").id
    assert "logs.zip (application/zip, 68 KiB)" in text
    assert f"mailgate attachments get {zip_id}" in text
    # The customer's next mail with a file reaches the assignee's customer_reply notice.
    ack = notice_for(CARLA, "acknowledgement")
    shot = png(300, 200, noise=3_000)
    reply = reply_to(
        ack, sender=f"Carla <{CARLA}>", body="A screenshot.",
        attachments=[("screen.png", "image/png", shot)],
    )  # fmt: skip
    ingest(smtp_ctx, reply, source="smtp")
    outbox.deliver(smtp_ctx.config)
    (notice,) = received(relay, "alice@example.org", "customer_reply")
    assert files_of(notice)["screen.png"][1] == shot
    assert number


def test_files_of_sizes_at_the_encoding_edges_reach_the_assignee_byte_identical(
    smtp_ctx: Context, relay: Relay
) -> None:
    # A notice reads each file from the blob store in chunks of 1 MiB while the mail is
    # built and base64s 57 x 16,384 bytes at a time: sizes at and around those edges.
    edge = 57 * 16384
    sizes = [1, 57, edge, edge + 1, 2 * edge - 1, (1 << 20) + 3]
    sent = {f"f{n}.bin": random.Random(n).randbytes(n) for n in sizes}
    new_ticket(
        smtp_ctx,
        attachments=[(name, "application/octet-stream", data) for name, data in sent.items()],
    )
    outbox.deliver(smtp_ctx.config)
    (assignment,) = received(relay, "alice@example.org", "assignment")
    got = files_of(assignment)
    assert {name: got[name][1] for name in sent} == sent


def test_a_notice_sent_from_the_blob_store_keeps_lines_that_start_with_a_dot(
    smtp_ctx: Context, relay: Relay
) -> None:
    # A notice with files is composed into the blob store and sent from that file by the
    # outbox: SMTP's dot-stuffing must happen there too, or "." alone would end the mail.
    new_ticket(
        smtp_ctx,
        body="Hello,\n.\n..two dots\n.a line with a dot\nCarla\n",
        attachments=[("statement.pdf", "application/pdf", PDF)],
    )
    outbox.deliver(smtp_ctx.config)
    (assignment,) = received(relay, "alice@example.org", "assignment")
    assert files_of(assignment)["statement.pdf"][1] == PDF
    text = assignment.get_body(("plain",)).get_content().replace("\r\n", "\n")
    assert "\n.\n..two dots\n.a line with a dot\n" in text


@pytest.mark.parametrize("ending", [b"\r\n", b"no line break at the end"])
def test_a_mail_sent_from_a_file_keeps_dots_at_the_edges_of_its_buffers(
    relay: Relay, tmp_path: Path, ending: bytes
) -> None:
    # The file goes out a buffer at a time, stuffed buffer by buffer: a dot that starts a
    # line right at a buffer's start is doubled, one in the middle of a line is not.
    content = b"Subject: dots\r\n\r\n"

    def line_at(at: int, line: bytes) -> None:
        nonlocal content
        while at - len(content) > 160:
            content += b"x" * 78 + b"\r\n"
        if at > len(content):
            half = (at - len(content)) // 2
            content += b"y" * (half - 2) + b"\r\n" + b"z" * (at - len(content) - half - 2) + b"\r\n"
        assert len(content) == at
        content += line

    line_at(BUFFER - 3, b".\r\n.x\r\n")  # a dot line ending a buffer, one starting the next
    line_at(2 * BUFFER - 3, b"abc.d\r\n")  # a buffer starting with a dot inside a line
    line_at(3 * BUFFER - 1, b"\r\n.y\r\n")  # a buffer starting with the LF before a dot
    content += b".\r\n..\r\n." + ending
    path = tmp_path / "mail.eml"
    path.write_bytes(content)
    client = streaming.SMTP(relay.host, relay.port)
    try:
        client.sendmail("gw@example.org", ["a@example.org"], streaming.MailFile.from_path(path))
    finally:
        client.quit()
    (got,) = relay.received
    # Compared by digest: pytest's diff of two 200 KB byte strings takes minutes.
    assert sha(got.content) == sha(content if ending == b"\r\n" else content + b"\r\n")


def test_signature_logos_and_tracking_pixels_are_not_relayed(
    smtp_ctx: Context, relay: Relay
) -> None:
    msg = EmailMessage()
    msg["From"] = f"Carla <{CARLA}>"
    msg["To"] = "support@example.org"
    msg["Subject"] = "Card blocked"
    msg["Message-ID"] = "<sig@customer.example>"
    msg.set_content("My card is blocked.\n\n-- \nCarla")
    msg.add_alternative(
        '<p>My card is blocked.</p><img src="cid:pixel@x"><p>-- <br>Carla '
        '<img src="cid:logo@x"></p><p><img src="cid:photo@x"></p>',
        subtype="html",
    )
    html = msg.get_payload()[1]
    html.add_related(png(1, 1), maintype="image", subtype="png", cid="<pixel@x>")
    html.add_related(png(16, 16), maintype="image", subtype="png", cid="<logo@x>")
    photo = png(200, 100, noise=8_000)
    html.add_related(photo, maintype="image", subtype="png", cid="<photo@x>")
    ingest(smtp_ctx, msg.as_bytes(), source="smtp")
    outbox.deliver(smtp_ctx.config)
    (assignment,) = received(relay, "alice@example.org", "assignment")
    carried = [
        part.get_payload(decode=True)
        for part in assignment.walk()
        if part.get_content_type() == "image/png"
    ]
    assert carried == [photo]


def _mailboxes_with(**extra: Any) -> dict[str, Any]:
    from tests.support import BASE

    boxes = [dict(box) for box in BASE["mailbox"]]
    boxes[0].update(extra)
    return {"mailbox": boxes}


@pytest.mark.config(_mailboxes_with(max_attachment_size=20_000))
def test_a_file_over_max_attachment_size_is_ticketed_without_it_and_its_sender_is_told(
    smtp_ctx: Context, relay: Relay, capsys: pytest.CaptureFixture[str]
) -> None:
    small = png(20, 20, noise=3_000)
    number = new_ticket(
        smtp_ctx,
        attachments=[("statement.pdf", "application/pdf", PDF), ("screen.png", "image/png", small)],
    )
    outbox.deliver(smtp_ctx.config)
    (refused,) = received(relay, CARLA, "attachment_refused")
    text = refused.get_body(("plain",)).get_content()
    assert "statement.pdf (39 KiB): over the limit of 20 KiB" in text
    assert "screen.png" not in text
    # The ticket says so: an event, and the file listed with kept: false.
    config = str(smtp_ctx.config.path)
    assert main(["--config", config, "attachments", "list", str(number), "--json"]) == 0
    import json

    listed = {a["filename"]: a for a in json.loads(capsys.readouterr().out)}
    assert (listed["statement.pdf"]["kept"], listed["screen.png"]["kept"]) == (False, True)
    assert main(["--config", config, "attachments", "get", str(listed["statement.pdf"]["id"])]) == 1
    assert "was not kept" in capsys.readouterr().err
    events = list(m.Event.select().where(m.Event.kind == "attachment_dropped"))
    assert [e.new for e in events] == ["statement.pdf"]
    # The assignee sees the kept file attached and the dropped one named.
    (assignment,) = received(relay, "alice@example.org", "assignment")
    assert files_of(assignment)["screen.png"][1] == small
    assert "statement.pdf" not in files_of(assignment)
    assert "statement.pdf (application/pdf, 39 KiB): not kept" in (
        assignment.get_body(("plain",)).get_content()
    )


@pytest.mark.config({"outbound": {"max_message_size": 30_000}})
def test_an_agents_mail_too_large_to_send_reaches_nobody_and_the_agent_is_told(
    smtp_ctx: Context, relay: Relay
) -> None:
    new_ticket(smtp_ctx)
    notice = notice_for("alice@example.org", "assignment")
    answer = thunderbird_reply(notice, [("scan.pdf", "application/pdf", PDF)])
    ingest(smtp_ctx, answer, source="smtp")
    outbox.deliver(smtp_ctx.config)
    assert received(relay, CARLA, "agent_reply") == []
    (error,) = received(relay, "alice@example.org", "command_error")
    text = error.get_body(("plain",)).get_content()
    assert "scan.pdf (39 KiB)" in text and "outbound.max_message_size (29 KiB)" in text


@pytest.mark.config(_mailboxes_with(notices={"attach_max_bytes": 1_000}))
def test_a_mailbox_sets_its_own_attach_max_bytes(smtp_ctx: Context, relay: Relay) -> None:
    new_ticket(smtp_ctx, attachments=[("statement.pdf", "application/pdf", PDF)])
    outbox.deliver(smtp_ctx.config)
    (assignment,) = received(relay, "alice@example.org", "assignment")
    assert files_of(assignment) == {}
    assert "mailgate attachments get" in assignment.get_body(("plain",)).get_content()


def test_executables_are_listed_not_relayed(smtp_ctx: Context, relay: Relay) -> None:
    new_ticket(
        smtp_ctx,
        attachments=[("setup.exe", "application/x-msdownload", b"MZ" + bytes(5000)),
                     ("invoice.pdf", "application/pdf", PDF)],
    )  # fmt: skip
    outbox.deliver(smtp_ctx.config)
    (assignment,) = received(relay, "alice@example.org", "assignment")
    assert set(files_of(assignment)) == {"invoice.pdf"}
    assert "setup.exe (application/x-msdownload, 5 KiB): an executable, not relayed" in (
        assignment.get_body(("plain",)).get_content()
    )


def test_the_customers_html_reaches_the_assignee_sanitised(smtp_ctx: Context, relay: Relay) -> None:
    new_ticket(smtp_ctx)
    ack = notice_for(CARLA, "acknowledgement")
    reply = reply_to(
        ack,
        sender=f"Carla <{CARLA}>",
        body="Still down, see the table.",
        html='<p>Still <b>down</b>, see the table.</p><table><tr><td>card 4711</td></tr></table>'
        '<script>alert(1)</script><img src="https://tracker.example/p.gif" onerror="x()">',
    )
    ingest(smtp_ctx, reply, source="smtp")
    outbox.deliver(smtp_ctx.config)
    (notice,) = received(relay, "alice@example.org", "customer_reply")
    html = notice.get_body(("html",)).get_content()
    assert "Still <b>down</b>" in html and "<td>card 4711</td>" in html
    assert "<script" not in html and "alert(1)" not in html and "onerror" not in html
    assert "Still down, see the table." in notice.get_body(("plain",)).get_content()


@pytest.mark.config({"notices": {"relay_executables": True}})
def test_executables_are_relayed_when_the_config_says_so(smtp_ctx: Context, relay: Relay) -> None:
    program = b"MZ" + bytes(5000)
    new_ticket(smtp_ctx, attachments=[("setup.exe", "application/x-msdownload", program)])
    outbox.deliver(smtp_ctx.config)
    (assignment,) = received(relay, "alice@example.org", "assignment")
    assert files_of(assignment)["setup.exe"][1] == program


def test_an_html_answer_with_commands_never_shows_them_to_the_customer(
    smtp_ctx: Context, relay: Relay
) -> None:
    new_ticket(smtp_ctx)
    notice = notice_for("alice@example.org", "assignment")
    reply = reply_to(
        notice,
        sender="Alice Smith <alice@example.org>",
        body="#priority high\nWe are on it.",
        html="<div>#priority high</div><div>We are <b>on</b> it.</div>",
    )
    ingest(smtp_ctx, reply, source="smtp")
    outbox.deliver(smtp_ctx.config)
    (answer,) = received(relay, CARLA, "agent_reply")
    for part in answer.walk():
        if part.get_content_maintype() == "text":
            content = part.get_content()
            assert "#priority" not in content and "We are" in content
    assert m.Ticket.get().priority == "high"

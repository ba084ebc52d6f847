"""The SMTP/LMTP listener, reached with smtplib over loopback like any MTA would."""

from __future__ import annotations

import smtplib
import socket
import ssl
import time
from pathlib import Path
from typing import Any

import pytest

from mailgate.context import Context
from mailgate.store import models as m
from tests.conftest import open_gateway
from tests.relay import free_port
from tests.support import compose, config_data, load_config, self_signed_certificate, write_config

# Every test here opens the gateway (open_gateway) before anything else uses its database.
pytestmark = pytest.mark.usefixtures("upgraded_database")


def gateway_with(tmp_path: Path, database_url: str, **overrides: Any) -> Context:
    listener = {"port": free_port(), **overrides.pop("listener", {})}
    data = config_data(tmp_path, database_url, {"listener": listener, **overrides})
    return open_gateway(load_config(write_config(tmp_path / "mailgate.toml", data)))


@pytest.fixture
def listening(tmp_path: Path, database_url: str, serve_in_thread: Any) -> Context:
    ctx = gateway_with(tmp_path, database_url, gateway={"max_message_size": 200_000})
    serve_in_thread(ctx, imap=False)
    return ctx


def smtp(ctx: Context) -> smtplib.SMTP:
    return smtplib.SMTP(ctx.config.listener.host, ctx.config.listener.port, timeout=30)


def test_mail_for_our_mailbox_gets_250_after_it_is_stored(listening: Context) -> None:
    with smtp(listening) as client:
        client.ehlo("mx.customer.example")
        code, reply = client.docmd("MAIL FROM:<carla@customer.example>")
        assert code == 250
        assert client.docmd("RCPT TO:<support@example.org>")[0] == 250
        code, reply = client.data(compose())
    assert code == 250 and b"created ticket [EB#" in reply
    assert m.Ticket.select().count() == 1  # committed before the 250


def test_we_are_never_an_open_relay(listening: Context) -> None:
    with smtp(listening) as client, pytest.raises(smtplib.SMTPRecipientsRefused) as refused:
        client.sendmail("spammer@evil.example", ["victim@gmail.example"], compose())
    assert refused.value.recipients["victim@gmail.example"][0] == 550
    with smtp(listening) as client:
        result = client.sendmail(
            "carla@customer.example", ["victim@gmail.example", "support+123@example.org"], compose()
        )
    assert result == {
        "victim@gmail.example": (550, b"5.1.1 No such mailbox here; this server is not a relay")
    }


@pytest.mark.parametrize(
    "reverse_path", ['<""@customer.example>', '<" "@customer.example>', "<@customer.example>"]
)
def test_a_sender_with_an_empty_local_part_gets_553(listening: Context, reverse_path: str) -> None:
    with smtp(listening) as client:
        client.ehlo("mx.customer.example")
        code, reply = client.docmd(f"MAIL FROM:{reverse_path}")
        assert code == 553, reply
        # The session goes on: a proper sender is accepted afterwards.
        assert client.docmd("MAIL FROM:<carla@customer.example>")[0] == 250
    assert m.Receipt.select().count() == 0


def test_the_null_sender_of_bounces_is_still_accepted(listening: Context) -> None:
    with smtp(listening) as client:
        client.ehlo("mx.customer.example")
        assert client.docmd("MAIL FROM:<>")[0] == 250
        assert client.docmd("RCPT TO:<support@example.org>")[0] == 250
        code, _ = client.data(compose(sender="MAILER-DAEMON@mx.customer.example"))
    assert code == 250
    assert m.Receipt.select().count() == 1


def test_size_limit_is_announced_and_enforced(listening: Context) -> None:
    big = compose(body="x" * 300_000)
    with smtp(listening) as client:
        client.ehlo()
        assert client.esmtp_features["size"] == "200000"
        with pytest.raises(smtplib.SMTPSenderRefused) as declared:
            client.sendmail("carla@customer.example", ["support@example.org"], big)
        assert declared.value.smtp_code == 552
    with smtp(listening) as client:
        client.ehlo()
        client.esmtp_features.pop("size")  # a client that does not declare SIZE
        with pytest.raises(smtplib.SMTPDataError) as undeclared:
            client.sendmail("carla@customer.example", ["support@example.org"], big)
        assert undeclared.value.smtp_code == 552
    assert m.Ticket.select().count() == 0


def test_8bit_smtputf8_and_long_lines_are_accepted(listening: Context) -> None:
    raw = (
        "From: Jörg <jörg@kunde.example>\r\nTo: support@example.org\r\n"
        "Subject: Grüße 👋\r\nMessage-ID: <utf8-1@kunde.example>\r\n"
        "Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n"
        "Überweisung hängt. " + "long line " * 200 + "\r\n"
    ).encode("utf-8")
    with smtp(listening) as client:
        client.ehlo()
        assert client.has_extn("smtputf8") and client.has_extn("8bitmime")
        client.sendmail(
            "jörg@kunde.example",
            ["support@example.org"],
            raw,
            mail_options=["SMTPUTF8", "BODY=8BITMIME"],
        )
    ticket = m.Ticket.get()
    assert ticket.subject == "Grüße 👋"
    assert m.Contact.get_by_id(ticket.requester_id).email == "jörg@kunde.example"


def test_451_when_the_mail_cannot_be_stored(
    tmp_path: Path, database_url: str, serve_in_thread: Any
) -> None:
    blocker = tmp_path / "store"
    blocker.write_text("not a directory")
    ctx = gateway_with(tmp_path, database_url, storage={"blob_dir": str(blocker / "blobs")})
    serve_in_thread(ctx, imap=False)
    with smtp(ctx) as client, pytest.raises(smtplib.SMTPDataError) as deferred:
        client.sendmail("carla@customer.example", ["support@example.org"], compose())
    assert deferred.value.smtp_code == 451
    assert m.Receipt.select().count() == 0


def test_a_slow_session_does_not_stall_the_others(listening: Context) -> None:
    slow = smtp(listening)
    slow.ehlo()
    slow.docmd("MAIL FROM:<slow@customer.example>")
    slow.docmd("RCPT TO:<support@example.org>")
    slow.docmd("DATA")
    slow.send(b"From: slow@customer.example\r\nSubject: half\r\n")  # ... and then nothing
    started = time.monotonic()
    with smtp(listening) as client:
        client.sendmail(
            "fast@customer.example",
            ["support@example.org"],
            compose(sender="fast@customer.example"),
        )
    # A stalled listener would hold the fast mail until the slow session timed out
    # (minutes); the bound leaves room for a loaded machine.
    assert time.monotonic() - started < 5
    slow.close()


def test_connection_limit_answers_421(
    tmp_path: Path, database_url: str, serve_in_thread: Any
) -> None:
    ctx = gateway_with(tmp_path, database_url, listener={"max_connections": 2})
    serve_in_thread(ctx, imap=False)
    first, second = smtp(ctx), smtp(ctx)
    with socket.create_connection((ctx.config.listener.host, ctx.config.listener.port), 5) as third:
        assert third.recv(200).startswith(b"421")
    first.close()
    second.close()


def test_lmtp_on_a_unix_socket_answers_per_recipient(
    tmp_path: Path, database_url: str, serve_in_thread: Any
) -> None:
    path = tmp_path / "lmtp.sock"
    ctx = gateway_with(tmp_path, database_url, listener={"protocol": "lmtp", "socket": str(path)})
    serve_in_thread(ctx, imap=False)
    client = smtplib.LMTP(str(path))
    client.ehlo_or_helo_if_needed()
    client.mail("carla@customer.example")
    client.rcpt("support@example.org")
    client.rcpt("banking@example.org")
    client.putcmd("data")
    assert client.getreply()[0] == 354
    client.send(
        compose(to="support@example.org, banking@example.org").replace(b"\n.", b"\n..")
        + b"\r\n.\r\n"
    )
    replies = [client.getreply(), client.getreply()]
    assert [code for code, _ in replies] == [250, 250]
    client.quit()
    assert m.Ticket.select().count() == 1


def test_starttls_with_a_configured_certificate(
    tmp_path: Path, database_url: str, serve_in_thread: Any
) -> None:
    cert, key = self_signed_certificate(tmp_path)
    ctx = gateway_with(
        tmp_path,
        database_url,
        listener={"tls_cert": str(cert), "tls_key": str(key), "require_tls": True},
    )
    serve_in_thread(ctx, imap=False)
    with smtp(ctx) as plain:
        plain.ehlo()
        assert plain.has_extn("starttls")
        code, _ = plain.docmd("MAIL FROM:<a@b.example>")
        assert code == 530  # TLS required first
    context = ssl.create_default_context(cafile=str(cert))
    context.check_hostname = False
    with smtp(ctx) as client:
        client.starttls(context=context)
        client.sendmail("carla@customer.example", ["support@example.org"], compose())
    assert m.Ticket.select().count() == 1


def test_a_line_longer_than_64_kib_is_still_accepted(listening: Context) -> None:
    html = "<p>" + "x" * 70_000 + "</p>"
    raw = (
        b"From: c@customer.example\r\nTo: support@example.org\r\nSubject: long\r\n"
        b"Content-Type: text/html\r\n\r\n" + html.encode() + b"\r\n"
    )
    with smtp(listening) as client:
        client.sendmail("c@customer.example", ["support@example.org"], raw)
    assert m.Ticket.select().count() == 1


def test_a_mail_in_pieces_and_pipelined_commands_arrive_as_sent(listening: Context) -> None:
    """The DATA reader takes blocks, not lines: dot-stuffed lines, an ending split over
    several packets, and the next mail's commands written with the ending all come out
    as the client meant them (RFC 5321 4.5.2, RFC 2920)."""
    import hashlib

    from mailgate.blobs import open_store

    first = compose(subject="pieces", body=".hidden line\r\n..two dots\r\n.\r\nlast")
    second = compose(sender="dora@customer.example", subject="pipelined")

    def stuffed(raw: bytes) -> bytes:
        body = raw if raw.endswith(b"\r\n") else raw + b"\r\n"
        return b"".join(b"." + line if line.startswith(b".") else line
                        for line in body.splitlines(keepends=True))  # fmt: skip

    envelope = b"MAIL FROM:<%s>\r\nRCPT TO:<support@example.org>\r\nDATA\r\n"
    host, port = listening.config.listener.host, listening.config.listener.port
    with socket.create_connection((host, port), timeout=30) as sock:
        replies = sock.makefile("rb")

        def answer() -> bytes:
            while (line := replies.readline())[3:4] == b"-":
                pass
            return line

        assert answer().startswith(b"220")
        sock.sendall(b"EHLO mx.customer.example\r\n")
        assert answer().startswith(b"250")
        sock.sendall(envelope % b"carla@customer.example")
        assert [answer()[:3] for _ in range(3)] == [b"250", b"250", b"354"]
        data = stuffed(first) + b".\r\n" + envelope % b"dora@customer.example"
        for at in range(0, len(data) - 40, 97):  # in pieces, the ending split too
            sock.sendall(data[at : at + 97])
            time.sleep(0.002)
        sock.sendall(data[at + 97 :])
        assert [answer()[:3] for _ in range(4)] == [b"250", b"250", b"250", b"354"]
        sock.sendall(stuffed(second) + b".\r\nQUIT\r\n")
        assert answer()[:3] == b"250"
        assert answer()[:3] == b"221"
    blobs = open_store(listening.config)
    kept = {r.message_id: blobs.get(r.sha256) for r in m.Receipt.select()}
    assert len(kept) == 2
    for raw in (first, second):
        expected = raw if raw.endswith(b"\r\n") else raw + b"\r\n"
        assert hashlib.sha256(expected).hexdigest() in {
            hashlib.sha256(v).hexdigest() for v in kept.values()
        }


PATHS = [
    "<carla@customer.example>",
    "<carla@customer.example> SIZE=1234 BODY=8BITMIME",
    "<carla@customer.example>  SIZE=1234 ",
    "<>",
    "<> SIZE=10",
    "<Carla.Berg+ticket_7@Mail-1.Customer.EXAMPLE>",
    "<o'neil!#$%&*/=?^`{|}~@x.example>",
    "<carla@customer.example.>",
    "<carla..berg@customer.example>",
    "<carla@[192.0.2.7]>",
    '<"carla berg"@customer.example>',
    "<carla@customer.example> (a comment)",
    "<carla@customer.example>SIZE=1",
    " <carla@customer.example>",
    "carla@customer.example",
    "<carla@customer.example",
    "<@relay.example:carla@customer.example>",
    "<ç@bücher.example>",
    "<" + "x" * 65 + "@customer.example>",
    "<carla@>",
    "<@customer.example>",
]


@pytest.mark.parametrize("path", PATHS)
def test_the_fast_path_reads_mail_from_and_rcpt_to_as_aiosmtpd_does(path: str) -> None:
    from aiosmtpd.smtp import SMTP

    from mailgate.transports.smtp import MailgateSMTP

    for limit in (0, 64):
        server = MailgateSMTP.__new__(MailgateSMTP)
        server.local_part_limit = limit
        assert server._getaddr(path) == SMTP._getaddr(server, path)


def test_the_lines_of_the_ehlo_reply_arrive_whole(listening: Context) -> None:
    with smtp(listening) as client:
        code, features = client.ehlo("mx.customer.example")
    assert code == 250
    assert features.decode().splitlines()[1:] == [
        "SIZE 200000", "8BITMIME", "SMTPUTF8", "HELP"
    ]  # fmt: skip

"""Hostile and broken mail through the real transports (issue 9): stored, a ticket, and the
trace says what was mended — never a 451 or exit 75 for a mail that is no database problem.

The mails go in as an MTA hands them over: by the listener (smtplib) and by the pipe
(``mailgate ingest -`` in its own process); what is asserted is what a user sees on the
ticket (``tickets show --json``).
"""

from __future__ import annotations

import json
import re
import smtplib
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from mailgate.context import Context
from tests.relay import free_port
from tests.support import config_data, write_config


def pipe(config_path: Path, *args: str, stdin: bytes | None = None) -> tuple[int, str, str]:
    """mailgate in its own process, as Postfix's pipe runs it."""
    done = subprocess.run(
        [sys.executable, "-m", "mailgate", "--config", str(config_path), *args],
        input=stdin,
        capture_output=True,
        timeout=60,
        cwd=config_path.parent,
    )
    return (
        done.returncode,
        done.stdout.decode("utf-8", "replace"),
        done.stderr.decode("utf-8", "replace"),
    )


@pytest.fixture
def gateway(config_path: Path) -> Path:
    code, _, err = pipe(config_path, "db", "upgrade")
    assert code == 0, err
    return config_path


def ingested(config_path: Path, raw: bytes, *extra: str) -> dict[str, Any]:
    """Pipe one mail in; the ticket it became, as ``tickets show --json`` gives it."""
    code, out, err = pipe(
        config_path, "ingest", "-", "--sender=carla@customer.example", *extra, stdin=raw
    )
    assert code == 0, err
    assert out.startswith("created ["), out
    number = re.search(r"#(\d+)\]", out)
    assert number is not None
    code, out, err = pipe(config_path, "tickets", "show", number.group(1), "--json")
    assert code == 0, err
    return json.loads(out)


def first_inbound(ticket: dict[str, Any]) -> dict[str, Any]:
    return next(m for m in ticket["messages"] if m["direction"] == "in")


def repaired(message: dict[str, Any]) -> list[str]:
    return [line for line in message["trace"] if line.startswith("repaired: ")]


def test_a_from_of_one_bad_encoded_word_is_a_ticket_through_the_listener(
    tmp_path: Path, database_url: str, serve_in_thread: Any
) -> None:
    from tests.conftest import open_gateway
    from tests.support import load_config

    data = config_data(tmp_path, database_url, {"listener": {"port": free_port()}})
    ctx: Context = open_gateway(load_config(write_config(tmp_path / "mailgate.toml", data)))
    serve_in_thread(ctx, imap=False)
    raw = b"From: =?\xf8?Q?n?=\r\nTo: support@example.org\r\nSubject: help\r\n\r\nHello\r\n"
    with smtplib.SMTP(ctx.config.listener.host, ctx.config.listener.port, timeout=30) as client:
        client.ehlo("mx.customer.example")
        assert client.docmd("MAIL FROM:<carla@customer.example>")[0] == 250
        assert client.docmd("RCPT TO:<support@example.org>")[0] == 250
        code, reply = client.data(raw)
    assert code == 250 and b"created ticket [EB#" in reply, reply
    number = re.search(rb"#(\d+)\]", reply)
    assert number is not None
    code, out, _ = pipe(
        tmp_path / "mailgate.toml", "tickets", "show", number.group(1).decode(), "--json"
    )
    message = first_inbound(json.loads(out))
    assert message["text"] == "Hello"
    assert message["from"] == "carla@customer.example"
    assert any(
        line.startswith("repaired: From: encoded word with charset") for line in repaired(message)
    ), message["trace"]


def test_a_from_of_one_bad_encoded_word_is_a_ticket_through_the_pipe(gateway: Path) -> None:
    raw = b"From: =?\xf8?Q?n?=\r\nTo: support@example.org\r\nSubject: help\r\n\r\nHello\r\n"
    ticket = ingested(gateway, raw)
    message = first_inbound(ticket)
    assert ticket["requester"] == "carla@customer.example"
    assert message["text"] == "Hello" and message["from_raw"] == "n"
    assert "repaired: raw 8-bit bytes inside an encoded word read as UTF-8" in message["trace"]


def test_headers_in_charsets_that_are_no_text_become_a_ticket_with_replacements(
    gateway: Path,
) -> None:
    raw = (
        b"From: =?unicode-escape?Q?\\N{x}?= <dora@customer.example>\r\n"
        b"To: support@example.org\r\n"
        b"Subject: =?utf-16?Q?abc?= \xed\xa0\x80 =?base64?Q?caf=C3=A9?= a\x00b\r\n\r\n"
        b"Body\r\n"
    )
    ticket = ingested(gateway, raw)
    message = first_inbound(ticket)
    assert ticket["requester"] == "dora@customer.example"
    assert "caf\u00e9" in ticket["subject"] and "\x00" not in ticket["subject"]
    assert "repaired: Subject: encoded word with charset base64 read as UTF-8" in message["trace"]
    assert (
        "repaired: From: encoded word with charset unicode-escape read as UTF-8"
        in (message["trace"])
    )


def test_nul_in_the_charset_parameter_is_a_ticket_with_a_repair(gateway: Path) -> None:
    raw = (
        b"From: a@example.net\r\nTo: support@example.org\r\nSubject: nul\r\n"
        b'Content-Type: text/plain; charset="utf-8\x00"\r\n\r\nK\xc3\xa4se\r\n'
    )
    message = first_inbound(ingested(gateway, raw))
    assert message["text"] == "K\u00e4se"
    assert "repaired: NUL byte in a Content-Type parameter ignored" in message["trace"]
    assert any("unknown charset" in line for line in repaired(message))


def test_nul_in_the_boundary_parameter_is_a_ticket_with_a_repair(gateway: Path) -> None:
    raw = (
        b"From: a@example.net\r\nTo: support@example.org\r\nSubject: nul\r\n"
        b'Content-Type: multipart/mixed; boundary="a\x00b"\r\n\r\n'
        b"--a\x00b\r\nContent-Type: text/plain\r\n\r\nthe text\r\n--a\x00b--\r\n"
    )
    message = first_inbound(ingested(gateway, raw))
    assert message["text"] == "the text"
    assert repaired(message) == ["repaired: NUL byte in a Content-Type parameter ignored"]


def test_raw_utf8_in_an_encoded_word_of_a_forwarded_mail_is_a_ticket_with_a_repair(
    gateway: Path,
) -> None:
    raw = (
        b"From: a@example.net\r\nTo: support@example.org\r\nSubject: fwd\r\n"
        b"Content-Type: multipart/mixed; boundary=x\r\n\r\n"
        b"--x\r\nContent-Type: text/plain\r\n\r\nsee below\r\n"
        b"--x\r\nContent-Type: message/rfc822\r\n\r\n"
        b"From: b@example.com\r\nSubject: =?utf-8?Q?Caf\xc3\xa9 ferm\xc3\xa9?=\r\n\r\ninner\r\n"
        b"--x--\r\n"
    )
    message = first_inbound(ingested(gateway, raw))
    assert message["text"] == "see below"
    assert [a["filename"] for a in message["attachments"]] == ["Caf\u00e9 ferm\u00e9.eml"]
    assert repaired(message) == ["repaired: raw 8-bit bytes inside an encoded word read as UTF-8"]


def test_a_clean_mail_has_no_repair_lines(gateway: Path) -> None:
    raw = b"From: a@example.net\r\nTo: support@example.org\r\nSubject: fine\r\n\r\nAll good\r\n"
    assert repaired(first_inbound(ingested(gateway, raw))) == []
